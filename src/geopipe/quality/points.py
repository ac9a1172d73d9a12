"""Checks on point layers (schools, health facilities, survey clusters, wealth-index tiles).

:func:`flag_points` returns one boolean column per row-level check (so the offending rows can be
quarantined); :func:`check_points` summarises the flags into :class:`CheckResult` objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import EmptyInputError, InputError, MissingColumnError, problem
from .checks import CheckResult, check_levels, make_result

__all__ = ["POINT_CHECKS", "check_points", "flag_points", "require_points_inside"]

WHERE = "check_points"

# check id -> (default level, message when rows are affected, message when none are)
POINT_CHECKS: dict[str, tuple[str, str, str]] = {
    "points.null_coordinates": (
        "warn",
        "{n} points have no coordinates; geocode them or drop them",
        "every point has coordinates",
    ),
    "points.zero_coordinates": (
        "warn",
        "{n} points are at (0, 0), a placeholder for unknown coordinates; geocode them",
        "no point at (0, 0)",
    ),
    "points.duplicate_id": (
        "warn",
        "{n} rows share an id with another row ({k} ids); deduplicate the source or pass another id_col",
        "ids are unique",
    ),
    "points.duplicate_coordinates": (
        "warn",
        "{n} points share their exact coordinates with another point ({k} locations); check for copies",
        "no two points share coordinates",
    ),
    "points.swapped_lat_lon": (
        "warn",
        "{n} points fall inside the boundaries only when latitude and longitude are swapped; swap the lon/lat columns for these rows",
        "no swapped lat/lon found",
    ),
    "points.outside_boundaries": (
        "warn",
        "{n} points lie outside every admin unit; they are not counted in any unit",
        "every point lies inside an admin unit",
    ),
    "points.low_precision": (
        "warn",
        "{n} points have fewer than {d} decimals in both coordinates (about {m} m or worse); locations may be approximate",
        "coordinates have at least {d} decimals",
    ),
    "points.value_domain": (
        "warn",
        "{n} values are outside the allowed values ({detail}); fix the source or the mapping",
        "values are inside their allowed domains",
    ),
}


def flag_points(
    points: gpd.GeoDataFrame,
    *,
    admin: gpd.GeoDataFrame | None = None,
    id_col: str = "point_id",
    min_decimals: int = 3,
    allowed: Mapping[str, Iterable[Any]] | None = None,
) -> pd.DataFrame:
    """One boolean column per row-level point check (True = the row fails it), same index as ``points``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> pts = gpd.GeoDataFrame({"point_id": ["a", "b"]}, geometry=[Point(0, 0), Point(30.1234, -1.9876)], crs=4326)
    >>> flag_points(pts)["points.zero_coordinates"].tolist()
    [True, False]
    """
    _validate(points, id_col, min_decimals, allowed, admin)
    x, y = _xy(points)
    null = ~(np.isfinite(x) & np.isfinite(y))
    zero = (x == 0) & (y == 0)
    usable = ~null & ~zero
    flags: dict[str, np.ndarray] = {
        "points.null_coordinates": null,
        "points.zero_coordinates": zero,
    }
    if id_col in points.columns:
        ids = points[id_col]
        flags["points.duplicate_id"] = (ids.notna() & ids.duplicated(keep=False)).to_numpy()
    else:
        flags["points.duplicate_id"] = np.zeros(len(points), dtype=bool)
    coords = pd.DataFrame({"x": x, "y": y})
    flags["points.duplicate_coordinates"] = usable & coords.duplicated(keep=False).to_numpy()
    if admin is not None:
        inside, swapped = _against_admin(admin, x, y, usable)
        flags["points.outside_boundaries"] = usable & ~inside & ~swapped
        flags["points.swapped_lat_lon"] = swapped
    flags["points.low_precision"] = usable & (
        np.maximum(_decimals(x, min_decimals), _decimals(y, min_decimals)) < min_decimals
    )
    if allowed:
        bad = np.zeros(len(points), dtype=bool)
        for col, values in allowed.items():
            bad |= _outside_domain(points[col], values)
        flags["points.value_domain"] = bad
    return pd.DataFrame(flags, index=points.index)


def check_points(
    points: gpd.GeoDataFrame,
    *,
    admin: gpd.GeoDataFrame | None = None,
    id_col: str = "point_id",
    min_decimals: int = 3,
    allowed: Mapping[str, Iterable[Any]] | None = None,
    source: str | None = None,
    levels: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Check a point layer: ids, coordinates, position against the boundaries, value domains.

    Parameters
    ----------
    points
        Points (e.g. from :func:`geopipe.io.points.read_points`), any CRS (compared in EPSG:4326).
    admin
        Boundaries (``dim_admin``) to test swapped lat/lon and points outside every unit against.
    id_col
        Id column for the duplicate-id check.
    min_decimals
        Points whose coordinates both have fewer decimals are flagged (3 decimals ≈ 110 m).
    allowed
        ``{column: allowed values}``; values are compared as stripped text (``1`` equals ``"1"``),
        nulls are reported in the details but not flagged.
    source
        Name used in the results (default: the reader's source file, else ``"points"``).
    levels
        Override a check's level, e.g. ``{"points.outside_boundaries": "fail"}``.

    Returns
    -------
    list of CheckResult

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> pts = gpd.GeoDataFrame({"point_id": ["a", "a"]}, geometry=[Point(30.1, -1.9), Point(30.2, -1.95)], crs=4326)
    >>> [r.check_id for r in check_points(pts) if not r.passed]
    ['points.duplicate_id', 'points.low_precision']
    """
    lv = check_levels(levels, WHERE)
    src = source or _source_name(points)
    if points.crs is None:
        return [
            CheckResult(
                "points.crs",
                lv.get("points.crs", "fail"),
                src,
                len(points),  # type: ignore[arg-type]
                "the points have no CRS; pass crs= to gp.read_points",
                (),
            )
        ]
    flags = flag_points(
        points, admin=admin, id_col=id_col, min_decimals=min_decimals, allowed=allowed
    )
    ids = (
        points[id_col].astype(str).to_numpy()
        if id_col in points.columns
        else points.index.astype(str).to_numpy()
    )
    x, y = _xy(points)
    out: list[CheckResult] = []
    for check_id, (default, bad_msg, ok_msg) in POINT_CHECKS.items():
        if check_id not in flags.columns:
            continue
        mask = flags[check_id].to_numpy()
        n = int(mask.sum())
        details: dict[str, Any] = {}
        fmt: dict[str, Any] = {
            "n": f"{n:,}",
            "d": min_decimals,
            "m": round(111_320 / 10**min_decimals * 10),
            "k": 0,
            "detail": "",
        }
        if check_id == "points.duplicate_id" and n:
            fmt["k"] = details["ids"] = int(points.loc[mask, id_col].nunique())
        if check_id == "points.duplicate_coordinates" and n:
            fmt["k"] = details["locations"] = int(
                pd.DataFrame({"x": x[mask], "y": y[mask]}).drop_duplicates().shape[0]
            )
        if check_id == "points.value_domain":
            details = _domain_details(points, allowed or {})
            fmt["detail"] = "; ".join(
                f"{c}: {v['outside']} outside {v['allowed']}"
                for c, v in details.items()
                if v["outside"]
            )
        if check_id == "points.outside_boundaries":
            details["share"] = n / len(points) if len(points) else 0.0
        examples = (
            sorted(set(ids[mask]))[:10]
            if check_id.startswith("points.duplicate")
            else ids[mask][:10]
        )
        out.append(
            make_result(
                check_id,
                src,
                n,
                default=default,
                levels=lv,
                bad=bad_msg.format(**fmt),  # type: ignore[arg-type]
                ok=ok_msg.format(**fmt),
                examples=examples,
                details=details,
            )
        )
    rejected = (
        points.attrs.get("geopipe", {}).get("rejected", [])
        if isinstance(points.attrs, dict)
        else []
    )
    if rejected:
        reasons = pd.Series([r.get("reason", "") for r in rejected]).value_counts().to_dict()
        out.append(
            CheckResult(
                "points.rejected_by_reader",
                lv.get("points.rejected_by_reader", "warn"),
                src,
                len(rejected),  # type: ignore[arg-type]
                f"{len(rejected)} rows were left out by read_points ({'; '.join(f'{v} {k}' for k, v in reasons.items())}); "
                "they are in the quarantine table",
                [str(r.get("point_id")) for r in rejected[:10]],
                {"reasons": reasons},
            )
        )
    return out


