"""Exact, coverage-weighted raster zonal statistics on any units (admin, H3 / square fragments).

Coverage fractions come from :mod:`geopipe.zonal._coverage` (exact pixel areas inside each
polygon, the same numbers as exactextract): boundary pixels are listed one by one, interior pixels
as runs along rows, so interior pixels need no geometry at all.  The weights are computed once per
(units, raster grid) as a :class:`PixelWeights` and reused for every raster on that grid; rasters are
then read block by block (memory bounded) and reduced with cumulative sums along rows.

Edge rules (``edge=``):

``"fraction"`` (default)
    a pixel counts in a unit by the share of its area inside the unit (exactextract's rule).
    Pixels cut by the *outer* boundary (coast, border) lose the share outside.
``"renormalize"``
    each pixel's fractions are divided by their sum over the units that touch it, so the units
    together hold the full value of every pixel they touch.  Right for per-country rasters whose
    border pixels hold only that country's people.  Units must not overlap (one admin level, or
    grid fragments).

The result's ``.attrs["geopipe"]["zonal_raster"]`` reports, per raster, the raster total, the total
assigned to units, the total over the pixels the units touch and the share of the raster total
that falls outside the units.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from geopipe.errors import (
    EmptyInputError,
    GeometryError,
    GeopipeWarning,
    InputError,
    RasterError,
    problem,
)
from geopipe.events import progress
from geopipe.io.raster import iter_blocks, open_raster, raster_info, row_blocks
from geopipe.zonal._coverage import polygon_coverage

__all__ = ["EDGES", "STATS", "PixelWeights", "pixel_weights", "zonal_raster"]

STATS = ("sum", "mean", "count", "min", "max", "median", "weighted_sum", "weighted_mean")
EDGES = ("fraction", "renormalize")
PathLike = str | os.PathLike[str]


@dataclass(frozen=True, eq=False)
class PixelWeights:
    """Coverage weights of units on one raster grid, computed once and reused for many rasters.

    Stored sparsely: ``edge_*`` arrays list pixels with a fractional weight (boundary pixels),
    ``run_*`` arrays list runs ``[run_start, run_stop)`` of columns in a row where a unit covers
    every pixel fully (weight 1).  The dense per-pixel view is available as :attr:`unit`,
    :attr:`row`, :attr:`col` and :attr:`coverage` (computed on first access).

    Attributes
    ----------
    transform, crs, shape
        The raster grid (``shape`` is ``(height, width)``; ``crs`` as a WKT / ``EPSG:n`` string).
    n_units
        Number of units; ``unit`` values are positions ``0 .. n_units - 1`` into the units table.
    edge
        The edge rule the weights were built with (``"fraction"`` or ``"renormalize"``).
    """

    transform: Affine
    crs: str
    shape: tuple[int, int]
    n_units: int
    edge: str
    edge_unit: np.ndarray
    edge_row: np.ndarray
    edge_col: np.ndarray
    edge_coverage: np.ndarray
    run_unit: np.ndarray
    run_row: np.ndarray
    run_start: np.ndarray
    run_stop: np.ndarray

    @cached_property
    def _dense(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lengths = self.run_stop - self.run_start
        rep = np.repeat(np.arange(len(lengths)), lengths)
        offs = np.arange(len(rep)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        unit = np.concatenate([self.edge_unit, self.run_unit[rep]])
        row = np.concatenate([self.edge_row, self.run_row[rep]])
        col = np.concatenate([self.edge_col, self.run_start[rep] + offs])
        cov = np.concatenate([self.edge_coverage, np.ones(len(rep))])
        return unit, row, col, cov

    @cached_property
    def _touched_edge_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct edge pixels with some weight, sorted by row (each touched pixel once)."""
        width = self.shape[1]
        pos = self.edge_coverage > 0
        key = np.sort(self.edge_row[pos] * width + self.edge_col[pos])
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        key = key[first]
        return key // width, key % width

    @property
    def unit(self) -> np.ndarray:
        """Unit position of every (unit, pixel) pair."""
        return self._dense[0]

    @property
    def row(self) -> np.ndarray:
        """Raster row of every (unit, pixel) pair."""
        return self._dense[1]

    @property
    def col(self) -> np.ndarray:
        """Raster column of every (unit, pixel) pair."""
        return self._dense[2]

    @property
    def coverage(self) -> np.ndarray:
        """Weight of every (unit, pixel) pair (share of the pixel counted in the unit)."""
        return self._dense[3]

    def pixel_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (raster CRS) of every (unit, pixel) pair."""
        t = self.transform
        c = self.col + 0.5
        r = self.row + 0.5
        return t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f

    def pixel_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre longitude and latitude (EPSG:4326) of every (unit, pixel) pair.

        Examples
        --------
        >>> lon, lat = pw.pixel_lonlat()  # doctest: +SKIP
        """
        x, y = self.pixel_xy()
        if self.lonlat_transform() is not None:
            return x, y
        tr = Transformer.from_crs(CRS.from_user_input(self.crs), 4326, always_xy=True)
        return tr.transform(x, y)

    def lonlat_transform(self) -> Any:
        """The transform when the grid is in EPSG:4326, so that :meth:`pixel_lonlat` returns
        :meth:`pixel_xy` as it is; else ``None``.

        Examples
        --------
        >>> pw.lonlat_transform() is pw.transform  # doctest: +SKIP
        True
        """
        return self.transform if CRS.from_user_input(self.crs).equals(CRS.from_epsg(4326)) else None

    def relabel(self, parent: np.ndarray, n_units: int) -> PixelWeights:
        """The same (unit, pixel) pairs, each counted in unit ``parent[unit]`` of ``n_units``.

        How districts get their weights from their grid fragments: the fragments tile the
        districts, so a pixel's coverage in a district is the sum of its coverages in the
        district's fragments, and every sum over the pairs equals the district's own to float
        rounding. The pair arrays are shared, not copied; only the unit labels are new. (The
        weighted ``median`` interpolates over the pairs, so it is not the district's own; no
        step publishes it.)

        Examples
        --------
        >>> districts = fragments_weights.relabel(district_of_fragment, 30)  # doctest: +SKIP
        """
        parent = np.asarray(parent, dtype=np.int64)
        out = PixelWeights(
            transform=self.transform,
            crs=self.crs,
            shape=self.shape,
            n_units=n_units,
            edge=self.edge,
            edge_unit=parent[self.edge_unit],
            edge_row=self.edge_row,
            edge_col=self.edge_col,
            edge_coverage=self.edge_coverage,
            run_unit=parent[self.run_unit],
            run_row=self.run_row,
            run_start=self.run_start,
            run_stop=self.run_stop,
        )
        unit, row, col, cov = self._dense
        out.__dict__["_dense"] = (parent[unit], row, col, cov)  # the pairs in the same order
        return out

    def unit_weight(self) -> np.ndarray:
        """Sum of weights (pixels counted) per unit, length ``n_units``."""
        return np.bincount(
            self.edge_unit, weights=self.edge_coverage, minlength=self.n_units
        ) + np.bincount(
            self.run_unit, weights=(self.run_stop - self.run_start), minlength=self.n_units
        )


