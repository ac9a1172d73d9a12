"""Spatial row order for GeoParquet files: H3 order or a Hilbert curve through bbox centres.

Rows that are close in space end up close in the file, so each row group covers a compact area and
its ``bbox`` statistics let readers skip it.

Examples
--------
>>> import numpy as np
>>> hilbert_index(np.array([0, 1]), np.array([1, 1]), level=1).tolist()
[1, 2]
"""

from __future__ import annotations

from typing import Literal

import geopandas as gpd
import numpy as np
import pyarrow as pa

from geopipe.errors import InputError, problem

__all__ = ["SortMode", "hilbert_index", "sort_order", "stable_argsort"]

SortMode = Literal["auto", "hilbert", "h3"] | None


def hilbert_index(x: np.ndarray, y: np.ndarray, level: int = 16) -> np.ndarray:
    """Position of integer points ``0 <= x, y < 2**level`` along a Hilbert curve (vectorised).

    Examples
    --------
    >>> hilbert_index(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]), level=1).tolist()
    [0, 1, 2, 3]
    """
    x = np.asarray(x, dtype=np.int64).copy()
    y = np.asarray(y, dtype=np.int64).copy()
    n = np.int64(1) << level
    d = np.zeros(x.shape, dtype=np.int64)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for int64 keys, faster when the values allow it.

    Low bits that are equal in every key are dropped (H3 cells of one resolution share their
    unused digits), the keys are counted from the smallest one, the row number is packed under
    them, and the packed values are sorted with numpy's plain (SIMD) sort: ties then fall in row
    order. On 1 M H3 cells that is 3-5x as fast as numpy's stable sort (timsort) with the same
    result; keys whose range and row count do not fit in 63 bits take numpy's stable sort.

    Examples
    --------
    >>> stable_argsort(np.array([5, 3, 5, 1])).tolist()
    [3, 1, 0, 2]
    """
    keys = np.asarray(keys, dtype=np.int64)
    n = len(keys)
    if n < 2 or keys.min() < 0:
        return np.argsort(keys, kind="stable")
    varying = int(np.bitwise_or.reduce(keys ^ keys[0]))
    if varying == 0:
        return np.arange(n, dtype=np.int64)
    low = (varying & -varying).bit_length() - 1  # constant low bits
    span = (varying >> low).bit_length()
    row_bits = (n - 1).bit_length()
    if span + row_bits > 63:
        return np.argsort(keys, kind="stable")
    packed = ((keys - keys.min()) >> low) << row_bits  # same order, fits in span bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << row_bits) - 1)


def _hilbert_keys(bounds: np.ndarray) -> np.ndarray:
    """Hilbert keys of bbox centres scaled to the data's extent; NaN bounds sort last."""
    cx = (bounds[:, 0] + bounds[:, 2]) / 2
    cy = (bounds[:, 1] + bounds[:, 3]) / 2
    ok = np.isfinite(cx) & np.isfinite(cy)
    keys = np.full(len(bounds), 1 << 32, dtype=np.int64)  # after every level-16 position
    if ok.any():
        x0, x1 = cx[ok].min(), cx[ok].max()
        y0, y1 = cy[ok].min(), cy[ok].max()
        side = (1 << 16) - 1
        xi = np.round((cx[ok] - x0) / ((x1 - x0) or 1.0) * side)
        yi = np.round((cy[ok] - y0) / ((y1 - y0) or 1.0) * side)
        keys[ok] = hilbert_index(xi, yi, level=16)
    return keys


_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def _h3_keys(cells: object) -> np.ndarray | None:
    """H3 cell ids (15 lower-case hex characters) as int64 sort keys, or None if any is not one.

    Reads the Arrow string buffers directly: one vectorised pass validates every character and
    builds the integer, in the same order as the strings (same length, ``0-9`` before ``a-f``).
    """
    arr = pa.array(cells, from_pandas=True)  # pandas' Arrow-backed strings: no copy
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_string(arr.type):
        width = np.int32
    elif pa.types.is_large_string(arr.type):
        width = np.int64
    else:
        return None
    if len(arr) == 0 or arr.null_count:
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    if not (np.diff(offsets) == 15).all():
        return None
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    nibbles = np.zeros((len(arr), 16), np.uint8)  # a leading 0 makes 16 nibbles = 8 bytes
    nibbles[:, 1:] = _HEX_VALUE[data].reshape(-1, 15)
    if (nibbles == 255).any():
        return None
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]  # big-endian bytes of the integer
    return packed.view(">u8").ravel().astype(np.int64)


def sort_order(
    gdf: gpd.GeoDataFrame, bounds: np.ndarray, sort: SortMode, where: str
) -> np.ndarray | None:
    if sort is None:
        return None
    if sort not in ("auto", "hilbert", "h3"):
        raise InputError(
            problem(
                "sort",
                f"was {sort!r} but is expected to be one of 'auto', 'hilbert', 'h3', None",
                "pass one of those",
                where=where,
            )
        )
    keys = _h3_keys(gdf["cell_id"]) if "cell_id" in gdf.columns and sort != "hilbert" else None
    is_h3 = keys is not None
    if sort == "h3" and not is_h3:
        raise InputError(
            problem(
                "sort='h3'",
                "needs a 'cell_id' column of H3 cells (15 lower-case hex characters)",
                "use sort='hilbert' or add the H3 cell ids",
                where=where,
            )
        )
    if keys is None:  # not H3 (or sort="hilbert"): along a Hilbert curve
        keys = _hilbert_keys(bounds)
    # stable: ties keep the input order; H3 integers sort like the hex strings (parents together)
    return stable_argsort(keys)
