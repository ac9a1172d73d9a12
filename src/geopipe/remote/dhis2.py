"""DHIS2 over HTTP: organisation units, analytics values, and their match to GeoRepo ucodes.

* :func:`read_org_units` pages ``/api/organisationUnits`` (``fields=id,name,code,level,path,
  parent[id],geometry``), stopping on ``pager.page >= pager.pageCount`` (DHIS2 answers a page past
  the end with the last page again). The level is computed from ``path``; units without geometry
  are kept and counted.
* :func:`read_analytics` reads ``/api/analytics.json`` (every cell a string, nulls ``""``) and
  splits requests that would exceed the server's 50,000-row cap.
* :func:`match_org_units` joins org units to ``dim_admin`` ucodes: by code, then by name within
  the same (already matched) parent, then spatially; each unit records its method and none is
  dropped.

Auth: ``Authorization: ApiToken d2pat_...`` from ``token_env`` (default), or Basic auth from
``user_env`` + ``password_env``.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, FormatError, GeopipeWarning, InputError, problem
from ._dhis2_match import match_org_units
from ._http import (
    Credentials,
    HttpClient,
    Page,
    ResponseCache,
    check_env,
    credentials,
    int_field,
    paginate,
)

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    import pandas as pd

__all__ = ["check_env_for", "match_org_units", "read_analytics", "read_org_units"]

WHERE_OU = "dhis2.read_org_units"
WHERE_AN = "dhis2.read_analytics"
OU_FIELDS = "id,name,code,level,path,parent[id],geometry"
MAX_ROWS = 50_000  # DHIS2 refuses analytics answers larger than this (analytics max limit)


def check_env_for(
    *,
    token_env: str | None = "DHIS2_TOKEN",
    user_env: str | None = None,
    password_env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Environment variables a DHIS2 source needs that are not set (no network call).

    Parameters
    ----------
    token_env
        Variable holding a personal access token (used unless ``password_env`` is given).
    user_env, password_env
        Variables for Basic auth.
    environ
        Environment to check (default ``os.environ``).

    Returns
    -------
    list of str
        Missing variable names.

    Examples
    --------
    >>> check_env_for(token_env="D2", environ={})
    ['D2']
    """
    if password_env:
        return check_env(user_env, password_env, environ=environ)
    return check_env(token_env, environ=environ)


def _creds(token_env: str | None, user_env: str | None, password_env: str | None) -> Credentials:
    if password_env:
        return credentials("DHIS2", scheme="Basic", user_env=user_env, password_env=password_env)
    return credentials("DHIS2", scheme="ApiToken", token_env=token_env)


def _client(
    base_url: str,
    where: str,
    token_env: str | None,
    user_env: str | None,
    password_env: str | None,
    **http: Any,
) -> HttpClient:
    return HttpClient(base_url, _creds(token_env, user_env, password_env), where=where, **http)