def crs_id(crs: Any) -> str:
    """``EPSG:n`` when the CRS has an EPSG code, else its WKT (how grids are compared)."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _grid_key(ds: rasterio.DatasetReader) -> tuple:
    return (crs_id(ds.crs), tuple(ds.transform)[:6], ds.height, ds.width)


def _weights_grid_key(pw: PixelWeights) -> tuple:
    return (crs_id(pw.crs), tuple(pw.transform)[:6], *pw.shape)


def _check_units(units: gpd.GeoDataFrame, where: str) -> None:
    if not isinstance(units, gpd.GeoDataFrame):
        raise InputError(
            problem("units", f"is a {type(units).__name__}", "pass a GeoDataFrame", where=where)
        )
    if units.crs is None:
        raise GeometryError(
            problem("units", "have no CRS", "set one, e.g. units.set_crs(4326)", where=where)
        )


def _weights_for_grid(
    units: gpd.GeoDataFrame, ds: rasterio.DatasetReader, edge: str
) -> PixelWeights:
    t = ds.transform
    if t.b != 0 or t.d != 0:
        raise RasterError(
            problem(
                f"raster '{ds.name}'",
                "has a rotated geotransform",
                "warp it to a north-up grid first (gdalwarp)",
                where="pixel_weights",
            )
        )
    geoms = units.geometry
    if not CRS.from_user_input(units.crs).equals(ds.crs):
        geoms = geoms.to_crs(ds.crs)
    cov = polygon_coverage(np.asarray(geoms.values), t, (ds.height, ds.width))
    # runs of partial coverage (a horizontal edge through the row) become explicit pixels
    partial = cov.run_coverage < 1.0 - 1e-12
    lengths = (cov.run_stop - cov.run_start)[partial]
    rep = np.repeat(np.flatnonzero(partial), lengths)
    offs = np.arange(len(rep)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    e_unit = np.concatenate([cov.unit, cov.run_unit[rep]])
    e_row = np.concatenate([cov.row, cov.run_row[rep]])
    e_col = np.concatenate([cov.col, cov.run_start[rep] + offs])
    e_cov = np.concatenate([cov.coverage, cov.run_coverage[rep]])
    full = ~partial
    r_unit, r_row = cov.run_unit[full], cov.run_row[full]
    r_start, r_stop = cov.run_start[full], cov.run_stop[full]
    if edge == "renormalize":
        e_cov = _renormalize(e_row, e_col, e_cov, ds.width)
    eo = np.argsort(e_row, kind="stable")
    ro = np.lexsort((r_start, r_row))  # by row, then column: lets blocks sum runs in one pass
    return PixelWeights(
        transform=t,
        crs=crs_id(ds.crs),
        shape=(ds.height, ds.width),
        n_units=len(units),
        edge=edge,
        edge_unit=e_unit[eo],
        edge_row=e_row[eo],
        edge_col=e_col[eo],
        edge_coverage=e_cov[eo],
        run_unit=r_unit[ro],
        run_row=r_row[ro],
        run_start=r_start[ro],
        run_stop=r_stop[ro],
    )


def _renormalize(row: np.ndarray, col: np.ndarray, cov: np.ndarray, width: int) -> np.ndarray:
    uniq, inv = _unique_inverse(row * width + col)
    total = np.bincount(inv, weights=cov, minlength=len(uniq))
    if np.any(total > 1.0 + 1e-6):
        warnings.warn(
            "zonal_raster(edge='renormalize'): some units overlap (a pixel is covered more than "
            "once), so renormalizing also splits overlapping pixels between them; pass one "
            "admin level or grid fragments (non-overlapping units)",
            GeopipeWarning,
            stacklevel=4,
        )
    return cov / total[inv]


def _unique_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and the position of each input key among them (sort-based)."""
    order = np.argsort(key)
    sk = key[order]
    new = np.ones(len(sk), dtype=bool)
    new[1:] = sk[1:] != sk[:-1]
    inv = np.empty(len(key), dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return sk[new], inv


def pixel_weights(
    units: gpd.GeoDataFrame, raster: PathLike, *, edge: str = "fraction"
) -> PixelWeights:
    """Exact coverage weights of units on a raster's grid, to reuse across rasters and tools.

    Parameters
    ----------
    units
        Polygons (any CRS; reprojected to the raster's CRS, the raster is never resampled).
    raster
        Path of a raster defining the grid (only its header is read).
    edge
        ``"fraction"`` (share of the pixel's area inside the unit) or ``"renormalize"`` (shares
        divided by their sum over the units touching the pixel).

    Returns
    -------
    PixelWeights
        Sparse weights; ``unit`` values are positions into ``units``.

    Examples
    --------
    >>> pw = pixel_weights(admin, "pop.tif")  # doctest: +SKIP
    >>> lon, lat = pw.pixel_lonlat()  # doctest: +SKIP
    """
    _check_units(units, "pixel_weights")
    _check_edge(edge)
    with open_raster(raster, check=False) as ds:
        return _weights_for_grid(units, ds, edge)


def _check_edge(edge: str) -> None:
    if edge not in EDGES:
        raise InputError(
            problem("edge", f"was {edge!r}", f"use one of {list(EDGES)}", where="zonal_raster")
        )


def _normalise_rasters(raster: Any, prefix: str | None) -> dict[str, PathLike]:
    if isinstance(raster, Mapping):
        if not raster:
            raise InputError(
                problem(
                    "raster", "is an empty mapping", "pass prefix -> path", where="zonal_raster"
                )
            )
        return {str(k): v for k, v in raster.items()}
    if isinstance(raster, (str, os.PathLike)):
        return {prefix or "": raster}
    raise InputError(
        problem(
            "raster",
            f"is a {type(raster).__name__}",
            "pass a path or a mapping of column prefix -> path",
            where="zonal_raster",
        )
    )


def _check_stats(stats: Sequence[str], weights: Any) -> tuple[str, ...]:
    if isinstance(stats, str):
        stats = (stats,)
    bad = [s for s in stats if s not in STATS]
    if bad:
        raise InputError(
            problem(
                "stats", f"has unknown {bad}", f"use names from {list(STATS)}", where="zonal_raster"
            )
        )
    if weights is None and any(s.startswith("weighted_") for s in stats):
        raise InputError(
            problem(
                "weights",
                "is None but a weighted statistic was requested",
                "pass weights='weights.tif' (a raster on the same grid)",
                where="zonal_raster",
            )
        )
    return tuple(stats)


class _Acc:
    """Per-unit accumulators for one raster."""

    def __init__(self, n: int, stats: tuple[str, ...]) -> None:
        self.n = n
        self.stats = stats
        self.sum = np.zeros(n)
        self.count = np.zeros(n)
        self.wsum = np.zeros(n)
        self.wden = np.zeros(n)
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)
        self.med: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.raster_total = 0.0
        self.touched_total = 0.0
        self.need_values = any(s in stats for s in ("min", "max", "median"))
        self.need_count = any(s in stats for s in ("count", "mean"))
        self.valid_seen = 0.0  # coverage-weighted valid pixels, counted until the first is seen


