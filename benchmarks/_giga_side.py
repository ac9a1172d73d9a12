"""The gigaspatial half of ``bench_gigaspatial``: runs ONE case with gigaspatial's generators.

Run by ``bench_gigaspatial`` in a subprocess with a Python that has gigaspatial installed (its own
venv when installing it into geopipe's would change geopipe's packages), so it imports neither
geopipe nor anything from this checkout::

    <giga python> benchmarks/_giga_side.py JOB.json RESULT.json

``JOB.json``: ``{"case": name, "repeats": n, ...inputs}``; every input is a local file (GeoParquet
written by the benchmark, or a raster of the sample): nothing is downloaded. ``RESULT.json``:
``{"times": [s, ...], "import_s": s, "ids": [...], "values": [...], ...}``. The timed part of each
repeat is what an analyst calls: the generator's ``map_*`` method (and, for H3, the generator's
construction, which computes the cell cover). Progress bars and logs go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
from gigaspatial.core.io.local_data_store import LocalDataStore  # noqa: E402
from gigaspatial.generators import PoiViewGenerator  # noqa: E402
from gigaspatial.generators.zonal import (  # noqa: E402
    AdminBoundariesViewGenerator,
    GeometryBasedZonalViewGenerator,
    H3ViewGenerator,
)
from gigaspatial.processing.tif_processor import TifProcessor  # noqa: E402

IMPORT_S = time.perf_counter() - T0


def _zones(job: dict) -> GeometryBasedZonalViewGenerator:
    """The zonal view generator of a job's zones (admin file in gigaspatial's schema, or any)."""
    if job["zones_kind"] == "admin":
        # gigaspatial's own loader for local boundaries: a DataStore path in its internal schema
        return AdminBoundariesViewGenerator(
            country=job["iso3"],
            admin_level=int(job["admin_level"]),
            data_store=LocalDataStore(),
            admin_path=job["zones"],
        )
    zones = gpd.read_parquet(job["zones"])
    return GeometryBasedZonalViewGenerator(
        zones, zone_id_column=job["zone_id"], zone_data_crs=str(zones.crs)
    )


def _repeat(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def _as_lists(mapping: dict) -> dict[str, list]:
    ids = [str(k) for k in mapping]
    vals = [None if v is None or np.isnan(float(v)) else float(v) for v in mapping.values()]
    return {"ids": ids, "values": vals}


def case_raster_sum(job: dict) -> dict:
    """Raster sum per zone: ``map_rasters(TifProcessor(path), stat="sum")`` (pixel centres)."""
    gen = _zones(job)
    tif = TifProcessor(dataset_path=job["raster"], data_store=LocalDataStore())
    times, out = _repeat(lambda: gen.map_rasters(tif, stat="sum"), job["repeats"])
    return {"times": times, **_as_lists(out)}


def case_raster_fractional(job: dict) -> dict:
    """Raster sum per zone by pixel-polygon area share: what ``map_wp_pop(predicate=
    "fractional")`` does after its download (``load_into_geodataframe`` + ``map_polygons``)."""
    gen = _zones(job)
    tif = TifProcessor(dataset_path=job["raster"], data_store=LocalDataStore())

    def run() -> dict:
        pixels = tif.to_geodataframe()
        return gen.map_polygons(
            pixels, value_columns="pixel_value", aggregation="sum", predicate="fractional"
        )

    times, out = _repeat(run, job["repeats"])
    return {"times": times, **_as_lists(out)}


def case_point_count(job: dict) -> dict:
    """Points per zone: ``map_points(points, predicate="within")`` (a ``sjoin`` count)."""
    gen = _zones(job)
    points = gpd.read_parquet(job["points"])
    times, out = _repeat(lambda: gen.map_points(points, predicate="within"), job["repeats"])
    return {"times": times, **_as_lists(out)}


def case_polygon_fractional(job: dict) -> dict:
    """An extensive polygon value per zone by area share: ``map_polygons(predicate="fractional")``."""
    gen = _zones(job)
    polys = gpd.read_parquet(job["polygons"])[[job["value"], "geometry"]]
    times, out = _repeat(
        lambda: gen.map_polygons(
            polys, value_columns=job["value"], aggregation="sum", predicate="fractional"
        ),
        job["repeats"],
    )
    return {"times": times, **_as_lists(out)}


def case_h3_raster_sum(job: dict) -> dict:
    """H3 cells covering a boundary (``contain="overlap"``) and the raster sum per cell."""
    boundary = gpd.read_parquet(job["boundary"]).to_crs(4326).union_all()
    tif = TifProcessor(dataset_path=job["raster"], data_store=LocalDataStore())
    cover: list[float] = []

    def run() -> dict:
        t0 = time.perf_counter()
        # a shapely geometry, not the GeoDataFrame: H3ViewGenerator iterates a GeoDataFrame
        # source and takes its column names for H3 indexes (gigaspatial 0.10.1)
        gen = H3ViewGenerator(source=boundary, resolution=int(job["resolution"]))
        cover.append(time.perf_counter() - t0)
        return gen.map_rasters(tif, stat="sum")

    times, out = _repeat(run, job["repeats"])
    return {"times": times, "cover_times": cover, **_as_lists(out)}


def case_nearest(job: dict) -> dict:
    """Distance from each point to the nearest facility: ``PoiViewGenerator.map_nearest_points``."""
    points = gpd.read_parquet(job["points"])
    facilities = gpd.read_parquet(job["facilities"])
    gen = PoiViewGenerator(points, poi_id_column=job["point_id"])
    times, out = _repeat(lambda: gen.map_nearest_points(facilities), job["repeats"])
    return {
        "times": times,
        "ids": [str(v) for v in out["poi_id"]],
        "values": [float(v) for v in out["nearest_distance"]],
        "nearest": [int(v) for v in out["nearest_id"]],
    }


CASES: dict[str, Callable[[dict], dict]] = {
    "raster_sum": case_raster_sum,
    "raster_fractional": case_raster_fractional,
    "point_count": case_point_count,
    "polygon_fractional": case_polygon_fractional,
    "h3_raster_sum": case_h3_raster_sum,
    "nearest": case_nearest,
}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    out = CASES[job["case"]](job)
    out["import_s"] = IMPORT_S
    import gigaspatial

    out["gigaspatial_version"] = getattr(gigaspatial, "__version__", "unknown")
    Path(argv[1]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
