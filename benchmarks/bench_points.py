"""Benchmark: point counts and nearest-facility distances against the peer tools.

Run ``.venv/bin/python -m benchmarks.bench_points`` (or ``make bench``). Data are generated once
into ``benchmarks/.data/`` (git-ignored): 2,000 Voronoi polygons over a 6° x 6° area (edges
densified to about 1 km, ~80 vertices per polygon), 1,000,000 uniform random points and 50,000
random facilities, all EPSG:4326.

Every tool runs on the same data in the same process; the table prints the median time of
``REPEATS`` runs and the ratio to geopipe. Counts must be identical (random points never fall
exactly on a border, so "within" and "intersects" agree).
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from benchmarks._common import REPEATS, median_time

DATA = Path(__file__).resolve().parent / ".data" / "points"
N_POLYS = 2_000
N_POINTS = 1_000_000
N_FACILITIES = 50_000
BOX = (29.0, -5.0, 35.0, 1.0)


def make_data() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Polygons, points and facilities (cached as GeoParquet in benchmarks/.data/points)."""
    DATA.mkdir(parents=True, exist_ok=True)
    files = [DATA / f"{n}.parquet" for n in ("polys", "points", "facilities")]
    if all(f.exists() for f in files):
        return tuple(gpd.read_parquet(f) for f in files)  # type: ignore[return-value]
    rng = np.random.default_rng(42)
    xmin, ymin, xmax, ymax = BOX
    seeds = shapely.multipoints(
        np.c_[rng.uniform(xmin, xmax, N_POLYS), rng.uniform(ymin, ymax, N_POLYS)]
    )
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=shapely.box(*BOX)))
    cells = shapely.intersection(cells, shapely.box(*BOX))
    cells = shapely.segmentize(cells, 0.01)
    ucode = [f"U{i:05d}" for i in range(len(cells))]
    polys = gpd.GeoDataFrame({"ucode": ucode}, geometry=cells, crs=4326)
    pts = gpd.GeoDataFrame(
        {"kind": rng.choice(["a", "b", "c"], N_POINTS)},
        geometry=shapely.points(
            rng.uniform(xmin, xmax, N_POINTS), rng.uniform(ymin, ymax, N_POINTS)
        ),
        crs=4326,
    )
    fac = gpd.GeoDataFrame(
        geometry=shapely.points(
            rng.uniform(xmin, xmax, N_FACILITIES), rng.uniform(ymin, ymax, N_FACILITIES)
        ),
        crs=4326,
    )
    for frame, f in zip((polys, pts, fac), files, strict=True):
        frame.to_parquet(f)
    return polys, pts, fac


# --------------------------------------------------------------------------- count peers
def _geopipe_count(polys: gpd.GeoDataFrame, pts: gpd.GeoDataFrame) -> np.ndarray:
    from geopipe.zonal.points import count_points

    return count_points(polys, pts)["n_points"].to_numpy()


def _sjoin_count(polys: gpd.GeoDataFrame, pts: gpd.GeoDataFrame) -> np.ndarray:
    joined = gpd.sjoin(pts, polys, predicate="within", how="inner")
    return np.bincount(polys.index.get_indexer(joined["index_right"]), minlength=len(polys))


def _strtree_count(polys: gpd.GeoDataFrame, pts: gpd.GeoDataFrame) -> np.ndarray:
    tree = shapely.STRtree(pts.geometry.array)
    poly_idx, _ = tree.query(polys.geometry.array, predicate="contains")
    return np.bincount(poly_idx, minlength=len(polys))


def _dask_count(polys: gpd.GeoDataFrame, pts: gpd.GeoDataFrame) -> np.ndarray:
    import dask_geopandas

    dpts = dask_geopandas.from_geopandas(pts, npartitions=2)
    joined = dpts.sjoin(polys, predicate="within").compute()
    return np.bincount(polys.index.get_indexer(joined["index_right"]), minlength=len(polys))


def _duckdb_connection():
    import duckdb
    import duckdb_extension_spatial

    ext_dir = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    ext = next(ext_dir.rglob("spatial.duckdb_extension"))
    con = duckdb.connect()
    con.execute(f"LOAD '{ext.as_posix()}'")
    con.execute("SET threads TO 2")
    return con


