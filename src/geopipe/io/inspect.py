"""What a data file holds, read cheaply: metadata first, data by windows / batches (bounded memory).

:func:`inspect_file` returns plain dicts (``geopipe inspect`` prints them). Each reader uses the
library made for the format: pyarrow's Parquet metadata and row-group statistics, DuckDB's
``information_schema``, rasterio (block windows or the smallest overview), pyogrio's layer info
(GDAL's own feature counts and extents) and pandas' chunked CSV reader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from geopipe.errors import FormatError, MissingFileError, problem
from geopipe.io._inspect_formats import (
    BATCH_ROWS,
    WHERE,
    crs_label,
    csv_facts,
    duckdb_facts,
    manifest_facts,
    merge_box,
    raster_facts,
    unreadable,
    vector_facts,
)

__all__ = ["file_kind", "inspect_file"]

_VECTOR = {".geojson", ".gpkg", ".topojson", ".shp", ".fgb", ".gml", ".kml", ".geojsonl"}
_RASTER = {".tif", ".tiff", ".vrt", ".img", ".nc", ".jp2", ".asc", ".bil"}
_TEXT = {".csv", ".tsv", ".txt"}
_WKT_HEADS = ("POINT", "MULTIPOINT", "LINESTRING", "MULTILINESTRING", "POLYGON", "MULTIPOLYGON")


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
        import json

        try:  # a run manifest is a JSON object with manifest_version (keys are sorted: read it all)
            data = json.loads(p.read_text(encoding="utf-8")) if p.stat().st_size < 2**26 else None
        except (OSError, ValueError):
            data = None
        return "manifest" if isinstance(data, dict) and "manifest_version" in data else "vector"
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
        "duckdb": duckdb_facts,
        "raster": raster_facts,
        "vector": vector_facts,
        "csv": csv_facts,
        "manifest": manifest_facts,
    }[kind]
    size = p.stat().st_size if p.is_file() else None
    return {"path": str(p), "kind": kind, "size": size, **reader(p)}


# ---- Parquet / GeoParquet
def _parquet(p: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise unreadable(p, "Parquet", exc) from exc
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
    crs = crs_label(col["crs"]) if col.get("crs") else ("OGC:CRS84" if "crs" not in col else None)
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
        box = merge_box(box, b)
    return None if not np.isfinite(box).all() else [float(v) for v in box]


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
        raise unreadable(p, "a folder of Parquet files", exc) from exc
    return {
        "files": len(files),
        "rows": rows,
        "columns": {f.name: str(f.type) for f in schema},
        "partitions": {k: sorted(v) for k, v in sorted(partitions.items())},
    }
