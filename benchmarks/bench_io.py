"""Benchmark: writing and reading back 1,000,000 H3 cells with 10 indicator columns.

Run ``python -m benchmarks io`` (or ``make bench``). The cells (H3 resolution 8, a disk of radius
577 around Kigali, cut to exactly 1,000,000, in random row order, as a real groupby result would
be) and their 10 random indicator columns are generated once into ``benchmarks/.data/io/``
(git-ignored); the polygons are rebuilt from the cell ids with h3ronpy on every run.

Compared on the same GeoDataFrame in the same process, every file snappy-compressed:

* write: geopipe ``write_geoparquet`` (GeoParquet 1.1, H3-sorted, atomic and fsynced) vs
  ``GeoDataFrame.to_parquet(write_covering_bbox=True)`` vs DuckDB ``COPY ... TO`` (spatial);
* read everything back into a GeoDataFrame: ``read_geoparquet`` vs ``geopandas.read_parquet`` vs
  DuckDB ``read_parquet`` (+ WKB decode), each on its own file;
* read a small window (about 1% of the area): ``read_geoparquet(bbox=...)`` vs
  ``geopandas.read_parquet(bbox=...)`` vs DuckDB ``ST_Intersects_Extent`` on its own file.

Each operation runs ``GEOPIPE_BENCH_IO_REPEATS`` rounds (default 5); a round runs every tool once,
in an order that rotates and reverses from round to round (``alternating_times``), so a busy
moment of a shared machine hits the tools alike. Printed: medians, tool/geopipe ratios of the
medians and the lowest and highest ratio of a single round. Each tool's row counts are checked
against the others, the GeoParquet 1.1 check is run on every file, and geopipe's file is checked
to be byte-identical from round to round. The numbers go to ``benchmarks/results/latest.json``
under the key ``"io"``.
"""

from __future__ import annotations

import hashlib
import os
import statistics
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

from benchmarks._common import alternating_times, save_result
from geopipe.io.geoparquet import (
    _row_groups_for_bbox,
    check_geoparquet,
    read_geoparquet,
    write_geoparquet,
)
from geopipe.io.warehouse import load_spatial

