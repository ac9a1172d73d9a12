"""What a data file holds, read cheaply: metadata first, data by windows / batches (bounded memory).

:func:`inspect_file` returns plain dicts (``geopipe inspect`` prints them). Each reader uses the
library made for the format: pyarrow's Parquet metadata and row-group statistics, DuckDB's
``information_schema``, rasterio (block windows or the smallest overview), pyogrio's layer info
(GDAL's own feature counts and extents) and pandas' chunked CSV reader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geopipe.errors import FormatError, MissingFileError, problem

__all__ = ["file_kind", "inspect_file"]

WHERE = "inspect_file"
_VECTOR = {".geojson", ".gpkg", ".topojson", ".shp", ".fgb", ".gml", ".kml", ".geojsonl"}
_RASTER = {".tif", ".tiff", ".vrt", ".img", ".nc", ".jp2", ".asc", ".bil"}
_TEXT = {".csv", ".tsv", ".txt"}
_WKT_HEADS = ("POINT", "MULTIPOINT", "LINESTRING", "MULTILINESTRING", "POLYGON", "MULTIPOLYGON")
#: rows read per batch / chunk (bounded memory)
BATCH_ROWS = 65_536


def file_kind(path: str | os.PathLike[str]) -> str:
    """The kind of a data file, from its name (and first bytes for ``.json``).

    Returns one of ``parquet``, ``parquet_dataset`` (a folder of Parquet files, e.g. partitioned
    ``iso3=.../date=...``), ``duckdb``, ``raster``, ``vector``, ``csv``, ``manifest``.

    Examples
    --------
    >>> file_kind("out/sample/adm2.parquet"), file_kind("x.tif"), file_kind("a.topojson")
    ('parquet', 'raster', 'vector')
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir() and next(p.rglob("*.parquet"), None) is not None:
        return "parquet_dataset"
    if suffix in (".parquet", ".geoparquet", ".parq"):
        return "parquet"
    if suffix in (".duckdb", ".ddb"):
        return "duckdb"
    if suffix in _RASTER:
        return "raster"
    if suffix in _VECTOR:
        return "vector"
    if suffix in _TEXT:
        return "csv"
    if suffix == ".json":
        head = p.read_text(encoding="utf-8", errors="replace")[:4096] if p.is_file() else ""
        return "manifest" if '"manifest_version"' in head else "vector"
    raise FormatError(
        problem(
            f"'{p}'",
            f"has a suffix geopipe does not read ({suffix or 'none'})",
            "use .parquet, .duckdb, .tif, .geojson, .gpkg, .topojson, .shp or .csv",
            where=WHERE,
        )
    )


def inspect_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a GeoParquet / Parquet / DuckDB / GeoTIFF / vector / CSV file without loading it.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    dict
        Always ``path``, ``kind``, ``size``; then by kind:

        - parquet: ``rows``, ``row_groups``, ``columns`` (name -> type) and, for GeoParquet,
          ``geoparquet`` (version, primary column, encoding, geometry types, CRS, bbox, covering);
          ``wkt_columns`` with their bounds when geometries are stored as WKT text;
        - parquet_dataset: ``files``, ``rows``, ``columns``, ``partitions`` (key -> values);
        - duckdb: ``tables`` and ``views`` (name -> rows, columns; geometry bounds);
        - raster: ``width``, ``height``, ``bands``, ``dtype``, ``crs``, ``bounds``,
          ``resolution``, ``nodata``, ``block``, ``compression``, ``overviews`` and per band
          ``min``, ``max``, ``valid_pixels``, ``sum`` (read block by block, or from the smallest
          overview, then marked ``approximate``);
        - vector: ``layers`` (name -> driver, geometry type, CRS, features, bounds, columns);
        - csv: ``rows``, ``columns`` (name -> inferred type), ``coordinates`` and ``bounds`` when
          longitude / latitude columns are found;
        - manifest: ``run``, ``run_id``, ``started``, ``inputs``, ``outputs``, ``checks``.

    Raises
    ------
    MissingFileError
        The file does not exist.
    FormatError
        It cannot be read as its kind.

    Examples
    --------
    >>> info = inspect_file("data/sample/rwa_population_2020_modelled_232m.tif")  # doctest: +SKIP
    >>> info["crs"], info["bands"][0]["sum"] > 0  # doctest: +SKIP
    ('EPSG:4326', True)
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(problem(f"'{p}'", "does not exist", "check the path", where=WHERE))
    kind = file_kind(p)
    reader = {
        "parquet": _parquet,
        "parquet_dataset": _parquet_dataset,
        "duckdb": _duckdb,
        "raster": _raster,
        "vector": _vector,
        "csv": _csv,
        "manifest": _manifest,
    }[kind]
    size = p.stat().st_size if p.is_file() else None
    return {"path": str(p), "kind": kind, "size": size, **reader(p)}


