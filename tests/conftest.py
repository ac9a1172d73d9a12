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


GPW_SAO_MIGUEL = TESTDATA / "real" / "prt_sao_miguel" / "gpw_v411_2020_count_2020.tif"


def sao_miguel_stand_in():
    """Six made-up municipalities on São Miguel, built from repo data only.

    The island is the GPW raster's valid pixels (CC BY 4.0, in tests/data), its coast smoothed so
    that it cuts through pixels like a real coastline, split by the Voronoi cells of six fixed
    points along the island. A stand-in for ``sao_miguel_concelhos.geojson`` (no stated licence,
    only in ../shared): same island, same raster, same kind of shared borders and coast.
    """
    import geopandas as gpd
    import rasterio
    import rasterio.features
    import shapely

    with rasterio.open(GPW_SAO_MIGUEL) as ds:
        valid = ~ds.read(1, masked=True).mask
        polys = [
            shapely.geometry.shape(g)
            for g, v in rasterio.features.shapes(
                valid.astype("uint8"), mask=valid, transform=ds.transform
            )
            if v == 1
        ]
    island = max(shapely.get_parts(shapely.union_all(polys)), key=lambda p: p.area)
    coast = shapely.simplify(island.buffer(0.004).buffer(-0.0065), 0.002)
    seeds = shapely.multipoints(
        [
            (-25.80, 37.80),
            (-25.65, 37.76),
            (-25.55, 37.80),
            (-25.45, 37.74),
            (-25.33, 37.83),
            (-25.22, 37.79),
        ]
    )
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=coast.envelope.buffer(1)))
    # Voronoi cells come in no guaranteed order: sort them west to east by their seed
    cells = sorted(cells, key=lambda c: c.centroid.x)
    # short edges, like surveyed borders (a long straight lon/lat edge is not a geodesic, and
    # the tests measure geodesic areas)
    geoms = [
        shapely.segmentize(shapely.make_valid(shapely.intersection(c, coast)), 0.001) for c in cells
    ]
    return gpd.GeoDataFrame(
        {"name": [f"Stand-in {i + 1}" for i in range(len(geoms))]}, geometry=geoms, crs=4326
    )


@pytest.fixture(scope="session", params=["concelhos", "stand-in"])
def sao_miguel_units(request):
    """São Miguel units: the real concelhos (../shared, skips when absent) and the repo-only
    stand-in above, so every test using this fixture runs at least once on a plain clone."""
    import geopandas as gpd

    if request.param == "concelhos":
        shared = request.getfixturevalue("shared_real")
        units = gpd.read_file(shared / "prt_sao_miguel" / "sao_miguel_concelhos.geojson")
    else:
        units = sao_miguel_stand_in()
    units.attrs["source"] = request.param
    return units


@pytest.fixture(scope="session")
def ookla_tiles(sao_miguel_units):
    """The 460 São Miguel Ookla fixed tiles: from ../shared's GeoJSON with the real concelhos,
    decoded from the quadkeys of the CSV copy in tests/data with the stand-in."""
    from geopipe.io.tiles import read_tiles

    if sao_miguel_units.attrs["source"] == "concelhos":
        shared = SHARED_REAL / "prt_sao_miguel" / "ookla_fixed_2020Q1_sao_miguel.geojson"
        return read_tiles(shared)
    return read_tiles(TESTDATA / "zonal" / "ookla_fixed_2020Q1_sao_miguel.csv")


def giga_layout_schools(n: int = 400, repeats: tuple[int, ...] = (0, 0, 5, 9, 9, 9)):
    """A table in the real Giga export's layout (``giga_id_school``, ``lat``, ``lon``,
    ``education_level``, ``connectivity`` as 0/1, ``district``) made from the repo's modelled
    schools (CC0), with the rows at positions ``repeats`` appended again: ids that occur more
    than once, as in the real export (which has no stated licence and stays in ../shared)."""
    import pandas as pd

    schools = pd.read_csv(SAMPLE / "rwa_schools_modelled.csv").iloc[:n]
    table = pd.DataFrame(
        {
            "giga_id_school": schools["school_id_giga"].str.replace("MOD-RWA-", "g-", regex=False),
            "lat": schools["lat"],
            "lon": schools["lon"],
            "education_level": schools["education_level"],
            "connectivity": (schools["connectivity"] == "Yes").astype(int),
            "district": "unknown",
        }
    )
    return pd.concat([table, table.iloc[list(repeats)]], ignore_index=True)


# rows of tests/data/real/vnm/vnm_adm1.geojson: Hòa Bình and four of its neighbours, so that
# many grid cells straddle a shared provincial border
NEIGHBOURS = [30, 23, 24, 42, 44]


def overlay_owners(cells, admin, crs: str):
    """Reference owner of each cell: gpd.overlay with the units in an equal-area CRS, the unit
    with the largest piece. Also returns the two largest shares of the cell (for ties)."""
    import geopandas as gpd
    import pandas as pd

    pieces = gpd.overlay(
        cells.to_crs(crs), admin[["ucode", "geometry"]].to_crs(crs), keep_geom_type=True
    )
    pieces["share"] = pieces.area / pieces["cell_id"].map(
        cells.to_crs(crs).set_index("cell_id").area
    )
    ranked = pieces.sort_values(["cell_id", "share"], ascending=[True, False])
    first = ranked.groupby("cell_id").nth(0).set_index("cell_id")
    second = ranked.groupby("cell_id").nth(1).set_index("cell_id")["share"]
    return pd.DataFrame(
        {"ucode": first["ucode"], "best": first["share"], "second": second.reindex(first.index)}
    ).fillna({"second": 0.0})
