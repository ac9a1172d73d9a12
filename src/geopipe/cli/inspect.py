"""``geopipe inspect FILE...``: what a GeoParquet / Parquet / DuckDB / raster / vector / CSV holds."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import _common


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``inspect``."""
    parser = _common.add_command(
        sub,
        "inspect",
        help="show what a data file holds (schema, CRS, bounds, rows, ...)",
        description=(
            "Show what a file holds without loading it: schema, CRS, bounds, row or pixel count,\n"
            "GeoParquet version and covering, DuckDB tables and views, raster nodata, block size\n"
            "and value range (read block by block, or from an overview). Reads GeoParquet,\n"
            "Parquet, DuckDB, GeoTIFF (any GDAL raster), GeoJSON, GeoPackage, TopoJSON,\n"
            "Shapefile, CSV, run manifests and folders of (partitioned) Parquet files.\n"
            "Exit 3 when a file is missing or unreadable."
        ),
        example=(
            "geopipe inspect out/sample/adm2.parquet out/sample/warehouse.duckdb\n"
            "geopipe inspect --json data/sample/rwa_population_2020_modelled_232m.tif"
        ),
    )
    _common.add_files(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``inspect``; returns the exit code (the worst over the files)."""
    from geopipe.errors import GeopipeError
    from geopipe.io.inspect import inspect_file

    code = 0
    for path in args.files:
        try:
            info = inspect_file(path)
        except GeopipeError as exc:
            code = max(code, _common.report_error(exc, verbose=args.verbose))
            continue
        print(json.dumps(info, default=str) if args.json else format_info(info))
    return code


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _box(b: Any) -> str:
    return "none" if not b else ", ".join(f"{v:.6g}" for v in b) + "  (xmin, ymin, xmax, ymax)"


def _cols(columns: dict[str, str], indent: str = "  ") -> list[str]:
    width = max((len(c) for c in columns), default=0)
    return [f"{indent}  {c:<{width}}  {t}" for c, t in columns.items()]


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def format_info(info: dict[str, Any]) -> str:
    """The text ``geopipe inspect`` prints for one :func:`~geopipe.io.inspect.inspect_file` dict."""
    kind = info["kind"]
    lines = [f"{info['path']}  ({kind}, {_size(info.get('size'))})"]
    add = lines.append
    if kind in ("parquet", "geoparquet"):
        add(f"  rows: {_num(info['rows'])} in {info['row_groups']} row groups")
        geo = info.get("geoparquet")
        if geo:
            add(f"  geoparquet: version {geo['version']}, primary column '{geo['primary_column']}'")
            add(f"  encoding: {geo['encoding']}; geometry types: {geo['geometry_types']}")
            add(f"  crs: {geo['crs']}")
            add(f"  bounds: {_box(geo['bbox'])}")
            add(f"  covering: {geo['covering'] or 'none'}")
        for col, wkt in (info.get("wkt_columns") or {}).items():
            add(f"  geometry as WKT text: column '{col}', bounds {_box(wkt['bounds'])}")
        add(f"  columns ({len(info['columns'])}):")
        lines += _cols(info["columns"])
    elif kind == "parquet_dataset":
        add(f"  files: {info['files']}; rows: {_num(info['rows'])}")
        for key, values in info["partitions"].items():
            shown = ", ".join(values[:10]) + (", ..." if len(values) > 10 else "")
            add(f"  partition {key}: {len(values)} values ({shown})")
        add(f"  columns ({len(info['columns'])}, first file):")
        lines += _cols(info["columns"])
    elif kind == "duckdb":
        add(f"  spatial extension: {'loaded' if info['spatial_extension'] else 'not available'}")
        add(f"  tables ({len(info['tables'])}):")
        for name, t in info["tables"].items():
            bounds = f", bounds {_box(t['bounds'])}" if t.get("bounds") else ""
            add(f"    {name}: {_num(t['rows'])} rows, {len(t['columns'])} columns{bounds}")
        add(f"  views ({len(info['views'])}):")
        for name, v in info["views"].items():
            add(f"    {name}: {', '.join(v['columns'])}")
    elif kind == "raster":
        add(
            f"  driver: {info['driver']}; size: {info['width']} x {info['height']} pixels "
            f"({_num(info['pixels'])}), {len(info['bands'])} band(s), {info['dtype']}"
        )
        add(
            f"  crs: {info['crs']}; resolution: {info['resolution'][0]:.6g} x {info['resolution'][1]:.6g}"
        )
        add(f"  bounds: {_box(info['bounds'])}")
        if "bounds_wgs84" in info:
            add(f"  bounds (EPSG:4326): {_box(info['bounds_wgs84'])}")
        add(
            f"  nodata: {info['nodata']}; block: {info['block'][0]} x {info['block'][1]}; "
            f"compression: {info['compression']}; overviews: {info['overviews'] or 'none'}"
        )
        for b in info["bands"]:
            approx = f" ({b['approximate']})" if b.get("approximate") else ""
            add(
                f"  band {b['band']}: min {_num(b['min'])}, max {_num(b['max'])}, "
                f"valid pixels {_num(b['valid_pixels'])}, sum {_num(b['sum'])}{approx}"
            )
    elif kind == "vector":
        for name, layer in info["layers"].items():
            add(
                f"  layer '{name}' ({layer['driver']}): {_num(layer['features'])} features, "
                f"{layer['geometry_type']}, crs {layer['crs']}"
            )
            add(f"    bounds: {_box(layer['bounds'])}")
            add(f"    columns ({len(layer['columns'])}):")
            lines += _cols(layer["columns"], indent="    ")
    elif kind == "csv":
        add(
            f"  rows: {_num(info['rows'])}; delimiter {info['delimiter']!r}; encoding {info['encoding']}"
        )
        if "coordinates" in info:
            c = info["coordinates"]
            add(f"  coordinates: lon '{c['lon']}', lat '{c['lat']}'; bounds {_box(info['bounds'])}")
        add(f"  columns ({len(info['columns'])}):")
        lines += _cols(info["columns"])
    elif kind == "manifest":
        add(
            f"  run: {info['run']} ({info['run_id']}), {info['started']} -> {info['finished']}, "
            f"{info['seconds']} s"
        )
        add(f"  quality checks: {info['checks']}")
        add(f"  inputs ({len(info['inputs'])}):")
        lines += [f"    {k}: {v}" for k, v in info["inputs"].items()]
        add(f"  outputs ({len(info['outputs'])}):")
        lines += [
            f"    {k}: {_num(v)} rows" if v is not None else f"    {k}"
            for k, v in info["outputs"].items()
        ]
    return "\n".join(lines)