def _unreadable(p: Path, what: str, exc: BaseException) -> FormatError:
    return FormatError(
        problem(
            f"'{p}'", f"cannot be read as {what} ({exc})", "check the file is complete", where=WHERE
        )
    )


def _crs_label(crs: Any) -> str | None:
    """A short name for a CRS given as PROJJSON / WKT / pyproj CRS."""
    if crs is None:
        return None
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    auth = c.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else c.name


# ---- Parquet / GeoParquet
def _parquet(p: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(p, "Parquet", exc) from exc
    md, schema = pf.metadata, pf.schema_arrow
    out: dict[str, Any] = {
        "rows": md.num_rows,
        "row_groups": md.num_row_groups,
        "columns": {f.name: str(f.type) for f in schema},
    }
    raw = (schema.metadata or {}).get(b"geo")
    if raw is not None:
        out["kind"] = "geoparquet"
        out["geoparquet"] = _geo_facts(pf, json.loads(raw))
    wkt = _wkt_columns(pf, schema)
    if wkt:
        out["wkt_columns"] = wkt
    return out


def _geo_facts(pf: Any, geo: dict[str, Any]) -> dict[str, Any]:
    primary = geo.get("primary_column")
    col = (geo.get("columns") or {}).get(primary, {}) or {}
    covering = (col.get("covering") or {}).get("bbox")
    cov_col = None
    if isinstance(covering, dict):
        heads = {v[0] for v in covering.values() if isinstance(v, list) and v}
        cov_col = heads.pop() if len(heads) == 1 else None
    # absent crs means OGC:CRS84 (the spec's default); null means unknown
    crs = _crs_label(col["crs"]) if col.get("crs") else ("OGC:CRS84" if "crs" not in col else None)
    bbox = col.get("bbox") or (_stats_bbox(pf, cov_col) if cov_col else None)
    return {
        "version": geo.get("version"),
        "primary_column": primary,
        "encoding": col.get("encoding"),
        "geometry_types": col.get("geometry_types"),
        "crs": crs,
        "bbox": bbox,
        "covering": None if cov_col is None else f"bbox -> column '{cov_col}'",
        "geometry_columns": sorted(geo.get("columns") or {}),
    }


def _stats_bbox(pf: Any, cov: str) -> list[float] | None:
    """Bounds from the covering column's row-group statistics (no data read)."""
    md = pf.metadata
    want = {f"{cov}.{k}": k for k in ("xmin", "ymin", "xmax", "ymax")}
    found: dict[str, list[float]] = {k: [] for k in want.values()}
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for c in range(rg.num_columns):
            chunk = rg.column(c)
            key = want.get(chunk.path_in_schema)
            if key and chunk.statistics is not None and chunk.statistics.has_min_max:
                found[key].append(chunk.statistics.min if "min" in key else chunk.statistics.max)
    if not all(found.values()):
        return None
    return [min(found["xmin"]), min(found["ymin"]), max(found["xmax"]), max(found["ymax"])]


def _wkt_columns(pf: Any, schema: Any) -> dict[str, Any]:
    """String columns holding WKT geometries (e.g. Ookla's ``tile``), with their bounds."""
    import pyarrow as pa

    strings = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    if not strings or pf.metadata.num_rows == 0:
        return {}
    first = pf.read_row_group(0, columns=strings).slice(0, 1).to_pylist()[0]
    names = [c for c in strings if str(first.get(c) or "").lstrip().upper().startswith(_WKT_HEADS)]
    return {c: {"encoding": "WKT", "bounds": _wkt_bounds(pf, c)} for c in names}


def _wkt_bounds(pf: Any, column: str) -> list[float] | None:
    import numpy as np
    import shapely

    box = np.array([np.inf, np.inf, -np.inf, -np.inf])
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[column]):
        b = shapely.bounds(
            shapely.from_wkt(batch.column(0).to_numpy(zero_copy_only=False), on_invalid="ignore")
        )
        box = _merge_box(box, b)
    return None if not np.isfinite(box).all() else [float(v) for v in box]


