"""Checks on admin boundaries (``dim_admin`` from :func:`geopipe.io.admin.read_admin`, or any
GeoDataFrame with ``ucode`` and polygons).

Areas are computed in the World Cylindrical Equal Area projection (EPSG:6933), in km².
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, MissingColumnError, problem
from .checks import CheckResult, check_levels, make_result

__all__ = ["check_admin"]

WHERE = "check_admin"
EQUAL_AREA = "EPSG:6933"


def check_admin(
    admin: gpd.GeoDataFrame,
    *,
    tolerance: float = 0.01,
    area_tolerance: float = 0.001,
    source: str | None = None,
    levels: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Check admin boundaries: geometry, codes, hierarchy, overlaps, gaps, CRS and coordinates.

    Parameters
    ----------
    admin
        ``dim_admin`` rows (``ucode``, ``admin_level``, ``parent_ucode``, geometry). ``admin_level``
        and ``parent_ucode`` are optional (one level, no hierarchy).
    tolerance
        Share of a child's area that may lie outside its parent before ``admin.child_outside_parent``
        flags it (default 1 %).
    area_tolerance
        Share of a level's area that overlaps / gaps may reach before they are flagged (0.1 %).
    source
        Name used in the results (default: ``attrs["geopipe"]["sources"]`` or ``"admin"``).
    levels
        Override the level of a check, e.g. ``{"admin.overlap": "fail"}``.

    Returns
    -------
    list of CheckResult
        One result per check id (see docs/quality.md).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> admin = gpd.GeoDataFrame({"ucode": ["A_V1", "A_V1"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
    ...                          crs=4326)
    >>> [r.level for r in check_admin(admin) if r.check_id == "admin.duplicate_ucode"]
    ['fail']
    """
    if not isinstance(admin, gpd.GeoDataFrame):
        raise InputError(
            problem(
                "admin",
                f"is a {type(admin).__name__}",
                "pass a GeoDataFrame (gp.read_admin)",
                where=WHERE,
            )
        )
    if "ucode" not in admin.columns:
        raise MissingColumnError(
            problem(
                "admin",
                "has no 'ucode' column",
                "pass the dim_admin table from gp.read_admin",
                where=WHERE,
            )
        )
    if not 0 <= tolerance < 1 or not 0 <= area_tolerance < 1:
        raise InputError(
            problem(
                "tolerance / area_tolerance",
                f"were {tolerance} / {area_tolerance}",
                "use shares between 0 and 1",
                where=WHERE,
            )
        )
    lv = check_levels(levels, WHERE)
    src = source or _source_name(admin)
    out = [*_geometry_checks(admin, src, lv), _duplicates(admin, src, lv), _crs(admin, src, lv)]
    bounds_result, in_bounds = _bounds(admin, src, lv)
    out += [bounds_result, _antimeridian(admin, src, lv)]
    ok = _usable(admin) & in_bounds
    if admin.crs is None or not ok.any():
        return out
    work = admin.loc[ok].copy()
    work["_geom_ea"] = work.geometry.to_crs(EQUAL_AREA).to_numpy()
    out.append(_missing_parents(admin, src, lv))
    out.append(_outside_parent(work, src, lv, tolerance))
    out.extend(_overlaps_and_gaps(work, src, lv, area_tolerance))
    return out


def _source_name(admin: pd.DataFrame) -> str:
    info = admin.attrs.get("geopipe", {}) if isinstance(admin.attrs, dict) else {}
    sources = info.get("sources") if isinstance(info, dict) else None
    if sources:
        return ", ".join(str(s).rsplit("/", 1)[-1] for s in sources)
    if "source" in admin.columns and len(admin):
        return ", ".join(
            sorted({str(s).split(" (")[0] for s in admin["source"].dropna().unique()})[:3]
        )
    return "admin"


def _usable(admin: gpd.GeoDataFrame) -> np.ndarray:
    geoms = admin.geometry.to_numpy()
    return (
        ~pd.isna(geoms)
        & ~shapely.is_empty(geoms)
        & shapely.is_valid(geoms)
        & np.isin(shapely.get_type_id(geoms), (3, 6))
    )


