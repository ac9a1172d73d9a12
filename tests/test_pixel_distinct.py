"""The distinct pixels of a batch's (unit, pixel) pairs, against numpy's unique."""

from __future__ import annotations

import types

import numpy as np
import pytest

from geopipe.pipeline.context import _Grid


@pytest.mark.parametrize("spread", [50, 5_000])  # the lookup table; the sort (sparse pairs)
def test_distinct_pixels_match_unique(spread: int) -> None:
    rng = np.random.default_rng(spread)
    n = 20_000
    row = rng.integers(100, 100 + spread, n)
    col = rng.integers(300, 300 + spread, n)
    weights = types.SimpleNamespace(row=row, col=col, shape=(10_000, 10_000))
    first, inverse = _Grid(("g",), weights).distinct
    key = row * 10_000 + col
    unique = np.unique(key)
    assert np.array_equal(key[first], unique)  # one pair per distinct pixel, sorted by pixel
    assert np.array_equal(key[first][inverse], key)  # every pair finds its pixel
    assert first.dtype == inverse.dtype == np.int64