DATA = Path(__file__).resolve().parent / ".data" / "io"
N_CELLS = 1_000_000
IO_REPEATS = int(os.environ.get("GEOPIPE_BENCH_IO_REPEATS", "5"))
CODEC = "snappy"  # geopipe's default and geopandas'; DuckDB is told the same
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """Run the benchmark, print one table and store it under "io" in results/latest.json."""
    t0 = time.perf_counter()
    gdf = make_data()
    print(
        f"bench_io: {len(gdf):,} H3 res-{RES} cells x {len(INDICATORS)} indicator columns "
        f"(data ready in {time.perf_counter() - t0:.1f} s; {IO_REPEATS} alternating rounds, "
        f"{CODEC}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {k: DATA / f"out_{k}.parquet" for k in ("geopipe", "geopandas", "duckdb")}
    con = duckdb.connect()
    duck = load_spatial(con)
    if not duck:
        print("DuckDB spatial extension not available: DuckDB columns skipped")
    minx, miny, maxx, maxy = gdf.total_bounds
    wx, wy = (maxx - minx) * 0.1, (maxy - miny) * 0.1
    window = (minx + 4 * wx, miny + 4 * wy, minx + 5 * wx, miny + 5 * wy)  # ~1% of the area

    def duck_write() -> None:
        src = pa.table(gdf.to_arrow(geometry_encoding="WKB"))
        con.register("src", src)
        con.execute(
            f"COPY (SELECT * FROM src) TO '{paths['duckdb']}' (FORMAT parquet, COMPRESSION {CODEC})"
        )
        con.unregister("src")

    cols = ", ".join(["cell_id", "ucode", *INDICATORS])
    duck_sql = f"SELECT {cols}, ST_AsWKB(geometry) AS wkb FROM read_parquet('{paths['duckdb']}')"
    envelope = f"ST_MakeEnvelope({', '.join(map(str, window))})"
    ops: dict[str, dict[str, Callable[[], Any]]] = {
        "write": {
            "geopipe": lambda: write_geoparquet(gdf, paths["geopipe"]),
            "geopandas": lambda: gdf.to_parquet(
                paths["geopandas"], compression=CODEC, write_covering_bbox=True
            ),
        },
        "read all": {
            "geopipe": lambda: read_geoparquet(paths["geopipe"]),
            "geopandas": lambda: gpd.read_parquet(paths["geopandas"]),
        },
        "read bbox": {
            "geopipe": lambda: read_geoparquet(paths["geopipe"], bbox=window),
            "geopandas": lambda: gpd.read_parquet(paths["geopandas"], bbox=window),
        },
    }
    if duck:
        ops["write"]["duckdb"] = duck_write
        ops["read all"]["duckdb"] = lambda: _duck_to_gdf(con, duck_sql)
        ops["read bbox"]["duckdb"] = lambda: _duck_to_gdf(
            con, f"{duck_sql} WHERE ST_Intersects_Extent(geometry, {envelope})"
        )
    tools = list(ops["write"])

    runs: dict[str, dict[str, list[float]]] = {}
    rows: dict[str, dict[str, int]] = {}
    for op, fns in ops.items():
        runs[op], results = alternating_times(fns, IO_REPEATS)
        rows[op] = {
            t: len(r) if isinstance(r, pd.DataFrame) else len(gdf) for t, r in results.items()
        }
        if op == "write":  # one more write, untimed, must give the same bytes
            last = _sha256(paths["geopipe"])
            identical = _sha256(write_geoparquet(gdf, paths["geopipe"])) == last
    med = {op: {t: statistics.median(v) for t, v in r.items()} for op, r in runs.items()}

    for op in ("read all", "read bbox"):
        if len(set(rows[op].values())) != 1:
            print(f"WARNING: row counts differ for {op}: {rows[op]}")
    print(
        f"bbox window {tuple(round(float(v), 3) for v in window)} -> {rows['read bbox']['geopipe']:,} rows"
    )
    peers = [t for t in tools if t != "geopipe"]
    header = f"{'operation':<10} " + " ".join(f"{t + ' s':>12}" for t in tools)
    header += " " + " ".join(f"{t + '/geopipe':>18}" for t in peers)
    header += " " + " ".join(f"{t + ' rounds':>22}" for t in peers)
    print(header)
    print("-" * len(header))
    ratios: dict[str, dict[str, Any]] = {}
    for op in ops:
        ratios[op] = {}
        line = f"{op:<10} " + " ".join(f"{med[op][t]:>12.2f}" for t in tools)
        for t in peers:
            per_round = [p / g for p, g in zip(runs[op][t], runs[op]["geopipe"], strict=True)]
            ratios[op][t] = {
                "median_ratio": med[op][t] / med[op]["geopipe"],
                "round_ratios": per_round,
            }
        line += " " + " ".join(f"{ratios[op][t]['median_ratio']:>18.2f}" for t in peers)
        line += " " + " ".join(
            f"{min(ratios[op][t]['round_ratios']):>10.2f} - {max(ratios[op][t]['round_ratios']):<9.2f}"
            for t in peers
        )
        print(line)
    pf = pq.ParquetFile(paths["geopipe"])
    touched = len(_row_groups_for_bbox(pf, "bbox", window))
    print(f"geopipe bbox read: {touched} of {pf.metadata.num_row_groups} row groups read")
    sizes = {t: paths[t].stat().st_size for t in tools}
    groups = {t: pq.read_metadata(paths[t]).num_row_groups for t in tools}
    print(
        "file size: "
        + " ".join(f"{t}={s / 1e6:.0f} MB" for t, s in sizes.items())
        + "; row groups: "
        + " ".join(f"{t}={g}" for t, g in groups.items())
    )
    verdicts = {}
    for t in tools:
        problems = check_geoparquet(paths[t])
        verdicts[t] = problems[:3]
        verdict = "passes" if not problems else f"fails ({len(problems)}: {problems[0]})"
        print(f"GeoParquet 1.1 check, {t} file: {verdict}")
    print(f"geopipe reruns byte-identical: {'yes' if identical else 'NO'}")
    saved = save_result(
        "io",
        {
            "rows": len(gdf),
            "rounds": IO_REPEATS,
            "codec": CODEC,
            "load_average_1min": os.getloadavg()[0],
            "cores": os.cpu_count(),
            "median_s": med,
            "round_s": runs,
            "ratios_vs_geopipe": ratios,
            "bbox_row_groups_read": touched,
            "row_groups": groups,
            "file_bytes": sizes,
            "geoparquet_check_problems": verdicts,
            "geopipe_reruns_identical": identical,
        },
    )
    print(f"results: {saved} (key 'io')")
    for p in paths.values():  # keep only the cached input in benchmarks/.data
        p.unlink(missing_ok=True)
    print(f"bench_io total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
