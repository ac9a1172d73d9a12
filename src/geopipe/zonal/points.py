"""Count points per unit, exactly and fast.

A point belongs to a unit when the unit's *closure* (interior or boundary) contains it. A point on a
border shared by several units is counted **once**, for the unit that comes first in row order
among those whose closure contains it (the smallest position). Overlapping units follow the same
rule. Points outside every unit, and points without a geometry, are not counted.

How it is fast: the units are burned once into a label raster whose cells are fine enough that only
a small share of cells touch any unit boundary. A point in a cell that no boundary touches (nor its
8 neighbours) takes that cell's label with one array lookup; only the points near a boundary are
tested exactly against the polygons (STRtree query, ``intersects`` predicate).

The small validation helpers here are shared by the other ``geopipe.zonal`` modules.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine

from geopipe.errors import GeometryError, GeopipeWarning, InputError, MissingColumnError, problem

__all__ = ["assign_points", "count_points"]

# size of the label raster: about this many cells per point, clamped to [_MIN_CELLS, _MAX_CELLS]
_CELLS_PER_POINT = 8.0
_MIN_CELLS = 250_000
_MAX_CELLS = 16_000_000


# --------------------------------------------------------------------------- shared helpers
def _check_frame(obj: object, arg: str, where: str) -> gpd.GeoDataFrame:
    """Raise unless ``obj`` is a GeoDataFrame with a CRS and an active geometry column."""
    if not isinstance(obj, gpd.GeoDataFrame):
        raise InputError(
            problem(
                f"`{arg}`",
                f"is a {type(obj).__name__}, not a GeoDataFrame",
                "pass a geopandas.GeoDataFrame (e.g. from gp.read_admin or gp.read_points)",
                where=where,
            )
        )
    if obj.crs is None:
        raise GeometryError(
            problem(f"`{arg}`", "has no CRS", "set it, e.g. `.set_crs('EPSG:4326')`", where=where)
        )
    return obj


def _to_crs_of(frame: gpd.GeoDataFrame, target: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in ``target``'s CRS (a new object when a transform is needed)."""
    if frame.crs == target.crs:
        return frame
    return frame.to_crs(target.crs)


def _check_name(units: pd.DataFrame, name: str, where: str) -> None:
    if name in units.columns:
        raise InputError(
            problem(
                f"output column {name!r}",
                "already exists in `units`",
                f"drop it first or pass another name (name='{name}_2')",
                where=where,
            )
        )


