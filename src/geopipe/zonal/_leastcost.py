"""Least-cost accumulation on an 8-neighbour raster graph with true metric move lengths.

The graph: one node per passable cell; an edge between each cell and its 8 neighbours. A move
from cell ``a`` to a neighbour ``b`` costs ``L_ab * (f_a + f_b) / 2`` (half the move in each
cell, the MAP / gdistance convention, as in ``skimage.graph.MCP_Geometric``), where ``f`` is the
friction in minutes per metre and ``L_ab`` is the length in metres of the move between the two
cell centres. On a geographic grid ``L`` depends on the row (cells narrow towards the poles):
per row ``h[r]`` (to the east neighbour), and between rows ``r`` and ``r + 1`` ``v[r]`` (south)
and ``d[r]`` (diagonal), all WGS 84 geodesics between cell centres.

Two building blocks (see docs/traveltime.md):

* the exact relaxation (:func:`_sweeps`): Gauss-Seidel sweeps of the true edge costs, rows down
  and up (within a row the east/west passes are closed-form min-plus scans), columns too after
  ``ROW_ROUNDS``, revisiting only lines whose neighbours changed, until a whole round changes
  nothing. Then every edge satisfies ``T[b] <= T[a] + cost(a, b)`` and every value is the cost
  of a real path: ``T`` is the exact shortest-path cost (to floating rounding);
* an upper bound from ``skimage.graph.MCP_Geometric`` (compiled Dijkstra) on a graph whose every
  edge costs *at least* the true one (friction scaled per row, anisotropic ``sampling``), within
  the reported relative error ``eps``: the start of ``engine="mcp"``, and the guarantee behind the
  round cap of ``engine="auto"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_RTOL = 1e-13  # a row "changes" when a value drops by more than this (relative)
_HUGE = 1e300  # stands for "unreached" inside the complex running minimum


@dataclass(frozen=True)
class MoveLengths:
    """Metric length (m) of the moves of a grid: ``h`` per row, ``v`` and ``d`` per row pair."""

    h: np.ndarray  # (H,)   east-west, within row r
    v: np.ndarray  # (H-1,) north-south, rows r and r+1
    d: np.ndarray  # (H-1,) diagonal, rows r and r+1

    def uniform_bound(self) -> float:
        """Largest ratio of an 8-neighbour path to the straight line, for uniform friction.

        A lattice path between two cells is a run of axial moves plus a run of diagonal moves;
        its length over the straight line is at most ``1 / cos(theta / 2)``, ``theta`` being the
        widest angle between neighbouring move directions (45 degrees on square cells: 1.0824).
        """
        h = self.h[:-1] if len(self.v) else self.h
        v = self.v if len(self.v) else self.h
        theta = np.maximum(np.arctan2(v, h), np.arctan2(h, v))
        return float(np.max(1.0 / np.cos(theta / 2.0)))


def move_lengths(transform, crs, height: int) -> MoveLengths:
    """Move lengths of a north-up grid: geodesics between cell centres (geographic CRS) or the
    pixel size in the CRS's linear unit converted to metres (projected CRS)."""
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    a, e = abs(transform.a), abs(transform.e)
    if crs.is_geographic:
        geod = crs.get_geod()
        lat = transform.f + transform.e * (np.arange(height) + 0.5)
        zero = np.zeros(height)
        _, _, h = geod.inv(zero, lat, zero + a, lat)
        _, _, v = geod.inv(zero[:-1], lat[:-1], zero[:-1], lat[1:])
        _, _, d = geod.inv(zero[:-1], lat[:-1], zero[:-1] + a, lat[1:])
        return MoveLengths(np.asarray(h, float), np.asarray(v, float), np.asarray(d, float))
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    a, e = a * unit, e * unit
    n = max(height - 1, 0)
    return MoveLengths(np.full(height, a), np.full(n, e), np.full(n, float(np.hypot(a, e))))