def require_points_inside(
    points: gpd.GeoDataFrame,
    admin: gpd.GeoDataFrame,
    *,
    source: str | None = None,
    where: str = "require_points_inside",
) -> None:
    """Raise when a point layer contributes nothing: not one point lies inside the boundaries.

    A layer whose every point is outside would publish confident zeros (0 facilities
    everywhere). The error names the file and the likely cause: swapped latitude / longitude
    columns when swapping them puts the points inside, otherwise points of another area or CRS.
    Points some of which are inside pass (the share outside is ``points.outside_boundaries`` in
    :func:`check_points`).

    Parameters
    ----------
    points
        Points (any CRS, compared in EPSG:4326), e.g. from :func:`geopipe.read_points`; tiles
        (polygons, :func:`geopipe.read_tiles`) are represented by a point inside each.
    admin
        Boundaries (any level or grid cells), any CRS.
    source
        Name of the points in the message (default: the file read_points read).
    where
        Function name shown in front of the message.

    Raises
    ------
    EmptyInputError
        No usable point lies inside any unit (a layer without usable points at all also raises).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> admin = gpd.GeoDataFrame(geometry=[box(28.8, -2.9, 30.9, -1.0)], crs=4326)
    >>> pts = gpd.GeoDataFrame(geometry=[Point(-1.94, 30.06)], crs=4326)  # (lat, lon) swapped
    >>> require_points_inside(pts, admin)
    Traceback (most recent call last):
    ...
    geopipe.errors.EmptyInputError: require_points_inside: points 'points' contribute nothing: ...
    """
    _validate(points, "point_id", 0, None, admin)
    if admin is None or not isinstance(admin, gpd.GeoDataFrame):
        raise InputError(problem("admin", "is missing", "pass the boundaries", where=where))
    geoms = points.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if polygonal.any():  # tiles: their centres stand for them
        geoms = geoms.copy()
        geoms[polygonal] = shapely.point_on_surface(geoms[polygonal])
        points = points.set_geometry(gpd.GeoSeries(geoms, index=points.index, crs=points.crs))
    x, y = _xy(points)
    usable = np.isfinite(x) & np.isfinite(y) & ~((x == 0) & (y == 0))
    inside, swapped = _against_admin(admin, x, y, usable)
    if inside.any():
        return
    raise outside_error(source or _source_name(points), x, y, usable, swapped, admin, where)


