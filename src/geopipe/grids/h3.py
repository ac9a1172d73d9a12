"""H3 cells covering admin boundaries, split at the finest admin edges.

Coverage uses h3ronpy (Rust, vectorised over all units at once) with h3's containment modes:

=========== ======================================= ==========================
``contain``  cells kept                              h3ronpy / h3-py mode
=========== ======================================= ==========================
``center``  cell centre inside a unit               ContainsCentroid / center
``overlap`` cell intersects a unit (full coverage)  Covers / overlap
``full``    cell entirely inside a unit             ContainsBoundary / full
=========== ======================================= ==========================

Cell geometries are straight-edged polygons through the H3 vertices in lon/lat (x = longitude);
a cell crossing the antimeridian is returned as a MultiPolygon cut at ±180°.  With ``split=True``
each cell that straddles a boundary of the finest admin level becomes one fragment per unit
(``cell ∩ unit``); with ``contain="overlap"`` the fragments tile every unit exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from geopipe.errors import DependencyError, InputError, problem
from geopipe.grids._split import finest_units, split_cells

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["CONTAIN_MODES", "cell_polygons", "h3_cells", "h3_grid"]

CONTAIN_MODES = ("center", "overlap", "full")


def _h3ronpy(where: str):
    try:
        import h3ronpy
        import h3ronpy.vector
    except ImportError as exc:  # pragma: no cover - h3ronpy is a declared dependency
        raise DependencyError(
            problem("h3ronpy", "is not installed", "pip install h3ronpy", where=where)
        ) from exc
    return h3ronpy


def _check_args(resolution: int, contain: str, where: str) -> None:
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or not (0 <= int(resolution) <= 15)
    ):
        raise InputError(
            problem("resolution", f"was {resolution!r}", "use an integer 0-15", where=where)
        )
    if contain not in CONTAIN_MODES:
        raise InputError(
            problem("contain", f"was {contain!r}", f"use one of {list(CONTAIN_MODES)}", where=where)
        )


def _cover(geoms: np.ndarray, resolution: int, contain: str) -> np.ndarray:
    """Distinct H3 cells (uint64, sorted) covering the geometries (EPSG:4326)."""
    h3r = _h3ronpy("h3_grid")
    mode = {
        "center": h3r.ContainmentMode.ContainsCentroid,
        "overlap": h3r.ContainmentMode.Covers,
        "full": h3r.ContainmentMode.ContainsBoundary,
    }[contain]
    cells = h3r.vector.wkb_to_cells(
        shapely.to_wkb(geoms), int(resolution), containment_mode=mode, flatten=True
    )
    return np.unique(np.asarray(cells, dtype=np.uint64))


def _fix_antimeridian(polys: np.ndarray) -> np.ndarray:
    """Cut cells whose vertices straddle ±180° into a MultiPolygon on both sides."""
    bounds = shapely.bounds(polys)
    wide = (bounds[:, 2] - bounds[:, 0]) > 180
    if not wide.any():
        return polys
    out = polys.copy()

    def shift(xy: np.ndarray) -> np.ndarray:
        xy = xy.copy()
        xy[xy[:, 0] < 0, 0] += 360.0
        return xy

    shifted = shapely.transform(polys[wide], shift)
    east = shapely.intersection(shifted, shapely.box(0, -90, 180, 90))
    west = shapely.intersection(shifted, shapely.box(180, -90, 360, 90))
    west = shapely.transform(west, lambda xy: xy - np.array([360.0, 0.0]))
    out[wide] = shapely.union(east, west, grid_size=None)
    return out


def cell_polygons(cells: np.ndarray) -> np.ndarray:
    """Polygons (EPSG:4326, lon/lat order) of H3 cells given as uint64 or hex strings.

    Examples
    --------
    >>> cell_polygons(np.array(["87283082bffffff"]))[0].geom_type
    'Polygon'
    """
    h3r = _h3ronpy("cell_polygons")
    cells = np.asarray(cells)
    if cells.dtype.kind in "OUT":
        cells = np.asarray(h3r.cells_parse(list(cells)), dtype=np.uint64)
    wkb = np.asarray(h3r.vector.cells_to_wkb_polygons(cells.astype(np.uint64)), dtype=object)
    return _fix_antimeridian(shapely.from_wkb(wkb))


def _cell_strings(cells: np.ndarray) -> np.ndarray:
    h3r = _h3ronpy("h3_grid")
    return np.asarray(h3r.cells_to_string(cells.astype(np.uint64)), dtype=object).astype(str)


def h3_cells(admin: gpd.GeoDataFrame, resolution: int, contain: str = "overlap") -> np.ndarray:
    """H3 cell ids (lower-case hex strings, sorted, distinct) covering the admin units.

    The fast half of :func:`h3_grid`: no geometry, no split.

    Parameters
    ----------
    admin
        Admin units (GeoDataFrame with ``ucode``; the finest ``admin_level`` is used).
    resolution
        H3 resolution 0-15.
    contain
        ``"overlap"`` (default; every cell touching a unit), ``"center"`` or ``"full"``.

    Returns
    -------
    numpy.ndarray
        Cell ids as strings.

    Examples
    --------
    >>> ids = h3_cells(admin, 7)  # doctest: +SKIP
    """
    _check_args(resolution, contain, "h3_cells")
    units = finest_units(admin, "h3_cells")
    return _cell_strings(_cover(np.asarray(units.geometry.values), resolution, contain))


def h3_grid(
    admin: gpd.GeoDataFrame, resolution: int, contain: str = "overlap", split: bool = True
) -> gpd.GeoDataFrame:
    """H3 cells covering admin boundaries, optionally split into fragments at admin edges.

    Parameters
    ----------
    admin
        Admin units (GeoDataFrame with ``ucode`` and a CRS). When an ``admin_level`` column
        exists, the finest level (largest value) is used; otherwise every row.
    resolution
        H3 resolution 0-15.
    contain
        Which cells to keep: ``"overlap"`` (default; every cell that touches a unit, so the
        fragments tile the units exactly), ``"center"`` (cell centre inside a unit) or
        ``"full"`` (cell entirely inside a unit).
    split
        ``True``: one row per (cell, unit) fragment, geometry ``cell ∩ unit``. ``False``: one row
        per cell with its full hexagon, ``ucode`` of the unit holding its largest part.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id`` (lower-case hex H3 index), ``ucode`` (finest unit), ``area_km2``
        (fragment area, equal-area projection EPSG:6933), ``cell_share`` (fragment area / cell
        area; 1.0 for whole cells), ``geometry`` (EPSG:4326). Sorted by ``cell_id, ucode``.

    Examples
    --------
    >>> import geopipe as gp  # doctest: +SKIP
    >>> grid = gp.h3_grid(admin, 7)  # doctest: +SKIP
    >>> grid.groupby("ucode")["area_km2"].sum()  # doctest: +SKIP
    """
    _check_args(resolution, contain, "h3_grid")
    units = finest_units(admin, "h3_grid")
    cells = _cover(np.asarray(units.geometry.values), resolution, contain)
    polys = cell_polygons(cells)
    out = split_cells(polys, _cell_strings(cells), units, split=bool(split))
    out.attrs["geopipe"] = {
        "h3_grid": {
            "resolution": int(resolution),
            "contain": contain,
            "split": bool(split),
            "cells": len(cells),
            "rows": len(out),
        }
    }
    return out
