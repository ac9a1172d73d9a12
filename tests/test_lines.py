"""line_length against geopandas.clip + pyproj Geod.geometry_length per unit."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod

from geopipe.errors import GeometryError
from geopipe.zonal.lines import geodesic_length_m, line_length

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def adm2(testdata):
    return gpd.read_file(testdata / "zonal" / "rwa_adm2.geojson")


@pytest.fixture(scope="module")
def roads(testdata):
    """'Roads' joining random pairs of real health facilities, with a few bends."""
    health = gpd.read_file(testdata / "zonal" / "rwa_healthsites_2020.geojson")
    xy = shapely.get_coordinates(health.geometry.array)
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, len(xy), 60), rng.integers(0, len(xy), 60)
    mid = (xy[a] + xy[b]) / 2 + rng.normal(0, 0.02, (60, 2))
    lines = [shapely.LineString([xy[i], m, xy[j]]) for i, m, j in zip(a, mid, b, strict=True)]
    multi = shapely.MultiLineString([lines[0], lines[1]])
    return gpd.GeoDataFrame(geometry=[*lines[2:], multi], crs=4326)


def test_matches_clip_and_pyproj_per_unit(adm2, roads):
    out = line_length(adm2, roads, name="road_km")
    for k in range(len(adm2)):
        clipped = gpd.clip(roads, adm2.geometry.iloc[[k]])
        ref = sum(GEOD.geometry_length(g) for g in clipped.geometry) / 1000.0
        assert out["road_km"].iloc[k] == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert out.index.equals(adm2.index) and "road_km" not in adm2.columns


def test_lines_inside_the_country_are_fully_allocated(adm2, roads):
    country = shapely.union_all(adm2.geometry.array)
    inside = roads[roads.within(country)]
    out = line_length(adm2, inside)
    total = sum(GEOD.geometry_length(g) for g in inside.geometry) / 1000.0
    # shared borders are crossed, never followed, by these lines: nothing is counted twice.
    # Cutting a segment at a border adds a vertex, and two geodesics through it are a few mm
    # longer than one over thousands of km (triangle inequality), hence rel=1e-7.
    assert out["length_km"].sum() == pytest.approx(total, rel=1e-7)
    assert out["length_km"].sum() >= total


def test_geodesic_length_vs_pyproj_and_non_lines():
    geoms = np.array(
        [
            shapely.LineString([(0, 0), (10, 10), (20, 5)]),
            shapely.MultiLineString([[(0, 80), (90, 80)], [(-170, -40), (170, -40)]]),
            shapely.Point(1, 1),
            shapely.GeometryCollection([shapely.Point(0, 0), shapely.LineString([(0, 0), (0, 1)])]),
            None,
        ],
        dtype=object,
    )
    got = geodesic_length_m(geoms)
    ref = [GEOD.geometry_length(g) if g is not None else 0.0 for g in geoms[:2]]
    np.testing.assert_allclose(got[:2], ref, rtol=1e-12)
    assert got[2] == 0.0 and got[4] == 0.0
    assert got[3] == pytest.approx(GEOD.geometry_length(shapely.LineString([(0, 0), (0, 1)])))


def test_rejects_polygons(adm2):
    with pytest.raises(GeometryError, match="non-line"):
        line_length(adm2, adm2)
