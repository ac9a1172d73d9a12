"""GeoParquet 1.1 writer, reader and checker; deterministic plain-parquet writer.

Files are written through :func:`geopipe.io.atomic.atomic_path` (temporary name, fsync, rename) and
are byte-identical for identical input: no timestamps, metadata built in a fixed key order.

What :func:`write_geoparquet` puts in a file:

* ``geo`` metadata (GeoParquet 1.1.0): ``version``, ``primary_column``, and per geometry column
  ``encoding: "WKB"`` (ISO WKB), ``geometry_types``, ``crs`` (PROJJSON), ``bbox`` and, for the
  primary column, ``covering.bbox`` pointing at a ``bbox`` struct column (xmin, ymin, xmax, ymax,
  float64, equal to each geometry's bounds; null for null or empty geometries);
* rows sorted spatially: by ``cell_id`` when it holds H3 cells, otherwise along a Hilbert curve
  through the bounding-box centres, so that row groups cover compact areas and their min/max
  statistics on the ``bbox`` columns let a reader skip most of the file for a small window;
* snappy compression (geopandas' and most BI readers' default; ``compression="zstd"`` for
  smaller files), the WKB column always snappy unless ``geometry_compression`` says otherwise.

Examples
--------
>>> import tempfile, pathlib, geopandas as gpd, shapely
>>> gdf = gpd.GeoDataFrame({"ucode": ["RWA_0001_V1"]}, geometry=[shapely.box(29, -2, 30, -1)],
...                        crs="EPSG:4326")
>>> path = write_geoparquet(gdf, pathlib.Path(tempfile.mkdtemp()) / "adm1.parquet")
>>> check_geoparquet(path)
[]
>>> read_geoparquet(path).ucode.tolist()
['RWA_0001_V1']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyproj
import shapely

from geopipe.errors import FormatError, GeometryError, InputError, MissingFileError, problem
from geopipe.io import _geoparquet_speed as _speed
from geopipe.io._spatial_sort import SortMode, sort_order
from geopipe.io.atomic import atomic_path, start_writeback

__all__ = [
    "GEOPARQUET_VERSION",
    "check_geoparquet",
    "concat_parquet",
    "read_geoparquet",
    "write_geoparquet",
    "write_parquet",
]

GEOPARQUET_VERSION = "1.1.0"
COVERING = "bbox"
_BBOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


# --------------------------------------------------------------------------------------- helpers
def _auto_row_group_size(n: int) -> int:
    """About 16 row groups for big tables, never below 1,000 or above 65,536 rows per group."""
    return int(min(65_536, max(1_000, math.ceil(n / 16))))


def _geometry_types(geoms: np.ndarray) -> list[str]:
    present = geoms[~shapely.is_missing(geoms)]
    codes = np.unique(shapely.get_type_id(present) * 2 + shapely.has_z(present))
    return sorted({_speed.TYPE_NAMES[int(c) // 2] + (" Z" if c % 2 else "") for c in codes})


def _column_meta(
    bounds: np.ndarray, usable: np.ndarray, crs: Any, types: list[str], *, covering: bool
) -> dict[str, Any]:
    """The ``geo`` metadata entry of one geometry column (``bbox`` over the ``usable`` rows)."""
    meta: dict[str, Any] = {"encoding": "WKB", "geometry_types": types, "crs": crs.to_json_dict()}
    if usable.any():
        b = bounds if usable.all() else bounds[usable]
        lo, hi = b.min(axis=0), b.max(axis=0)
        meta["bbox"] = [float(lo[0]), float(lo[1]), float(hi[2]), float(hi[3])]
    if covering:
        meta["covering"] = {"bbox": {f: [COVERING, f] for f in _BBOX_FIELDS}}
    return meta


def _bounds(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row bounds (NaN for null/empty) and the mask of rows with a usable box."""
    bounds = shapely.bounds(geoms)
    usable = np.isfinite(bounds).all(axis=1)
    return bounds, usable


def _covering(bounds: np.ndarray, usable: np.ndarray) -> tuple[pa.Field, pa.StructArray]:
    """The ``bbox`` covering column: one float64 field per bound, null where ``~usable``."""
    array = pa.StructArray.from_arrays(
        [pa.array(np.where(usable, bounds[:, i], 0.0), pa.float64()) for i in range(4)],
        names=list(_BBOX_FIELDS),
        mask=pa.array(~usable),
    )
    return pa.field(COVERING, array.type), array


