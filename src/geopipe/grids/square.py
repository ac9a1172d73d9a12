"""Square grid cells of a fixed size in metres, in an equal-area projection, split at admin edges.

Cells are squares of ``size_m`` metres in ``crs`` (default EPSG:6933, WGS 84 / EASE-Grid 2.0
Global, a cylindrical equal-area projection: every cell has the same true area, and the squares are
exact lon/lat rectangles, so they keep 4 vertices in EPSG:4326).  Indices count whole cells from
the projection's origin: cell ``(x, y)`` spans ``[x * size, (x + 1) * size) x [y * size,
(y + 1) * size)`` projected metres and its id is ``sq_<size>_<x>_<y>`` (x, y may be negative).
Ids therefore do not depend on the area of interest and are stable across runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely
from pyproj import CRS, Transformer

from geopipe.errors import InputError, problem
from geopipe.grids._split import AREA_CRS, finest_units, split_cells

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["square_grid"]

_MAX_CELLS = 50_000_000


def _size_label(size_m: float) -> str:
    return str(int(size_m)) if float(size_m).is_integer() else repr(float(size_m))


def _candidate_cells(geoms_proj: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) indices of every cell in the bounding box of each unit, deduplicated."""
    b = shapely.bounds(geoms_proj)
    x0 = np.floor(b[:, 0] / size).astype(np.int64)
    x1 = np.floor(b[:, 2] / size).astype(np.int64)
    y0 = np.floor(b[:, 1] / size).astype(np.int64)
    y1 = np.floor(b[:, 3] / size).astype(np.int64)
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    total = int((nx * ny).sum())
    if total > _MAX_CELLS:
        raise InputError(
            problem(
                "size_m",
                f"gives {total:,} candidate cells",
                "use a larger cell size or fewer/smaller units",
                where="square_grid",
            )
        )
    unit = np.repeat(np.arange(len(b)), nx * ny)
    k = np.arange(total) - np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
    xs = x0[unit] + k % nx[unit]
    ys = y0[unit] + k // nx[unit]
    key = np.unique(np.column_stack([xs, ys]), axis=0)
    return key[:, 0], key[:, 1]


def square_grid(
    admin: gpd.GeoDataFrame,
    size_m: float,
    split: bool = True,
    *,
    crs: str = AREA_CRS,
) -> gpd.GeoDataFrame:
    """Square cells of ``size_m`` metres covering admin units, split at the finest admin edges.

    Parameters
    ----------
    admin
        Admin units (GeoDataFrame with ``ucode`` and a CRS); the finest ``admin_level`` is used.
    size_m
        Cell width and height in metres of ``crs``.
    split
        ``True``: one row per (cell, unit) fragment (the fragments tile every unit exactly).
        ``False``: one row per cell that intersects a unit, ``ucode`` of the unit holding its
        largest part.
    crs
        Projected CRS of the grid; the default EPSG:6933 is equal-area world-wide and keeps
        cells rectangular in lon/lat. With another CRS the cell edges are densified before
        they are brought to EPSG:4326.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id`` (``sq_<size>_<x>_<y>``), ``ucode``, ``area_km2``, ``cell_share``,
        ``geometry`` (EPSG:4326), sorted by ``cell_id, ucode``.

    Examples
    --------
    >>> grid = square_grid(admin, 5_000)  # doctest: +SKIP
    >>> grid["cell_id"].iloc[0]  # doctest: +SKIP
    'sq_5000_1972_251'
    """
    if (
        isinstance(size_m, bool)
        or not isinstance(size_m, (int, float, np.number))
        or not (size_m > 0 and np.isfinite(size_m))
    ):
        raise InputError(
            problem(
                "size_m",
                f"was {size_m!r}",
                "pass a positive cell size in metres",
                where="square_grid",
            )
        )
    gcrs = CRS.from_user_input(crs)
    if not gcrs.is_projected:
        raise InputError(
            problem(
                "crs",
                f"{crs!r} is not projected",
                "use a metric CRS such as EPSG:6933",
                where="square_grid",
            )
        )
    units = finest_units(admin, "square_grid")
    size = float(size_m)
    to_grid = Transformer.from_crs(4326, gcrs, always_xy=True)
    to_ll = Transformer.from_crs(gcrs, 4326, always_xy=True)
    geoms = np.asarray(units.geometry.values)
    proj = shapely.transform(
        geoms, lambda xy: np.column_stack(to_grid.transform(xy[:, 0], xy[:, 1]))
    )
    xs, ys = _candidate_cells(proj, size)
    boxes = shapely.box(xs * size, ys * size, (xs + 1) * size, (ys + 1) * size)
    if not gcrs.equals(CRS.from_user_input(AREA_CRS)):
        boxes = shapely.segmentize(boxes, size / 16)
    cells = shapely.transform(
        boxes, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1]))
    )
    label = _size_label(size)
    ids = np.char.add(
        np.char.add(f"sq_{label}_", xs.astype(str)), np.char.add("_", ys.astype(str))
    ).astype(object)
    out = split_cells(cells, ids, units, split=bool(split))
    out.attrs["geopipe"] = {
        "square_grid": {
            "size_m": size,
            "crs": gcrs.to_string(),
            "split": bool(split),
            "rows": len(out),
        }
    }
    return out
