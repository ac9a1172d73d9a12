"""Benchmark: exact raster zonal statistics against the peer tools.

Run ``.venv/bin/python -m benchmarks.bench_zonal`` (or ``make bench``). Data are generated once into
``benchmarks/.data/zonal/`` (git-ignored): a 6,000 x 6,000 float32 raster of 100 m pixels in UTM 36S
(tiled 256 x 256, DEFLATE), a 12,000 x 12,000 variant of 50 m pixels over the same 600 x 600 km
(4x the pixels under the same polygons), ten rasters on the 6,000 grid for the
"k rasters" case, and 2,000 Voronoi polygons (edges densified to ~1 km) covering 96 % of the
raster's width and height, so edge pixels on the outer border exist too.

Cases (every tool on the same files, in the same process; median of ``REPEATS`` runs):

* single-raster sum: geopipe ``zonal_raster`` vs exactextract alone, rasterstats (pixel centres;
  not the same numbers) and geowrangler ``create_raster_zonal_stats`` (wraps rasterstats);
* 10 rasters on one grid: one geopipe call vs 10 exactextract calls.

``GEOPIPE_BENCH_BIG=0`` skips the 12,000 x 12,000 variant; ``GEOPIPE_BENCH_SLOW_PEERS=0`` skips
rasterstats and geowrangler (they take ~10 s each per run).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

from benchmarks._common import REPEATS, median_time

DATA = Path(__file__).resolve().parent / ".data" / "zonal"
CRS = "EPSG:32736"
ORIGIN = (200_000.0, 9_800_000.0)  # top-left corner, UTM 36S metres
PIXEL = 100.0
N_POLYS = 2_000
K_RASTERS = 10
BIG = os.environ.get("GEOPIPE_BENCH_BIG", "1") != "0"
SLOW_PEERS = os.environ.get("GEOPIPE_BENCH_SLOW_PEERS", "1") != "0"


def _write_raster(path: Path, size: int, seed: int, pixel: float = PIXEL) -> None:
    """A smooth-ish positive float32 'population' raster with some nodata, written by strips."""
    rng = np.random.default_rng(seed)
    transform = Affine(pixel, 0, ORIGIN[0], 0, -pixel, ORIGIN[1])
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": transform,
        "nodata": -99999.0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        step = 1024
        cols = np.arange(size)
        for r0 in range(0, size, step):
            rows = np.arange(r0, min(r0 + step, size))
            scale = pixel / PIXEL
            base = 5 + 4 * np.sin(rows[:, None] * scale / 300.0) * np.cos(
                cols[None, :] * scale / 450.0
            )
            block = (base * rng.gamma(2.0, 1.0, (len(rows), size))).astype("float32")
            block[rng.random(block.shape) < 0.01] = -99999.0
            dst.write(block, 1, window=((r0, r0 + len(rows)), (0, size)))
    tmp.replace(path)


def make_polygons() -> gpd.GeoDataFrame:
    path = DATA / "polys.parquet"
    if path.exists():
        return gpd.read_parquet(path)
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    extent = 6_000 * PIXEL
    x0, y1 = ORIGIN
    box = shapely.box(
        x0 + 0.02 * extent, y1 - 0.98 * extent, x0 + 0.98 * extent, y1 - 0.02 * extent
    )
    bx = shapely.bounds(box)
    seeds = shapely.multipoints(
        np.c_[rng.uniform(bx[0], bx[2], N_POLYS), rng.uniform(bx[1], bx[3], N_POLYS)]
    )
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.segmentize(shapely.intersection(cells, box), 1_000.0)
    polys = gpd.GeoDataFrame(
        {"ucode": [f"U{i:05d}" for i in range(len(cells))]}, geometry=cells, crs=CRS
    )
    polys.to_parquet(path)
    return polys


def make_rasters() -> dict[str, Any]:
    """Paths of the cached rasters (generated on first use)."""
    DATA.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"r6000": DATA / "r6000.tif", "r12000": DATA / "r12000_50m.tif"}
    out["k"] = [DATA / f"k{i:02d}.tif" for i in range(K_RASTERS)]
    if not out["r6000"].exists():
        _write_raster(out["r6000"], 6_000, 1)
    if BIG and not out["r12000"].exists():
        _write_raster(out["r12000"], 12_000, 2, pixel=PIXEL / 2)
    for i, p in enumerate(out["k"]):
        if not p.exists():
            _write_raster(p, 6_000, 100 + i)
    return out


def _geopipe_sum(polys: gpd.GeoDataFrame, raster: Path) -> np.ndarray:
    from geopipe.zonal.raster import zonal_raster

    return zonal_raster(polys, raster, stats=("sum",))["sum"].to_numpy()


def _geopipe_k(polys: gpd.GeoDataFrame, rasters: list[Path]) -> np.ndarray:
    from geopipe.zonal.raster import zonal_raster

    out = zonal_raster(polys, {f"r{i}": p for i, p in enumerate(rasters)}, stats=("sum",))
    return out[[f"r{i}_sum" for i in range(len(rasters))]].to_numpy()


def _exactextract_sum(polys: gpd.GeoDataFrame, raster: Path) -> np.ndarray:
    from exactextract import exact_extract

    return exact_extract(str(raster), polys, "sum", output="pandas")["sum"].to_numpy()


def _rasterstats_sum(polys: gpd.GeoDataFrame, raster: Path) -> np.ndarray:
    from rasterstats import zonal_stats

    res = zonal_stats(polys, str(raster), stats=["sum"])
    return np.array([r["sum"] or 0.0 for r in res])


def _geowrangler_sum(polys: gpd.GeoDataFrame, raster: Path) -> np.ndarray:
    from geowrangler.raster_zonal_stats import create_raster_zonal_stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = create_raster_zonal_stats(
            polys, str(raster), aggregation={"func": ["sum"], "column": "v"}
        )
    return out["v_sum"].fillna(0).to_numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))


def _case_single(polys, raster: Path, label: str, rows: list) -> None:
    t_gp, ours = median_time(lambda: _geopipe_sum(polys, raster))
    rows.append((label, "geopipe zonal_raster", t_gp, 1.0, "reference"))
    t, ee = median_time(lambda: _exactextract_sum(polys, raster))
    rows.append((label, "exactextract", t, t / t_gp, f"max rel diff {_rel(ours, ee):.1e}"))
    if SLOW_PEERS:
        reps = max(1, REPEATS - 2)
        t, rs = median_time(lambda: _rasterstats_sum(polys, raster), reps)
        rows.append(
            (label, "rasterstats (centres)", t, t / t_gp, f"total {rs.sum() / ours.sum() - 1:+.2%}")
        )
        t, gw = median_time(lambda: _geowrangler_sum(polys, raster), reps)
        rows.append(
            (
                label,
                "geowrangler raster zonal",
                t,
                t / t_gp,
                f"total {gw.sum() / ours.sum() - 1:+.2%}",
            )
        )


def main() -> None:
    """Generate (once) and run every case; print a table of medians and ratios."""
    t0 = time.perf_counter()
    polys = make_polygons()
    rasters = make_rasters()
    print(
        f"bench_zonal: {len(polys):,} polygons; rasters 6,000^2 (and 12,000^2: {BIG}), "
        f"{K_RASTERS} rasters on one grid; median of {REPEATS} "
        f"(data ready in {time.perf_counter() - t0:.1f} s)"
    )
    rows: list[tuple[str, str, float, float, str]] = []
    _case_single(polys, rasters["r6000"], "sum 6000^2", rows)
    if BIG:
        _case_single(polys, rasters["r12000"], "sum 12000^2", rows)
    t_gp, ours = median_time(lambda: _geopipe_k(polys, rasters["k"]))
    rows.append((f"{K_RASTERS} rasters", "geopipe zonal_raster (1 call)", t_gp, 1.0, "reference"))

    def _ee_k() -> np.ndarray:
        return np.column_stack([_exactextract_sum(polys, p) for p in rasters["k"]])

    t, ee = median_time(_ee_k, max(1, REPEATS - 2))
    rows.append(
        (
            f"{K_RASTERS} rasters",
            f"exactextract x {K_RASTERS} calls",
            t,
            t / t_gp,
            f"max rel diff {_rel(ours, ee):.1e}",
        )
    )
    print(f"{'case':<14} {'tool':<32} {'median s':>9} {'x geopipe':>10}  note")
    for case, tool, t, ratio, note in rows:
        print(f"{case:<14} {tool:<32} {t:9.2f} {ratio:10.2f}  {note}")


if __name__ == "__main__":
    main()
