"""The ring pieces of the exact coverage (``zonal._coverage``): ordering the piece ends by
segment and position by merging each segment's column and row crossings gives the sorted
(segment, t) that a plain ``np.lexsort`` of every piece end gives. The pieces are cut from those
two sorted arrays alone, so equal arrays mean the same pieces, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from geopipe.zonal import _coverage as cv


@pytest.mark.parametrize(
    "kind",
    ["random", "integer vertices", "half-integer diagonals", "long segments"],
)
def test_merged_order_equals_the_lexsort(kind: str) -> None:
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
        seg_u, t_u, seg_v, t_v = cv._crossing_ts(u0, v0, u1, v1, 45, width)
        nseg = len(u0)
        seg = np.concatenate([np.arange(nseg), np.arange(nseg), seg_u, seg_v])
        t = np.concatenate([np.zeros(nseg), np.ones(nseg), t_u, t_v])
        want = np.lexsort((t, seg))
        got = cv._by_segment_and_t(nseg, seg_u, t_u, u1 - u0, seg_v, t_v, v1 - v0)
        assert np.array_equal(np.sort(got), np.arange(len(t)))  # a permutation
        np.testing.assert_array_equal(seg[got], seg[want])
        np.testing.assert_array_equal(t[got], t[want])
