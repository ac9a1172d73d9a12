"""Speed helpers of the GeoParquet writer: geometry work on threads, Arrow reordering, WKB types.

Kept apart from :mod:`geopipe.io.geoparquet` so that module reads as the file format. Measured on
1 M H3 cells (``benchmarks/bench_io.py``): serialising geometries in the order they sit in memory
and reordering the Arrow columns afterwards was 3x faster than serialising in sorted order.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

__all__ = [
    "PARALLEL_MIN_ROWS",
    "WkbJob",
    "in_chunks",
    "take_columns",
    "threads",
    "wkb_geometry_types",
]

# ISO WKB type codes 1-7 (+1000 Z, +2000 M, +3000 ZM)
_BASE_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon")
_WKB_NAMES = dict(enumerate((*_BASE_TYPES, "GeometryCollection"), start=1))


def wkb_geometry_types(wkb: pa.Array) -> list[str]:
    """``_geometry_types`` read off little-endian ISO WKB: the type code is bytes 1-4 of each row."""
    valid = wkb.is_valid().to_numpy(zero_copy_only=False)
    if wkb.offset:
        wkb = pa.concat_arrays([wkb])  # a fresh array whose buffers start at row 0
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int32)[: len(wkb) + 1]
    starts = offsets[:-1][valid & (np.diff(offsets) >= 5)]
    if not len(starts):
        return []
    data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)
    code = (
        data[starts + 1].astype(np.int64)
        | (data[starts + 2].astype(np.int64) << 8)
        | (data[starts + 3].astype(np.int64) << 16)
        | (data[starts + 4].astype(np.int64) << 24)
    )
    found = np.unique(code)
    return sorted(
        {_WKB_NAMES[int(c) % 1000] + (" Z" if c // 1000 in (1, 3) else "") for c in found}
    )


PARALLEL_MIN_ROWS = 100_000


def threads() -> int:
    """Worker threads for geometry work: one core is left to the main thread, which orders the
    rows meanwhile (on 2 cores, 2 workers + the main thread were 1.5x slower than 1 worker)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def in_chunks(func: Any, geoms: np.ndarray) -> np.ndarray:
    """``func(geoms)`` on contiguous chunks in threads (shapely releases the GIL), concatenated.

    Contiguous chunks keep each thread on its own stretch of memory; the result equals
    ``func(geoms)`` element for element.
    """
    n = threads()
    if n == 1 or len(geoms) < PARALLEL_MIN_ROWS:
        return func(geoms)
    from concurrent.futures import ThreadPoolExecutor

    parts = np.array_split(geoms, n)
    with ThreadPoolExecutor(n) as pool:
        return np.concatenate(list(pool.map(func, parts)))


def take_columns(table: pa.Table, order: np.ndarray) -> pa.Table:
    """``table`` with its rows in ``order``: column by column, in threads (Arrow releases the GIL)."""
    idx = pa.array(order)
    columns = table.columns
    if table.num_rows < PARALLEL_MIN_ROWS or threads() == 1:
        taken = [c.take(idx) for c in columns]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads()) as pool:
            taken = list(pool.map(lambda c: c.take(idx), columns))
    return pa.Table.from_arrays(taken, schema=table.schema)


class WkbJob:
    """ISO WKB of a geometry array as an Arrow binary array, in chunks shared by worker threads
    and, once it has done its own work, the calling thread.

    Serialising releases the GIL; building an Arrow chunk from the bytes objects does not, so
    while one thread builds its chunk the others serialise theirs. ``result()`` takes over the
    chunks no worker has started (from the end) and returns them joined, in input order.
    """

    def __init__(self, geoms: np.ndarray, pool: Any) -> None:
        big = len(geoms) >= PARALLEL_MIN_ROWS
        self.parts = np.array_split(geoms, 8 * threads()) if big else [geoms]
        self.futures = [pool.submit(self.one, part) for part in self.parts]

    @staticmethod
    def one(part: np.ndarray) -> pa.Array:
        return pa.array(shapely.to_wkb(part, flavor="iso", byte_order=1), pa.binary())

    def result(self) -> pa.Array:
        done: dict[int, pa.Array] = {}
        for i in reversed(range(len(self.parts))):
            if self.futures[i].cancel():  # not started yet: do it here
                done[i] = self.one(self.parts[i])
        chunks = [done[i] if i in done else f.result() for i, f in enumerate(self.futures)]
        return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
