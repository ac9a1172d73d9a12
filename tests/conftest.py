"""Shared fixtures: paths to the committed test data and to the optional ../shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
TESTDATA = ROOT / "tests" / "data"
SHARED_REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def testdata() -> Path:
    return TESTDATA


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """../shared/data/real, or skip: files without a redistribution licence live only there."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (only the repo is on this machine)")
    return SHARED_REAL


@pytest.fixture(scope="session")
def rwanda_admin():
    """dim_admin of the Rwanda sample (ADM0/1/2), read once per session; do not modify it."""
    import warnings

    from geopipe.errors import GeopipeWarning
    from geopipe.io.admin import read_admin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        return read_admin({lv: SAMPLE / f"rwa_adm{lv}.geojson" for lv in (0, 1, 2)})


def write_raster(path, arr, transform, crs="EPSG:4326", **profile):
    """Write a single-band GeoTIFF (extra creation options in ``profile``) and return its path."""
    import rasterio

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        **profile,
    ) as ds:
        ds.write(arr, 1)
    return path


TINY_POP = __import__("numpy").array([[10, 20, 30, 40], [50, 60, 70, 80]], dtype="float32")
TINY_FACILITY = (0.005, 0.015)  # centre of pixel (row 0, col 0)


def tiny_world(d):
    """Write the tiny world of test_indicators_hand into folder ``d``; return its pipeline dict.

    Two units A (left) and B (right) of a country C, a 4 x 2 population raster (0.01° pixels,
    values 10..80), a wealth and a speed polygon layer, four schools and one health facility.
    """
    import pandas as pd
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    POP = TINY_POP
    FACILITY = TINY_FACILITY
    profile = {
        "driver": "GTiff",
        "width": 4,
        "height": 2,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(0, 0.02, 0.01, 0.01),
        "nodata": -1,
    }
    for name, factor in (("pop", 1.0), ("u18", 0.5), ("u5", 0.1)):
        with rasterio.open(d / f"{name}.tif", "w", **profile) as dst:
            dst.write(POP * factor, 1)
    import geopandas as gpd

    admin = gpd.GeoDataFrame(
        {
            "ucode": ["XXX_V1", "XXX_0001_V1", "XXX_0002_V1"],
            "name": ["C", "A", "B"],
            "admin_level": [0, 1, 1],
            "parent": [None, "XXX_V1", "XXX_V1"],
        },
        geometry=[
            shapely.box(0, 0, 0.04, 0.02),
            shapely.box(0, 0, 0.02, 0.02),
            shapely.box(0.02, 0, 0.04, 0.02),
        ],
        crs=4326,
    )
    admin.to_file(d / "admin.geojson")
    wealth = gpd.GeoDataFrame(
        {"rwi": [-0.5, 0.2]},
        geometry=[shapely.box(0, 0, 0.01, 0.02), shapely.box(0.01, 0, 0.03, 0.02)],
        crs=4326,
    )
    wealth.to_file(d / "wealth.geojson")
    speed = gpd.GeoDataFrame(
        {"avg_d_kbps": [20000, 5000, 90000], "tests": [5, 1, 0]},
        geometry=[
            shapely.box(0, 0, 0.02, 0.02),
            shapely.box(0.02, 0, 0.03, 0.02),
            shapely.box(0.03, 0, 0.04, 0.02),
        ],
        crs=4326,
    )
    speed.to_file(d / "speed.geojson")
    pd.DataFrame({"lon": [FACILITY[0]], "lat": [FACILITY[1]], "name": ["clinic"]}).to_csv(
        d / "health.csv", index=False
    )
    pd.DataFrame(
        {
            "school_id_giga": ["s1", "s2", "s3", "s4"],
            "connectivity": ["Yes", "Yes", "No", "No"],
            "lon": [0.001, 0.012, 0.018, 0.035],
            "lat": [0.001, 0.004, 0.019, 0.011],
        }
    ).to_csv(d / "schools.csv", index=False)
    return {
        "name": "hand",
        "date": "2024-06-30",
        "output": str(d / "out"),
        "sources": {
            "admin": {
                "kind": "admin",
                "path": str(d / "admin.geojson"),
                "mapping": {
                    "name": "name",
                    "id": "ucode",
                    "ucode": "ucode",
                    "level": "admin_level",
                    "parent_id": "parent",
                },
                "iso3": "XXX",
            },
            "population_total": {"kind": "raster", "path": str(d / "pop.tif")},
            "population_u18": {"kind": "raster", "path": str(d / "u18.tif")},
            "population_u5": {"kind": "raster", "path": str(d / "u5.tif")},
            "health_facilities": {"kind": "points", "path": str(d / "health.csv")},
            "schools": {"kind": "points", "path": str(d / "schools.csv")},
            "wealth": {"kind": "vector", "path": str(d / "wealth.geojson")},
            "speed": {"kind": "vector", "path": str(d / "speed.geojson")},
        },
        "steps": [
            {"kind": "raster_stats", "raster": "population_total"},
            {"kind": "raster_stats", "raster": "population_u18"},
            {"kind": "raster_stats", "raster": "population_u5"},
            {"kind": "point_count", "points": "health_facilities"},
            {
                "kind": "point_count",
                "points": "schools",
                "column": "schools_total",
                "subsets": {"schools_connected": {"column": "connectivity", "values": ["Yes"]}},
            },
            {"kind": "child_poverty", "layer": "wealth", "value": "rwi"},
            {"kind": "connectivity", "tiles": "speed", "children": "population_u18"},
            {
                "kind": "distance_coverage",
                "facilities": "health_facilities",
                "distance_km": 1.2,
                "service": "health",
                "facility_name": "health facility",
            },
        ],
    }