def _point_xy(points: gpd.GeoDataFrame, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and a validity mask of point geometries; warns about the rows that cannot be used."""
    geoms = np.asarray(points.geometry.array, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms)
    not_point = ~missing & (types != shapely.GeometryType.POINT)
    if not_point.any():
        raise GeometryError(
            problem(
                "`points`",
                f"has {int(not_point.sum())} non-Point geometries",
                "pass Point geometries (e.g. `.representative_point()` of polygons)",
                where=where,
            )
        )
    if missing.any():
        warnings.warn(
            f"{where}: {int(missing.sum())} of {len(geoms)} points have no geometry and are not "
            "counted",
            GeopipeWarning,
            stacklevel=3,
        )
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    ok = ~missing
    x[ok] = shapely.get_x(geoms[ok])
    y[ok] = shapely.get_y(geoms[ok])
    ok &= np.isfinite(x) & np.isfinite(y)
    return x, y, ok


# --------------------------------------------------------------------------- core
def _label_raster(
    polys: np.ndarray, bounds: tuple[float, float, float, float], n_points: int
) -> tuple[np.ndarray, Affine]:
    """Label raster: unit position + 1 in cells clear of every boundary, 0 outside, -1 near one."""
    from rasterio import features

    xmin, ymin, xmax, ymax = bounds
    w, h = max(xmax - xmin, 1e-12), max(ymax - ymin, 1e-12)
    n_cells = float(np.clip(n_points * _CELLS_PER_POINT, _MIN_CELLS, _MAX_CELLS))
    size = float(np.sqrt(w * h / n_cells))
    ncol = max(int(np.ceil(w / size)), 1)
    nrow = max(int(np.ceil(h / size)), 1)
    # one cell of padding on each side keeps every boundary strictly inside the raster
    transform = Affine(size, 0.0, xmin - size, 0.0, -size, ymax + size)
    shape = (nrow + 2, ncol + 2)
    # smallest position wins where units overlap: burn in reverse order, later shapes overwrite
    order = np.arange(len(polys))[::-1]
    valid = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
    order = order[valid[order]]
    labels = features.rasterize(
        zip(polys[order], (order + 1).tolist(), strict=True),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    edges = features.rasterize(
        ((g, 1) for g in shapely.boundary(polys[order])),
        out_shape=shape,
        transform=transform,
        fill=0,
        all_touched=True,
        dtype="uint8",
    ).astype(bool)
    # dilate by one cell: robust against rounding where a boundary grazes a cell edge
    near = edges.copy()
    near[1:, :] |= edges[:-1, :]
    near[:-1, :] |= edges[1:, :]
    grown = near.copy()
    grown[:, 1:] |= near[:, :-1]
    grown[:, :-1] |= near[:, 1:]
    labels[grown] = -1
    return labels, transform


def _exact_assign(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Smallest unit position whose closure contains each point, -1 when none (exact test)."""
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    pts = shapely.points(x, y)
    pt_idx, poly_idx = tree.query(pts, predicate="intersects")
    if len(pt_idx):
        # smallest polygon position per point: sort by (point, polygon), keep the first
        order = np.lexsort((poly_idx, pt_idx))
        pt_sorted, poly_sorted = pt_idx[order], poly_idx[order]
        first = np.r_[True, pt_sorted[1:] != pt_sorted[:-1]]
        out[pt_sorted[first]] = poly_sorted[first]
    return out


def assign_points(units: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> np.ndarray:
    """Position (0-based row number) in ``units`` of the unit each point falls in, -1 if none.

    The rule for points on a shared border (or in overlapping units): the unit with the smallest
    position among those whose closure contains the point.

    Parameters
    ----------
    units
        Polygon GeoDataFrame (any CRS; ``points`` are transformed to it when they differ).
    points
        Point GeoDataFrame.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of length ``len(points)``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box, Point
    >>> units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> pts = gpd.GeoDataFrame(geometry=[Point(0.5, 0.5), Point(1, 0.5), Point(5, 5)], crs=4326)
    >>> assign_points(units, pts).tolist()
    [0, 0, -1]
    """
    where = "assign_points"
    _check_frame(units, "units", where)
    _check_frame(points, "points", where)
    points = _to_crs_of(points, units)
    x, y, ok = _point_xy(points, where)
    polys = np.asarray(units.geometry.array, dtype=object)
    return _assign_xy(polys, x, y, ok)


def _assign_xy(polys: np.ndarray, x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> np.ndarray:
    n = len(x)
    result = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(polys) == 0:
        return result
    tree = shapely.STRtree(polys)
    present = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
    if not present.any():
        return result
    xmin, ymin, xmax, ymax = shapely.total_bounds(polys[present])
    inside_box = ok & (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    idx = np.flatnonzero(inside_box)
    # a label raster pays off for many points per unit (rasterizing costs ~0.3 ms a polygon,
    # an exact point-in-polygon query ~3 µs a point): below that, test every point exactly
    if len(idx) < max(2_000, 100 * int(present.sum())):
        result[idx] = _exact_assign(tree, x[idx], y[idx], len(idx))
        return result
    labels, transform = _label_raster(polys, (xmin, ymin, xmax, ymax), len(idx))
    col = np.floor((x[idx] - transform.c) / transform.a).astype(np.int64)
    row = np.floor((y[idx] - transform.f) / transform.e).astype(np.int64)
    np.clip(col, 0, labels.shape[1] - 1, out=col)
    np.clip(row, 0, labels.shape[0] - 1, out=row)
    lab = labels[row, col].astype(np.int64)
    result[idx] = lab - 1  # 0 -> -1 (outside every unit), k -> position k - 1
    near = idx[lab < 0]
    result[near] = _exact_assign(tree, x[near], y[near], len(near))
    return result


def _raise_none_inside(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame, where: str) -> None:
    from geopipe.quality.points import _against_admin, _source_name, _xy, outside_error

    x, y = _xy(points)
    usable = np.isfinite(x) & np.isfinite(y) & ~((x == 0) & (y == 0))
    swapped = np.zeros(len(x), dtype=bool)
    if usable.any():
        _, swapped = _against_admin(units, x, y, usable)
    raise outside_error(_source_name(points), x, y, usable, swapped, units, where)


def count_points(
    units: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    by: str | None = None,
    name: str = "n_points",
    *,
    allow_none_inside: bool = False,
) -> gpd.GeoDataFrame:
    """Count the points in each unit, optionally one column per category of ``by``.

    Each point is counted at most once: for the first unit (smallest row position) among those
    whose closure (interior or boundary) contains it. Points outside every unit or without a
    geometry are not counted (the latter with a :class:`~geopipe.errors.GeopipeWarning`).

    Parameters
    ----------
    units
        Polygon GeoDataFrame (admin units, H3 cells or fragments), usually EPSG:4326.
    points
        Point GeoDataFrame; transformed to the units' CRS when it differs.
    by
        Optional column of ``points`` with a category (e.g. ``"amenity"`` or ``"connectivity"``).
        Adds one column ``f"{name}_{category}"`` per category (sorted); points whose category is
        missing are counted in ``f"{name}_missing"``.
    name
        Name of the total-count column.
    allow_none_inside
        By default a non-empty ``points`` of which not one point falls in any unit raises
        :class:`~geopipe.errors.EmptyInputError` naming the likely cause (swapped lat/lon
        columns, points of another area or CRS) instead of publishing 0 everywhere. Pass True
        where that can be legitimate (a category subset, a partition of the units).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` (same index and order) with ``name`` (and the per-category columns)
        as ``int64``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box, Point
    >>> units = gpd.GeoDataFrame({"ucode": ["A", "B"]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> pts = gpd.GeoDataFrame({"kind": ["x", "y", "x"]},
    ...                        geometry=[Point(0.5, 0.5), Point(1.5, 0.5), Point(1, 0.2)], crs=4326)
    >>> count_points(units, pts, by="kind")[["ucode", "n_points", "n_points_x", "n_points_y"]]
      ucode  n_points  n_points_x  n_points_y
    0     A         2           2           0
    1     B         1           0           1
    """
    where = "count_points"
    _check_frame(units, "units", where)
    _check_frame(points, "points", where)
    _check_name(units, name, where)
    if by is not None and by not in points.columns:
        raise MissingColumnError(
            problem(
                f"column {by!r}",
                "is not in `points`",
                f"pass one of {list(map(str, points.columns.drop(points.geometry.name)))}",
                where=where,
            )
        )
    points = _to_crs_of(points, units)
    x, y, ok = _point_xy(points, where)
    polys = np.asarray(units.geometry.array, dtype=object)
    pos = _assign_xy(polys, x, y, ok)
    hit = pos >= 0
    if len(points) and not hit.any() and not allow_none_inside:
        _raise_none_inside(points, units, where)
    n_units = len(units)
    out = units.copy()
    out[name] = np.bincount(pos[hit], minlength=n_units).astype(np.int64)
    if by is not None:
        cats = points[by].to_numpy(dtype=object)
        isna = pd.isna(points[by]).to_numpy()
        codes, uniques = pd.factorize(pd.Series(cats[~isna]), sort=True)
        full = np.full(len(cats), -1, dtype=np.int64)
        full[~isna] = codes
        labels: list[Hashable] = list(uniques)
        new_cols = {}
        for k, cat in enumerate(labels):
            sel = hit & (full == k)
            new_cols[f"{name}_{cat}"] = np.bincount(pos[sel], minlength=n_units).astype(np.int64)
        if isna.any():
            sel = hit & isna
            new_cols[f"{name}_missing"] = np.bincount(pos[sel], minlength=n_units).astype(np.int64)
        clash = [c for c in new_cols if c in out.columns]
        if clash:
            raise InputError(
                problem(
                    f"output columns {clash}",
                    "already exist in `units`",
                    "drop them first or pass another `name`",
                    where=where,
                )
            )
        out = pd.concat([out, pd.DataFrame(new_cols, index=out.index)], axis=1)
        out = gpd.GeoDataFrame(out, geometry=units.geometry.name, crs=units.crs)
    return out
