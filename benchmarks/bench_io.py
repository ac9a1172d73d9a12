"""Benchmark: writing and reading back 1,000,000 H3 cells with 10 indicator columns.

Run ``.venv/bin/python -m benchmarks.bench_io`` (or ``make bench``). The cells (H3 resolution 8,
a disk of radius 577 around Kigali, cut to exactly 1,000,000, in random row order, as a real
groupby result would be) and their 10 random indicator columns are generated once into
``benchmarks/.data/io/`` (git-ignored); the polygons are rebuilt from the cell ids with h3ronpy
on every run.

Compared on the same GeoDataFrame in the same process (median of ``GEOPIPE_BENCH_REPEATS`` runs,
default 3; ratio = tool time / geopipe time):

* write: geopipe ``write_geoparquet`` (GeoParquet 1.1, H3-sorted, zstd, atomic) vs
  ``GeoDataFrame.to_parquet(write_covering_bbox=True)`` vs DuckDB ``COPY ... TO`` (spatial);
* read everything back into a GeoDataFrame: ``read_geoparquet`` vs ``geopandas.read_parquet`` vs
  DuckDB ``read_parquet`` (+ WKB decode), each on its own file;
* read a small window (about 1% of the area): ``read_geoparquet(bbox=...)`` vs
  ``geopandas.read_parquet(bbox=...)`` vs DuckDB ``ST_Intersects_Extent`` on its own file.

Each tool's row counts are checked against the others; the GeoParquet 1.1 check is run on every
file and its verdict printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from benchmarks._common import REPEATS, median_time
from geopipe.io.geoparquet import (
    _row_groups_for_bbox,
    check_geoparquet,
    read_geoparquet,
    write_geoparquet,
)
from geopipe.io.warehouse import load_spatial

DATA = Path(__file__).resolve().parent / ".data" / "io"
N_CELLS = 1_000_000
RES = 8
CENTRE = (-1.95, 30.06)  # Kigali
INDICATORS = [
    "population_total",
    "population_u18",
    "population_u5",
    "children_in_poverty",
    "child_poverty_rate",
    "wealth_index_mean",
    "download_mbps_mean",
    "schools_total",
    "health_facilities",
    "distance_to_health_km_mean",
]


def make_data() -> gpd.GeoDataFrame:
    """1,000,000 H3 cells with 10 indicator columns (ids cached in benchmarks/.data/io)."""
    DATA.mkdir(parents=True, exist_ok=True)
    cache = DATA / "cells.parquet"
    if not cache.exists():
        origin = h3.latlng_to_cell(*CENTRE, RES)
        ids = np.array(sorted(h3.str_to_int(c) for c in h3.grid_disk(origin, 577)), np.uint64)
        rng = np.random.default_rng(42)
        ids = rng.permutation(ids[:N_CELLS])
        cols: dict[str, Any] = {"cell": ids}
        cols |= {name: rng.gamma(2.0, 50.0, N_CELLS) for name in INDICATORS}
        pq.write_table(pa.table(cols), cache)
    table = pq.read_table(cache)
    ids = table.column("cell").to_numpy()
    try:
        from h3ronpy.vector import cells_to_wkb_polygons

        wkb = pa.array(cells_to_wkb_polygons(pa.array(ids))).to_numpy(zero_copy_only=False)
        geoms = shapely.from_wkb(wkb)
    except ImportError:  # slower fallback with plain h3-py
        geoms = np.array(
            [
                shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(h3.int_to_str(int(c)))])
                for c in ids
            ],
            dtype=object,
        )
    frame = table.drop(["cell"]).to_pandas()
    frame.insert(0, "cell_id", [h3.int_to_str(int(c)) for c in ids])
    frame.insert(1, "ucode", "RWA_0001_0001_V1")
    return gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")


def _duck_to_gdf(con: duckdb.DuckDBPyConnection, sql: str) -> gpd.GeoDataFrame:
    table = con.sql(sql).arrow()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    wkb = table.column("wkb").to_numpy(zero_copy_only=False)
    df = table.drop(["wkb"]).to_pandas()
    return gpd.GeoDataFrame(df, geometry=shapely.from_wkb(wkb), crs="EPSG:4326")


def main() -> None:
    """Run the benchmark and print one table."""
    t0 = time.perf_counter()
    gdf = make_data()
    print(
        f"bench_io: {len(gdf):,} H3 res-{RES} cells x {len(INDICATORS)} indicator columns "
        f"(data ready in {time.perf_counter() - t0:.1f} s; median of {REPEATS} runs)"
    )
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {k: DATA / f"out_{k}.parquet" for k in ("geopipe", "geopandas", "duckdb")}
    con = duckdb.connect()
    if not load_spatial(con):
        print("DuckDB spatial extension not available: DuckDB columns skipped")
    minx, miny, maxx, maxy = gdf.total_bounds
    wx, wy = (maxx - minx) * 0.1, (maxy - miny) * 0.1
    window = (minx + 4 * wx, miny + 4 * wy, minx + 5 * wx, miny + 5 * wy)  # ~1% of the area

    def duck_write() -> None:
        src = pa.table(gdf.to_arrow(geometry_encoding="WKB"))
        con.register("src", src)
        con.execute(
            f"COPY (SELECT * FROM src) TO '{paths['duckdb']}' (FORMAT parquet, COMPRESSION zstd)"
        )
        con.unregister("src")

    cols = ", ".join(["cell_id", "ucode", *INDICATORS])
    tools: dict[str, dict[str, Callable[[], Any]]] = {
        "geopipe": {
            "write": lambda: write_geoparquet(gdf, paths["geopipe"]),
            "read all": lambda: read_geoparquet(paths["geopipe"]),
            "read bbox": lambda: read_geoparquet(paths["geopipe"], bbox=window),
        },
        "geopandas": {
            "write": lambda: gdf.to_parquet(paths["geopandas"], write_covering_bbox=True),
            "read all": lambda: gpd.read_parquet(paths["geopandas"]),
            "read bbox": lambda: gpd.read_parquet(paths["geopandas"], bbox=window),
        },
        "duckdb": {
            "write": duck_write,
            "read all": lambda: _duck_to_gdf(
                con,
                f"SELECT {cols}, ST_AsWKB(geometry) AS wkb FROM read_parquet('{paths['duckdb']}')",
            ),
            "read bbox": lambda: _duck_to_gdf(
                con,
                f"SELECT {cols}, ST_AsWKB(geometry) AS wkb FROM read_parquet('{paths['duckdb']}') "
                f"WHERE ST_Intersects_Extent(geometry, ST_MakeEnvelope({', '.join(map(str, window))}))",
            ),
        },
    }
    times: dict[str, dict[str, float]] = {}
    rows: dict[str, dict[str, int]] = {}
    for tool, ops in tools.items():
        times[tool], rows[tool] = {}, {}
        for op, fn in ops.items():
            seconds, result = median_time(fn)
            times[tool][op] = seconds
            rows[tool][op] = len(result) if isinstance(result, pd.DataFrame) else len(gdf)

    for op in ("read all", "read bbox"):
        counts = {t: rows[t][op] for t in tools}
        if len(set(counts.values())) != 1:
            print(f"WARNING: row counts differ for {op}: {counts}")
    print(
        f"bbox window {tuple(round(float(v), 3) for v in window)} -> {rows['geopipe']['read bbox']:,} rows"
    )
    header = f"{'operation':<10} " + " ".join(f"{t + ' s':>12}" for t in tools)
    header += " " + " ".join(f"{t + '/geopipe':>18}" for t in tools if t != "geopipe")
    print(header)
    print("-" * len(header))
    for op in ("write", "read all", "read bbox"):
        line = f"{op:<10} " + " ".join(f"{times[t][op]:>12.2f}" for t in tools)
        line += " " + " ".join(
            f"{times[t][op] / times['geopipe'][op]:>18.2f}" for t in tools if t != "geopipe"
        )
        print(line)
    touched = len(_row_groups_for_bbox(pq.ParquetFile(paths["geopipe"]), "bbox", window))
    print(
        f"geopipe bbox read: {touched} of {pq.read_metadata(paths['geopipe']).num_row_groups} "
        "row groups read"
    )
    sizes = " ".join(f"{t}={paths[t].stat().st_size / 1e6:.0f} MB" for t in tools)
    groups = " ".join(f"{t}={pq.read_metadata(paths[t]).num_row_groups}" for t in tools)
    print(f"file size: {sizes}; row groups: {groups}")
    for t in tools:
        problems = check_geoparquet(paths[t])
        verdict = "passes" if not problems else f"fails ({len(problems)}: {problems[0]})"
        print(f"GeoParquet 1.1 check, {t} file: {verdict}")
    for p in paths.values():  # keep only the cached input in benchmarks/.data
        p.unlink(missing_ok=True)
    print(f"bench_io total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
