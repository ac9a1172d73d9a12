"""Exact pixel-coverage fractions of polygons on a raster grid, vectorised with numpy.

The method is the signed-area accumulation used by anti-aliasing font rasterisers, applied to
polygon rings in pixel coordinates:

* every ring segment is cut at each integer column and row line it crosses, so that each piece
  lies inside one pixel ``(row, col)``;
* a piece with signed height ``dv`` whose mean column coordinate is ``um`` adds
  ``dv * (col + 1 - um)`` (the part of the pixel to the right of the piece) to its own pixel and a
  "cover" of ``dv`` to every pixel further right in the same row;
* a cumulative sum of the covers along each row then gives, for every pixel, the area of the
  pixel inside the polygon (winding number integrated over the pixel).

Pixels where a ring changes the coverage are listed explicitly ("edge" pixels); between two of
them in a row the coverage is constant (1 inside, or the covered height of the row where a
horizontal edge runs through it), so the rest is returned as runs ``(row, start, stop, coverage)``.  The result is exact up to floating point (same
numbers as exactextract), and the cost grows with the length of the boundaries, not with the
number of interior pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

__all__ = ["Coverage", "polygon_coverage"]

# Pieces per batch of units: bounds the temporary memory (~100 bytes per piece).
_MAX_PIECES = 3_000_000


@dataclass(frozen=True)
class Coverage:
    """Sparse coverage of units on a grid: edge pixels + runs of constant coverage."""

    unit: np.ndarray  # int64, edge pixels
    row: np.ndarray  # int64
    col: np.ndarray  # int64
    coverage: np.ndarray  # float64 in (0, 1]
    run_unit: np.ndarray  # int64, interior runs (coverage 1)
    run_row: np.ndarray  # int64
    run_start: np.ndarray  # int64, first column
    run_stop: np.ndarray  # int64, one past the last column
    run_coverage: np.ndarray  # float64, the same coverage for every pixel of the run


def _to_pixel_space(coords: np.ndarray, transform: Affine) -> tuple[np.ndarray, np.ndarray]:
    inv = ~transform
    u = inv.a * coords[:, 0] + inv.b * coords[:, 1] + inv.c
    v = inv.d * coords[:, 0] + inv.e * coords[:, 1] + inv.f
    return u, v


def _segments(
    polygons: np.ndarray, transform: Affine
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ring segments of every polygon in pixel space: (unit, u0, v0, u1, v1)."""
    polygons = shapely.orient_polygons(polygons, exterior_cw=False)
    parts, part_unit = shapely.get_parts(polygons, return_index=True)
    poly_mask = shapely.get_type_id(parts) == 3
    parts, part_unit = parts[poly_mask], part_unit[poly_mask]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    if len(coords) < 2:
        empty = np.empty(0)
        return np.empty(0, dtype=np.int64), empty, empty, empty, empty
    u, v = _to_pixel_space(coords, transform)
    same = ring_idx[1:] == ring_idx[:-1]
    seg_unit = part_unit[ring_part[ring_idx[:-1][same]]]
    return (
        seg_unit.astype(np.int64),
        u[:-1][same],
        v[:-1][same],
        u[1:][same],
        v[1:][same],
    )


