"""GeoRepo boundaries over HTTP, in the ``dim_admin`` schema.

:func:`read_view` pages through ``/api/v1/search/view/{uuid}/entity/level/{n}/?geom=full_geom``
for each level asked for, and feeds the entities through the same GeoRepo adapter as
:func:`geopipe.read_admin` (a GeoRepo API JSON or GeoJSON export read from a file gives the same
table). ``format="json"`` pages are ``{page, total_page, page_size, results}``; ``format="geojson"``
pages are FeatureCollections with ``page`` / ``total_page`` / ``page_size`` as response headers.

Examples
--------
>>> import geopipe as gp
>>> admin = gp.georepo.read_view("https://georepo.unicef.org", "0f3c...", levels=[0, 1, 2],
...                              cache_dir="~/.cache/geopipe")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ..errors import ConfigError, FormatError, InputError, problem
from ._http import (
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

__all__ = ["check_env_for", "read_view", "view_version"]

WHERE = "georepo.read_view"
USER_HEADER = "GeoRepo-User-Key"
REQUIRED_FIELDS = ("ucode", "name")  # plus admin_level (or level) and a geometry


def check_env_for(
    *,
    token_env: str = "GEOREPO_TOKEN",
    user_env: str = "GEOREPO_USER",
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Environment variables a GeoRepo source needs that are not set (no network call).

    Parameters
    ----------
    token_env, user_env
        Names of the variables holding the API key and the user's e-mail.
    environ
        Environment to check (default ``os.environ``).

    Returns
    -------
    list of str
        Missing variable names; empty when the source can authenticate.

    Examples
    --------
    >>> check_env_for(token_env="T", user_env="U", environ={"T": "k"})
    ['U']
    """
    return check_env(token_env, user_env, environ=environ)


def _client(base_url: str, token_env: str, user_env: str, **http: Any) -> HttpClient:
    creds = credentials(
        "GeoRepo", scheme="Token", token_env=token_env, user_env=user_env, user_header=USER_HEADER
    )
    # GeoRepo turns unhandled server errors into 400: retry a 400 before believing it
    return HttpClient(base_url, creds, where=WHERE, retry_status=(400,), **http)


