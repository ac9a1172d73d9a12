"""Shared machinery of the grids: admin preparation, cell x unit overlay, areas.

``split_cells`` overlays grid cells (H3 hexagons or squares, EPSG:4326) with the finest admin
units.  Only the (cell, unit) pairs where the cell crosses the unit's boundary are intersected
(vectorised ``shapely.intersection``); a cell inside one unit keeps its own geometry.  So the
fragments of one level tile each unit exactly, as far as the cells cover it.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from geopipe.errors import (
    GeometryError,
    GeopipeWarning,
    InputError,
    MissingColumnError,
    problem,
)

__all__ = ["AREA_CRS", "area_km2", "finest_units", "split_cells"]

# Cylindrical equal-area (WGS 84 / NSIDC EASE-Grid 2.0 Global): exact areas on the ellipsoid,
# and lon/lat rectangles stay rectangles, so square cells keep 4 vertices in EPSG:4326.
AREA_CRS = "EPSG:6933"
_TO_AREA = Transformer.from_crs(4326, AREA_CRS, always_xy=True)

POLYGONAL = (3, 6)  # Polygon, MultiPolygon


def area_km2(geoms: np.ndarray) -> np.ndarray:
    """Area in km² of lon/lat geometries, computed in an equal-area projection (EPSG:6933)."""
    projected = shapely.transform(
        geoms, lambda xy: np.column_stack(_TO_AREA.transform(xy[:, 0], xy[:, 1]))
    )
    return shapely.area(projected) / 1e6


def finest_units(admin: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    """Rows of the finest admin level, in EPSG:4326, with valid polygonal geometry.

    The finest level is the largest ``admin_level`` when that column exists; otherwise all rows.
    Invalid geometries are repaired with ``make_valid`` (a warning says how many).
    """
    if not isinstance(admin, gpd.GeoDataFrame):
        raise InputError(
            problem("admin", f"is a {type(admin).__name__}", "pass a GeoDataFrame", where=where)
        )
    if "ucode" not in admin.columns:
        raise MissingColumnError(
            problem(
                "admin",
                "has no 'ucode' column",
                "read it with gp.read_admin or add a unique 'ucode' column",
                where=where,
            )
        )
    if admin.crs is None:
        raise GeometryError(
            problem("admin", "has no CRS", "set one, e.g. admin.set_crs(4326)", where=where)
        )
    if len(admin) == 0:
        raise InputError(problem("admin", "is empty", "pass at least one unit", where=where))
    units = admin
    if "admin_level" in admin.columns:
        units = admin[admin["admin_level"] == admin["admin_level"].max()]
    units = units[["ucode", units.geometry.name]]
    if not units.crs.equals("EPSG:4326"):
        units = units.to_crs(4326)
    geoms = np.asarray(units.geometry.values)
    empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
    if empty.any():
        warnings.warn(
            f"{where}: dropped {int(empty.sum())} admin units with empty geometry "
            f"(ucode {list(units['ucode'][empty][:5])})",
            GeopipeWarning,
            stacklevel=3,
        )
        units, geoms = units[~empty], geoms[~empty]
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        fixed = shapely.make_valid(geoms[bad])
        geoms = geoms.copy()
        geoms[bad] = _polygonal(fixed)
        warnings.warn(
            f"{where}: repaired {int(bad.sum())} invalid admin geometries with make_valid "
            f"(ucode {list(units['ucode'][bad][:5])})",
            GeopipeWarning,
            stacklevel=3,
        )
    b = shapely.bounds(geoms)
    outside = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
    if outside.any():
        raise GeometryError(
            problem(
                "admin geometry",
                f"has coordinates outside lon/lat bounds in {int(outside.sum())} units "
                f"(ucode {list(units['ucode'][outside][:5])}; e.g. bounds {b[outside][0].tolist()})",
                "set the right CRS (e.g. admin.set_crs(32736, allow_override=True)) so geopipe "
                "can reproject to EPSG:4326; units crossing the antimeridian must be split at "
                "±180° (GeoJSON RFC 7946)",
                where=where,
            )
        )
    types = shapely.get_type_id(geoms)
    if not np.isin(types, POLYGONAL).all():
        raise GeometryError(
            problem(
                "admin geometry",
                "has non-polygon rows",
                "pass (Multi)Polygon admin units",
                where=where,
            )
        )
    return gpd.GeoDataFrame(
        {"ucode": units["ucode"].to_numpy()}, geometry=geoms, crs=4326
    ).reset_index(drop=True)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (e.g. of an intersection result)."""
    geoms = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(geoms)
    mixed = ~np.isin(types, POLYGONAL) & ~shapely.is_empty(geoms)
    if not mixed.any():
        return geoms
    out = geoms.copy()
    parts, idx = shapely.get_parts(geoms[mixed], return_index=True)
    keep = shapely.get_type_id(parts) == 3
    res = np.full(int(mixed.sum()), shapely.MultiPolygon(), dtype=object)
    shapely.multipolygons(parts[keep], indices=idx[keep], out=res)
    out[mixed] = res
    return out