# --------------------------------------------------------------------------- org units
def read_org_units(
    base_url: str,
    *,
    token_env: str | None = "DHIS2_TOKEN",
    user_env: str | None = None,
    password_env: str | None = None,
    levels: Sequence[int] | None = None,
    page_size: int = 1000,
    cache_dir: str | None = None,
    cache_max_age: float = 3600.0,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> gpd.GeoDataFrame:
    """Read DHIS2 organisation units with their hierarchy and geometry.

    Parameters
    ----------
    base_url
        DHIS2 instance, e.g. ``"https://play.dhis2.org/40"`` (``/api`` is added).
    token_env
        Variable holding a personal access token (``Authorization: ApiToken``).
    user_env, password_env
        Variables for Basic auth instead of a token.
    levels
        Only these DHIS2 levels (1 = the root, usually the country); all when omitted.
    page_size
        Units per page asked for (paging follows the server's ``pageCount``).
    cache_dir
        Folder for the response cache: a rerun within ``cache_max_age`` seconds (a run that
        failed on page 37) resumes from the pages already fetched. Org units have no version
        stamp, so entries expire.
    cache_max_age
        Seconds a cached page stays valid.
    timeout, retries, backoff
        Seconds per read, retries on 429 / 5xx / cut-off bodies, first backoff in seconds.

    Returns
    -------
    geopandas.GeoDataFrame
        ``id, name, code, level, parent_id, path, geometry`` (EPSG:4326; ``None`` where DHIS2
        has no geometry; points for facilities). ``level`` is the number of ids in ``path``.
        ``attrs["geopipe"]`` reports pages, requests and the units without geometry.

    Examples
    --------
    >>> import geopipe as gp
    >>> ou = gp.dhis2.read_org_units("https://dhis2.example.org", levels=[1, 2, 3])
    ... # doctest: +SKIP
    >>> ou.groupby("level").size().to_dict()  # doctest: +SKIP
    {1: 1, 2: 4, 3: 30}
    """
    import geopandas as gpd
    import pandas as pd

    client = _client(
        base_url, WHERE_OU, token_env, user_env, password_env,
        timeout=timeout, retries=retries, backoff=backoff,
    )  # fmt: skip
    cache = ResponseCache(cache_dir, service="dhis2", max_age=cache_max_age) if cache_dir else None
    params: list[tuple[str, Any]] = [("fields", OU_FIELDS), ("paging", "true")]
    if levels:
        params.append(("filter", f"level:in:[{','.join(str(int(lv)) for lv in levels)}]"))

    def fetch(page: int) -> Page:
        p = [*params, ("page", page), ("pageSize", int(page_size))]
        what = f"DHIS2 organisationUnits page {page}"
        key = ("GET", client.url("api/organisationUnits"), p)
        data = cache.get(key) if cache else None
        if data is None:
            data, _ = client.get_json("api/organisationUnits", what=what, params=p)
            _check_ou_page(data, what)
            if cache:
                cache.put(key, data)
        pager = data["pager"]
        count = int_field(pager.get("pageCount"), name="pager.pageCount", what=what, where=WHERE_OU)
        got = int_field(pager.get("page"), name="pager.page", what=what, where=WHERE_OU)
        if got < page:  # a page past the end comes back as the last page again: stop
            return Page([], count)
        return Page(data["organisationUnits"], count)

    pages = [p for _, p in paginate(fetch, what="DHIS2 organisationUnits", where=WHERE_OU)]
    units = [unit for page in pages for unit in page.items]
    n_pages = len(pages)
    frame = pd.DataFrame(units, columns=["id", "name", "code", "path", "parent", "geometry"])
    frame = frame.drop_duplicates("id", keep="first").reset_index(drop=True)
    table = gpd.GeoDataFrame(
        {
            "id": frame["id"].astype(str),
            "name": frame["name"].astype(object),
            "code": frame["code"].astype(object).where(frame["code"].notna(), None),
            "level": frame["path"].str.strip("/").str.count("/").add(1).astype("int64"),
            "parent_id": frame["parent"].map(
                lambda p: p.get("id") if isinstance(p, dict) else None
            ),
            "path": frame["path"].astype(str),
        },
        geometry=_geometries(frame["geometry"]),
        crs=4326,
    )
    if levels:
        table = table[table["level"].isin([int(lv) for lv in levels])].reset_index(drop=True)
    no_geom = table.geometry.isna()
    if no_geom.any():
        warnings.warn(
            f"{WHERE_OU}: {int(no_geom.sum())} of {len(table)} org units have no geometry "
            f"(kept; they can still match by code or name), e.g. "
            f"{', '.join(table.loc[no_geom, 'name'].astype(str).head(5))}",
            GeopipeWarning,
            stacklevel=2,
        )
    table.attrs["geopipe"] = {
        "remote": {
            "service": "DHIS2",
            "base_url": client.base_url,
            "endpoint": "api/organisationUnits",
            "pages": n_pages,
            "requests": client.requests,
            "cache_hits": cache.hits if cache else 0,
            "credentials_from": list(client.creds.env),
        },
        "rows": len(table),
        "units_per_level": {int(k): int(v) for k, v in table.groupby("level").size().items()},
        "without_geometry": int(no_geom.sum()),
        "without_geometry_ids": table.loc[no_geom, "id"].head(100).tolist(),
    }
    client.log(logging.INFO, "%s: %d org units in %d pages", WHERE_OU, len(table), n_pages)
    return table


def _check_ou_page(data: Any, what: str) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("organisationUnits"), list):
        raise _drift(what, "has no 'organisationUnits' list", WHERE_OU)
    if not isinstance(data.get("pager"), dict):
        raise _drift(what, "has no 'pager' object (was paging=true ignored?)", WHERE_OU)
    missing: dict[str, int] = {}
    for unit in data["organisationUnits"]:
        for field in ("id", "name", "path"):
            if not isinstance(unit, dict) or unit.get(field) in (None, ""):
                missing[field] = missing.get(field, 0) + 1
    if missing:
        n = len(data["organisationUnits"])
        shown = ", ".join(f"{k} ({v} of {n})" for k, v in missing.items())
        raise _drift(what, f"has org units without {shown}", WHERE_OU)


