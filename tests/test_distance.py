"""nearest_distance against brute-force geodesic (pyproj) and haversine distances."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Geod

from geopipe.errors import GeometryError, InputError
from geopipe.zonal.distance import (
    FAST_EXACT_BELOW,
    nearest_distance,
    nearest_geodesic,
    nearest_geodesic_fast,
)

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def adm2(testdata):
    return gpd.read_file(testdata / "zonal" / "rwa_adm2.geojson")


@pytest.fixture(scope="module")
def health(testdata):
    return gpd.read_file(testdata / "zonal" / "rwa_healthsites_2020.geojson")


def _brute_geodesic(lon, lat, flon, flat):
    """All pairs with pyproj (fine for a sample): min distance per origin."""
    lo = np.repeat(lon, len(flon))
    la = np.repeat(lat, len(flon))
    _, _, d = GEOD.inv(lo, la, np.tile(flon, len(lon)), np.tile(flat, len(lon)))
    return np.asarray(d).reshape(len(lon), len(flon)).min(axis=1)


def _brute_haversine(lon, lat, flon, flat, r=6_371_008.8):
    p1, p2 = np.radians(lat)[:, None], np.radians(flat)[None, :]
    dl = np.radians(flon)[None, :] - np.radians(lon)[:, None]
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return (2 * r * np.arcsin(np.sqrt(h))).min(axis=1)


def test_points_match_brute_force_on_real_schools(testdata, health):
    schools = gpd.read_file(testdata / "zonal" / "rwa_osm_education_nodes_2019.geojson")
    out = nearest_distance(schools, health)
    flon, flat = health.geometry.x.to_numpy(), health.geometry.y.to_numpy()
    lon, lat = schools.geometry.x.to_numpy(), schools.geometry.y.to_numpy()
    np.testing.assert_allclose(out["distance_m"], _brute_geodesic(lon, lat, flon, flat), rtol=1e-12)
    # haversine on the mean sphere agrees to within the ellipsoid's flattening (< 0.6 %)
    hav = _brute_haversine(lon, lat, flon, flat)
    assert np.all(np.abs(out["distance_m"] / hav - 1) < 6e-3)


@pytest.mark.parametrize("lat0", [-60.0, 0.0, 45.0, 80.0])
def test_exact_geodesic_nearest_at_many_latitudes(lat0):
    # dense random facilities so that spherical and ellipsoidal nearest neighbours sometimes differ
    rng = np.random.default_rng(int(lat0) + 100)
    flon, flat = rng.uniform(-3, 3, 3_000), np.clip(lat0 + rng.uniform(-3, 3, 3_000), -89, 89)
    lon, lat = rng.uniform(-3, 3, 200), np.clip(lat0 + rng.uniform(-3, 3, 200), -89, 89)
    d, i = nearest_geodesic(lon, lat, flon, flat)
    np.testing.assert_allclose(d, _brute_geodesic(lon, lat, flon, flat), rtol=1e-12, atol=1e-6)
    _, _, di = GEOD.inv(lon, lat, flon[i], flat[i])
    np.testing.assert_allclose(d, di)


@pytest.mark.parametrize(
    ("lat0", "n_fac", "span"),
    [(-60.0, 3_000, 3.0), (0.0, 40, 2.0), (45.0, 400, 3.0), (80.0, 200, 3.0), (10.0, 3, 20.0)],
)
def test_fast_nearest_is_the_geodesic_to_1e5_metres(lat0, n_fac, span):
    # dense and sparse facilities, high latitudes, and origins beyond FAST_EXACT_BELOW
    rng = np.random.default_rng(int(lat0) + n_fac)
    flon = rng.uniform(-span, span, n_fac)
    flat = np.clip(lat0 + rng.uniform(-span, span, n_fac), -89, 89)
    lon, lat = rng.uniform(-span, span, 300), np.clip(lat0 + rng.uniform(-span, span, 300), -89, 89)
    ref = _brute_geodesic(lon, lat, flon, flat)
    got = nearest_geodesic_fast(lon, lat, flon, flat)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    far = ref >= FAST_EXACT_BELOW
    if far.any():  # handed to the exact search
        np.testing.assert_allclose(got[far], ref[far], rtol=1e-12)


def test_fast_nearest_on_a_pixel_lattice_equals_the_exact_search():
    # the real use: every pixel centre of a 100 m grid, facilities as dense as health posts
    rng = np.random.default_rng(7)
    lon, lat = np.meshgrid(30 + np.arange(400) / 1113.2, -2 + np.arange(300) / 1113.2)
    lon, lat = lon.ravel(), lat.ravel()
    flon, flat = 30 + rng.random(25) * 0.36, -2 + rng.random(25) * 0.27
    exact = nearest_geodesic(lon, lat, flon, flat)[0]
    fast = nearest_geodesic_fast(lon, lat, flon, flat)
    np.testing.assert_allclose(fast, exact, atol=1e-5)
    assert len(nearest_geodesic_fast(lon[:0], lat[:0], flon, flat)) == 0
    # blocks of the lattice settled at once give the same distances, bit for bit
    rows, cols = np.divmod(np.arange(len(lon)), 400)
    keep = rng.random(len(lon)) < 0.7  # pixels with population only: holes in the blocks
    for facilities in ((flon, flat), (flon[:3], flat[:3]), (flon[:1], flat[:1])):
        blocked = nearest_geodesic_fast(
            lon[keep], lat[keep], *facilities, lattice=(rows[keep], cols[keep])
        )
        np.testing.assert_array_equal(
            blocked, nearest_geodesic_fast(lon[keep], lat[keep], *facilities)
        )


def test_geodesic_nearest_can_differ_from_spherical_nearest():
    # at 45 N a degree of latitude is shorter on the ellipsoid (M ~ 6,367 km) than the same arc
    # along the prime vertical (N ~ 6,389 km): a facility due north at 0.5 deg beats one due
    # east at 0.499 deg of arc although the sphere says the opposite
    from scipy.spatial import cKDTree

    from geopipe.zonal.distance import _unit_vectors

    rng = np.random.default_rng(11)
    lon = rng.uniform(-50, 50, 50)
    lat = rng.uniform(40, 50, 50)
    north_lat = lat + 0.5
    # east facility on the great circle heading 90 deg, at 0.499 deg of arc
    arc = np.radians(0.499)
    la = np.radians(lat)
    east_lat = np.degrees(np.arcsin(np.sin(la) * np.cos(arc)))
    east_lon = lon + np.degrees(
        np.arctan2(
            np.sin(arc) * np.cos(la), np.cos(arc) - np.sin(la) * np.sin(np.radians(east_lat))
        )
    )
    flon = np.concatenate([lon, east_lon])
    flat = np.concatenate([north_lat, east_lat])
    d, i = nearest_geodesic(lon, lat, flon, flat)
    np.testing.assert_allclose(d, _brute_geodesic(lon, lat, flon, flat), rtol=1e-12)
    _, sphere_i = cKDTree(_unit_vectors(flon, flat)).query(_unit_vectors(lon, lat))
    assert (sphere_i != i).sum() >= 40  # the sphere picks the east facility, the ellipsoid north
    _, _, all_d = GEOD.inv(
        np.repeat(lon, 100), np.repeat(lat, 100), np.tile(flon, 50), np.tile(flat, 50)
    )
    np.testing.assert_array_equal(i, np.asarray(all_d).reshape(50, 100).argmin(axis=1))


def test_antimeridian_and_poles():
    lon = np.array([179.9, -179.9, 0.0])
    lat = np.array([0.0, 10.0, 89.9])
    flon = np.array([-179.95, 179.0, 120.0])
    flat = np.array([0.0, 10.0, 89.95])
    d, _ = nearest_geodesic(lon, lat, flon, flat)
    np.testing.assert_allclose(d, _brute_geodesic(lon, lat, flon, flat), rtol=1e-12)


def test_max_distance_gives_nan_beyond(testdata, health):
    schools = gpd.read_file(testdata / "zonal" / "rwa_osm_education_nodes_2019.geojson")
    full = nearest_distance(schools, health)["distance_m"].to_numpy()
    cut = nearest_distance(schools, health, max_distance=2_000)["distance_m"].to_numpy()
    near = full <= 2_000
    assert near.any() and (~near).any()
    np.testing.assert_allclose(cut[near], full[near])
    assert np.isnan(cut[~near]).all()


def test_units_representative_point_and_population_weighted(adm2, health, tmp_path):
    # a coarse population raster over Rwanda built here (5 x 5 km cells, values 1 .. n)
    xmin, ymin, xmax, ymax = adm2.total_bounds
    res = 0.05
    w, h = int(np.ceil((xmax - xmin) / res)), int(np.ceil((ymax - ymin) / res))
    tr = Affine(res, 0.0, xmin, 0.0, -res, ymax)
    values = np.random.default_rng(0).uniform(0, 100, (h, w)).astype("float64")
    path = tmp_path / "pop.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=1,
        dtype="float64",
        crs="EPSG:4326",
        transform=tr,
    ) as dst:
        dst.write(values, 1)
    out = nearest_distance(adm2, health, raster=path)
    flon, flat = health.geometry.x.to_numpy(), health.geometry.y.to_numpy()
    rep = adm2.geometry.representative_point()
    np.testing.assert_allclose(
        out["distance_m"],
        _brute_geodesic(rep.x.to_numpy(), rep.y.to_numpy(), flon, flat),
        rtol=1e-12,
    )
    # reference: pixel boxes intersected with each district (coverage by area, planar degrees,
    # as exactextract does), brute-force distance from each pixel centre
    rows, cols = np.indices((h, w))
    cx, cy = rasterio.transform.xy(tr, rows.ravel(), cols.ravel())
    cx, cy = np.asarray(cx), np.asarray(cy)
    boxes = shapely.box(cx - res / 2, cy - res / 2, cx + res / 2, cy + res / 2)
    dpix = _brute_geodesic(cx, cy, flon, flat)
    for k in [0, 7, 21]:
        geom = adm2.geometry.iloc[k]
        cov = shapely.area(shapely.intersection(boxes, geom)) / res**2
        wgt = cov * values.ravel()
        expected = (wgt * dpix).sum() / wgt.sum()
        # exactextract stores coverage fractions in single precision
        assert out["distance_m_popweighted"].iloc[k] == pytest.approx(expected, rel=1e-6)
    assert out.index.equals(adm2.index)
    assert "distance_m" not in adm2.columns


def test_errors(adm2, health):
    with pytest.raises(InputError, match="raster"):
        nearest_distance(health, health, raster="x.tif")
    mixed = pd.concat([adm2.iloc[:2], health.iloc[:2]])
    with pytest.raises(GeometryError, match="mixes geometry types"):
        nearest_distance(mixed, health)
    with pytest.raises(GeometryError, match="non-Point"):
        nearest_distance(health, adm2)
    with pytest.raises(InputError, match="no usable point"):
        nearest_distance(health, health.iloc[:0])


def test_lattice_from_the_transform_equals_the_checked_lattice():
    """Pixel centres of a lon/lat raster (as PixelWeights computes them): the rows' and
    columns' coordinates taken from the transform give the distances of the lattice read off
    the origins, bit for bit."""
    from affine import Affine

    from geopipe.zonal.raster import PixelWeights

    rng = np.random.default_rng(11)
    t = Affine(1 / 1113.2, 0.0, 29.7, 0.0, -1 / 1113.2, -1.4)
    row, col = np.divmod(np.arange(300 * 400), 400)
    keep = rng.random(len(row)) < 0.6
    row, col = row[keep] + 50, col[keep] + 80  # a window: offsets from the raster's origin
    n = len(row)
    empty = np.zeros(0, dtype=np.int64)
    pw = PixelWeights(  # every pixel an edge pixel, no runs
        transform=t,
        crs="EPSG:4326",
        shape=(1000, 1000),
        n_units=1,
        edge="fraction",
        edge_unit=np.zeros(n, dtype=np.int64),
        edge_row=row,
        edge_col=col,
        edge_coverage=np.ones(n),
        run_unit=empty,
        run_row=empty,
        run_start=empty,
        run_stop=empty,
    )
    assert pw.lonlat_transform() is t
    lon, lat = pw.pixel_lonlat()
    flon, flat = 29.7 + rng.random(40) * 0.4, -1.4 - rng.random(40) * 0.35
    checked = nearest_geodesic_fast(lon, lat, flon, flat, lattice=(row, col))
    trusted = nearest_geodesic_fast(lon, lat, flon, flat, lattice=(row, col), transform=t)
    np.testing.assert_array_equal(trusted, checked)