def _run_sums(a: np.ndarray, rr: np.ndarray, rs: np.ndarray, rt: np.ndarray) -> np.ndarray:
    """Sum of ``a[r, s:t]`` for every run, in float64.

    Runs sorted by (row, start) that do not overlap (any partition of units) are summed with
    one ``np.add.reduceat`` over the block, read once and never converted; overlapping runs
    (overlapping units) fall back to cumulative sums along the rows.
    """
    n = len(rr)
    if n == 0:
        return np.zeros(0)
    width = a.shape[1]
    fs = rr * width + rs
    ft = rr * width + rt
    if np.all(fs[1:] >= ft[:-1]):
        idx = np.empty(2 * n, dtype=np.int64)
        idx[0::2] = fs
        idx[1::2] = ft
        flat = a.reshape(-1)
        if idx[-1] >= flat.size:
            idx = idx[:-1]
        return np.add.reduceat(flat, idx, dtype=np.float64)[0::2]
    cs = np.zeros((a.shape[0], width + 1))
    np.cumsum(a, axis=1, dtype=np.float64, out=cs[:, 1:])
    return cs[rr, rt] - cs[rr, rs]


def _accumulate_block(acc, pw, r0, r1, raw, valid, scale, offset, wblock, touched):
    """Add one block of rows ``[r0, r1)`` (raw values, invalid = 0) to the accumulators."""
    e0, e1 = np.searchsorted(pw.edge_row, [r0, r1])
    q0, q1 = np.searchsorted(pw.run_row, [r0, r1])
    eu, er, ec, ecov = (
        pw.edge_unit[e0:e1],
        pw.edge_row[e0:e1] - r0,
        pw.edge_col[e0:e1],
        pw.edge_coverage[e0:e1],
    )
    ru, rr = pw.run_unit[q0:q1], pw.run_row[q0:q1] - r0
    rs, rt = pw.run_start[q0:q1], pw.run_stop[q0:q1]
    n = acc.n
    shifted = offset != 0.0
    acc.raster_total += scale * float(raw.sum(dtype=np.float64))
    if shifted:
        acc.raster_total += offset * float(valid.sum())
    ev = raw[er, ec] * scale + offset
    eok = valid[er, ec]
    w = ecov * eok
    acc.sum += np.bincount(eu, weights=w * ev, minlength=n)
    acc.count += np.bincount(eu, weights=w, minlength=n)
    run_sum = scale * _run_sums(raw, rr, rs, rt)
    run_count = None
    if acc.need_count or shifted:
        run_count = _run_sums(valid, rr, rs, rt)
        acc.count += np.bincount(ru, weights=run_count, minlength=n)
        if shifted:
            run_sum += offset * run_count
    if acc.valid_seen == 0:  # stops looking once a valid pixel over some unit was seen
        acc.valid_seen = float(w.sum()) + float(
            (run_count if run_count is not None else _run_sums(valid, rr, rs, rt)).sum()
        )
    acc.sum += np.bincount(ru, weights=run_sum, minlength=n)
    if touched is not None:
        # run pixels are covered fully by one unit; edge pixels are added once each
        t0, t1 = np.searchsorted(touched[0], [r0, r1])
        tr, tc = touched[0][t0:t1] - r0, touched[1][t0:t1]
        acc.touched_total += float(((raw[tr, tc] * scale + offset) * valid[tr, tc]).sum())
        acc.touched_total += float(run_sum.sum())
    if wblock is not None:
        wvals, wvalid = wblock
        both = valid & wvalid
        wv = np.where(both, wvals, 0.0)
        vals = raw * scale + offset
        ew = ecov * wv[er, ec]
        acc.wsum += np.bincount(eu, weights=ew * ev, minlength=n)
        acc.wden += np.bincount(eu, weights=ew, minlength=n)
        acc.wsum += np.bincount(ru, weights=_run_sums(wv * vals, rr, rs, rt), minlength=n)
        acc.wden += np.bincount(ru, weights=_run_sums(wv, rr, rs, rt), minlength=n)
    if acc.need_values:
        lengths = rt - rs
        rep = np.repeat(np.arange(len(lengths)), lengths)
        offs = np.arange(len(rep)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        pu = np.concatenate([eu, ru[rep]])
        prow = np.concatenate([er, rr[rep]])
        pcol = np.concatenate([ec, rs[rep] + offs])
        pw_ = np.concatenate([ecov, np.ones(len(rep))])
        ok = valid[prow, pcol] & (pw_ > 0)
        pu, pw_ = pu[ok], pw_[ok]
        pv = raw[prow[ok], pcol[ok]] * scale + offset
        np.minimum.at(acc.min, pu, pv)
        np.maximum.at(acc.max, pu, pv)
        if "median" in acc.stats:
            acc.med.append((pu.astype(np.int32), pv, pw_))


def _weighted_median(n: int, parts: list) -> np.ndarray:
    """exactextract's weighted quantile (q = 0.5): type-7 interpolation generalised to weights."""
    out = np.full(n, np.nan)
    if not parts:
        return out
    u = np.concatenate([p[0] for p in parts])
    x = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    if len(u) == 0:
        return out
    order = np.lexsort((x, u))
    u, x, w = u[order], x[order], w[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    counts = np.diff(np.r_[starts, len(u)])
    gstart = np.repeat(starts, counts)
    i = np.arange(len(u)) - gstart  # position within the unit
    cw = np.cumsum(w)
    base = np.repeat(np.r_[0.0, cw[starts[1:] - 1]] if len(starts) > 1 else [0.0], counts)
    cum = cw - base
    prev = cum - w
    nn = np.repeat(counts, counts).astype(np.float64)
    s = i * w + (nn - 1) * prev
    total = np.repeat(cum[starts + counts - 1], counts)
    target = 0.5 * total * (nn - 1)
    # first element with s > target (upper_bound), per unit
    above = s > target
    big = np.where(above, i, np.iinfo(np.int64).max)
    first_above = np.minimum.reduceat(big, starts)
    res = np.empty(len(starts))
    for_units = u[starts]
    at_first = first_above == 0
    at_end = first_above == np.iinfo(np.int64).max
    mid = ~(at_first | at_end)
    res[at_first] = x[starts[at_first]]
    res[at_end] = x[starts[at_end] + counts[at_end] - 1]
    r = starts[mid] + first_above[mid]
    left = r - 1
    tgt = target[r]
    res[mid] = x[left] + (tgt - s[left]) * (x[r] - x[left]) / (s[r] - s[left])
    out[for_units] = res
    return out


def _reduce_raster(path, ds, weights, pw: PixelWeights, stats, report_touched: bool) -> _Acc:
    acc = _Acc(pw.n_units, stats)
    touched = pw._touched_edge_pixels if report_touched else None
    rows = row_blocks(ds)
    scale, offset = float(ds.scales[0]), float(ds.offsets[0])
    wblocks = iter_blocks(weights, rows) if weights is not None else None
    blocks = iter_blocks(path, rows, raw=True)
    for r0, r1, raw, valid in progress(
        blocks, step=f"raster {os.path.basename(path)}", unit="block", total=len(rows)
    ):
        wblock = None
        if wblocks is not None:
            _, _, wvals, wvalid = next(wblocks)
            wblock = (wvals, wvalid)
        _accumulate_block(acc, pw, r0, r1, raw, valid, scale, offset, wblock, touched)
    return acc


def _columns(acc: _Acc, stats: tuple[str, ...], prefix: str) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    name = (lambda s: f"{prefix}_{s}") if prefix else (lambda s: s)
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in stats:
            if s == "sum":
                cols[name(s)] = acc.sum
            elif s == "count":
                cols[name(s)] = acc.count
            elif s == "mean":
                cols[name(s)] = np.where(acc.count > 0, acc.sum / acc.count, np.nan)
            elif s == "min":
                cols[name(s)] = np.where(np.isfinite(acc.min), acc.min, np.nan)
            elif s == "max":
                cols[name(s)] = np.where(np.isfinite(acc.max), acc.max, np.nan)
            elif s == "median":
                cols[name(s)] = _weighted_median(acc.n, acc.med)
            elif s == "weighted_sum":
                cols[name(s)] = acc.wsum
            elif s == "weighted_mean":
                cols[name(s)] = np.where(acc.wden > 0, acc.wsum / acc.wden, np.nan)
    return cols


def _contributes_nothing(path: Any, ds: Any, units: gpd.GeoDataFrame, what: str) -> EmptyInputError:
    """The error for a raster that would give every unit 0 / NaN, with the likely cause."""
    b = ds.bounds
    ub = units.to_crs(ds.crs).total_bounds if len(units) else None
    where_units = (
        f"units span {ub[0]:.4g}..{ub[2]:.4g} x {ub[1]:.4g}..{ub[3]:.4g}" if ub is not None else ""
    )
    if what.startswith("no unit"):
        cause = (
            f"the raster covers {b.left:.4g}..{b.right:.4g} x {b.bottom:.4g}..{b.top:.4g} in its "
            f"CRS and the {where_units}: it is the raster of another area, or its CRS (or the "
            "units' CRS) is wrong"
        )
    else:
        cause = (
            "every pixel the units touch is nodata (an empty or all-nodata export, or a nodata "
            f"value ({ds.nodata}) that is also the data value)"
        )
    return EmptyInputError(
        problem(
            f"raster '{path}'",
            f"contributes nothing: {what}, so every statistic would be 0 or NaN; likely cause: {cause}",
            "pass the raster of this area (check it with gp.check_raster(path, admin=units))",
            where="zonal_raster",
        )
    )


def zonal_raster(
    units: gpd.GeoDataFrame,
    raster: PathLike | Mapping[str, PathLike],
    stats: Sequence[str] = ("sum",),
    weights: PathLike | None = None,
    prefix: str | None = None,
    edge: str = "fraction",
    pixel_weights: PixelWeights | None = None,
) -> gpd.GeoDataFrame:
    """Coverage-weighted zonal statistics of one or several rasters over units.

    Parameters
    ----------
    units
        Polygons (admin units, H3 or square-grid fragments); reprojected to each raster's CRS.
    raster
        A raster path, or a mapping ``{column prefix: path}`` for several rasters. Rasters on the
        same grid share one weight computation.
    stats
        Any of ``sum, mean, count, min, max, median, weighted_sum, weighted_mean`` (exactextract's
        definitions: ``count`` and ``mean`` are coverage-weighted; ``min``/``max`` over pixels
        with some coverage; ``median`` is the coverage-weighted median).
    weights
        Raster on the same grid used by ``weighted_*`` (e.g. child population to weight a wealth
        index): pixel weight = coverage x weight value.
    prefix
        Column prefix for a single raster: columns are ``{prefix}_{stat}`` (or just ``{stat}``
        when ``prefix`` is None).
    edge
        ``"fraction"`` (default) or ``"renormalize"``; see the module docstring.
    pixel_weights
        Weights of these units already built on the rasters' grid (:func:`pixel_weights`, same
        ``edge``), reused instead of being computed again.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` with one column per (raster, stat), and
        ``.attrs["geopipe"]["zonal_raster"]`` reporting totals per raster.

    Examples
    --------
    >>> out = zonal_raster(admin, {"pop": "pop.tif", "u5": "u5.tif"}, stats=("sum",))  # doctest: +SKIP
    >>> out[["ucode", "pop_sum", "u5_sum"]]  # doctest: +SKIP
    """
    _check_units(units, "zonal_raster")
    _check_edge(edge)
    stats = _check_stats(stats, weights)
    rasters = _normalise_rasters(raster, prefix)
    out = units.copy()
    report: dict[str, Any] = {}
    cache: dict[tuple, PixelWeights] = {}
    if pixel_weights is not None:
        if pixel_weights.edge != edge or pixel_weights.n_units != len(units):
            raise InputError(
                problem(
                    "pixel_weights",
                    f"were built for {pixel_weights.n_units} units with edge={pixel_weights.edge!r}",
                    f"build them for these {len(units)} units with edge={edge!r}",
                    where="zonal_raster",
                )
            )
        cache[_weights_grid_key(pixel_weights)] = pixel_weights
    wds = open_raster(weights) if weights is not None else None
    try:
        for pfx, path in rasters.items():
            with open_raster(path) as ds:
                key = _grid_key(ds)
                if wds is not None and _grid_key(wds) != key:
                    raise RasterError(
                        problem(
                            f"weights raster '{weights}'",
                            f"is not on the grid of '{path}'",
                            "resample it to that grid first (same CRS, transform, size)",
                            where="zonal_raster",
                        )
                    )
                if key not in cache:
                    cache[key] = _weights_for_grid(units, ds, edge)
                pw = cache[key]
                if len(pw.edge_unit) + len(pw.run_unit) == 0:
                    raise _contributes_nothing(path, ds, units, "no unit overlaps it")
                acc = _reduce_raster(path, ds, weights, pw, stats, report_touched=True)
                if acc.valid_seen == 0:
                    raise _contributes_nothing(
                        path, ds, units, "it has no valid pixel over the units"
                    )
            for col, values in _columns(acc, stats, pfx).items():
                out[col] = values
            assigned = float(acc.sum.sum())
            total = acc.raster_total
            report[pfx or os.fspath(path)] = {
                "raster": raster_info(path),
                "edge": edge,
                "raster_total": total,
                "assigned_total": assigned,
                "touched_total": acc.touched_total,
                "outside_share": (1.0 - assigned / total) if total else None,
            }
    finally:
        if wds is not None:
            wds.close()
    attrs = dict(out.attrs.get("geopipe", {}))
    attrs["zonal_raster"] = report
    out.attrs["geopipe"] = attrs
    return out
