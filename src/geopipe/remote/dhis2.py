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
WHERE_MATCH = "dhis2.match_org_units"
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


_KEYWORD = re.compile(r"^(LEVEL-|OU_GROUP-|USER_ORGUNIT|DE_GROUP-|IN_GROUP-)|^[A-Z_]+$")


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


# --------------------------------------------------------------------------- matching
def match_org_units(
    org_units: gpd.GeoDataFrame,
    admin: gpd.GeoDataFrame,
    *,
    level_offset: int = 1,
    min_overlap: float = 0.5,
) -> pd.DataFrame:
    """Join DHIS2 org units to ``dim_admin`` ucodes: by code, by name under the parent, spatially.

    Each org unit of DHIS2 level ``L`` is compared with admin units of level
    ``L - level_offset`` (DHIS2 counts the country as 1, GeoRepo as 0):

    1. **code** — the org unit's ``code`` equals the admin unit's ``pcode`` or ``ucode``
       (trimmed, case-insensitive; codes shared by two admin units are not used);
    2. **name** — the normalised name (accents, case, spaces and punctuation ignored) is unique
       among the admin children of the ucode the org unit's parent matched (levels are matched
       top-down, so a parent matched by any method counts);
    3. **spatial** — a point lies in the admin unit; a polygon has at least ``min_overlap`` of its
       area in one admin unit (the largest share wins; areas in EPSG:6933).

    Parameters
    ----------
    org_units
        From :func:`read_org_units` (``id, name, code, level, parent_id, geometry``).
    admin
        ``dim_admin`` (e.g. from :func:`geopipe.georepo.read_view` or :func:`geopipe.read_admin`).
    level_offset
        DHIS2 level minus admin level.
    min_overlap
        Least share of an org unit's area inside an admin unit for a spatial match.

    Returns
    -------
    pandas.DataFrame
        Every org unit once: ``id, name, code, level, parent_id, ucode, admin_level,
        match_method`` (``code`` / ``name`` / ``spatial`` / ``unmatched``) and ``match_score``
        (1.0 for code and name and points; the area share for polygons). Counts per method and
        the unmatched ids are in ``attrs["geopipe"]``; unmatched units also raise a warning.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"ucode": ["X_V1", "X_0001_V1"], "admin_level": [0, 1],
    ...     "name": ["X", "North"], "parent_ucode": [None, "X_V1"], "pcode": ["X", "X01"]},
    ...     geometry=[shapely.box(0, 0, 2, 2), shapely.box(0, 1, 2, 2)], crs=4326)
    >>> ou = gpd.GeoDataFrame({"id": ["a", "b"], "name": ["Land X", "NORTH"], "code": ["X", None],
    ...     "level": [1, 2], "parent_id": [None, "a"]}, geometry=[None, None], crs=4326)
    >>> match_org_units(ou, admin)[["id", "ucode", "match_method"]].values.tolist()
    [['a', 'X_V1', 'code'], ['b', 'X_0001_V1', 'name']]
    """
    import pandas as pd

    need_ou = ["id", "name", "code", "level", "parent_id"]
    need_ad = ["ucode", "admin_level", "name", "parent_ucode"]
    _require(org_units, [*need_ou, org_units.geometry.name], "org_units")
    _require(admin, need_ad, "admin")
    if not 0 < min_overlap <= 1:
        raise InputError(
            problem("min_overlap", f"was {min_overlap}", "use a share in (0, 1]", where=WHERE_MATCH)
        )
    out = pd.DataFrame(org_units[need_ou]).reset_index(drop=True)
    out["admin_level"] = out["level"].astype("int64") - int(level_offset)
    out["ucode"] = _match_codes(out, admin)
    out["match_method"] = out["ucode"].notna().map({True: "code", False: None})
    out["match_score"] = out["ucode"].notna().astype(float).where(out["ucode"].notna())
    geoms = org_units.geometry.reset_index(drop=True)
    for level in sorted(out["admin_level"].unique()):
        _match_names(out, admin, level)
        _match_space(out, geoms, admin, level, min_overlap)
    out["match_method"] = out["match_method"].fillna("unmatched")
    out["ucode"] = out["ucode"].astype(object).where(out["ucode"].notna(), None)
    counts = out["match_method"].value_counts().to_dict()
    unmatched = out.loc[out["match_method"] == "unmatched", "id"].tolist()
    if unmatched:
        warnings.warn(
            f"{WHERE_MATCH}: {len(unmatched)} of {len(out)} org units match no admin unit "
            f"(kept with ucode null), e.g. "
            f"{', '.join(out.loc[out['ucode'].isna(), 'name'].astype(str).head(5))}",
            GeopipeWarning,
            stacklevel=2,
        )
    out.attrs["geopipe"] = {
        "matched": {k: int(v) for k, v in counts.items()},
        "unmatched": unmatched,
    }
    return out[[*need_ou, "ucode", "admin_level", "match_method", "match_score"]]


