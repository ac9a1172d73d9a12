"""Speed helper of the GeoParquet writer: ISO WKB built straight into Arrow buffers.

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
  work took 3x as long; the writer puts the rows in order afterwards with Arrow ``take``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

__all__ = [
    "TYPE_NAMES",
    "Wkb",
    "encode_wkb",
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

_CHUNK_BYTES = 2**30  # bytes per Arrow binary array (int32 offsets: below 2**31)
_OTHER = 7  # group of the geometries left to shapely.to_wkb


# -------------------------------------------------------------------------------------- WKB
# header of the three types encoded here: byte order 1 (little endian), ISO type code, and for
# polygons the ring count (always 1: no holes); line strings and rings then carry a point count
_HEADERS = {
    0: b"\x01\x01\x00\x00\x00",
    1: b"\x01\x02\x00\x00\x00",
    3: b"\x01\x03\x00\x00\x00\x01\x00\x00\x00",
}


@dataclass
class _Part:
    """Rows of one geometry type: ``heads`` (the header bytes built here; empty where shapely
    wrote the whole WKB) and ``body`` (the coordinates, or shapely's WKB), joined row by row."""

    heads: pa.Array
    body: pa.Array | pa.ChunkedArray

    def rows(self, rows: np.ndarray | None) -> pa.Array | pa.ChunkedArray:
        heads, body = self.heads, self.body
        if rows is not None:
            take = pa.array(rows)
            heads, body = heads.take(take), body.take(take)
        return pc.binary_join_element_wise(heads, body, b"")


@dataclass
class Wkb:
    """ISO WKB of a geometry array, built on request for any rows (``rows``), from one part per
    geometry type: input row ``i`` is row ``rank[i]`` of ``parts[part[i]]`` (``part`` None: the
    only part, same row). Kept apart so that no array of the whole column is built twice."""

    parts: list[_Part]
    part: np.ndarray | None
    rank: np.ndarray | None
    geometry_types: list[str]

    def rows(self, rows: np.ndarray | None = None) -> pa.Array | pa.ChunkedArray:
        """The WKB of input rows ``rows`` (None: every row, in input order)."""
        if self.part is None or self.rank is None:
            return self.parts[0].rows(rows)
        rows = np.arange(len(self.part)) if rows is None else np.asarray(rows)
        part = self.part[rows]
        pieces, where = [], []
        for k, p in enumerate(self.parts):
            sel = np.flatnonzero(part == k)
            if len(sel):
                pieces.append(p.rows(self.rank[rows[sel]]))
                where.append(sel)
        joined = pa.concat_arrays([c for piece in pieces for c in _chunks(piece)])
        back = np.empty(len(rows), np.int64)
        back[np.concatenate(where)] = np.arange(len(rows), dtype=np.int64)
        return joined.take(pa.array(back))


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return array.chunks if isinstance(array, pa.ChunkedArray) else [array]


def _binary(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A binary array over numpy buffers (no copy); ``offsets`` int32."""
    return pa.Array.from_buffers(
        pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _shapely_wkb(geoms: np.ndarray) -> _Part:
    body = pa.array(shapely.to_wkb(geoms, flavor="iso", byte_order=1), pa.binary())
    return _Part(_binary(np.zeros(len(geoms) + 1, np.int32), np.zeros(0, np.uint8)), body)


def _simple_wkb(geoms: np.ndarray, type_id: int, counts: np.ndarray) -> _Part | None:
    """Headers and coordinates of 2D non-empty points, line strings or hole-free polygons (all
    of ``type_id``); the coordinates in arrays of at most ``_CHUNK_BYTES``. None when some
    coordinate is not finite (left to shapely, which writes NaN its own way)."""
    coords = shapely.get_coordinates(geoms)  # (sum(counts), 2) float64, rows one after the other
    if not np.isfinite(coords).all():
        return None
    head = _HEADERS[type_id]
    width = len(head) + (4 if type_id else 0)
    n = len(geoms)
    heads = np.empty((n, width), np.uint8)
    heads[:, : len(head)] = np.frombuffer(head, np.uint8)
    if type_id:
        heads[:, len(head) :] = counts.astype("<u4", copy=False).view(np.uint8).reshape(n, 4)
    head_array = _binary(np.arange(0, width * (n + 1), width, dtype=np.int32), heads)
    ends = np.cumsum(counts, dtype=np.int64) * 16  # coordinate bytes up to the end of each row
    if ends[-1] < _CHUNK_BYTES:
        offsets = np.empty(n + 1, np.int32)
        offsets[0] = 0
        offsets[1:] = ends
        return _Part(head_array, _binary(offsets, coords))
    cuts = np.searchsorted(ends, np.arange(1, ends[-1] // _CHUNK_BYTES + 1) * _CHUNK_BYTES)
    cuts = sorted({0, n, *(int(c) for c in cuts)})
    starts = np.concatenate([[0], ends])
    bodies = []
    for a, b in itertools.pairwise(cuts):
        offsets = (starts[a : b + 1] - starts[a]).astype(np.int32)
        bodies.append(_binary(offsets, coords[starts[a] // 16 : starts[b] // 16]))
    return _Part(head_array, pa.chunked_array(bodies, pa.binary()))


def encode_wkb(geoms: np.ndarray) -> Wkb:
    """ISO little-endian WKB of ``geoms`` (``rows()`` equals ``shapely.to_wkb(geoms,
    flavor="iso", byte_order=1)``) and the GeoParquet ``geometry_types`` present (None rows
    excluded).

    Examples
    --------
    >>> import shapely
    >>> wkb = encode_wkb(np.array([shapely.Point(1, 2), None], dtype=object))
    >>> wkb.geometry_types, wkb.rows().to_pylist()[1] is None
    (['Point'], True)
    """
    n = len(geoms)
    if not n:
        return Wkb([_shapely_wkb(geoms)], None, None, [])
    type_id = shapely.get_type_id(geoms)
    counts = shapely.get_num_coordinates(geoms)
    flat = shapely.get_coordinate_dimension(geoms) == 2  # no Z, no M (None: -1)
    present = type_id >= 0
    has_z = np.zeros(n, bool)
    if not flat[present].all():
        deep = present & ~flat
        has_z[deep] = shapely.has_z(geoms[deep])
    codes = np.flatnonzero(np.bincount(type_id[present] * 2 + has_z[present], minlength=16))
    types = sorted({TYPE_NAMES[c // 2] + (" Z" if c % 2 else "") for c in codes})

    simple = flat & (counts > 0) & ((type_id == 0) | (type_id == 1) | (type_id == 3))
    polygons = simple & (type_id == 3)
    if polygons.all():
        simple = shapely.get_num_interior_rings(geoms) == 0
    elif polygons.any():
        simple[polygons] = shapely.get_num_interior_rings(geoms[polygons]) == 0
    group = np.where(simple, type_id, _OTHER)
    kinds = np.flatnonzero(np.bincount(group, minlength=_OTHER + 1))
    rows = [None] if len(kinds) == 1 else [np.flatnonzero(group == k) for k in kinds]
    parts = []
    for kind, idx in zip(kinds, rows, strict=True):
        sub = geoms if idx is None else geoms[idx]
        built = None
        if kind != _OTHER:
            built = _simple_wkb(sub, int(kind), counts if idx is None else counts[idx])
        parts.append(_shapely_wkb(sub) if built is None else built)
    if rows[0] is None:
        return Wkb(parts, None, None, types)
    part = np.empty(n, np.int8)
    rank = np.empty(n, np.int64)
    for k, idx in enumerate(rows):
        part[idx] = k
        rank[idx] = np.arange(len(idx), dtype=np.int64)
    return Wkb(parts, part, rank, types)
