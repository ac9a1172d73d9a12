"""Population-weighted statistics of a value layer (wealth, speed) over units.

Each pixel of a population raster takes a value from the layer at its centre:

* polygons (Meta RWI / Ookla tiles, any polygon layer): the polygon containing the centre
  (quadkey tiles are looked up arithmetically, other polygons through a spatial index);
* points (e.g. survey clusters with a wealth score): the nearest point within ``max_distance``
  metres (geodesic);
* a raster (e.g. a wealth or poverty raster on any grid): the value of the raster cell containing
  the centre (the value raster is never resampled; read by blocks).

Per unit, with ``w = coverage x population`` over the unit's pixels:

* ``{prefix}_covered`` — Σ w over pixels that have a layer value (the weight of the mean);
* ``{prefix}_mean`` — Σ w·value / Σ w over those pixels (population-weighted mean);
* ``{prefix}_below`` — Σ w where value < ``below`` (e.g. children in poverty);
* ``{prefix}_at_least`` — Σ w where value ≥ ``at_least`` (e.g. people with broadband speeds);
* ``{prefix}_uncovered`` — Σ w over pixels with no layer value (reported, never guessed).

``covered + uncovered`` equals the unit's coverage-weighted population sum exactly, so every
person is accounted for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, MissingColumnError, RasterError, problem
from ..io.raster import iter_blocks, open_raster, row_blocks
from ._sums import class_sums

__all__ = ["layer_columns", "layer_lookup", "layer_sums", "pixel_values", "zonal_layer"]

WHERE = "zonal_layer"
PathLike = str | os.PathLike[str]
#: raster row and column of each pixel centre looked up (lets a lookup work per row and column)
Lattice = tuple[np.ndarray, np.ndarray]


def pixel_values(weights: Any, raster: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``raster`` (band 1, scale/offset applied) at every (unit, pixel) pair of ``weights``.

    ``weights`` is a :class:`~geopipe.zonal.raster.PixelWeights` built on the same grid. The raster
    is read block by block, only the rows the units touch. Returns ``(values, valid)``; invalid
    (nodata / non-finite) pixels have value 0 and ``valid`` False.

    Examples
    --------
    >>> pw = gp.pixel_weights(districts, "pop.tif")  # doctest: +SKIP
    >>> values, valid = pixel_values(pw, "pop.tif")  # doctest: +SKIP
    """
    ds = open_raster(raster)
    try:
        same = ds.shape == tuple(weights.shape) and ds.transform.almost_equals(weights.transform)
        blocks = row_blocks(ds)
    finally:
        ds.close()
    if not same:
        raise RasterError(
            problem(
                f"raster '{raster}'",
                f"is on another grid than the weights ({weights.shape})",
                "use rasters on one grid, or build weights per raster",
                where="pixel_values",
            )
        )
    return _read_cells(raster, weights.row, weights.col, blocks)


MAX_PIXELS = 8_000_000  # (unit, pixel) pairs held at once: ~50 bytes each, ~400 MB


def unit_batches(
    units: gpd.GeoDataFrame, raster: PathLike, max_pixels: int | None = None
) -> list[np.ndarray]:
    """Positions of ``units`` in consecutive batches of about ``max_pixels`` raster pixels each.

    The per-pixel tables of aggregation functions grow with the pixels inside the units; batching
    keeps memory bounded for country-sized 100 m rasters (a unit larger than the budget is a batch
    of its own). The estimate is the unit's area plus a strip along its boundary, in pixels.
    """
    crs, t, _, _ = _grid_of(raster)
    est = _pixels_estimate(units.geometry.to_crs(crs).to_numpy(), t)
    budget = MAX_PIXELS if max_pixels is None else max_pixels
    batch_id = np.floor(np.cumsum(est) / max(budget, 1)).astype(np.int64)
    return [np.flatnonzero(batch_id == b) for b in np.unique(batch_id)]


#: bytes one (unit, pixel) pair costs while its batch is computed: the weight (unit, row, col,
#: coverage), the pixel centre, the distinct-pixel maps, a distance and the steps' temporaries;
#: plus, per raster read, its value, validity and weighted value
BYTES_PER_PAIR = 96
BYTES_PER_PAIR_AND_RASTER = 16


