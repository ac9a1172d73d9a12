"""Speed helpers of the GeoParquet writer: WKB built as one Arrow array, stable sort, reordering.

Kept apart from :mod:`geopipe.io.geoparquet` so that module reads as the file format. Measured on
1 M H3 cells (``benchmarks/bench_io.py``, 2 shared cores):

* ``shapely.to_wkb`` makes one Python ``bytes`` object per geometry and holds the GIL while doing
  so (two threads took as long as one). Points, line strings and polygons without holes, the
  bulk of what geopipe writes (H3 cells, square cells, facilities), are therefore encoded here
  from ``shapely.get_coordinates`` straight into Arrow buffers: the byte layout of ISO WKB for
  these three types is a fixed header, an optional count and the coordinates. Every other
  geometry (multi-part, holes, Z/M, empty, collections) still goes through ``shapely.to_wkb``.
  The result is byte-identical to ``shapely.to_wkb(flavor="iso", byte_order=1)`` (tested); no
  library offers this: geoarrow-c encodes WKB from GeoArrow arrays, but building those from
  shapely (``shapely.to_ragged_array``) took 2.5x as long as ``to_wkb`` itself.
* geometries are read in the order they sit in memory (input order): in sorted order the same
  work took 3x as long; the rows are reordered afterwards with Arrow ``take`` (no GIL, threads).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

__all__ = [
    "PARALLEL_MIN_ROWS",
    "TYPE_NAMES",
    "Wkb",
    "encode_wkb",
    "in_chunks",
    "take_all",
    "threads",
]

# GeoParquet names of shapely's type ids 0-7; a LinearRing (2) is written as a LineString in WKB
TYPE_NAMES = (
    "Point",
    "LineString",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
)

PARALLEL_MIN_ROWS = 100_000
_CHUNK_BYTES = 2**30  # bytes per Arrow binary array (int32 offsets: below 2**31)
_OTHER = 7  # group of the geometries left to shapely.to_wkb


def threads() -> int:
    """Worker threads for Arrow work (``take``, which releases the GIL): one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def in_chunks(func: Any, geoms: np.ndarray) -> np.ndarray:
    """``func(geoms)`` on contiguous chunks in threads (for shapely functions that release the
    GIL), concatenated; equal to ``func(geoms)`` element for element."""
    n = threads()
    if n == 1 or len(geoms) < PARALLEL_MIN_ROWS:
        return func(geoms)
    from concurrent.futures import ThreadPoolExecutor

    parts = np.array_split(geoms, n)
    with ThreadPoolExecutor(n) as pool:
        return np.concatenate(list(pool.map(func, parts)))


def take_all(jobs: list[tuple[Any, np.ndarray | None]], pool: Any) -> list[Any]:
    """``array.take(indices)`` for each ``(array, indices)`` (None: the array as it is), on
    ``pool``; the indices arrays are converted to Arrow once each."""
    arrow: dict[int, pa.Array] = {}
    for _, idx in jobs:
        if idx is not None and id(idx) not in arrow:
            arrow[id(idx)] = pa.array(idx)

    def one(job: tuple[Any, np.ndarray | None]) -> Any:
        array, idx = job
        return array if idx is None else array.take(arrow[id(idx)])

    if len(jobs) and len(jobs[0][0]) < PARALLEL_MIN_ROWS:
        return [one(j) for j in jobs]
    return list(pool.map(one, jobs))


# -------------------------------------------------------------------------------------- WKB
# header of the three types encoded here: byte order 1 (little endian), ISO type code, and for
# polygons the ring count (always 1: no holes); line strings and rings then carry a point count
_HEADERS = {
    0: b"\x01\x01\x00\x00\x00",
    1: b"\x01\x02\x00\x00\x00",
    3: b"\x01\x03\x00\x00\x00\x01\x00\x00\x00",
}


@dataclass
class Wkb:
    """ISO WKB of a geometry array, in groups: ``array`` holds the groups one after the other and
    ``position[row]`` is where row ``row`` is in it (None: in input order)."""

    array: pa.Array | pa.ChunkedArray
    position: np.ndarray | None
    geometry_types: list[str]

    def indices(self, order: np.ndarray | None) -> np.ndarray | None:
        """Indices into ``array`` that give the rows in ``order`` (None: in input order)."""
        if self.position is None:
            return order
        return self.position if order is None else self.position[order]