def _mcp_upper_bound(friction: np.ndarray, lengths: MoveLengths, seeds: np.ndarray):
    """Stage 1: MCP_Geometric on a graph that over-estimates every edge. Returns (T, eps)."""
    from skimage.graph import MCP_Geometric

    h, v, d = lengths.h, lengths.v, lengths.d
    s_h = float(np.median(h))
    s_v = float(np.median(v)) if len(v) else s_h
    s_d = float(np.hypot(s_h, s_v))
    k = h / s_h
    if len(v):
        kv = np.maximum(v / s_v, d / s_d)
        k[:-1] = np.maximum(k[:-1], kv)
        k[1:] = np.maximum(k[1:], kv)
    # relative over-estimate of the worst edge: k[r] * sampling / true length
    eps = float(np.max(k * s_h / h) - 1.0)
    if len(v):
        hi = np.maximum(k[:-1], k[1:])
        eps = max(eps, float(np.max(hi * s_v / v) - 1), float(np.max(hi * s_d / d) - 1))
    costs = np.asfortranarray(friction, dtype=np.float64)
    costs *= k[:, None]
    mcp = MCP_Geometric(costs, fully_connected=True, sampling=(s_v, s_h))
    del costs
    cum, _ = mcp.find_costs([[int(r), int(c)] for r, c in seeds])
    out = np.ascontiguousarray(cum)
    del mcp, cum
    return out, eps


