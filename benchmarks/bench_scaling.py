"""Many countries: per-country cost and engines (issue 14's scaling series, small by default).

Synthetic countries side by side: each a square of ``N x N`` pixels of 100 m (default 2,000²,
``GEOPIPE_BENCH_SCALE_N``) with 10 x 10 admin units under a country unit, a population raster and
2,000 facilities; the pipeline sums the population, counts the facilities and computes the
population within 5 km. For 1 and 4 countries (``GEOPIPE_BENCH_SCALE_COUNTRIES``, e.g. ``1,4,16``)
and each engine (``GEOPIPE_BENCH_SCALE_ENGINES``: local, processes, dask), it prints the wall
time, the time per country and the peak memory of this process (the workers' own memory is not
included). The tables of every engine are checked equal.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import geopipe as gp

N = int(os.environ.get("GEOPIPE_BENCH_SCALE_N", "2000"))
COUNTRIES = [int(c) for c in os.environ.get("GEOPIPE_BENCH_SCALE_COUNTRIES", "1,4").split(",")]
ENGINES = os.environ.get("GEOPIPE_BENCH_SCALE_ENGINES", "local,processes").split(",")
PIXEL = 100 / 111_320  # ~100 m in degrees near the equator


def make_country(folder: Path, iso: str, k: int, rng: np.random.Generator) -> None:
    """One synthetic country: admin units (GeoJSON), a population raster, facilities (CSV)."""
    import geopandas as gpd
    import pandas as pd
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    x0, y0 = 10.0 + k * (N * PIXEL + 0.1), 0.0
    size = N * PIXEL
    pop = rng.lognormal(1.0, 1.2, (N, N)).astype("float32")
    profile = {
        "driver": "GTiff",
        "width": N,
        "height": N,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(x0, y0 + size, PIXEL, PIXEL),
        "nodata": -1,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    with rasterio.open(folder / "pop.tif", "w", **profile) as dst:
        dst.write(pop, 1)
    step = size / 10
    boxes = [
        shapely.box(x0 + i * step, y0 + j * step, x0 + (i + 1) * step, y0 + (j + 1) * step)
        for j in range(10)
        for i in range(10)
    ]
    units = gpd.GeoDataFrame(
        {
            "ucode": [f"{iso}_V1"] + [f"{iso}_{n + 1:04d}_V1" for n in range(100)],
            "name": [iso] + [f"{iso} unit {n + 1}" for n in range(100)],
            "admin_level": [0] + [1] * 100,
            "parent": [None] + [f"{iso}_V1"] * 100,
        },
        geometry=[shapely.box(x0, y0, x0 + size, y0 + size), *boxes],
        crs=4326,
    )
    units.to_file(folder / "admin.geojson")
    pd.DataFrame(
        {
            "lon": x0 + rng.random(2000) * size,
            "lat": y0 + rng.random(2000) * size,
            "name": [f"f{i}" for i in range(2000)],
        }
    ).to_csv(folder / "facilities.csv", index=False)


def config(root: Path, isos: list[str]) -> dict:
    return {
        "name": "scaling",
        "date": "2024-01-01",
        "countries": isos,
        "sources": {
            "admin": {
                "kind": "admin",
                "path": str(root / "{iso3}" / "admin.geojson"),
                "iso3": "{iso3}",
                "mapping": {
                    "name": "name",
                    "id": "ucode",
                    "ucode": "ucode",
                    "level": "admin_level",
                    "parent_id": "parent",
                },
            },
            "population_total": {"kind": "raster", "path": str(root / "{iso3}" / "pop.tif")},
            "facilities": {"kind": "points", "path": str(root / "{iso3}" / "facilities.csv")},
        },
        "steps": [
            {"kind": "raster_stats", "raster": "population_total"},
            {"kind": "point_count", "points": "facilities"},
            {
                "kind": "distance_coverage",
                "facilities": "facilities",
                "children": None,
                "distance_km": 5,
                "service": "health",
                "facility_name": "health facility",
            },
        ],
    }


def main() -> None:
    """Run the series and print one table (and write benchmarks/results/scaling.json)."""
    import warnings

    from geopipe.pipeline.engines import close_clients

    rng = np.random.default_rng(14)
    root = Path(tempfile.mkdtemp(prefix="geopipe-scaling-"))
    most = max(COUNTRIES)
    isos = [f"X{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(most)]
    t0 = time.perf_counter()
    for k, iso in enumerate(isos):
        make_country(root / iso, iso, k, rng)
    print(
        f"bench_scaling: {most} synthetic countries of {N:,}² pixels, 100 units, 2,000 facilities each "
        f"(made in {time.perf_counter() - t0:.0f} s)"
    )
    print(f"{'countries':>9} {'engine':>10} {'wall s':>8} {'s/country':>10} {'peak MB':>8}")
    results, tables = [], {}
    for n in COUNTRIES:
        for engine in ENGINES:
            p = gp.Pipeline.from_dict(config(root, isos[:n]))
            out = root / f"out_{n}_{engine}"
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", gp.GeopipeWarning)
                run = gp.run_pipeline(
                    p, output=out, engine=engine, workers=2, partition_level=1, force=True
                )
            wall = time.perf_counter() - t
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            results.append(
                {
                    "countries": n,
                    "engine": engine,
                    "wall_s": wall,
                    "per_country_s": wall / n,
                    "peak_mb": peak,
                }
            )
            print(f"{n:>9} {engine:>10} {wall:>8.1f} {wall / n:>10.2f} {peak:>8.0f}")
            fact = (
                run.tables["fact_indicator"]
                .sort_values(["ucode", "indicator_id"])
                .reset_index(drop=True)
            )
            ref = tables.setdefault(n, fact)
            assert ref["value"].equals(fact["value"]), f"{engine} differs from {ENGINES[0]}"
    close_clients()
    for n in COUNTRIES:
        local = next(r for r in results if r["countries"] == n and r["engine"] == "local")
        for r in results:
            if r["countries"] == n and r["engine"] != "local":
                print(
                    f"{n} countries: {r['engine']} is {local['wall_s'] / r['wall_s']:.2f}x as fast as local"
                )
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"n": N, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