def _duckdb_count(polys: gpd.GeoDataFrame, pts: gpd.GeoDataFrame, con) -> np.ndarray:
    import pyarrow as pa

    poly_tab = pa.table({"pid": np.arange(len(polys)), "wkb": shapely.to_wkb(polys.geometry.array)})
    xy = shapely.get_coordinates(pts.geometry.array)
    pt_tab = pa.table({"x": xy[:, 0], "y": xy[:, 1]})
    con.register("poly_tab", poly_tab)
    con.register("pt_tab", pt_tab)
    res = con.execute(
        """
        WITH p AS (SELECT pid, ST_GeomFromWKB(wkb) AS g FROM poly_tab),
             q AS (SELECT ST_Point(x, y) AS g FROM pt_tab)
        SELECT p.pid, count(*) AS n FROM p JOIN q ON ST_Contains(p.g, q.g) GROUP BY p.pid
        """
    ).fetchnumpy()
    out = np.zeros(len(polys), dtype=np.int64)
    out[res["pid"]] = res["n"]
    return out


# --------------------------------------------------------------------------- nearest peers
def _geopipe_nearest(pts: gpd.GeoDataFrame, fac: gpd.GeoDataFrame) -> np.ndarray:
    from geopipe.zonal.distance import nearest_distance

    return nearest_distance(pts, fac, name="d")["d"].to_numpy()


def _sjoin_nearest(pts: gpd.GeoDataFrame, fac: gpd.GeoDataFrame) -> np.ndarray:
    crs = "EPSG:32736"  # UTM 36S: one zone stretched over the 6° box (what many scripts do)
    p, f = pts[[pts.geometry.name]].to_crs(crs), fac[[fac.geometry.name]].to_crs(crs)
    joined = gpd.sjoin_nearest(p, f, distance_col="d")
    return joined[~joined.index.duplicated()]["d"].to_numpy()


def main() -> None:
    """Run both benchmarks and print a table of medians and ratios."""
    t0 = time.perf_counter()
    polys, pts, fac = make_data()
    print(
        f"bench_points: {len(pts):,} points x {len(polys):,} polygons; "
        f"nearest: {len(pts):,} origins x {len(fac):,} facilities; "
        f"median of {REPEATS} (data ready in {time.perf_counter() - t0:.1f} s)"
    )
    con = _duckdb_connection()
    rows: list[tuple[str, str, float, str]] = []
    t_ours, ref = median_time(lambda: _geopipe_count(polys, pts))
    rows.append(("count", "geopipe count_points", t_ours, "reference"))
    peers = {
        "geopandas sjoin(within)": lambda: _sjoin_count(polys, pts),
        "shapely STRtree(points)": lambda: _strtree_count(polys, pts),
        "dask-geopandas (2 parts)": lambda: _dask_count(polys, pts),
        "DuckDB spatial": lambda: _duckdb_count(polys, pts, con),
    }
    for label, fn in peers.items():
        t, counts = median_time(fn)
        same = "identical" if np.array_equal(np.asarray(counts), ref) else "DIFFERENT"
        rows.append(("count", label, t, same))
    t_near, d_ours = median_time(lambda: _geopipe_nearest(pts, fac))
    rows.append(("nearest", "geopipe nearest_distance", t_near, "geodesic (reference)"))
    t_sj, d_sj = median_time(lambda: _sjoin_nearest(pts, fac), repeats=max(1, REPEATS - 1))
    rel = np.abs(np.asarray(d_sj) - np.asarray(d_ours)) / np.maximum(np.asarray(d_ours), 1.0)
    rows.append(
        (
            "nearest",
            "geopandas sjoin_nearest (UTM 36S)",
            t_sj,
            f"distance error vs geodesic: median {np.median(rel):.2%}, max {rel.max():.2%}",
        )
    )
    base = {"count": t_ours, "nearest": t_near}
    print(f"{'task':8} {'tool':36} {'median s':>9} {'x geopipe':>10}  result")
    for task, label, t, note in rows:
        print(f"{task:8} {label:36} {t:9.2f} {t / base[task]:10.2f}  {note}")
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