def _default_index(df: pd.DataFrame) -> bool:
    idx = df.index
    return isinstance(idx, pd.RangeIndex) and idx.name is None and idx.start == 0 and idx.step == 1


def _frame_to_table(df: pd.DataFrame, where: str) -> pa.Table:
    if not _default_index(df):
        df = df.reset_index()  # a meaningful index becomes ordinary columns
    dup = df.columns[df.columns.duplicated()].tolist()
    if dup:
        raise InputError(
            problem(f"columns {dup}", "appear more than once", "rename them", where=where)
        )
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise InputError(
            problem(f"column names {bad!r}", "are not strings", "rename them", where=where)
        )
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(
            problem(
                "the table",
                f"has a column parquet cannot store ({exc})",
                "convert mixed-type object columns to one type",
                where=where,
            )
        ) from exc


def _leaves(schema: pa.Schema) -> dict[str, list[str]]:
    """Parquet's leaf paths per field (a struct's fields are ``bbox.xmin``, ...)."""
    return {
        f.name: [f"{f.name}.{s.name}" for s in f.type] if pa.types.is_struct(f.type) else [f.name]
        for f in schema
    }


def _write_table(
    schema: pa.Schema,
    num_rows: int,
    rows: Callable[[str, int, int], pa.Array | pa.ChunkedArray],
    path: Path,
    *,
    row_group_size: int | None,
    compression: str,
    compression_level: int | None,
    no_stats: Sequence[str] = (),
    column_compression: dict[str, str] | None = None,
) -> Path:
    """Write a table as parquet, atomically: ``rows(name, start, stop)`` gives column ``name``'s
    values for rows ``start:stop`` of the file (a slice, or the rows taken in the file's order).

    Row groups are built one at a time, on a worker thread while the previous one is written: the
    same file as building whole columns first, without allocating every column a second time
    (fresh memory costs page faults: on the 1 M-cell benchmark the kernel time of reordering
    whole columns was a fifth of the write).
    """
    # parquet names struct fields by their leaf paths (bbox.xmin, ...): per-column options must
    # name those, or the fields get the writer's defaults (no statistics, no compression)
    leaves = _leaves(schema)
    stats: bool | list[str] = True
    if no_stats:
        stats = [leaf for name, paths in leaves.items() if name not in no_stats for leaf in paths]
    n = num_rows
    rg = row_group_size or _auto_row_group_size(n)

    def group(start: int, stop: int) -> pa.Table:
        return pa.Table.from_arrays([rows(f.name, start, stop) for f in schema], schema=schema)

    # dictionary encoding only where it pays: text with repeated values (ucode, unit, ...). Not
    # on WKB and floats, nor on unique text such as cell_id, where it is built and then dropped
    # (judged on the first 10,000 rows of the file: deterministic and cheap)
    head = group(0, min(n, 10_000))

    def repeats(name: str) -> bool:
        column = head.column(name)
        return pc.count_distinct(column).as_py() <= max(1, len(column) // 2)

    dictionary = [
        f.name
        for f in schema
        if pa.types.is_dictionary(f.type)
        or ((pa.types.is_string(f.type) or pa.types.is_large_string(f.type)) and repeats(f.name))
    ]
    codec: str | dict[str, str] = compression
    level: int | dict[str, int] | None = compression_level
    if column_compression:
        codec = {
            leaf: column_compression.get(name, compression)
            for name, paths in leaves.items()
            for leaf in paths
        }
        if compression_level is not None:
            level = {n: compression_level for n, c in codec.items() if c == compression}
    starts = range(0, max(n, 1), rg)  # an empty table still gets its one empty row group
    from concurrent.futures import ThreadPoolExecutor

    with (
        atomic_path(path) as tmp,
        ThreadPoolExecutor(1) as pool,
        pa.OSFile(str(tmp), "wb") as sink,
        pq.ParquetWriter(
            sink,
            schema,
            compression=codec,
            compression_level=level,
            write_statistics=stats,
            use_dictionary=dictionary,
        ) as writer,
    ):
        ahead = pool.submit(group, 0, min(n, rg))
        for start in starts:
            current = ahead.result()
            if start + rg < n:
                ahead = pool.submit(group, start + rg, min(n, start + 2 * rg))
            writer.write_table(current, row_group_size=rg)
            start_writeback(sink.fileno())  # the final fsync then has little left to wait for
    return path


# ----------------------------------------------------------------------------------------- write
def write_geoparquet(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    sort: SortMode = "auto",
    row_group_size: int | None = None,
    compression: str = "snappy",
    compression_level: int | None = None,
    geometry_compression: str | None = "snappy",
) -> Path:
    """Write a GeoDataFrame as a deterministic GeoParquet 1.1 file, atomically.

    Parameters
    ----------
    gdf
        Data to write. Must have a CRS. Every geometry column is stored as ISO WKB; the active one
        is the ``primary_column`` and gets the ``bbox`` covering column. A non-default index is
        written as ordinary columns.
    path
        Output file; its folder must exist. Replaced atomically if present.
    sort
        Row order: ``"auto"`` (default) sorts by ``cell_id`` when it holds H3 cells, otherwise
        along a Hilbert curve; ``"h3"`` / ``"hilbert"`` force one; ``None`` keeps the input order.
        Ties keep the input order.
    row_group_size
        Rows per row group; default about 1/16 of the rows, between 1,000 and 65,536.
    compression, compression_level
        Parquet codec (default snappy: as fast as geopandas' writer on 1 M H3 cells, and the codec
        every BI reader takes; zstd files are ~20 % smaller and ~10 % slower to write) and its
        level (codec default) of the attribute columns.
    geometry_compression
        Codec of the WKB geometry columns (default snappy; None: the same as ``compression``).
        WKB coordinates are close to random bytes: on 1 M H3 cells zstd made the geometry
        column 12 % smaller than snappy but took three times as long.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        ``gdf`` is not a GeoDataFrame, a column is named ``bbox``, or ``sort`` is invalid.
    GeometryError
        The geometries have no CRS.
    OutputError
        The folder does not exist.

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame({"v": [1, 2]}, geometry=[shapely.Point(0, 0), shapely.Point(1, 1)],
    ...                        crs="EPSG:4326")
    >>> p = write_geoparquet(gdf, pathlib.Path(tempfile.mkdtemp()) / "pts.parquet")
    >>> check_geoparquet(p)
    []
    """
    where = "write_geoparquet"
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(
            problem(
                "gdf",
                f"is a {type(gdf).__name__}, not a GeoDataFrame",
                "use write_parquet for tables without geometry",
                where=where,
            )
        )
    try:
        primary = gdf.geometry.name
    except AttributeError as exc:
        raise GeometryError(
            problem(
                "gdf", "has no active geometry column", "call gdf.set_geometry(...)", where=where
            )
        ) from exc
    if COVERING in gdf.columns:
        raise InputError(
            problem(
                f"column '{COVERING}'",
                "is reserved for the GeoParquet covering (bounding boxes)",
                "rename or drop it",
                where=where,
            )
        )
    geom_cols = [c for c in gdf.columns if isinstance(gdf[c].dtype, gpd.array.GeometryDtype)]
    for col in geom_cols:
        if gdf[col].crs is None:
            raise GeometryError(
                problem(
                    f"geometry column '{col}'",
                    "has no CRS",
                    "set it with gdf.set_crs('EPSG:4326') (or the CRS the data are in)",
                    where=where,
                )
            )
    if not _default_index(gdf):
        gdf = gdf.reset_index()  # a meaningful index becomes ordinary columns
    values = {col: gdf[col].to_numpy() for col in geom_cols}
    bounds, usable = _bounds(values[primary])

    # The sort keys and the argsort are numpy work that releases the GIL: they run on a worker
    # while this thread encodes the geometry (shapely holds the GIL) in input order, the order the
    # objects sit in memory (in sorted order it took 3x as long, measured on 1 M cells). The rows
    # are put in order as the row groups are written (``rows`` below).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        sorting = pool.submit(sort_order, gdf, bounds, sort, where)
        wkb = {col: _speed.encode_wkb(values[col]) for col in geom_cols}
        attrs = _frame_to_table(pd.DataFrame(gdf).drop(columns=geom_cols), where)
        columns_meta = {
            col: _column_meta(
                *((bounds, usable) if col == primary else _bounds(values[col])),
                gdf[col].crs,
                wkb[col].geometry_types,
                covering=col == primary,
            )
            for col in geom_cols
        }
        order = sorting.result()
    # the input's column order, then the bbox covering; rows in ``order`` (None: input order)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        f.name: attrs.column(f.name) for f in attrs.schema
    }
    fields = {f.name: f for f in attrs.schema} | {c: pa.field(c, pa.binary()) for c in geom_cols}
    fields[COVERING], columns[COVERING] = _covering(bounds, usable)
    names = [*gdf.columns, COVERING]

    def rows(name: str, start: int, stop: int) -> pa.Array | pa.ChunkedArray:
        picked = np.arange(start, stop) if order is None else order[start:stop]
        if name in wkb:
            return wkb[name].rows(picked)
        if order is None:
            return columns[name].slice(start, stop - start)
        return columns[name].take(pa.array(picked))

    geo = {"version": GEOPARQUET_VERSION, "primary_column": primary, "columns": columns_meta}
    metadata = dict(attrs.schema.metadata or {})
    metadata[b"geo"] = json.dumps(geo, sort_keys=True, separators=(",", ":")).encode()
    schema = pa.schema([fields[n] for n in names], metadata=dict(sorted(metadata.items())))
    return _write_table(
        schema,
        len(gdf),
        rows,
        Path(path),
        row_group_size=row_group_size,
        compression=compression,
        compression_level=compression_level,
        no_stats=geom_cols,
        column_compression={c: geometry_compression for c in geom_cols}
        if geometry_compression
        else None,
    )


