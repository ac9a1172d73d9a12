"""Readers of ``inspect_file`` for DuckDB, rasters, vector files, CSV and run manifests.

Shared helpers live here too; the Parquet readers and the dispatch are in :mod:`geopipe.io.inspect`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geopipe.errors import FormatError, problem

WHERE = "inspect_file"
#: rows read per batch / chunk (bounded memory)
BATCH_ROWS = 65_536


def unreadable(p: Path, what: str, exc: BaseException) -> FormatError:
    return FormatError(
        problem(
            f"'{p}'", f"cannot be read as {what} ({exc})", "check the file is complete", where=WHERE
        )
    )


def crs_label(crs: Any) -> str | None:
    """A short name for a CRS given as PROJJSON / WKT / pyproj CRS."""
    if crs is None:
        return None
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    auth = c.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else c.name


def merge_box(box: Any, bounds: Any) -> Any:
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


# ---- DuckDB
def duckdb_facts(p: Path) -> dict[str, Any]:
    import duckdb

    from geopipe.io.warehouse import load_spatial

    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as exc:
        raise unreadable(p, "a DuckDB database", exc) from exc
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
        raise unreadable(p, "a DuckDB database", exc) from exc
    finally:
        con.close()
    return {"spatial_extension": spatial, "tables": tables, "views": views}


# ---- rasters
def raster_facts(p: Path) -> dict[str, Any]:
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        ds = rasterio.open(p)
    except rasterio.errors.RasterioIOError as exc:
        raise unreadable(p, "a raster", exc) from exc
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
            raise unreadable(p, "a raster (a block is unreadable)", exc) from exc
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
def vector_facts(p: Path) -> dict[str, Any]:
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
                "crs": crs_label(info["crs"]) if info.get("crs") else None,
                "features": int(info.get("features", -1)),
                "bounds": None if bounds is None else [float(v) for v in bounds],
                "columns": dict(zip(info["fields"].tolist(), info["dtypes"].tolist())),
            }
    except pyogrio.errors.DataSourceError as exc:
        raise unreadable(p, "a vector file", exc) from exc
    return {"layers": out}


# ---- CSV
def csv_facts(p: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from geopipe.io.points import _LAT_NAMES, _LON_NAMES

    sep, encoding = _sniff(p)
    try:
        head = pd.read_csv(p, sep=sep, nrows=10_000, low_memory=False, encoding=encoding)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise unreadable(p, "CSV", exc) from exc
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
            box = merge_box(box, np.column_stack([x, y, x, y]))
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
def manifest_facts(p: Path) -> dict[str, Any]:
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise unreadable(p, "JSON", exc) from exc
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