def _crossings(a0: np.ndarray, a1: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer lines k in [lo, hi] strictly between a0 and a1: (first k, count) per segment."""
    amin = np.minimum(a0, a1)
    amax = np.maximum(a0, a1)
    kmin = np.maximum(np.floor(amin) + 1, lo)
    kmax = np.minimum(np.ceil(amax) - 1, hi)
    n = np.maximum(kmax - kmin + 1, 0).astype(np.int64)
    return kmin, n


def _expand(start: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment index and integer line value for every crossing."""
    seg = np.repeat(np.arange(len(n)), n)
    offsets = np.cumsum(n) - n
    k = start[seg] + (np.arange(len(seg)) - offsets[seg])
    return seg, k


def _crossing_ts(u0, v0, u1, v1, height: int, width: int):
    """Where each segment crosses column lines and row lines: ``(seg_u, t_u, seg_v, t_v)``,
    ``t`` the position along the segment (0 at its start, 1 at its end), in the order of the
    lines."""
    ku, nu = _crossings(u0, u1, 0, width)
    kv, nv = _crossings(v0, v1, 0, height)
    seg_u, k_u = _expand(ku, nu)
    seg_v, k_v = _expand(kv, nv)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_u = (k_u - u0[seg_u]) / (u1 - u0)[seg_u]
        t_v = (k_v - v0[seg_v]) / (v1 - v0)[seg_v]
    return seg_u, t_u, seg_v, t_v


def _ascending_rank(seg: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rank by ``t`` of each crossing among its segment's crossings of one kind (columns or
    rows): they come in the order of the grid lines, so ``t`` rises along a segment going that
    way (``d > 0``) and falls along one going back."""
    within = np.arange(len(seg)) - (np.cumsum(n) - n)[seg]
    return np.where(d[seg] > 0, within, n[seg] - 1 - within)


def _by_segment_and_t(nseg, seg_u, t_u, du, seg_v, t_v, dv) -> np.ndarray:
    """The order of ``[starts (t 0), ends (t 1), column crossings, row crossings]`` by
    (segment, t), as ``np.lexsort((t, seg))`` gives it, up to the order of equal ``t`` (which
    only moves pieces of length 0, which are dropped).

    Each kind of crossing is already in order along its segment (:func:`_ascending_rank`), so
    only the segments crossing both column and row lines need their two kinds merged: those
    crossings alone are sorted, not every piece end (the sort was the largest cost of the
    coverage on 10⁸-pixel countries).
    """
    nu, nv = np.bincount(seg_u, minlength=nseg), np.bincount(seg_v, minlength=nseg)
    rank_u, rank_v = _ascending_rank(seg_u, nu, du), _ascending_rank(seg_v, nv, dv)
    both = (nu > 0) & (nv > 0)
    mu, mv = both[seg_u], both[seg_v]
    if mu.any():  # merge the two kinds where a segment has both
        sub_seg = np.concatenate([seg_u[mu], seg_v[mv]])
        sub = np.lexsort((np.concatenate([t_u[mu], t_v[mv]]), sub_seg))
        counts = np.where(both, nu + nv, 0)
        merged = np.empty(len(sub), dtype=np.int64)
        merged[sub] = np.arange(len(sub)) - (np.cumsum(counts) - counts)[sub_seg[sub]]
        n_u = int(np.count_nonzero(mu))
        rank_u[mu], rank_v[mv] = merged[:n_u], merged[n_u:]
    start = np.cumsum(nu + nv + 2) - (nu + nv + 2)  # each segment's first position
    where = np.concatenate(
        [start, start + nu + nv + 1, start[seg_u] + 1 + rank_u, start[seg_v] + 1 + rank_v]
    )
    order = np.empty(len(where), dtype=np.int64)
    order[where] = np.arange(len(where))
    return order


def _pieces(u0, v0, u1, v1, height: int, width: int):
    """Cut segments at grid lines; return per piece (segment, row, col, dv, um)."""
    du = u1 - u0
    dv = v1 - v0
    seg_u, t_u, seg_v, t_v = _crossing_ts(u0, v0, u1, v1, height, width)
    nseg = len(u0)
    seg = np.concatenate([np.arange(nseg), np.arange(nseg), seg_u, seg_v])
    t = np.concatenate([np.zeros(nseg), np.ones(nseg), t_u, t_v])
    order = _by_segment_and_t(nseg, seg_u, t_u, du, seg_v, t_v, dv)
    seg, t = seg[order], t[order]
    same = seg[1:] == seg[:-1]
    s = seg[:-1][same]
    ta, tb = t[:-1][same], t[1:][same]
    tm = 0.5 * (ta + tb)
    um = u0[s] + tm * du[s]
    vm = v0[s] + tm * dv[s]
    pdv = (tb - ta) * dv[s]
    row = np.floor(vm).astype(np.int64)
    col = np.floor(um).astype(np.int64)
    keep = (pdv != 0) & (row >= 0) & (row < height) & (col < width)
    return s[keep], row[keep], col[keep], pdv[keep], um[keep]


def _accumulate(unit, row, col, pdv, um, height: int, width: int):
    """Sum area and cover contributions per (unit, row, col) and integrate along rows."""
    inside = col >= 0
    area = pdv[inside] * (col[inside] + 1 - um[inside])
    cover_col = np.maximum(col + 1, 0)
    wc = width + 1
    key_area = (unit[inside] * height + row[inside]) * wc + col[inside]
    key_cover = (unit * height + row) * wc + cover_col
    keys = np.concatenate([key_area, key_cover])
    order = np.argsort(keys)
    sk = keys[order]
    new = np.ones(len(sk), dtype=bool)
    new[1:] = sk[1:] != sk[:-1]
    inv = np.empty(len(keys), dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    uniq = sk[new]
    area_sum = np.bincount(inv[: len(key_area)], weights=area, minlength=len(uniq))
    cover_sum = np.bincount(inv[len(key_area) :], weights=pdv, minlength=len(uniq))
    group = uniq // wc
    col_u = uniq - group * wc
    csum = np.cumsum(cover_sum)
    first = np.ones(len(uniq), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    start_idx = np.flatnonzero(first)
    before = np.where(start_idx > 0, csum[start_idx - 1], 0.0)
    group_n = np.diff(np.append(start_idx, len(uniq)))
    cum = csum - np.repeat(before, group_n)
    return group, col_u, area_sum + cum, cum, first


def _coverage_batch(unit, u0, v0, u1, v1, height: int, width: int, sign: float):
    s, row, col, pdv, um = _pieces(u0, v0, u1, v1, height, width)
    group, col_u, cov, cum, first = _accumulate(unit[s], row, col, pdv, um, height, width)
    cov = sign * cov
    cum = sign * cum
    g_unit = group // height
    g_row = group - g_unit * height
    # explicit pixels (drop the padding column `width` and empty pixels)
    keep = (col_u < width) & (cov > 1e-12)
    edge = (g_unit[keep], g_row[keep], col_u[keep], np.minimum(cov[keep], 1.0))
    # interior runs: between consecutive keys of a (unit, row), or up to the raster's right edge
    last = np.ones(len(group), dtype=bool)
    last[:-1] = first[1:]
    nxt = np.empty(len(group), dtype=np.int64)
    nxt[:-1] = col_u[1:]
    stop = np.where(last, width, nxt)
    start = col_u + 1
    is_run = (cum > 1e-12) & (stop > start)
    runs = (
        g_unit[is_run],
        g_row[is_run],
        start[is_run],
        np.minimum(stop[is_run], width),
        np.minimum(cum[is_run], 1.0),
    )
    return edge, runs


def polygon_coverage(polygons: np.ndarray, transform: Affine, shape: tuple[int, int]) -> Coverage:
    """Exact coverage fractions of each polygon (in the grid's CRS) on a raster grid.

    Parameters
    ----------
    polygons
        Array of shapely (Multi)Polygons in the raster's CRS; index i is unit i.
    transform
        Affine transform of the raster (no rotation).
    shape
        ``(height, width)`` of the raster.

    Returns
    -------
    Coverage
        Edge pixels, and runs of constant coverage along rows.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from affine import Affine
    >>> cov = polygon_coverage(np.array([shapely.box(0.5, 0.5, 2, 2)]), Affine(1, 0, 0, 0, -1, 2),
    ...                        (2, 2))
    >>> float(cov.coverage.sum())
    2.25
    """
    height, width = int(shape[0]), int(shape[1])
    # orientation of the grid: a north-up raster flips the y axis
    sign = 1.0 if (transform.a * transform.e - transform.b * transform.d) < 0 else -1.0
    unit, u0, v0, u1, v1 = _segments(np.asarray(polygons, dtype=object), transform)
    # drop horizontal segments, segments fully above/below the grid or right of it
    keep = (
        (v0 != v1)
        & (np.maximum(v0, v1) > 0)
        & (np.minimum(v0, v1) < height)
        & (np.minimum(u0, u1) < width)
    )
    unit, u0, v0, u1, v1 = unit[keep], u0[keep], v0[keep], u1[keep], v1[keep]
    # pieces left of column 0 are cut only at row lines (their cover still counts)
    est = (
        np.abs(np.clip(u1, -1, width + 1) - np.clip(u0, -1, width + 1))
        + np.abs(np.clip(v1, -1, height + 1) - np.clip(v0, -1, height + 1))
        + 3
    )
    batches = _batches(unit, est)
    edges, runs = [], []
    for lo, hi in batches:
        sl = slice(lo, hi)
        e, r = _coverage_batch(unit[sl], u0[sl], v0[sl], u1[sl], v1[sl], height, width, sign)
        edges.append(e)
        runs.append(r)
    if not edges:
        z = np.empty(0, dtype=np.int64)
        return Coverage(z, z, z, np.empty(0), z, z, z, z, np.empty(0))
    cat = [np.concatenate(parts) for parts in zip(*edges, strict=True)]
    rcat = [np.concatenate(parts) for parts in zip(*runs, strict=True)]
    return Coverage(*cat, *rcat)


def _batches(unit: np.ndarray, est: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous segment ranges that never split a unit, each with <= _MAX_PIECES pieces."""
    n = len(unit)
    if n == 0:
        return []
    # segments are grouped by unit already (get_parts keeps order)
    bounds = np.flatnonzero(np.diff(unit)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [n]])
    cum = np.cumsum(est)
    unit_end_cum = cum[stops - 1]
    out: list[tuple[int, int]] = []
    lo_unit = 0
    base = 0.0
    nunits = len(starts)
    while lo_unit < nunits:
        hi_unit = int(np.searchsorted(unit_end_cum, base + _MAX_PIECES, side="right"))
        hi_unit = max(hi_unit, lo_unit + 1)
        out.append((int(starts[lo_unit]), int(stops[hi_unit - 1])))
        base = unit_end_cum[hi_unit - 1]
        lo_unit = hi_unit
    return out