def _geometries(values: pd.Series) -> Any:
    import json

    import numpy as np
    import shapely

    text = np.array([json.dumps(g) if isinstance(g, dict) else None for g in values], dtype=object)
    out = np.full(len(text), None, dtype=object)
    has = np.array([t is not None for t in text], dtype=bool)
    if has.any():
        out[has] = shapely.from_geojson(text[has], on_invalid="ignore")
    return out


def _drift(what: str, issue: str, where: str) -> FormatError:
    return FormatError(
        problem(
            what,
            issue,
            "the DHIS2 API answer changed or base_url is not a DHIS2 server; check the version",
            where=where,
        )
    )


# --------------------------------------------------------------------------- analytics
def read_analytics(
    base_url: str,
    *,
    dx: str | Sequence[str],
    ou: str | Sequence[str],
    pe: str | Sequence[str],
    token_env: str | None = "DHIS2_TOKEN",
    user_env: str | None = None,
    password_env: str | None = None,
    params: Mapping[str, str] | None = None,
    max_rows: int = MAX_ROWS,
    cache_dir: str | None = None,
    cache_max_age: float = 3600.0,
    timeout: float = 120.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> pd.DataFrame:
    """Read aggregated values from ``/api/analytics.json`` as a long table.

    Parameters
    ----------
    base_url
        DHIS2 instance.
    dx, ou, pe
        Data items, org units and periods: lists of ids or ``;``-joined strings, as DHIS2's
        ``dimension=dx:a;b`` (``LEVEL-n``, ``OU_GROUP-x`` and relative periods are passed on).
    token_env, user_env, password_env
        Credentials, as in :func:`read_org_units`.
    params
        Extra query parameters (e.g. ``{"aggregationType": "SUM"}``).
    max_rows
        Requests whose explicit items could exceed this many rows (dx × ou × pe) are split; a
        409 saying the server's limit was exceeded splits further.
    cache_dir, cache_max_age, timeout, retries, backoff
        As in :func:`read_org_units`.

    Returns
    -------
    pandas.DataFrame
        One column per answer header (``dx, ou, pe, value`` ...); ``value`` float, ``""`` read as
        missing; ``dx_name``, ``ou_name``, ``pe_name`` from ``metaData.items`` when present.

    Raises
    ------
    InputError
        DHIS2 refused the request as invalid (409 with its ``errorCode`` E7100–E7131, quoted).

    Examples
    --------
    >>> import geopipe as gp
    >>> v = gp.dhis2.read_analytics("https://dhis2.example.org", dx=["fbfJHSPpUQD"],
    ...                             ou=["LEVEL-3", "ImspTQPwCqd"], pe="2024")  # doctest: +SKIP
    >>> list(v.columns)  # doctest: +SKIP
    ['dx', 'ou', 'pe', 'value', 'dx_name', 'ou_name', 'pe_name']
    """
    import pandas as pd

    client = _client(
        base_url, WHERE_AN, token_env, user_env, password_env,
        timeout=timeout, retries=retries, backoff=backoff,
    )  # fmt: skip
    cache = ResponseCache(cache_dir, service="dhis2", max_age=cache_max_age) if cache_dir else None
    dims = {"dx": _items(dx, "dx"), "ou": _items(ou, "ou"), "pe": _items(pe, "pe")}
    frames: list[pd.DataFrame] = []
    names: dict[str, str] = {}
    queue = _split(dims, int(max_rows))
    n_requests = 0
    while queue:
        part = queue.pop(0)
        n_requests += 1
        answer = _analytics_request(client, cache, part, params)
        if answer is None:  # too many rows: split the largest dimension and ask again
            queue = _halve(part) + queue
            continue
        frame, items = answer
        frames.append(frame)
        names.update(items)
    table = pd.concat(frames, ignore_index=True)
    # keywords (LAST_12_MONTHS, LEVEL-3) go with every part of a split request: keep each row once
    table = table.drop_duplicates([c for c in table.columns if c != "value"], ignore_index=True)
    for dim in ("dx", "ou", "pe"):
        if dim in table and names:
            table[f"{dim}_name"] = table[dim].map(names)
    table.attrs["geopipe"] = {
        "remote": {
            "service": "DHIS2",
            "base_url": client.base_url,
            "endpoint": "api/analytics.json",
            "requests": client.requests,
            "parts": n_requests,
            "cache_hits": cache.hits if cache else 0,
            "credentials_from": list(client.creds.env),
        },
        "rows": len(table),
    }
    return table


def _items(value: str | Sequence[str], name: str) -> list[str]:
    items = value.split(";") if isinstance(value, str) else [str(v) for v in value]
    items = [i.strip() for i in items if i and i.strip()]
    if not items:
        raise ConfigError(
            problem(name, f"was {value!r}", f"give at least one {name} item", where=WHERE_AN)
        )
    return items


# items DHIS2 expands on the server: org unit levels / groups, data element / indicator groups,
# user org units and relative periods (LAST_12_MONTHS, THIS_YEAR, TODAY); UIDs never contain "_"
_KEYWORD = re.compile(
    r"^(LEVEL-|OU_GROUP-|DE_GROUP-|IN_GROUP-)|^[A-Z0-9]*_[A-Z0-9_]*$|^(TODAY|YESTERDAY)$"
)


def _estimate(dims: Mapping[str, list[str]]) -> int | None:
    """Upper bound of rows when every item is explicit; None when a keyword expands."""
    if any(_KEYWORD.match(i) for items in dims.values() for i in items):
        return None
    return math.prod(len(v) for v in dims.values())


def _halve(dims: dict[str, list[str]]) -> list[dict[str, list[str]]]:
    # split only explicit items; keywords (LEVEL-3, LAST_12_MONTHS) stay with every half
    def explicit(dim: str) -> list[str]:
        return [i for i in dims[dim] if not _KEYWORD.match(i)]

    dim = max(dims, key=lambda d: len(explicit(d)))
    items = explicit(dim)
    if len(items) < 2:
        raise InputError(
            problem(
                "the analytics request",
                f"exceeds the server's row limit and cannot be split further ({dims})",
                "ask for fewer org units (e.g. one LEVEL at a time) or fewer periods",
                where=WHERE_AN,
            )
        )
    keywords = [i for i in dims[dim] if _KEYWORD.match(i)]
    mid = len(items) // 2
    return [{**dims, dim: keywords + items[:mid]}, {**dims, dim: keywords + items[mid:]}]


def _split(dims: dict[str, list[str]], max_rows: int) -> list[dict[str, list[str]]]:
    est = _estimate(dims)
    if est is None or est <= max_rows:
        return [dims]
    return [p for half in _halve(dims) for p in _split(half, max_rows)]


def _analytics_request(
    client: HttpClient,
    cache: ResponseCache | None,
    dims: Mapping[str, list[str]],
    extra: Mapping[str, str] | None,
) -> tuple[pd.DataFrame, dict[str, str]] | None:
    params: list[tuple[str, Any]] = [("dimension", f"{d}:{';'.join(v)}") for d, v in dims.items()]
    params += sorted((extra or {}).items())
    what = f"DHIS2 analytics ({', '.join(f'{d}: {len(v)} items' for d, v in dims.items())})"
    key = ("GET", client.url("api/analytics.json"), params)
    data = cache.get(key) if cache else None
    if data is None:
        data, resp = client.get_json("api/analytics.json", what=what, params=params, handle=(409,))
        if resp.status == 409:
            message = client.server_message(resp)
            if re.search(r"exceed|max(imum)? limit|too many", message, re.IGNORECASE):
                return None
            raise InputError(
                problem(
                    what,
                    f"was refused by DHIS2 (HTTP 409: {message})",
                    "fix the dx / ou / pe items the message names (E7100-E7131 are request "
                    "validation errors)",
                    where=WHERE_AN,
                )
            )
        if cache:
            cache.put(key, data)
    return _analytics_frame(data, what)


def _analytics_frame(data: Any, what: str) -> tuple[pd.DataFrame, dict[str, str]]:
    import pandas as pd

    if not isinstance(data, dict) or not isinstance(data.get("headers"), list):
        raise _drift(what, "has no 'headers' list", WHERE_AN)
    if not isinstance(data.get("rows"), list):
        raise _drift(what, "has no 'rows' list", WHERE_AN)
    cols = [h.get("name") if isinstance(h, dict) else None for h in data["headers"]]
    missing = [c for c in ("dx", "ou", "pe", "value") if c not in cols]
    if missing or None in cols:
        raise _drift(what, f"has headers {cols} without {missing or 'names'}", WHERE_AN)
    bad = [i for i, r in enumerate(data["rows"]) if not isinstance(r, list) or len(r) != len(cols)]
    if bad:
        raise _drift(what, f"has {len(bad)} rows whose length is not {len(cols)}", WHERE_AN)
    frame = pd.DataFrame(data["rows"], columns=cols, dtype=object)
    frame = frame.replace("", None)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    items = (data.get("metaData") or {}).get("items") or {}
    names = {k: v.get("name") for k, v in items.items() if isinstance(v, dict) and v.get("name")}
    return frame, names