def plan_batches(
    units: gpd.GeoDataFrame,
    raster: PathLike | Sequence[PathLike],
    budget_bytes: int,
    *,
    rasters: int = 1,
    windowed: bool = False,
    groups: list[np.ndarray] | None = None,
    through: tuple[gpd.GeoDataFrame, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Positions of ``units`` in batches whose pixel work fits ``budget_bytes`` each.

    A batch costs its (unit, pixel) pairs on each raster grid it reads (estimated from each
    unit's area and boundary in pixels of that grid, :data:`BYTES_PER_PAIR` each plus
    :data:`BYTES_PER_PAIR_AND_RASTER` per raster on the grid) and, when each batch reads its own
    raster window (``windowed``, as partitions do), the windows: the box around its units in
    pixels (a one-pixel margin) of each raster. ``raster`` is one raster (read ``rasters``
    times, e.g. several rasters on one grid) or a sequence of them, one per raster read: rasters
    on the same grid share their pairs (pixel weights are built once per grid), a coarse raster
    adds little, and the finest grid decides. Units are taken from top to bottom so that windows
    stay short; a unit over the budget on its own is a batch of its own. With ``groups`` (e.g.
    the districts under each province) no batch mixes two groups. With
    ``through=(fragments, parent)`` each unit's pairs are those of its grid fragments
    (``parent[i]`` is the unit of fragment ``i``), counted twice: the units are computed through
    the fragments' pixels, in the same batch.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from rasterio.transform import from_origin
    >>> units = gpd.GeoDataFrame(geometry=[shapely.box(0, -i - 1, 10, -i) for i in range(4)],
    ...                          crs=4326)
    >>> grid = {"crs": "EPSG:4326", "transform": from_origin(0, 0, 0.1, 0.1),
    ...         "width": 100, "height": 40, "itemsize": 4}
    >>> [b.tolist() for b in plan_batches(units, grid, 250_000, windowed=True)]
    [[0], [1], [2], [3]]
    >>> [b.tolist() for b in plan_batches(units, grid, 10**9, windowed=True)]
    [[0, 1, 2, 3]]
    >>> coarse = dict(grid, transform=from_origin(0, 0, 1, 1), width=10, height=4)
    >>> len(plan_batches(units, [coarse, grid], 250_000, windowed=True))  # the fine grid decides
    4
    """
    several = isinstance(raster, (list, tuple))
    grids: dict[Any, list[Any]] = {}
    for r in raster if several else [raster]:
        crs, t, width, itemsize = _grid_of(r)
        key = (str(crs), tuple(t), width)
        grids.setdefault(key, [crs, t, width, 0, 0.0])
        grids[key][3] += 1 if several else rasters
        grids[key][4] += itemsize * (1 if several else rasters)
    costs = [_grid_costs(units, *g, windowed=windowed, through=through) for g in grids.values()]
    # north-up grids order the units alike; the finest one (most pairs) has the fewest ties
    top = max(costs, key=lambda c: float(c[0].sum()))[1]
    out = []
    for group in groups if groups is not None else [np.arange(len(units))]:
        order = np.asarray(group)[np.argsort(top[group], kind="stable")]
        while len(order):
            cost = sum(_batch_costs(order, *c) for c in costs)
            n = max(1, int(np.searchsorted(cost, budget_bytes, side="right")))
            out.append(np.sort(order[:n]))
            order = order[n:]
    return out


def _grid_costs(
    units: gpd.GeoDataFrame,
    crs: Any,
    t: Any,
    width: int,
    count: int,
    pixel_bytes: float,
    *,
    windowed: bool,
    through: tuple[gpd.GeoDataFrame, np.ndarray] | None,
) -> tuple[np.ndarray, ...]:
    """Per unit, on one raster grid read by ``count`` rasters (``pixel_bytes`` a pixel in all):
    its pairs' cost, its top, bottom, left and right edges in pixels, and the grid's width and
    window cost of a pixel (0 when the batches do not read windows)."""
    geoms = units.geometry.to_crs(crs).to_numpy()
    per_pair = BYTES_PER_PAIR + BYTES_PER_PAIR_AND_RASTER * count
    if through is None:
        pair_cost = _pixels_estimate(geoms, t) * per_pair
    else:
        fragments, parent = through
        pairs = _pixels_estimate(fragments.geometry.to_crs(crs).to_numpy(), t)
        pair_cost = np.bincount(parent, pairs, minlength=len(units)) * 2 * per_pair
    bounds = np.nan_to_num(shapely.bounds(geoms))
    r_a, r_b = (bounds[:, 3] - t.f) / t.e, (bounds[:, 1] - t.f) / t.e
    top, bottom = np.floor(np.minimum(r_a, r_b)), np.ceil(np.maximum(r_a, r_b))
    c_a, c_b = (bounds[:, 0] - t.c) / t.a, (bounds[:, 2] - t.c) / t.a
    left, right = np.floor(np.minimum(c_a, c_b)), np.ceil(np.maximum(c_a, c_b))
    pixel_cost = np.array(pixel_bytes if windowed else 0.0)
    return pair_cost, top, bottom, left, right, np.array(width), pixel_cost


def _batch_costs(
    order: np.ndarray,
    pair_cost: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    width: np.ndarray,
    pixel_cost: np.ndarray,
) -> np.ndarray:
    """Cost on one grid of the batches ``order[:1]``, ``order[:2]``, ...: pairs plus window."""
    span = np.maximum.accumulate(bottom[order]) - top[order[0]] + 2
    cols = np.maximum.accumulate(right[order]) - np.minimum.accumulate(left[order]) + 2
    return np.cumsum(pair_cost[order]) + span * np.clip(cols, 1, int(width)) * pixel_cost


def _pixels_estimate(geoms: np.ndarray, t: Any) -> np.ndarray:
    """(unit, pixel) pairs of each geometry on a grid of transform ``t``: its area plus a strip
    along its boundary, in pixels (1 for a missing geometry)."""
    px_area = abs(t.a * t.e) or 1.0
    side = min(abs(t.a), abs(t.e)) or 1.0
    est = shapely.area(geoms) / px_area + 2.0 * shapely.length(geoms) / side + 1.0
    return np.nan_to_num(est, nan=1.0)


def _grid_of(raster: Any) -> tuple[Any, Any, int, int]:
    """(crs, transform, width, bytes per pixel) of a raster path, dataset or grid dict."""
    if isinstance(raster, dict):
        return raster["crs"], raster["transform"], raster["width"], raster["itemsize"]
    ds = open_raster(raster, check=False)
    try:
        return ds.crs, ds.transform, ds.width, np.dtype(getattr(ds, "dtypes", ("f8",))[0]).itemsize
    finally:
        ds.close()


def _read_cells(
    raster: PathLike, rows: np.ndarray, cols: np.ndarray, blocks: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Band-1 values at (row, col) cells (all inside the raster), reading only the needed blocks."""
    values = np.zeros(len(rows))
    valid = np.zeros(len(rows), dtype=bool)
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    needed = [
        (r0, r1)
        for r0, r1 in blocks
        if np.searchsorted(sorted_rows, r0) < np.searchsorted(sorted_rows, r1)
    ]
    for r0, r1, block, ok in iter_blocks(raster, needed):
        lo, hi = np.searchsorted(sorted_rows, [r0, r1])
        idx = order[lo:hi]
        values[idx] = block[rows[idx] - r0, cols[idx]]
        valid[idx] = ok[rows[idx] - r0, cols[idx]]
    return values, valid


def zonal_layer(
    units: gpd.GeoDataFrame,
    population: PathLike | dict[str, PathLike],
    layer: gpd.GeoDataFrame | PathLike,
    value: str | None = None,
    *,
    max_distance: float | None = None,
    below: float | None = None,
    at_least: float | None = None,
    prefix: str | None = None,
    scale: float = 1.0,
    edge: str = "fraction",
) -> gpd.GeoDataFrame:
    """Population-weighted mean and threshold counts of a polygon layer's ``value`` per unit.

    Parameters
    ----------
    units
        Polygons (admin units, H3 fragments).
    population
        Population raster giving the weights (e.g. the under-18 raster for child-weighted wealth),
        or a mapping ``{prefix: raster}`` of rasters on one grid (the pixel weights and the layer
        lookup are then computed once).
    layer
        Polygons with a ``value`` column, e.g. from :func:`gp.read_tiles` (Meta RWI, Ookla)
        (overlapping polygons: a pixel takes the first polygon in layer order containing it);
        points with a ``value`` column (nearest point within ``max_distance``); or the path of a
        value raster (band 1).
    value
        Column of ``layer`` to aggregate (rows where it is missing are ignored); None for a raster.
    max_distance
        For point layers: the search radius in metres (required: a survey cluster speaks only for
        its surroundings).
    below, at_least
        Thresholds: add the population whose value is ``< below`` / ``>= at_least``.
    prefix
        Output column prefix for a single raster (default: ``value``).
    scale
        Multiply values first (e.g. ``0.001`` for kbit/s -> Mbit/s).
    edge
        Coverage rule of the population raster, as in :func:`gp.zonal_raster`.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` with the columns listed in the module docstring.

    Examples
    --------
    >>> rwi = gp.read_tiles("RWA_relative_wealth_index.csv")  # doctest: +SKIP
    >>> out = gp.zonal_layer(districts, "u18.tif", rwi, "rwi", below=0.0, prefix="wealth")  # doctest: +SKIP
    >>> out[["wealth_mean", "wealth_below"]]  # doctest: +SKIP
    """
    from .raster import pixel_weights

    rasters = (
        dict(population)
        if isinstance(population, dict)
        else {prefix or value or "layer": population}
    )
    first = next(iter(rasters.values()))
    n = len(units)
    lookup = layer_lookup(layer, value, scale, max_distance)
    acc = {name: {k: np.zeros(n) for k in _SUMS} for name in rasters}
    # "renormalize" shares each border pixel among all the units touching it: one batch then
    batches = [np.arange(n)] if edge == "renormalize" else unit_batches(units, first)
    for batch in batches:
        pw = pixel_weights(units.iloc[batch], first, edge=edge)
        lon, lat = (np.asarray(a) for a in pw.pixel_lonlat())
        v, has = lookup(lon, lat, (pw.row, pw.col))
        unit = batch[pw.unit]  # positions in the whole table
        for name, raster in rasters.items():
            pop, ok = pixel_values(pw, raster)
            w = pw.coverage * np.where(ok, pop, 0.0)
            part = layer_sums(unit, n, w, v, has, below=below, at_least=at_least)
            for key, add in part.items():
                acc[name][key] += add
    out = units.copy()
    for name, a in acc.items():
        for key, values in layer_columns(a, below=below, at_least=at_least).items():
            out[f"{name}_{key}"] = values
    return out


_SUMS = ("covered", "weighted", "below", "at_least", "uncovered")


def layer_sums(
    unit: np.ndarray,
    n: int,
    w: np.ndarray,
    v: np.ndarray,
    has: np.ndarray,
    *,
    below: float | None = None,
    at_least: float | None = None,
) -> dict[str, np.ndarray]:
    """Per-unit sums of pixel weights ``w`` by the layer value ``v`` at each pixel (``has``: a value).

    ``unit`` is each pixel's unit position (0..n-1). Returns the sums that
    :func:`layer_columns` turns into ``covered, mean, below, at_least, uncovered``; sums of
    disjoint batches of pixels add up.

    Examples
    --------
    >>> s = layer_sums(np.array([0, 0, 1]), 2, np.array([1.0, 3.0, 2.0]),
    ...                np.array([-1.0, 1.0, 0.0]), np.array([True, True, False]), below=0.0)
    >>> layer_columns(s, below=0.0)["mean"].tolist()
    [0.5, nan]
    """
    has = np.asarray(has, dtype=bool)
    # classes: bit 0 a value, then one bit per threshold given (below, at least), set only
    # where there is a value
    cls = has.astype(np.int8)
    bits = {}
    with np.errstate(invalid="ignore"):
        for name, test in (("below", below), ("at_least", at_least)):
            if test is not None:
                bits[name] = 2 << len(bits)
                hit = has & ((v < test) if name == "below" else (v >= test))
                cls += hit.astype(np.int8) * np.int8(bits[name])
    k = 2 << len(bits)
    s = class_sums(unit, n, w, cls, k)
    classes = np.arange(k)
    out = {
        "covered": s[:, classes & 1 == 1].sum(axis=1),
        "weighted": np.bincount(unit, weights=np.where(has, w * v, 0.0), minlength=n),
        "uncovered": s[:, 0],
    }
    for name, bit in bits.items():
        out[name] = s[:, classes & bit != 0].sum(axis=1)
    return out


def layer_columns(
    sums: dict[str, np.ndarray], *, below: float | None = None, at_least: float | None = None
) -> dict[str, np.ndarray]:
    """``covered, mean, below, at_least, uncovered`` per unit from :func:`layer_sums`.

    Examples
    --------
    >>> layer_columns({"covered": np.array([2.0]), "weighted": np.array([3.0]),
    ...                "uncovered": np.array([1.0])})["mean"].tolist()
    [1.5]
    """
    out = {"covered": sums["covered"]}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean"] = np.where(sums["covered"] > 0, sums["weighted"] / sums["covered"], np.nan)
    if below is not None:
        out["below"] = sums["below"]
    if at_least is not None:
        out["at_least"] = sums["at_least"]
    out["uncovered"] = sums["uncovered"]
    return out


def layer_lookup(
    layer: gpd.GeoDataFrame | PathLike, value: str | None, scale: float, max_distance: float | None
) -> Any:
    """A function ``(lon, lat[, lattice]) -> (values, has)`` for the layer, prepared once
    (index, tree). ``lattice``, the raster row and column of each point when the points are
    pixel centres, lets quadkey tiles be found per row and column instead of per pixel.

    Examples
    --------
    >>> lookup = layer_lookup(rwi_tiles, "rwi", 1.0, None)  # doctest: +SKIP
    >>> values, has = lookup(lon, lat)  # doctest: +SKIP
    """
    if not isinstance(layer, gpd.GeoDataFrame):

        def from_raster(
            lon: np.ndarray, lat: np.ndarray, lattice: Lattice | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
            v, has = _raster_at(layer, lon, lat)
            return v * scale, has

        return from_raster
    if value is None or value not in layer.columns:
        raise MissingColumnError(
            problem(
                f"layer column {value!r}",
                "does not exist",
                f"use one of {list(map(str, layer.columns))}",
                where=WHERE,
            )
        )
    values_col = pd.to_numeric(layer[value], errors="coerce").to_numpy(dtype=float) * scale
    geoms = layer.geometry.to_numpy()
    usable = np.isfinite(values_col) & ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if not usable.any():
        raise InputError(
            problem(
                f"layer column {value!r}", "has no numeric value", "check the layer", where=WHERE
            )
        )
    layer = layer.to_crs(4326) if layer.crs is not None and layer.crs.to_epsg() != 4326 else layer
    layer = layer.loc[usable]
    vals = values_col[usable]
    kinds = set(shapely.get_type_id(layer.geometry.to_numpy()).tolist())
    if kinds <= {0}:  # points: nearest within max_distance
        if max_distance is None:
            raise InputError(
                problem(
                    "max_distance",
                    "is required for a point layer",
                    "pass the radius in metres a point speaks for, e.g. max_distance=5000",
                    where=WHERE,
                )
            )
        from .distance import nearest_geodesic

        px, py = layer.geometry.x.to_numpy(), layer.geometry.y.to_numpy()

        def index(lon: np.ndarray, lat: np.ndarray, lattice: Lattice | None) -> np.ndarray:
            return nearest_geodesic(lon, lat, px, py, max_distance=max_distance)[1]

    elif kinds <= {3, 6}:
        index = _polygon_index(layer)
    else:
        raise InputError(
            problem(
                "layer",
                f"mixes geometry types {sorted(kinds)}",
                "pass only polygons or only points",
                where=WHERE,
            )
        )

    def from_vector(
        lon: np.ndarray, lat: np.ndarray, lattice: Lattice | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        at = index(lon, lat, lattice)
        has = at >= 0
        return np.where(has, vals[np.clip(at, 0, None)], 0.0), has

    return from_vector


def _raster_at(path: PathLike, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band-1 value of the raster cell containing each point (lon/lat), read by row blocks."""
    from pyproj import Transformer

    ds = open_raster(path)
    try:
        x, y = lon, lat
        if ds.crs is not None and ds.crs.to_epsg() != 4326:
            x, y = Transformer.from_crs(4326, ds.crs, always_xy=True).transform(lon, lat)
        inv = ~ds.transform
        col = np.floor(inv.a * x + inv.b * y + inv.c).astype(np.int64)
        row = np.floor(inv.d * x + inv.e * y + inv.f).astype(np.int64)
        inside = (row >= 0) & (row < ds.height) & (col >= 0) & (col < ds.width)
        blocks = row_blocks(ds)
    finally:
        ds.close()
    values = np.zeros(len(lon))
    valid = np.zeros(len(lon), dtype=bool)
    values[inside], valid[inside] = _read_cells(path, row[inside], col[inside], blocks)
    return values, valid


def _polygon_index(layer: gpd.GeoDataFrame) -> Any:
    """``(lon, lat) -> position`` of the layer polygon containing each point (-1: none).

    Quadkey tiles of one zoom are found arithmetically; other polygons through an STRtree built
    once. Where polygons overlap, the first in layer order wins.
    """
    if "quadkey" in layer.columns:
        tiles = _quadkey_lookup(layer["quadkey"])
        if tiles is not None:
            return tiles
    tree = shapely.STRtree(layer.geometry.to_numpy())

    def index(lon: np.ndarray, lat: np.ndarray, lattice: Lattice | None) -> np.ndarray:
        point_i, poly_i = tree.query(shapely.points(lon, lat), predicate="within")
        out = np.full(len(lon), -1, dtype=np.int64)
        order = np.lexsort((poly_i, point_i))
        point_i, poly_i = point_i[order], poly_i[order]
        first = (
            np.r_[True, point_i[1:] != point_i[:-1]] if len(point_i) else np.zeros(0, dtype=bool)
        )
        out[point_i[first]] = poly_i[first]
        return out

    return index


def _tile_x(lon: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.floor((lon + 180.0) / 360.0 * n), 0, n - 1).astype(np.int64)


def _tile_y(lat: np.ndarray, n: int) -> np.ndarray:
    rad = np.radians(np.clip(lat, -85.05112878, 85.05112878))
    y = np.floor((1.0 - np.log(np.tan(rad) + 1.0 / np.cos(rad)) / np.pi) / 2.0 * n)
    return np.clip(y, 0, n - 1).astype(np.int64)


def _quadkey_lookup(quadkeys: pd.Series) -> Any:
    """Tile lookup by arithmetic: all quadkeys of one zoom -> (x, y) keys -> searchsorted.

    Pixel centres on a lattice (``lattice``: their raster rows and columns, with latitude a
    function of the row and longitude of the column) get their tile column per raster column
    and tile row per raster row, then one gather from a dense table of the tiles over the span
    the pixels touch (when that table is not much larger than the pixels): no logarithm and no
    search per pixel. Either way, where a tile is listed twice the first in layer order wins.
    """
    from ..io.tiles import quadkey_to_tile
    from .distance import _on_lattice

    tx, ty, tz = quadkey_to_tile(quadkeys.to_numpy())
    if (tz < 0).any() or len(np.unique(tz)) != 1:
        return None  # mixed zooms or invalid keys: use the spatial index
    n = 2 ** int(tz[0])
    keys = tx * n + ty
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def dense(grid: tuple[np.ndarray, ...]) -> np.ndarray | None:
        ri, ci, lat_of_row, lon_of_col = grid
        has_row, has_col = np.isfinite(lat_of_row), np.isfinite(lon_of_col)
        col_x, row_y = np.zeros(len(lon_of_col), np.int64), np.zeros(len(lat_of_row), np.int64)
        col_x[has_col], row_y[has_row] = (
            _tile_x(lon_of_col[has_col], n),
            _tile_y(lat_of_row[has_row], n),
        )
        x0, x1 = int(col_x[has_col].min()), int(col_x[has_col].max())
        y0, y1 = int(row_y[has_row].min()), int(row_y[has_row].max())
        nx, ny = x1 - x0 + 1, y1 - y0 + 1
        if nx * ny > max(4 * len(ri), 1 << 22):
            return None
        table = np.full(nx * ny, -1, dtype=np.int64)
        inside = (tx >= x0) & (tx <= x1) & (ty >= y0) & (ty <= y1)
        at = (tx[inside] - x0) * ny + (ty[inside] - y0)
        cells, first = np.unique(at, return_index=True)  # first in layer order wins
        table[cells] = np.flatnonzero(inside)[first]
        return table[((col_x - x0) * ny)[ci] + (row_y - y0)[ri]]

    def index(lon: np.ndarray, lat: np.ndarray, lattice: Lattice | None = None) -> np.ndarray:
        grid = _on_lattice(lon, lat, lattice) if lattice is not None else None
        found = dense(grid) if grid is not None else None
        if found is not None:
            return found
        want = _tile_x(lon, n) * n + _tile_y(lat, n)
        pos = np.clip(np.searchsorted(sorted_keys, want), 0, len(sorted_keys) - 1)
        return np.where(sorted_keys[pos] == want, order[pos], -1)

    return index