def outside_error(
    label: str,
    x: np.ndarray,
    y: np.ndarray,
    usable: np.ndarray,
    swapped: np.ndarray,
    admin: gpd.GeoDataFrame,
    where: str,
) -> EmptyInputError:
    """The error for a point layer none of whose points lies inside ``admin``, with the cause."""
    n = int(usable.sum())
    if n == 0:
        return EmptyInputError(
            problem(
                f"points '{label}'",
                f"contribute nothing: none of the {len(x):,} rows has usable coordinates",
                "check the coordinate columns (gp.read_points lists the rejected rows)",
                where=where,
            )
        )
    a = admin if admin.crs is None or admin.crs.to_epsg() == 4326 else admin.to_crs(4326)
    b = a.total_bounds
    share = float(swapped.sum()) / n
    if share >= 0.5:
        cause = (
            f"the latitude and longitude columns are swapped: with x and y exchanged "
            f"{int(swapped.sum()):,} of the {n:,} points fall inside the boundaries"
        )
        fix = (
            "swap the columns (read_points(..., lon='<latitude column>', lat='<longitude column>'))"
        )
    else:
        cause = (
            f"the points span lon {np.nanmin(x[usable]):.4g}..{np.nanmax(x[usable]):.4g}, lat "
            f"{np.nanmin(y[usable]):.4g}..{np.nanmax(y[usable]):.4g} but the boundaries lon "
            f"{b[0]:.4g}..{b[2]:.4g}, lat {b[1]:.4g}..{b[3]:.4g}: points of another area, or "
            "coordinates in another CRS read as degrees"
        )
        fix = "pass the points of this area, or their CRS (read_points(..., crs='EPSG:...'))"
    return EmptyInputError(
        problem(
            f"points '{label}'",
            f"contribute nothing: all {n:,} usable points lie outside every unit; likely cause: {cause}",
            fix,
            where=where,
        )
    )


