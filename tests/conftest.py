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