def _geometry_checks(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> list[CheckResult]:
    geoms = admin.geometry.to_numpy()
    ids = admin["ucode"].astype(str).to_numpy()
    empty = pd.isna(geoms) | shapely.is_empty(geoms)
    invalid = ~empty & ~shapely.is_valid(geoms)
    types = shapely.get_type_id(geoms)
    not_poly = ~empty & ~np.isin(types, (3, 6))
    report = admin.attrs.get("geopipe", {}) if isinstance(admin.attrs, dict) else {}
    repaired = int(report.get("geometries_repaired", 0) or 0)
    rejected = int(report.get("geometries_rejected", 0) or 0)
    reasons = [shapely.is_valid_reason(g) for g in geoms[invalid][:5]]
    has_z = ~empty & shapely.has_z(geoms)
    return [
        make_result(
            "admin.z_coordinates",
            src,
            int(has_z.sum()),
            default="warn",
            levels=lv,
            bad=f"{int(has_z.sum())} geometries have Z (3D) coordinates; geopipe works in 2D — gp.read_admin drops Z",
            ok="geometries are 2D",
            examples=ids[has_z],
        ),
        make_result(
            "admin.invalid_geometry",
            src,
            int(invalid.sum()) + repaired,
            default="warn",
            levels=lv,
            bad=f"{int(invalid.sum())} invalid geometries ({'; '.join(reasons) or 'none left'}) and {repaired} repaired "
            "by read_admin with make_valid; read with gp.read_admin to repair them",
            ok="all geometries are valid",
            examples=ids[invalid],
            details={
                "invalid": int(invalid.sum()),
                "repaired_by_reader": repaired,
                "reasons": reasons,
            },
        ),
        make_result(
            "admin.empty_geometry",
            src,
            int(empty.sum()) + int(not_poly.sum()) + rejected,
            levels=lv,
            default="fail"
            if (empty | not_poly).any()
            else "warn",  # units dropped by the reader: warn
            bad=f"{int(empty.sum())} empty/missing and {int(not_poly.sum())} non-polygon geometries "
            f"({rejected} more rejected by read_admin); fix or remove these units",
            ok="every unit has a polygon",
            examples=ids[empty | not_poly],
            details={
                "empty": int(empty.sum()),
                "not_polygon": int(not_poly.sum()),
                "rejected_by_reader": rejected,
            },
        ),
    ]


def _duplicates(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> CheckResult:
    dup = admin["ucode"].duplicated(keep=False).to_numpy()
    ids = sorted(admin.loc[dup, "ucode"].astype(str).unique())
    return make_result(
        "admin.duplicate_ucode",
        src,
        int(dup.sum()),
        default="fail",
        levels=lv,
        bad=f"{len(ids)} ucodes occur more than once ({int(dup.sum())} rows); keep one version per unit "
        "(read_admin valid_on=) or remove the duplicate rows",
        ok="ucodes are unique",
        examples=ids,
        details={"ucodes": len(ids)},
    )


def _crs(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> CheckResult:
    if admin.crs is None:
        return CheckResult(
            "admin.crs",
            lv.get("admin.crs", "fail"),
            src,
            len(admin),  # type: ignore[arg-type]
            "the boundaries have no CRS; pass crs='EPSG:xxxx' to gp.read_admin",
            (),
            {"crs": None},
        )
    epsg = admin.crs.to_epsg()
    return make_result(
        "admin.crs",
        src,
        0 if epsg == 4326 else len(admin),
        default="warn",
        levels=lv,
        bad=f"the boundaries are in {admin.crs.to_string()}, not EPSG:4326; read them with gp.read_admin "
        "(it reprojects) before joining other layers",
        ok="CRS is EPSG:4326",
        details={"crs": admin.crs.to_string()},
    )


def crs_bounds(crs: Any) -> tuple[float, float, float, float] | None:
    """Valid bounds of ``crs`` in its own units (from its area of use), or None when unknown."""
    from pyproj import CRS, Transformer

    crs = CRS.from_user_input(crs)
    area = crs.area_of_use
    if area is None:
        return None
    if crs.is_geographic:
        return (-180.0, -90.0, 180.0, 90.0)
    try:
        t = Transformer.from_crs(4326, crs, always_xy=True)
        return tuple(
            t.transform_bounds(area.west, area.south, area.east, area.north, densify_pts=21)
        )  # type: ignore[return-value]
    except Exception:
        return None


def _bounds(
    admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]
) -> tuple[CheckResult, np.ndarray]:
    """The bounds result, and a mask of the rows inside the CRS's bounds (usable for areas)."""
    geoms = admin.geometry.to_numpy()
    present = ~pd.isna(geoms) & ~shapely.is_empty(geoms)
    coords = shapely.bounds(geoms[present])
    finite = np.isfinite(coords).all(axis=1)
    limits = crs_bounds(admin.crs) if admin.crs is not None else (-180.0, -90.0, 180.0, 90.0)
    if limits is None:
        return CheckResult(
            "admin.coordinates_out_of_bounds",
            "pass",
            src,
            0,
            "the CRS has no known area of use; not checked",
        ), present
    west, south, east, north = limits
    # a margin of 0.5 % of the span: area-of-use bounds are approximate
    mx, my = (east - west) * 0.005, (north - south) * 0.005
    outside = (
        ~finite
        | (coords[:, 0] < west - mx)
        | (coords[:, 2] > east + mx)
        | (coords[:, 1] < south - my)
        | (coords[:, 3] > north + my)
    )
    ids = admin["ucode"].astype(str).to_numpy()[present][outside]
    in_bounds = present.copy()
    in_bounds[np.flatnonzero(present)[outside]] = False
    hint = (
        " (the coordinates look projected: pass the real CRS with crs=)"
        if admin.crs is None or admin.crs.is_geographic
        else ""
    )
    return make_result(
        "admin.coordinates_out_of_bounds",
        src,
        int(outside.sum()),
        default="fail",
        levels=lv,
        bad=f"{int(outside.sum())} units have coordinates outside the valid bounds of the CRS "
        f"({west:.6g}, {south:.6g}, {east:.6g}, {north:.6g}){hint}",
        ok="coordinates are inside the CRS's valid bounds",
        examples=ids,
        details={
            "crs_bounds": [west, south, east, north],
            "data_bounds": [
                float(np.nanmin(coords[:, 0])),
                float(np.nanmin(coords[:, 1])),
                float(np.nanmax(coords[:, 2])),
                float(np.nanmax(coords[:, 3])),
            ]
            if len(coords)
            else None,
        },
    ), in_bounds


def _antimeridian(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> CheckResult:
    """Polygons whose single parts span more than 180° of longitude: drawn across the antimeridian
    without being split (RFC 7946 §3.1.9), they wrap the wrong way round the globe."""
    if admin.crs is None or not admin.crs.is_geographic:
        return CheckResult(
            "admin.antimeridian", "pass", src, 0, "not a geographic CRS; not checked"
        )
    geoms = admin.geometry.to_numpy()
    present = ~pd.isna(geoms) & ~shapely.is_empty(geoms)
    parts, index = shapely.get_parts(geoms[present], return_index=True)
    b = shapely.bounds(parts)
    wide = (b[:, 2] - b[:, 0]) > 180
    rows = np.unique(np.flatnonzero(present)[index[wide]]) if wide.any() else np.zeros(0, dtype=int)
    ids = admin["ucode"].astype(str).to_numpy()[rows]
    return make_result(
        "admin.antimeridian",
        src,
        len(rows),
        default="fail",
        levels=lv,
        bad=f"{len(rows)} units have a polygon spanning more than 180° of longitude: they cross the antimeridian "
        "without being split and wrap the wrong way round the globe; split them at ±180° into a MultiPolygon "
        "(e.g. antimeridian.fix_polygon or ogr2ogr -wrapdateline)",
        ok="no polygon crosses the antimeridian unsplit",
        examples=ids,
    )


def _missing_parents(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> CheckResult:
    if "admin_level" not in admin.columns or "parent_ucode" not in admin.columns:
        return CheckResult(
            "admin.missing_parent",
            "pass",
            src,
            0,
            "no hierarchy columns (admin_level, parent_ucode); not checked",
        )
    levels = pd.to_numeric(admin["admin_level"], errors="coerce")
    top = levels.min()
    known = set(admin["ucode"].astype(str))
    parent = admin["parent_ucode"]
    has_parent_level = levels.sub(1).isin(set(levels.dropna()))
    no_parent = (
        (levels > top) & has_parent_level & (parent.isna() | ~parent.astype(str).isin(known))
    )
    ids = admin.loc[no_parent, "ucode"].astype(str).tolist()
    return make_result(
        "admin.missing_parent",
        src,
        int(no_parent.sum()),
        default="fail",
        levels=lv,
        bad=f"{int(no_parent.sum())} units below the top level have no parent in the table (parent_ucode empty or unknown); "
        "read the parent level too, or fix parent_ucode",
        ok="every unit below the top level has a parent",
        examples=ids,
    )


def _outside_parent(
    work: pd.DataFrame, src: str, lv: dict[str, str], tolerance: float
) -> CheckResult:
    if "parent_ucode" not in work.columns:
        return CheckResult(
            "admin.child_outside_parent", "pass", src, 0, "no parent_ucode column; not checked"
        )
    pos = pd.Series(np.arange(len(work)), index=work["ucode"].astype(str).to_numpy())
    pos = pos[~pos.index.duplicated()]
    ppos = pos.reindex(
        work["parent_ucode"]
        .astype(object)
        .where(work["parent_ucode"].notna(), "")
        .astype(str)
        .to_numpy()
    ).to_numpy()
    has = ~np.isnan(ppos)
    if not has.any():
        return CheckResult(
            "admin.child_outside_parent", "pass", src, 0, "no child-parent pairs; not checked"
        )
    geoms = work["_geom_ea"].to_numpy()
    child = geoms[has]
    parent = geoms[ppos[has].astype(np.int64)]
    area = shapely.area(child)
    inside = shapely.area(shapely.intersection(child, parent))
    with np.errstate(divide="ignore", invalid="ignore"):
        outside_share = np.where(area > 0, 1.0 - inside / area, 0.0)
    bad = outside_share > tolerance
    ids = work["ucode"].astype(str).to_numpy()[has][bad]
    worst = float(outside_share.max())
    return make_result(
        "admin.child_outside_parent",
        src,
        int(bad.sum()),
        default="warn",
        levels=lv,
        bad=f"{int(bad.sum())} units have more than {tolerance:.1%} of their area outside their parent "
        f"(worst {worst:.1%}, {float(((area - inside) / 1e6)[bad].sum()):.1f} km² in all); the levels come from "
        "different sources or years — rollups follow the finest level",
        ok=f"children lie inside their parents (worst {worst:.2%} outside, tolerance {tolerance:.1%})",
        examples=ids,
        details={
            "tolerance": tolerance,
            "worst_share_outside": worst,
            "km2_outside": float(((area - inside) / 1e6)[bad].sum()),
        },
    )


def _overlaps_and_gaps(
    work: pd.DataFrame, src: str, lv: dict[str, str], area_tolerance: float
) -> list[CheckResult]:
    levels = (
        work["admin_level"].to_numpy()
        if "admin_level" in work.columns
        else np.zeros(len(work), dtype=int)
    )
    geoms = work["_geom_ea"].to_numpy()
    ids = work["ucode"].astype(str).to_numpy()
    overlap_rows: dict[str, Any] = {}
    gap_rows: dict[str, Any] = {}
    overlap_examples: list[str] = []
    gap_examples: list[str] = []
    n_overlap = n_gap = 0
    unique_levels = sorted(set(levels.tolist()))
    unions: dict[Any, Any] = {}
    for level in unique_levels:
        sel = np.flatnonzero(levels == level)
        g = geoms[sel]
        level_area = float(shapely.area(g).sum())
        unions[level] = shapely.union_all(g)
        tree = shapely.STRtree(g)
        left, right = tree.query(g, predicate="intersects")
        keep = left < right
        left, right = left[keep], right[keep]
        inter = shapely.area(shapely.intersection(g[left], g[right])) if len(left) else np.zeros(0)
        real = inter > 0
        km2 = float(inter[real].sum()) / 1e6
        share = km2 * 1e6 / level_area if level_area else 0.0
        overlap_rows[str(level)] = {"km2": round(km2, 4), "share": share, "pairs": int(real.sum())}
        if share > area_tolerance:
            n_overlap += int(real.sum())
            order = np.argsort(-inter[real])
            overlap_examples += [
                f"{ids[sel][a]}|{ids[sel][b]}"
                for a, b in zip(left[real][order], right[real][order], strict=True)
            ]
    for level in unique_levels:
        # gaps: area of the level above (or of the level's own outline) not covered by this level
        above = [u for u in unique_levels if u < level]
        if above:
            outline = unions[above[-1]]
        else:
            outline = shapely.union_all([shapely.Polygon(r) for r in _exteriors(unions[level])])
        gap = shapely.difference(outline, unions[level])
        gap_km2 = float(shapely.area(gap)) / 1e6
        outline_area = float(shapely.area(outline))
        share = gap_km2 * 1e6 / outline_area if outline_area else 0.0
        gap_rows[str(level)] = {
            "km2": round(gap_km2, 4),
            "share": share,
            "against": f"level {above[-1]}" if above else "own outline",
        }
        if share > area_tolerance:
            n_gap += 1
            gap_examples.append(f"level {level}: {gap_km2:.1f} km²")

    def fmt(rows: dict[str, Any]) -> str:
        return "; ".join(
            f"level {k}: {v['km2']:.1f} km² ({v['share']:.2%})" for k, v in rows.items()
        )

    return [
        make_result(
            "admin.overlap",
            src,
            n_overlap,
            default="warn",
            levels=lv,
            bad=f"units of one level overlap by more than {area_tolerance:.1%} of the level's area ({fmt(overlap_rows)}); "
            "points and pixels in the overlaps could count twice — fix the boundaries or accept the error",
            ok=f"no overlaps above {area_tolerance:.1%} ({fmt(overlap_rows)})",
            examples=overlap_examples,
            details={"by_level": overlap_rows, "area_tolerance": area_tolerance},
        ),
        make_result(
            "admin.gap",
            src,
            n_gap,
            default="warn",
            levels=lv,
            bad=f"gaps between the units of a level exceed {area_tolerance:.1%} ({fmt(gap_rows)}); data falling in the gaps "
            "is not counted at that level",
            ok=f"no gaps above {area_tolerance:.1%} ({fmt(gap_rows)})",
            examples=gap_examples,
            details={"by_level": gap_rows, "area_tolerance": area_tolerance},
        ),
    ]


def _exteriors(geom: Any) -> list[Any]:
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), (3,))]
    return list(shapely.get_exterior_ring(polys))