def write_parquet(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    row_group_size: int | None = None,
    compression: str = "zstd",
    compression_level: int | None = None,
) -> Path:
    """Write a table without geometry (``fact_indicator``, ``dim_indicator``) as plain parquet.

    Same guarantees as :func:`write_geoparquet`: atomic replace, zstd, byte-identical output for
    identical input. Rows keep their order.

    Parameters
    ----------
    df
        A DataFrame without geometry columns.
    path
        Output file; its folder must exist.
    row_group_size, compression, compression_level
        As in :func:`write_geoparquet`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> p = write_parquet(pd.DataFrame({"indicator_id": ["population_total"]}),
    ...                   pathlib.Path(tempfile.mkdtemp()) / "dim_indicator.parquet")
    >>> pd.read_parquet(p).indicator_id.tolist()
    ['population_total']
    """
    where = "write_parquet"
    if isinstance(df, gpd.GeoDataFrame) or any(
        isinstance(df[c].dtype, gpd.array.GeometryDtype) for c in df.columns
    ):
        raise InputError(
            problem("df", "has geometry columns", "use write_geoparquet for it", where=where)
        )
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            problem(
                "df", f"is a {type(df).__name__}, not a DataFrame", "pass a DataFrame", where=where
            )
        )
    table = _frame_to_table(df, where)
    metadata = dict(sorted((table.schema.metadata or {}).items()))
    table = table.replace_schema_metadata(metadata)
    return _write_table(
        table.schema,
        table.num_rows,
        lambda name, start, stop: table.column(name).slice(start, stop - start),
        Path(path),
        row_group_size=row_group_size,
        compression=compression,
        compression_level=compression_level,
    )