def view_version(
    base_url: str,
    view_uuid: str,
    *,
    token_env: str = "GEOREPO_TOKEN",
    user_env: str = "GEOREPO_USER",
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> str:
    """The version stamp of a view (its ``version`` and ``last_update`` from the view detail).

    :func:`read_view` keys its cache on this, so an unchanged view is not downloaded again.

    Parameters
    ----------
    base_url, view_uuid
        Server and view.
    token_env, user_env
        Environment variables holding the API key and the user's e-mail.
    timeout, retries, backoff
        HTTP settings (see :func:`read_view`).

    Returns
    -------
    str
        ``"<version>|<last_update>"`` as the server reports them.

    Examples
    --------
    >>> view_version("https://georepo.unicef.org", "0f3c...")  # doctest: +SKIP
    '3|2024-05-02T10:11:12Z'
    """
    client = _client(
        base_url, token_env, user_env, timeout=timeout, retries=retries, backoff=backoff
    )
    return _view_version(client, view_uuid)


def _view_version(client: HttpClient, view_uuid: str) -> str:
    data, _ = client.get_json(
        f"api/v1/search/view/{view_uuid}/",
        what=f"GeoRepo view '{view_uuid}'",
        not_found="check view_uuid (GeoRepo: Views → the view's UUID) and that your user can read it",
    )
    if not isinstance(data, dict) or not ({"version", "last_update"} & set(data)):
        raise FormatError(
            problem(
                f"GeoRepo view '{view_uuid}' detail",
                "has neither 'version' nor 'last_update'",
                "pass view_version= yourself (e.g. the view's last update date)",
                where=WHERE,
            )
        )
    return f"{data.get('version')}|{data.get('last_update')}"


def read_view(
    base_url: str,
    view_uuid: str,
    *,
    levels: Sequence[int],
    valid_on: str | dt.date | None = None,
    format: Literal["geojson", "json"] = "geojson",
    token_env: str = "GEOREPO_TOKEN",
    user_env: str = "GEOREPO_USER",
    cache_dir: str | None = None,
    view_version: str | None = None,
    page_size: int = 50,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> gpd.GeoDataFrame:
    """Read the admin units of a GeoRepo view into the ``dim_admin`` table.

    Parameters
    ----------
    base_url
        GeoRepo server, e.g. ``"https://georepo.unicef.org"``.
    view_uuid
        The view to read (GeoRepo views are versioned selections of a dataset).
    levels
        Admin levels to read (0 = country).
    valid_on
        Keep only the versions valid on this date (as :func:`geopipe.read_admin`).
    format
        ``"geojson"`` (paging in response headers) or ``"json"`` (paging in the body).
    token_env, user_env
        Environment variables holding the API key (``Authorization: Token``) and the user's
        e-mail (``GeoRepo-User-Key``). Values never appear in logs, errors or cache names.
    cache_dir
        Folder for the on-disk response cache. Pages are cached under a hash of the URL and the
        view version, so a rerun of an unchanged view downloads nothing, and a run that failed on
        page 37 resumes there.
    view_version
        The view's version for the cache key; asked from the server (one small request) when
        omitted and ``cache_dir`` is set.
    page_size
        Page size asked for; the server may cap it (GeoRepo's default cap is 50): paging follows
        the server's ``total_page``, not this number.
    timeout, retries, backoff
        Seconds per read, retries on 429 / 5xx / cut-off bodies, first backoff in seconds.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`geopipe.io.admin.DIM_ADMIN_COLUMNS`; ``source`` names the server and view.
        ``attrs["geopipe"]`` holds what :func:`geopipe.read_admin` reports plus a ``remote``
        record (URL, view, version, pages, requests, cache hits) safe to put in a manifest.

    Raises
    ------
    ConfigError
        A credential variable is unset, or ``base_url`` / ``levels`` / ``format`` is unusable.
    RemoteAuthError
        The server refused the key (401/403).
    RemoteError
        Unknown view or level (404) or the server kept failing after the retries.
    FormatError
        Malformed JSON or entities missing fields geopipe needs (they are named).

    Examples
    --------
    >>> import geopipe as gp
    >>> adm = gp.georepo.read_view("https://georepo.unicef.org", "0f3c...", levels=[0, 1],
    ...                            valid_on="2024-01-01")  # doctest: +SKIP
    >>> adm.groupby("admin_level").size().to_dict()  # doctest: +SKIP
    {0: 1, 1: 5}
    """
    import warnings

    from ..errors import GeopipeWarning
    from ..io.admin import _georepo_api_frame, read_admin

    levels = _check_args(levels, format, page_size)
    client = _client(
        base_url, token_env, user_env, timeout=timeout, retries=retries, backoff=backoff
    )
    cache = None
    if cache_dir is not None:
        cache = ResponseCache(_expand(cache_dir), service="georepo")
        if view_version is None:
            view_version = _view_version(client, view_uuid)
    records: list[dict[str, Any]] = []
    pages: dict[int, int] = {}
    for level in levels:
        got = _read_level(client, cache, view_uuid, level, format, page_size, view_version)
        pages[level] = got[1]
        records.extend(got[0])
        if not got[0]:
            warnings.warn(
                f"{WHERE}: GeoRepo view {view_uuid} has no entities at level {level}",
                GeopipeWarning,
                stacklevel=2,
            )
    label = f"GeoRepo view {view_uuid}"
    if not records:
        raise InputError(
            problem(
                label,
                f"has no entities at levels {levels}",
                "check the view's levels (GeoRepo counts from 0 = country)",
                where=WHERE,
            )
        )
    frame = _georepo_api_frame(records, label)  # the file reader's JSON -> GeoDataFrame step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GeopipeWarning)
        table = read_admin(frame, valid_on=valid_on)
    for w in caught:  # re-issue with the view named instead of "<GeoDataFrame>"
        warnings.warn(str(w.message).replace("<GeoDataFrame>", label), w.category, stacklevel=2)
    host = urlsplit(client.base_url).hostname
    table["source"] = f"{host} view {view_uuid} (GeoRepo)"
    report = dict(table.attrs.get("geopipe", {}))
    report["sources"] = [f"{client.base_url}/api/v1/search/view/{view_uuid}/"]
    report["remote"] = {
        "service": "GeoRepo",
        "base_url": client.base_url,
        "view_uuid": view_uuid,
        "view_version": view_version,
        "levels": levels,
        "format": format,
        "pages": pages,
        "requests": client.requests,
        "cache_hits": cache.hits if cache else 0,
        "credentials_from": list(client.creds.env),
    }
    table.attrs["geopipe"] = report
    client.log(logging.INFO, "%s: %d units from %s", WHERE, len(table), label)
    return table


def _expand(path: str) -> str:
    import os

    return os.path.expanduser(str(path))


def _check_args(levels: Sequence[int], format: str, page_size: int) -> list[int]:
    if isinstance(levels, int | str) or not levels:
        raise ConfigError(
            problem("levels", f"was {levels!r}", "give a list such as [0, 1, 2]", where=WHERE)
        )
    try:
        out = sorted({int(lv) for lv in levels})
    except (TypeError, ValueError):
        raise ConfigError(
            problem("levels", f"was {levels!r}", "use integers such as [0, 1, 2]", where=WHERE)
        ) from None
    if out[0] < 0:
        raise ConfigError(problem("levels", f"was {levels!r}", "use 0 or more", where=WHERE))
    if format not in ("geojson", "json"):
        raise ConfigError(
            problem("format", f"was {format!r}", "use 'geojson' or 'json'", where=WHERE)
        )
    if int(page_size) < 1:
        raise ConfigError(problem("page_size", f"was {page_size}", "use 1 or more", where=WHERE))
    return out


def _read_level(
    client: HttpClient,
    cache: ResponseCache | None,
    view_uuid: str,
    level: int,
    format: str,
    page_size: int,
    version: str | None,
) -> tuple[list[dict[str, Any]], int]:
    path = f"api/v1/search/view/{view_uuid}/entity/level/{level}/"
    what = f"GeoRepo view '{view_uuid}' level {level}"

    def fetch(page: int) -> Page:
        params = {"page": page, "page_size": page_size, "geom": "full_geom", "format": format}
        key = ("GET", client.url(path), params, version)
        cached = cache.get(key) if cache else None
        if cached is None:
            data, resp = client.get_json(
                path,
                what=f"{what} page {page}",
                params=params,
                not_found=f"check view_uuid and that the view has level {level}",
            )
            cached = {"data": data, "headers": _paging_headers(resp.headers)}
            if cache:
                cache.put(key, cached)
        return _parse_page(cached["data"], cached["headers"], format, f"{what} page {page}")

    pages = [page for _, page in paginate(fetch, what=what, where=WHERE)]
    return [item for page in pages for item in page.items], len(pages)


def _paging_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in ("page", "total_page", "page_size") if k in headers}


def _parse_page(data: Any, headers: Mapping[str, str], format: str, what: str) -> Page:
    if format == "geojson":
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            raise _drift(what, "is not a GeoJSON FeatureCollection (no 'features' list)")
        if "total_page" not in headers:
            raise _drift(what, "has no 'total_page' response header")
        total = int_field(headers["total_page"], name="total_page", what=what, where=WHERE)
        items = []
        for f in data["features"]:
            if not isinstance(f, dict):
                raise _drift(what, "has a feature that is not an object")
            items.append({**(f.get("properties") or {}), "geometry": f.get("geometry")})
    else:
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise _drift(what, "has no 'results' list")
        if "total_page" not in data:
            raise _drift(what, "has no 'total_page' field")
        total = int_field(data["total_page"], name="total_page", what=what, where=WHERE)
        items = data["results"]
    _check_entities(items, what)
    return Page(items, total)


def _check_entities(items: list[Any], what: str) -> None:
    missing: dict[str, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise _drift(what, "has an entity that is not an object")
        keys = {k for k, v in item.items() if v is not None}
        for field in REQUIRED_FIELDS:
            if field not in keys:
                missing[field] = missing.get(field, 0) + 1
        if not ({"admin_level", "level"} & keys):
            missing["admin_level"] = missing.get("admin_level", 0) + 1
        if not ({"geometry", "geom"} & keys):
            missing["geometry (ask with geom=full_geom)"] = (
                missing.get("geometry (ask with geom=full_geom)", 0) + 1
            )
    if missing:
        shown = ", ".join(f"{k} ({n} of {len(items)})" for k, n in missing.items())
        raise _drift(what, f"has entities without the fields {shown}")


def _drift(what: str, issue: str) -> FormatError:
    return FormatError(
        problem(
            what,
            issue,
            "the GeoRepo API answer changed or base_url is not a GeoRepo server; "
            "check the server version and format=",
            where=WHERE,
        )
    )