def _scan(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """West-to-east min-plus scan: ``t[c] = min(t[c], t[c-1] + e[c-1])`` applied in sequence.

    Closed form ``S[c] + min_{k<=c} (t[k] - S[k])`` with ``S`` the running sum of edge costs;
    an impassable edge (``e`` infinite) starts a new segment (grouped running minimum).
    """
    bad = ~np.isfinite(e)
    s = np.zeros(len(t))
    np.cumsum(np.where(bad, 0.0, e), out=s[1:])
    val = t - s
    if bad.any():
        # lexicographic running minimum of (-segment, value): numpy orders complex numbers by
        # real part first, so a later segment always wins and carries its own exact minimum
        seg = np.zeros(len(t))
        np.cumsum(bad, out=seg[1:])
        key = np.empty(len(t), dtype=np.complex128)
        key.real = -seg
        key.imag = np.where(np.isfinite(val), val, _HUGE)
        run = np.minimum.accumulate(key).imag
        run[run >= _HUGE] = np.inf
    else:
        run = np.minimum.accumulate(val)
    return np.minimum(t, run + s)


def _relax_row(t_row, t_prev, f_row, f_prev, v: float, d: float, h: float, from_prev: bool):
    """New values of one row: from the previous row (south/north and diagonals), then E/W scans."""
    new = t_row.copy()
    if from_prev:
        np.minimum(new, t_prev + v * 0.5 * (f_row + f_prev), out=new)
        np.minimum(new[1:], t_prev[:-1] + d * 0.5 * (f_prev[:-1] + f_row[1:]), out=new[1:])
        np.minimum(new[:-1], t_prev[1:] + d * 0.5 * (f_prev[1:] + f_row[:-1]), out=new[:-1])
    if len(new) > 1:
        e = h * 0.5 * (f_row[:-1] + f_row[1:])
        new = _scan(new, e)
        new = _scan(new[::-1], e[::-1])[::-1]
    return new


class _Lines:
    """Gauss-Seidel sweeps over the lines (rows) of ``t``, relaxing each line from the previous
    one and scanning it, revisiting only lines whose neighbours changed since."""

    def __init__(self, t: np.ndarray, f: np.ndarray, prev_len, diag_len, scan_len) -> None:
        n = t.shape[0]
        self.t, self.f = t, f
        self.prev_len, self.diag_len, self.scan_len = prev_len, diag_len, scan_len
        self.last = np.zeros(n, dtype=np.int64)  # sweep number of each line's last change
        self.relaxed = {1: np.full(n, -1, np.int64), -1: np.full(n, -1, np.int64)}
        self.scanned = np.zeros(n, dtype=bool)
        self.count = 0

    def mark(self, lines: np.ndarray) -> None:
        """Lines changed from outside (by the sweeps of the other orientation)."""
        self.count += 1
        self.last[lines] = self.count
        self.scanned[lines] = False

    def sweep(self, step: int) -> bool:
        t, f, n = self.t, self.f, self.t.shape[0]
        self.count += 1
        done, changed = self.relaxed[step], False
        for r in range(n) if step == 1 else range(n - 1, -1, -1):
            p = r - step
            from_prev = 0 <= p < n and self.last[p] > done[r]
            if not from_prev and self.scanned[r]:
                continue
            m = min(r, p)
            new = _relax_row(
                t[r],
                t[p] if from_prev else None,
                f[r].astype(np.float64),
                f[p].astype(np.float64) if from_prev else None,
                self.prev_len(m) if from_prev else 0.0,
                self.diag_len(m) if from_prev else 0.0,
                self.scan_len(r),
                from_prev,
            )
            if from_prev:
                done[r] = self.count
            self.scanned[r] = True
            if (new < t[r] * (1.0 - _RTOL)).any():
                np.minimum(t[r], new, out=t[r])
                self.last[r] = self.count
                changed = True
        return changed


ROW_ROUNDS = 16  # rounds of row sweeps alone before the column sweeps join in


def _push(src: _Lines, dst: _Lines, since: int) -> int:
    """Copy the lines of ``src`` changed after its sweep ``since`` into ``dst`` (the transposed
    orientation) and mark the ``dst`` lines that got lower. Returns ``src``'s sweep count."""
    lines = np.flatnonzero(src.last > since)
    if len(lines):
        block = dst.t[:, lines]
        new = src.t[lines].T
        lower = new < block
        if lower.any():
            dst.t[:, lines] = np.minimum(block, new)
            dst.mark(np.flatnonzero(lower.any(axis=1)))
    return src.count


def _sweeps(
    t: np.ndarray, f: np.ndarray, lengths: MoveLengths, max_rounds: int
) -> tuple[int, bool]:
    """Stage 2, in place on ``t``. Returns (rounds run, converged).

    A round sweeps the rows down and up. A shortest path needs another round each time it turns
    back north-south; where that happens often (after ``ROW_ROUNDS`` rounds), each round also
    sweeps the columns right and left on transposed copies (move lengths then vary along the
    line), so that only paths turning back along both axes need more rounds.
    """
    h, v, d = lengths.h, lengths.v, lengths.d
    rows = _Lines(t, f, lambda m: v[m], lambda m: d[m], lambda r: h[r])
    cols: _Lines | None = None
    rows_pushed = cols_pushed = 0
    two_d = t.shape[0] > 1 and t.shape[1] > 1
    for rnd in range(1, max_rounds + 1):
        changed = rows.sweep(1)
        changed = rows.sweep(-1) or changed
        if cols is None and two_d and changed and rnd >= ROW_ROUNDS:
            cols = _Lines(
                np.ascontiguousarray(t.T),
                np.ascontiguousarray(f.T),
                prev_len=lambda _: h,  # between neighbouring columns: east-west moves, per row
                diag_len=lambda _: d,
                scan_len=lambda _: v,  # along a column: north-south moves, per row pair
            )
            rows_pushed = rows.count
        elif cols is not None:
            rows_pushed = _push(rows, cols, rows_pushed)
        if cols is not None:
            col_changed = cols.sweep(1)
            col_changed = cols.sweep(-1) or col_changed
            if col_changed:
                cols_pushed = _push(cols, rows, cols_pushed)
                changed = True
        if not changed:
            return rnd, True
    return max_rounds, False


ENGINES = ("auto", "mcp")


def accumulate(
    friction: np.ndarray,
    lengths: MoveLengths,
    seeds: np.ndarray,
    max_rounds: int = 200,
    engine: str = "auto",
) -> tuple[np.ndarray, dict]:
    """Least-cost accumulation from ``seeds`` (``(n, 2)`` row/col) over ``friction`` (min/m,
    ``inf`` = impassable). Returns the cost array (``inf`` where unreachable) and diagnostics.

    ``engine="auto"``: the exact relaxation straight from the seeds; only if it has not converged
    after ``max_rounds`` rounds is the MCP upper bound merged in (both are costs of real paths),
    so that every value is within ``mcp_eps`` of exact, and up to ``max_rounds`` more rounds run.
    ``engine="mcp"``: the MCP upper bound first, then the relaxation. The number of rounds is set
    by the shapes of the shortest paths (how often they reverse their north-south direction), not
    by the starting values, so both engines converge in the same number of rounds.
    """
    import time

    t0 = time.perf_counter()
    info: dict = {"engine": engine, "mcp_eps": None, "seconds_mcp": 0.0}
    rounds = 0
    if engine == "auto":
        t = np.full(friction.shape, np.inf)
        t[seeds[:, 0], seeds[:, 1]] = 0.0
        rounds, converged = _sweeps(t, friction, lengths, max_rounds)
        if converged:
            info.update(rounds=rounds, converged=True, seconds_exact=time.perf_counter() - t0)
            return t, info
        info["engine"] = "auto+mcp"
    t1 = time.perf_counter()
    t_mcp, info["mcp_eps"] = _mcp_upper_bound(friction, lengths, seeds)
    t2 = time.perf_counter()
    if engine == "auto":
        np.minimum(t, t_mcp, out=t)
        del t_mcp
    else:
        t = t_mcp
    more, converged = _sweeps(t, friction, lengths, max_rounds)
    t3 = time.perf_counter()
    info.update(
        rounds=rounds + more,
        converged=converged,
        seconds_mcp=t2 - t1,
        seconds_exact=(t1 - t0) + (t3 - t2),
    )
    return t, info