def _merge_box(box: Any, bounds: Any) -> Any:
    import numpy as np

    if not len(bounds):
        return box
    with np.errstate(invalid="ignore"):
        part = [
            np.nanmin(bounds[:, 0]),
            np.nanmin(bounds[:, 1]),
            np.nanmax(bounds[:, 2]),
            np.nanmax(bounds[:, 3]),
        ]
    return np.array(
        [
            np.fmin(box[0], part[0]),
            np.fmin(box[1], part[1]),
            np.fmax(box[2], part[2]),
            np.fmax(box[3], part[3]),
        ]
    )


def _parquet_dataset(p: Path) -> dict[str, Any]:
    """A folder of Parquet files (hive partitions ``key=value``): rows from the footers only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p.rglob("*.parquet"))
    partitions: dict[str, set[str]] = {}
    rows = 0
    try:
        for f in files:
            rows += pq.ParquetFile(f).metadata.num_rows
            for part in f.relative_to(p).parent.parts:
                key, eq, value = part.partition("=")
                if eq:
                    partitions.setdefault(key, set()).add(value)
        schema = pq.read_schema(files[0])
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(p, "a folder of Parquet files", exc) from exc
    return {
        "files": len(files),
        "rows": rows,
        "columns": {f.name: str(f.type) for f in schema},
        "partitions": {k: sorted(v) for k, v in sorted(partitions.items())},
    }


# ---- DuckDB
def _duckdb(p: Path) -> dict[str, Any]:
    import duckdb

    from geopipe.io.warehouse import load_spatial

    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as exc:
        raise _unreadable(p, "a DuckDB database", exc) from exc
    try:
        spatial = load_spatial(con)
        objects = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() order by table_schema, table_name"
        ).fetchall()
        cols = con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() order by table_schema, table_name, ordinal_position"
        ).fetchall()
        by_table: dict[tuple[str, str], dict[str, str]] = {}
        for schema, table, column, dtype in cols:
            by_table.setdefault((schema, table), {})[column] = dtype
        tables: dict[str, Any] = {}
        views: dict[str, Any] = {}
        for schema, table, ttype in objects:
            name = table if schema == "main" else f"{schema}.{table}"
            columns = by_table.get((schema, table), {})
            ident = f'"{schema}"."{table}"'
            entry: dict[str, Any] = {"columns": columns}
            if ttype == "VIEW":
                views[name] = entry
                continue
            entry["rows"] = con.execute(f"select count(*) from {ident}").fetchone()[0]
            geoms = [c for c, t in columns.items() if t.upper().startswith("GEOMETRY")]
            if spatial and geoms and entry["rows"]:
                g = f'"{geoms[0]}"'
                row = con.execute(
                    f"select min(ST_XMin({g})), min(ST_YMin({g})), max(ST_XMax({g})), "
                    f"max(ST_YMax({g})) from {ident}"
                ).fetchone()
                entry["bounds"] = None if row[0] is None else [float(v) for v in row]
            tables[name] = entry
    except duckdb.Error as exc:
        raise _unreadable(p, "a DuckDB database", exc) from exc
    finally:
        con.close()
    return {"spatial_extension": spatial, "tables": tables, "views": views}


# ---- rasters
def _raster(p: Path) -> dict[str, Any]:
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        ds = rasterio.open(p)
    except rasterio.errors.RasterioIOError as exc:
        raise _unreadable(p, "a raster", exc) from exc
    with ds:
        crs = ds.crs.to_string() if ds.crs else None
        out: dict[str, Any] = {
            "driver": ds.driver,
            "width": ds.width,
            "height": ds.height,
            "pixels": ds.width * ds.height,
            "dtype": ds.dtypes[0],
            "crs": crs,
            "bounds": [float(v) for v in ds.bounds],
            "resolution": [float(ds.res[0]), float(ds.res[1])],
            "nodata": None if ds.nodata is None else float(ds.nodata),
            "block": list(ds.block_shapes[0]),
            "compression": ds.compression.value if ds.compression else None,
            "overviews": ds.overviews(1),
        }
        if crs and crs != "EPSG:4326":
            out["bounds_wgs84"] = [
                float(v) for v in transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
            ]
        try:
            out["bands"] = [_band_stats(p, ds, b) for b in range(1, ds.count + 1)]
        except rasterio.errors.RasterioIOError as exc:
            raise _unreadable(p, "a raster (a block is unreadable)", exc) from exc
    return out


def _band_stats(p: Path, ds: Any, band: int) -> dict[str, Any]:
    """min / max / valid pixels / sum of one band, by row blocks or from its smallest overview."""
    import numpy as np

    from geopipe.io.raster import iter_blocks, row_blocks

    overviews = ds.overviews(band)
    if overviews:
        f = overviews[-1]
        shape = (max(1, ds.height // f), max(1, ds.width // f))
        arr = ds.read(band, out_shape=shape, masked=True)
        blocks: Iterable[tuple[Any, Any]] = [(np.ma.getdata(arr), ~np.ma.getmaskarray(arr))]
        scale = f * f  # a pixel of the overview stands for f x f pixels
    else:
        blocks = ((vals, valid) for _, _, vals, valid in iter_blocks(p, row_blocks(ds), band))
        scale = 1
    lo, hi, n, total = np.inf, -np.inf, 0, 0.0
    for vals, valid in blocks:
        v = vals[valid]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
            n += int(v.size)
            total += float(v.sum(dtype="float64"))
    stats: dict[str, Any] = {
        "band": band,
        "min": lo if n else None,
        "max": hi if n else None,
        "valid_pixels": n * scale,
        "sum": total * scale,
    }
    if overviews:
        stats["approximate"] = f"from the 1/{overviews[-1]} overview"
    return stats


# ---- vector files
def _vector(p: Path) -> dict[str, Any]:
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(p)]
        out: dict[str, Any] = {}
        for layer in layers:
            info = pyogrio.read_info(
                p, layer=layer, force_feature_count=True, force_total_bounds=True
            )
            bounds = info.get("total_bounds")
            out[layer] = {
                "driver": info.get("driver"),
                "geometry_type": info.get("geometry_type"),
                "crs": _crs_label(info["crs"]) if info.get("crs") else None,
                "features": int(info.get("features", -1)),
                "bounds": None if bounds is None else [float(v) for v in bounds],
                "columns": dict(zip(info["fields"].tolist(), info["dtypes"].tolist())),
            }
    except pyogrio.errors.DataSourceError as exc:
        raise _unreadable(p, "a vector file", exc) from exc
    return {"layers": out}


# ---- CSV
def _csv(p: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from geopipe.io.points import _LAT_NAMES, _LON_NAMES

    sep, encoding = _sniff(p)
    try:
        head = pd.read_csv(p, sep=sep, nrows=10_000, low_memory=False, encoding=encoding)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise _unreadable(p, "CSV", exc) from exc
    lower = {c.lower().strip(): c for c in head.columns}
    lon = next((lower[n] for n in _LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in _LAT_NAMES if n in lower), None)
    coords = [c for c in (lon, lat) if c is not None]
    rows, box = 0, np.array([np.inf, np.inf, -np.inf, -np.inf])
    chunks = pd.read_csv(
        p, sep=sep, usecols=coords or [0], chunksize=BATCH_ROWS * 4, encoding=encoding
    )
    for chunk in chunks:
        rows += len(chunk)
        if len(coords) == 2:
            x = pd.to_numeric(chunk[lon], errors="coerce").to_numpy(dtype="float64")
            y = pd.to_numeric(chunk[lat], errors="coerce").to_numpy(dtype="float64")
            box = _merge_box(box, np.column_stack([x, y, x, y]))
    out: dict[str, Any] = {
        "rows": rows,
        "delimiter": sep,
        "encoding": encoding,
        "columns": {str(c): str(t) for c, t in head.dtypes.items()},
    }
    if len(coords) == 2:
        out["coordinates"] = {"lon": lon, "lat": lat}
        out["bounds"] = [float(v) for v in box] if np.isfinite(box).all() else None
    return out


def _sniff(p: Path) -> tuple[str, str]:
    """Delimiter and encoding of a CSV from its first 64 KiB."""
    import csv

    with open(p, "rb") as f:
        raw = f.read(65_536)
    try:
        raw.decode("utf-8")
        encoding = "utf-8-sig"
    except UnicodeDecodeError as exc:
        encoding = "utf-8-sig" if exc.start > len(raw) - 4 else "latin-1"  # cut mid-character
    try:
        sep = csv.Sniffer().sniff(raw.decode("latin-1"), delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    return sep, encoding


# ---- run manifest
def _manifest(p: Path) -> dict[str, Any]:
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _unreadable(p, "JSON", exc) from exc
    checks = (m.get("quality") or {}).get("checks") or []
    levels: dict[str, int] = {}
    for c in checks:
        levels[c.get("level", "?")] = levels.get(c.get("level", "?"), 0) + 1
    return {
        "run": m.get("run"),
        "run_id": m.get("run_id"),
        "started": m.get("started"),
        "finished": m.get("finished"),
        "inputs": {k: v.get("path") for k, v in (m.get("inputs") or {}).items()},
        "outputs": {k: v.get("rows") for k, v in (m.get("outputs") or {}).items()},
        "checks": levels,
        "seconds": round(sum((m.get("timings") or {}).values()), 3),
    }