# ---------------------------------------------------------------------------------------- concat
def _merged_geo(metas: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """One ``geo`` metadata for the rows of several files: bboxes and geometry types united."""
    geo = json.loads(json.dumps(metas[0]))
    for col, meta in geo["columns"].items():
        entries = [m["columns"].get(col) for m in metas if col in m.get("columns", {})]
        if any(e.get("crs") != meta.get("crs") for e in entries):
            raise InputError(
                problem(
                    f"geometry column '{col}'",
                    "has a different CRS in the files to concatenate",
                    "reproject every part to one CRS first",
                    where=where,
                )
            )
        meta["geometry_types"] = sorted({t for e in entries for t in e["geometry_types"]})
        boxes = np.array([e["bbox"] for e in entries if "bbox" in e], dtype=float)
        if len(boxes):
            meta["bbox"] = [
                *map(float, boxes[:, :2].min(axis=0)),
                *map(float, boxes[:, 2:].max(axis=0)),
            ]
    return geo


def _union_schema(files: list[pq.ParquetFile], where: str) -> pa.Schema:
    """The fields of every file, in order of first appearance; geometry and covering last."""
    try:
        schema = pa.unify_schemas([f.schema_arrow for f in files], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(
            problem(
                "the files to concatenate",
                f"have incompatible columns ({exc})",
                "give every part the same column types",
                where=where,
            )
        ) from exc
    geo = json.loads((schema.metadata or {}).get(b"geo", b"{}"))
    last = [*geo.get("columns", {}), COVERING] if geo else []
    names = [n for n in schema.names if n not in last] + [n for n in last if n in schema.names]
    return pa.schema([schema.field(n) for n in names], metadata=schema.metadata)


def concat_parquet(parts: Sequence[str | os.PathLike[str]], path: str | os.PathLike[str]) -> Path:
    """Write the rows of several parquet or GeoParquet files into one file, a row group at a time.

    The parts keep their order and row groups; the codec, dictionary encoding and statistics of
    each column are those of the first part, so parts written by :func:`write_geoparquet` or
    :func:`write_parquet` give the file those writers would give, with the rows of each part
    sorted within the part. A column missing from a part is null there; GeoParquet ``geo``
    metadata is merged (``bbox`` and ``geometry_types`` of all parts; the CRS must agree).
    Memory holds one row group. Atomic, and byte-identical for identical parts.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> a = write_parquet(pd.DataFrame({"v": [1]}), d / "a.parquet")
    >>> b = write_parquet(pd.DataFrame({"v": [2, 3]}), d / "b.parquet")
    >>> pd.read_parquet(concat_parquet([a, b], d / "ab.parquet")).v.tolist()
    [1, 2, 3]
    """
    where = "concat_parquet"
    if not parts:
        raise InputError(problem("parts", "is empty", "give at least one file", where=where))
    files = [pq.ParquetFile(str(p)) for p in parts]
    schema = _union_schema(files, where)
    metas = [
        json.loads(f.schema_arrow.metadata[b"geo"])
        for f in files
        if b"geo" in (f.schema_arrow.metadata or {})
    ]
    metadata = dict(schema.metadata or {})
    if metas:
        geo = _merged_geo(metas, where)
        metadata[b"geo"] = json.dumps(geo, sort_keys=True, separators=(",", ":")).encode()
    if len({tuple(f.schema_arrow.names) for f in files}) > 1:
        metadata.pop(b"pandas", None)  # lists the first part's columns only
    schema = schema.with_metadata(dict(sorted(metadata.items())))
    first = files[0].metadata
    codec, dictionary, stats = {}, [], []
    if first.num_row_groups:
        group = first.row_group(0)
        for j in range(group.num_columns):
            col = group.column(j)
            leaf = col.path_in_schema
            codec[leaf] = col.compression.lower()
            if any("DICTIONARY" in e for e in col.encodings):
                dictionary.append(leaf.split(".")[0])
            if col.is_stats_set:
                stats.append(leaf)
    leaves = _leaves(schema)
    known = set(codec)  # a column only later parts have: snappy, with statistics
    codec = {leaf: codec.get(leaf, "snappy") for paths in leaves.values() for leaf in paths}
    stats = [
        leaf for paths in leaves.values() for leaf in paths if leaf in stats or leaf not in known
    ]

    def aligned(table: pa.Table) -> pa.Table:
        cols = [
            table.column(f.name).cast(f.type)
            if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type)
            for f in schema
        ]
        return pa.Table.from_arrays(cols, schema=schema)

    with (
        atomic_path(Path(path)) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pq.ParquetWriter(
            sink,
            schema,
            compression=codec,
            write_statistics=stats,
            use_dictionary=sorted(set(dictionary)),
        ) as writer,
    ):
        for f in files:
            for i in range(f.metadata.num_row_groups):
                table = aligned(f.read_row_group(i))
                writer.write_table(table, row_group_size=max(1, table.num_rows))
            start_writeback(sink.fileno())
        if not any(f.metadata.num_row_groups for f in files):
            writer.write_table(schema.empty_table())
    return Path(path)


# ------------------------------------------------------------------------------------------ read
def _open(path: str | os.PathLike[str], where: str) -> tuple[pq.ParquetFile, dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(
            problem(f"'{p}'", "does not exist", "check the path or run the pipeline", where=where)
        )
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FormatError(
            problem(f"'{p}'", f"is not a readable parquet file ({exc})", "rewrite it", where=where)
        ) from exc
    raw = (pf.schema_arrow.metadata or {}).get(b"geo")
    if raw is None:
        raise FormatError(
            problem(
                f"'{p}'",
                "has no 'geo' metadata (not GeoParquet)",
                "read it with pandas.read_parquet, or write it with write_geoparquet",
                where=where,
            )
        )
    try:
        geo = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FormatError(
            problem(f"'{p}'", "has 'geo' metadata that is not JSON", "rewrite it", where=where)
        ) from exc
    return pf, geo


def _covering_column(geo: dict[str, Any]) -> str | None:
    primary = geo.get("primary_column")
    cov = (geo.get("columns", {}).get(primary, {}) or {}).get("covering", {}).get("bbox")
    if not isinstance(cov, dict):
        return None
    heads = {v[0] for v in cov.values() if isinstance(v, list | tuple) and len(v) == 2}
    return heads.pop() if len(heads) == 1 else None


def _row_groups_for_bbox(
    pf: pq.ParquetFile, covering: str, bbox: tuple[float, float, float, float]
) -> list[int]:
    """Row groups whose covering statistics may intersect ``bbox`` (missing stats: kept)."""
    qminx, qminy, qmaxx, qmaxy = bbox
    md = pf.metadata
    paths = (
        {md.row_group(0).column(i).path_in_schema: i for i in range(md.num_columns)}
        if (md.num_row_groups)
        else {}
    )
    idx = {f: paths.get(f"{covering}.{f}") for f in _BBOX_FIELDS}
    keep = []
    for rg in range(md.num_row_groups):
        group = md.row_group(rg)

        def stat(field: str, kind: str, group: Any = group) -> float | None:
            i = idx[field]
            if i is None:
                return None
            s = group.column(i).statistics
            if s is None or not s.has_min_max:
                return None
            return float(getattr(s, kind))

        lo_x, hi_x = stat("xmin", "min"), stat("xmax", "max")
        lo_y, hi_y = stat("ymin", "min"), stat("ymax", "max")
        outside = (
            (lo_x is not None and lo_x > qmaxx)
            or (hi_x is not None and hi_x < qminx)
            or (lo_y is not None and lo_y > qmaxy)
            or (hi_y is not None and hi_y < qminy)
        )
        if not outside:
            keep.append(rg)
    return keep


def read_geoparquet(
    path: str | os.PathLike[str],
    bbox: tuple[float, float, float, float] | None = None,
    columns: Sequence[str] | None = None,
    *,
    keep_covering: bool = False,
) -> gpd.GeoDataFrame:
    """Read a GeoParquet file, skipping row groups outside ``bbox`` via the covering column.

    Parameters
    ----------
    path
        A GeoParquet file (1.0 or 1.1; geopipe's or another writer's).
    bbox
        ``(xmin, ymin, xmax, ymax)`` in the file's CRS: keep rows whose bounding box intersects it.
        Row groups whose ``bbox`` statistics lie outside are not read at all; files without a
        covering column are filtered on the decoded geometries' bounds.
    columns
        Columns to return (the primary geometry column is always included).
    keep_covering
        Keep the ``bbox`` struct column in the result (default: dropped).

    Returns
    -------
    geopandas.GeoDataFrame
        With the CRS from the file's metadata (OGC:CRS84 when the metadata omits it).

    Raises
    ------
    MissingFileError, FormatError, MissingColumnError

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame({"v": [1, 2]}, geometry=[shapely.Point(0, 0), shapely.Point(5, 5)],
    ...                        crs="EPSG:4326")
    >>> p = write_geoparquet(gdf, pathlib.Path(tempfile.mkdtemp()) / "pts.parquet")
    >>> read_geoparquet(p, bbox=(4, 4, 6, 6)).v.tolist()
    [2]
    """
    from geopipe.errors import MissingColumnError

    where = "read_geoparquet"
    pf, geo = _open(path, where)
    primary = geo.get("primary_column")
    meta = geo.get("columns", {})
    names = pf.schema_arrow.names
    covering = _covering_column(geo)
    if covering not in names:
        covering = None
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise MissingColumnError(
                problem(
                    f"columns {missing}",
                    f"are not in '{path}'",
                    f"choose from {names}",
                    where=where,
                )
            )
        wanted = list(dict.fromkeys([*columns, primary]))
    else:
        wanted = [c for c in names if c != covering or keep_covering]
    read_cols = list(wanted)
    if bbox is not None and covering and covering not in read_cols:
        read_cols.append(covering)

    if bbox is not None and covering:
        groups = _row_groups_for_bbox(pf, covering, tuple(float(v) for v in bbox))
        table = (
            pf.read_row_groups(groups, columns=read_cols)
            if groups
            else (pf.schema_arrow.empty_table().select(read_cols))
        )
        box = table.column(covering)
        xmin, xmax = pc.struct_field(box, "xmin"), pc.struct_field(box, "xmax")
        ymin, ymax = pc.struct_field(box, "ymin"), pc.struct_field(box, "ymax")
        keep = pc.and_(
            pc.and_(pc.less_equal(xmin, bbox[2]), pc.greater_equal(xmax, bbox[0])),
            pc.and_(pc.less_equal(ymin, bbox[3]), pc.greater_equal(ymax, bbox[1])),
        )
        table = table.filter(pc.fill_null(keep, False))
    else:  # the dataset reader pre-buffers and decodes columns in parallel: faster than pf.read
        table = pq.read_table(path, columns=read_cols)

    geom_cols = [c for c in read_cols if c in meta]
    decoded = {
        c: shapely.from_wkb(table.column(c).to_numpy(zero_copy_only=False)) for c in geom_cols
    }
    if bbox is not None and not covering:
        b = shapely.bounds(decoded[primary])
        sel = (
            (b[:, 0] <= bbox[2])
            & (b[:, 2] >= bbox[0])
            & (b[:, 1] <= bbox[3])
            & (b[:, 3] >= bbox[1])
        )
        table = table.filter(pa.array(sel))
        decoded = {c: g[sel] for c, g in decoded.items()}
    df = table.select([c for c in wanted if c not in geom_cols]).to_pandas()
    del table
    for c in geom_cols:  # inserted in place, in the order asked for: no copy of the other columns
        crs = meta[c].get("crs", "OGC:CRS84")
        if isinstance(crs, dict):
            crs = pyproj.CRS.from_json_dict(crs)
        at = [w for w in wanted if w in df.columns or w == c].index(c)
        df.insert(at, c, gpd.GeoSeries(decoded.pop(c), index=df.index, crs=crs))
    return gpd.GeoDataFrame(df, geometry=primary, copy=False)


# ----------------------------------------------------------------------------------------- check
def check_geoparquet(path: str | os.PathLike[str]) -> list[str]:
    """Check a file against GeoParquet 1.1 as geopipe writes it; return the problems found.

    Checked: the ``geo`` metadata is JSON with ``version`` "1.1.0", ``primary_column`` and
    ``columns``; every geometry column is a top-level binary column whose ``encoding`` is "WKB",
    whose values all decode as WKB, whose ``geometry_types`` are valid names and include every type
    present; ``crs`` is present and a PROJJSON object pyproj understands; ``bbox`` equals the
    geometries' total bounds; the primary column has a ``covering.bbox`` that points at one
    top-level struct column with float fields xmin/ymin/xmax/ymax, equal to each geometry's bounds
    (null exactly where the geometry is null or empty). Optional keys (``edges``, ``orientation``,
    ``epoch``) are checked when present.

    Parameters
    ----------
    path
        The file to check.

    Returns
    -------
    list of str
        One message per problem; an empty list means the file passes.

    Examples
    --------
    >>> check_geoparquet("no/such/file.parquet")
    ["'no/such/file.parquet' does not exist"]
    """
    from geopipe.io._geoparquet_check import run_checks

    return run_checks(Path(path))