def _require(frame: Any, cols: list[str], name: str) -> None:
    from ..errors import MissingColumnError

    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"{name} columns {missing}",
                "are missing",
                f"pass {'read_org_units()' if name == 'org_units' else 'dim_admin'} output",
                where=WHERE_MATCH,
            )
        )


def _norm_code(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper().replace("", None)


def _norm_name(values: pd.Series) -> pd.Series:
    return (
        values.astype("string")
        .str.normalize("NFKD")
        .str.encode("ascii", "ignore")
        .str.decode("ascii")
        .str.casefold()
        .str.replace(r"[^0-9a-z]+", "", regex=True)
    )


def _unique_lookup(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows of ``frame`` whose ``keys`` identify exactly one ucode (ambiguous keys dropped)."""
    frame = frame.dropna(subset=keys).drop_duplicates([*keys, "ucode"])
    return frame[~frame.duplicated(keys, keep=False)]


def _match_codes(out: pd.DataFrame, admin: pd.DataFrame) -> pd.Series:
    import pandas as pd

    keys = pd.concat(
        [
            pd.DataFrame(
                {
                    "admin_level": admin["admin_level"],
                    "key": _norm_code(admin[col]),
                    "ucode": admin["ucode"],
                }
            )
            for col in ("pcode", "ucode")
            if col in admin
        ]
    )
    lookup = _unique_lookup(keys, ["admin_level", "key"])
    left = pd.DataFrame({"admin_level": out["admin_level"], "key": _norm_code(out["code"])})
    return left.merge(lookup, on=["admin_level", "key"], how="left")["ucode"].astype(object)


def _match_names(out: pd.DataFrame, admin: pd.DataFrame, level: int) -> None:
    import pandas as pd

    todo = (out["admin_level"] == level) & out["ucode"].isna()
    if not todo.any():
        return
    parent_ucode = out["parent_id"].map(out.dropna(subset=["ucode"]).set_index("id")["ucode"])
    parent_key = parent_ucode.where(out["parent_id"].notna(), "<root>")
    left = pd.DataFrame(
        {"parent": parent_key[todo], "key": _norm_name(out.loc[todo, "name"])},
        index=out.index[todo],
    )
    cand = admin[admin["admin_level"] == level]
    right = pd.DataFrame(
        {
            "parent": cand["parent_ucode"]
            .astype(object)
            .where(cand["parent_ucode"].notna(), "<root>"),
            "key": _norm_name(cand["name"]),
            "ucode": cand["ucode"],
        }
    )
    lookup = _unique_lookup(right, ["parent", "key"])
    hit = left.reset_index().merge(lookup, on=["parent", "key"], how="inner").set_index("index")
    out.loc[hit.index, "ucode"] = hit["ucode"]
    out.loc[hit.index, "match_method"] = "name"
    out.loc[hit.index, "match_score"] = 1.0


def _match_space(
    out: pd.DataFrame, geoms: Any, admin: gpd.GeoDataFrame, level: int, min_overlap: float
) -> None:
    import geopandas as gpd
    import numpy as np
    import shapely

    todo = (out["admin_level"] == level) & out["ucode"].isna() & geoms.notna().to_numpy()
    cand = admin[admin["admin_level"] == level]
    if not todo.any() or cand.empty:
        return
    ou = gpd.GeoDataFrame(
        {"row": out.index[todo]}, geometry=geoms[todo.to_numpy()].to_numpy(), crs=4326
    )
    pairs = gpd.sjoin(ou, cand[["ucode", "geometry"]].to_crs(4326), predicate="intersects")
    if pairs.empty:
        return
    a = gpd.GeoSeries(pairs.geometry.to_numpy(), crs=4326).to_crs(6933).to_numpy()
    b = (
        gpd.GeoSeries(cand.geometry.to_crs(4326).loc[pairs["index_right"]].to_numpy(), crs=4326)
        .to_crs(6933)
        .to_numpy()
    )
    polygonal = shapely.get_dimensions(a) == 2
    share = shapely.area(shapely.intersection(a, b)) / shapely.area(a).clip(min=1e-12)
    pairs["share"] = np.where(polygonal, share, 1.0)  # a point (or line) just has to touch
    best = pairs.sort_values("share", ascending=False).drop_duplicates("row")
    best = best[best["share"] >= min_overlap]
    out.loc[best["row"].to_numpy(), "ucode"] = best["ucode"].to_numpy()
    out.loc[best["row"].to_numpy(), "match_method"] = "spatial"
    out.loc[best["row"].to_numpy(), "match_score"] = best["share"].to_numpy()