# --------------------------------------------------------------------------- helpers
def _validate(points: Any, id_col: str, min_decimals: int, allowed: Any, admin: Any) -> None:
    if not isinstance(points, gpd.GeoDataFrame):
        raise InputError(
            problem(
                "points",
                f"is a {type(points).__name__}",
                "pass a GeoDataFrame (gp.read_points)",
                where=WHERE,
            )
        )
    if not isinstance(min_decimals, int) or not 0 <= min_decimals <= 10:
        raise InputError(
            problem(
                "min_decimals", f"was {min_decimals!r}", "use an integer from 0 to 10", where=WHERE
            )
        )
    missing = [c for c in (allowed or {}) if c not in points.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"allowed columns {missing}",
                "are not in the points",
                f"use columns from {list(map(str, points.columns))}",
                where=WHERE,
            )
        )
    if admin is not None and not isinstance(admin, gpd.GeoDataFrame):
        raise InputError(
            problem(
                "admin",
                f"is a {type(admin).__name__}",
                "pass the dim_admin GeoDataFrame",
                where=WHERE,
            )
        )
    if admin is not None and admin.crs is None:
        raise InputError(problem("admin", "has no CRS", "read it with gp.read_admin", where=WHERE))


def _source_name(points: pd.DataFrame) -> str:
    info = points.attrs.get("geopipe", {}) if isinstance(points.attrs, dict) else {}
    src = info.get("source") if isinstance(info, dict) else None
    return str(src).rsplit("/", 1)[-1] if src else "points"


def _xy(points: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geoms = points.geometry
    if points.crs is not None and points.crs.to_epsg() != 4326:
        geoms = geoms.to_crs(4326)
    g = shapely.force_2d(geoms.to_numpy())
    ok = ~pd.isna(g) & ~shapely.is_empty(g) & (shapely.get_type_id(g) == 0)
    x = np.full(len(g), np.nan)
    y = np.full(len(g), np.nan)
    x[ok] = shapely.get_x(g[ok])
    y[ok] = shapely.get_y(g[ok])
    return x, y


def _against_admin(
    admin: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(inside some unit, outside but inside when swapped) for each point."""
    a = admin if admin.crs.to_epsg() == 4326 else admin.to_crs(4326)
    geoms = a.geometry.to_numpy()
    geoms = geoms[~pd.isna(geoms) & ~shapely.is_empty(geoms)]
    tree = shapely.STRtree(geoms)
    inside = np.zeros(len(x), dtype=bool)
    idx = np.flatnonzero(usable)
    hit = tree.query(shapely.points(x[idx], y[idx]), predicate="intersects")[0]
    inside[idx[hit]] = True
    swapped = np.zeros(len(x), dtype=bool)
    cand = np.flatnonzero(usable & ~inside & (np.abs(x) <= 90))
    if len(cand):
        hit = tree.query(shapely.points(y[cand], x[cand]), predicate="intersects")[0]
        swapped[cand[hit]] = True
    return inside, swapped


def _decimals(values: np.ndarray, limit: int) -> np.ndarray:
    """Decimals needed to write each value (capped at ``limit``)."""
    out = np.full(len(values), limit, dtype=np.int64)
    done = ~np.isfinite(values)
    with np.errstate(invalid="ignore"):
        for d in range(limit):
            exact = ~done & (np.abs(np.round(values, d) - values) < 1e-9)
            out[exact] = d
            done |= exact
    return out


def _norm(values: Iterable[Any]) -> set[str]:
    out = set()
    for v in values:
        text = str(v).strip()
        if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
            text = text[:-2]
        out.add(text.lower())
    return out


def _as_text(series: pd.Series) -> pd.Series:
    text = (
        series.astype(object).map(lambda v: None if pd.isna(v) else str(v).strip()).astype(object)
    )
    text = text.where(
        text.isna(), text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).str.lower()
    )
    return text


def _outside_domain(series: pd.Series, values: Iterable[Any]) -> np.ndarray:
    text = _as_text(series)
    return (text.notna() & ~text.isin(_norm(values))).to_numpy(dtype=bool)


def _domain_details(points: pd.DataFrame, allowed: Mapping[str, Iterable[Any]]) -> dict[str, Any]:
    details = {}
    for col, values in allowed.items():
        text = _as_text(points[col])
        bad = text.notna() & ~text.isin(_norm(values))
        details[col] = {
            "allowed": sorted(_norm(values)),
            "outside": int(bad.sum()),
            "nulls": int(text.isna().sum()),
            "found": sorted(map(str, text[bad].unique()))[:10],
        }
    return details