def star_fact(values: dict[str, list[float]], date: str = "2020-01-01"):
    """A parent ``P`` with children ``A, B, C`` (``dim_admin`` with ucode/parent_ucode) and a fact
    table holding ``values[indicator] = [P, A, B, C]`` for each indicator, nothing suppressed."""
    import pandas as pd

    units = ["P", "A", "B", "C"]
    admin = pd.DataFrame({"ucode": units, "parent_ucode": [None, "P", "P", "P"]})
    fact = pd.DataFrame(
        {
            "ucode": units * len(values),
            "indicator_id": [i for i in values for _ in units],
            "date": date,
            "value": [v for vals in values.values() for v in vals],
            "suppressed": False,
        }
    )
    return admin, fact


def geopipe_cli(*args, cwd=None, **kwargs):
    """Run ``python -m geopipe.cli ARGS`` in a subprocess (this checkout's src first on the path)."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-m", "geopipe.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        **kwargs,
    )


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """`geopipe run pipelines/sample.yaml` piped (not a terminal): (run folder, CompletedProcess)."""
    out = tmp_path_factory.mktemp("sample_cli") / "run"
    done = geopipe_cli("run", ROOT / "pipelines" / "sample.yaml", "--output", out)
    assert done.returncode == 0, done.stderr
    return out, done


def sample_config(tmp_path, extra: str = "", **replace: str):
    """pipelines/sample.yaml with absolute data paths and output tmp_path/out, plus ``extra``.

    ``replace`` maps text of the config to its replacement (each must occur).
    """
    text = (ROOT / "pipelines" / "sample.yaml").read_text(encoding="utf-8")
    text = text.replace("../data/sample/", f"{SAMPLE}/").replace(
        "output: ../out/sample", f"output: {tmp_path / 'out'}"
    )
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def schools_with_a_bad_row(tmp_path):
    """The sample schools CSV plus one row without latitude: read_points warns "1 of 2754 rows"."""
    import shutil

    path = tmp_path / "schools.csv"
    shutil.copy(SAMPLE / "rwa_schools_modelled.csv", path)
    with open(path, "a", encoding="utf-8") as f:
        f.write("BAD-1,Bad school,Primary,Yes,,29.6\n")
    return {f"{SAMPLE}/rwa_schools_modelled.csv": str(path)}
