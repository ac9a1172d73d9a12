"""The ring pieces of the exact coverage (``zonal._coverage._pieces``): ordering them by
segment and position by merging each segment's column and row crossings gives the pieces a
plain ``np.lexsort`` of every piece end gives, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from geopipe.zonal import _coverage as cv


def _pieces_by_lexsort(u0, v0, u1, v1, height, width):
    """The reference: every piece end sorted by (segment, t) with one lexsort."""
    ku, nu = cv._crossings(u0, u1, 0, width)
    kv, nv = cv._crossings(v0, v1, 0, height)
    du, dv = u1 - u0, v1 - v0
    seg_u, k_u = cv._expand(ku, nu)
    seg_v, k_v = cv._expand(kv, nv)
    nseg = len(u0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_u = (k_u - u0[seg_u]) / du[seg_u]
        t_v = (k_v - v0[seg_v]) / dv[seg_v]
    seg = np.concatenate([np.arange(nseg), np.arange(nseg), seg_u, seg_v])
    t = np.concatenate([np.zeros(nseg), np.ones(nseg), t_u, t_v])
    order = np.lexsort((t, seg))
    seg, t = seg[order], t[order]
    same = seg[1:] == seg[:-1]
    s, ta, tb = seg[:-1][same], t[:-1][same], t[1:][same]
    tm = 0.5 * (ta + tb)
    um, vm, pdv = u0[s] + tm * du[s], v0[s] + tm * dv[s], (tb - ta) * dv[s]
    row, col = np.floor(vm).astype(np.int64), np.floor(um).astype(np.int64)
    keep = (pdv != 0) & (row >= 0) & (row < height) & (col < width)
    return s[keep], row[keep], col[keep], pdv[keep], um[keep]


@pytest.mark.parametrize(
    "kind",
    ["random", "integer vertices", "half-integer diagonals", "long segments"],
)
def test_merged_pieces_equal_the_lexsorted_pieces(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    width = 400 if kind == "long segments" else 50
    for _ in range(40):
        n = int(rng.integers(3, 300))
        if kind == "random":
            pts = rng.random((n, 2)) * 50 - 5
        elif kind == "integer vertices":  # on grid lines: axis-aligned edges, corner crossings
            pts = rng.integers(-3, 40, (n, 2)).astype(float)
        elif kind == "half-integer diagonals":  # through pixel corners: equal t on both kinds
            pts = rng.integers(0, 60, (n, 2)) / 2.0
        else:
            pts = rng.random((n, 2)) * 400
        u0, v0, u1, v1 = pts[:-1, 0], pts[:-1, 1], pts[1:, 0], pts[1:, 1]
        want = _pieces_by_lexsort(u0, v0, u1, v1, 45, width)
        got = cv._pieces(u0, v0, u1, v1, 45, width)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