def _binary(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A binary array over numpy buffers (no copy of ``data``)."""
    return pa.Array.from_buffers(
        pa.binary(),
        len(offsets) - 1,
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
    )


def _shapely_wkb(geoms: np.ndarray) -> list[pa.Array]:
    arr = pa.array(shapely.to_wkb(geoms, flavor="iso", byte_order=1), pa.binary())
    return arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]


def _simple_wkb(geoms: np.ndarray, type_id: int, counts: np.ndarray) -> list[pa.Array] | None:
    """WKB of 2D non-empty points, line strings or hole-free polygons (all of ``type_id``) from
    their coordinates, in arrays of at most ``_CHUNK_BYTES``; None when some coordinate is not
    finite (left to shapely, which writes NaN its own way)."""
    coords = shapely.get_coordinates(geoms)  # (sum(counts), 2) float64, rows one after the other
    if not np.isfinite(coords).all():
        return None
    head = _HEADERS[type_id]
    width = len(head) + (4 if type_id else 0)
    n = len(geoms)
    heads = np.empty((n, width), np.uint8)
    heads[:, : len(head)] = np.frombuffer(head, np.uint8)
    if type_id:
        heads[:, len(head) :] = counts.astype("<u4").view(np.uint8).reshape(n, 4)
    body = np.zeros(n + 1, np.int64)  # byte offsets of each row's coordinates
    np.cumsum(counts * 16, out=body[1:])
    ends = body[1:] + width * np.arange(1, n + 1)  # WKB bytes up to the end of each row
    cuts = [0, *np.searchsorted(ends, np.arange(1, ends[-1] // _CHUNK_BYTES + 1) * _CHUNK_BYTES), n]
    cuts = sorted(set(int(c) for c in cuts))
    out = []
    for a, b in itertools.pairwise(cuts):
        heads_arr = _binary(np.arange(0, width * (b - a + 1), width), heads[a:b])
        body_arr = _binary(body[a : b + 1] - body[a], coords[body[a] // 16 : body[b] // 16])
        out.append(pc.binary_join_element_wise(heads_arr, body_arr, b""))
    return out


def encode_wkb(geoms: np.ndarray) -> Wkb:
    """ISO little-endian WKB of ``geoms`` (equal to ``shapely.to_wkb(geoms, flavor="iso",
    byte_order=1)``) and the GeoParquet ``geometry_types`` present (None rows excluded).

    Examples
    --------
    >>> import shapely
    >>> wkb = encode_wkb(np.array([shapely.Point(1, 2), None], dtype=object))
    >>> wkb.geometry_types, wkb.array.to_pylist()[1] is None
    (['Point'], True)
    """
    if not len(geoms):
        return Wkb(pa.array([], pa.binary()), None, [])
    type_id = shapely.get_type_id(geoms)
    counts = shapely.get_num_coordinates(geoms)
    flat = shapely.get_coordinate_dimension(geoms) == 2  # no Z, no M (None: -1)
    present = type_id >= 0
    has_z = np.zeros(len(geoms), bool)
    if not flat[present].all():
        deep = present & ~flat
        has_z[deep] = shapely.has_z(geoms[deep])
    codes = np.flatnonzero(np.bincount(type_id[present] * 2 + has_z[present], minlength=16))
    types = sorted({TYPE_NAMES[c // 2] + (" Z" if c % 2 else "") for c in codes})

    simple = flat & (counts > 0) & ((type_id == 0) | (type_id == 1) | (type_id == 3))
    polygons = simple & (type_id == 3)
    if polygons.any():
        simple[polygons] = shapely.get_num_interior_rings(geoms[polygons]) == 0
    group = np.where(simple, type_id, _OTHER)
    kinds = np.unique(group)
    rows = [None] if len(kinds) == 1 else [np.flatnonzero(group == k) for k in kinds]
    parts: list[pa.Array] = []
    for kind, idx in zip(kinds, rows, strict=True):
        sub = geoms if idx is None else geoms[idx]
        simple_parts = None
        if kind != _OTHER:
            simple_parts = _simple_wkb(sub, int(kind), counts if idx is None else counts[idx])
        parts += _shapely_wkb(sub) if simple_parts is None else simple_parts
    position = None
    if rows[0] is not None:
        position = np.empty(len(geoms), np.int64)
        position[np.concatenate(rows)] = np.arange(len(geoms), dtype=np.int64)
    if len(parts) == 1:
        return Wkb(parts[0], position, types)
    if sum(p.nbytes for p in parts) < _CHUNK_BYTES:
        return Wkb(pa.concat_arrays(parts), position, types)
    return Wkb(pa.chunked_array(parts, pa.binary()), position, types)