def split_cells(
    cells: np.ndarray,
    cell_ids: np.ndarray,
    units: gpd.GeoDataFrame,
    *,
    split: bool,
) -> gpd.GeoDataFrame:
    """Overlay grid cells with units: fragments (``split=True``) or whole cells (``False``).

    Parameters
    ----------
    cells
        Cell polygons in EPSG:4326 (one per distinct cell).
    cell_ids
        Their ids (strings), same order.
    units
        Output of :func:`finest_units`.
    split
        ``True``: one row per (cell, unit) fragment, geometry ``cell ∩ unit``; ``False``: one row
        per cell, whole geometry, ``ucode`` = the unit holding the largest part of the cell.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id, ucode, area_km2, cell_share, geometry`` (EPSG:4326), sorted by
        ``cell_id, ucode``.
    """
    ugeoms = np.asarray(units.geometry.values)
    ucodes = units["ucode"].to_numpy()
    tree = shapely.STRtree(cells)
    pu, pc = tree.query(ugeoms, predicate="intersects")
    eu, ec = tree.query(shapely.boundary(ugeoms), predicate="intersects")
    n = len(cells)
    is_edge = np.isin(pu * n + pc, eu * n + ec)
    frag = cells[pc].copy()
    if is_edge.any():
        frag[is_edge] = _polygonal(shapely.intersection(cells[pc[is_edge]], ugeoms[pu[is_edge]]))
    cell_area = area_km2(cells)
    frag_area = cell_area[pc].copy()
    frag_area[is_edge] = area_km2(frag[is_edge])
    keep = frag_area > 0
    pu, pc, frag, frag_area = pu[keep], pc[keep], frag[keep], frag_area[keep]
    share = np.where(cell_area[pc] > 0, frag_area / cell_area[pc], 0.0)
    if not split:
        # the unit with the largest share of each cell
        order = np.lexsort((-share, pc))
        first = np.ones(len(order), dtype=bool)
        first[1:] = pc[order][1:] != pc[order][:-1]
        pick = order[first]
        pu, pc = pu[pick], pc[pick]
        frag, frag_area, share = cells[pc], cell_area[pc], np.ones(len(pc))
    out = gpd.GeoDataFrame(
        {
            "cell_id": np.asarray(cell_ids)[pc],
            "ucode": ucodes[pu],
            "area_km2": frag_area,
            "cell_share": np.minimum(share, 1.0),
        },
        geometry=frag,
        crs=4326,
    )
    out = out.sort_values(["cell_id", "ucode"], kind="stable").reset_index(drop=True)
    out["cell_id"] = out["cell_id"].astype("str")
    out["ucode"] = out["ucode"].astype("str")
    return out
