"""population_within on the GPW São Miguel raster against an independent pixel-by-pixel reference."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geopipe.errors import InputError
from geopipe.zonal.distance import population_within

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def pop_path(testdata):
    return testdata / "zonal" / "gpw_v411_2020_count_2020.tif"


@pytest.fixture(scope="module")
def boxes():
    """A 3 x 5 grid of boxes over São Miguel, not aligned with the 30" pixels."""
    xs = np.linspace(-25.87, -25.13, 6)
    ys = np.linspace(37.68, 37.93, 4)
    geoms = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(3) for i in range(5)]
    return gpd.GeoDataFrame(
        {"ucode": [f"B{k:02d}" for k in range(len(geoms))]}, geometry=geoms, crs=4326
    )


@pytest.fixture(scope="module")
def clinics():
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-25.85, -25.15, 12), rng.uniform(37.7, 37.9, 12)
    return gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=4326)


def _reference(units, path, facilities, distance_m):
    """Pixel boxes x unit intersection areas (coverage) and brute-force centre distances."""
    with rasterio.open(path) as src:
        vals = src.read(1, masked=True).filled(0.0).astype(float)
        tr = src.transform
    rows, cols = np.indices(vals.shape)
    cx, cy = rasterio.transform.xy(tr, rows.ravel(), cols.ravel())
    cx, cy = np.asarray(cx), np.asarray(cy)
    rx, ry = tr.a, -tr.e
    boxes = shapely.box(cx - rx / 2, cy - ry / 2, cx + rx / 2, cy + ry / 2)
    flon = facilities.geometry.x.to_numpy()
    flat = facilities.geometry.y.to_numpy()
    _, _, d = GEOD.inv(
        np.repeat(cx, len(flon)),
        np.repeat(cy, len(flon)),
        np.tile(flon, len(cx)),
        np.tile(flat, len(cx)),
    )
    dmin = np.asarray(d).reshape(len(cx), len(flon)).min(axis=1)
    within = dmin <= distance_m
    rows_out = []
    for geom in units.geometry:
        cov = shapely.area(shapely.intersection(boxes, geom)) / (rx * ry)
        w = cov * vals.ravel()
        rows_out.append((w.sum(), w[within].sum(), w[~within].sum()))
    return np.array(rows_out)


def test_matches_pixel_reference_and_conserves_total(boxes, pop_path, clinics):
    out = population_within(boxes, pop_path, clinics, distance_m=3_000)
    ref = _reference(boxes, pop_path, clinics, 3_000)
    got = out[["population_total", "population_within", "population_beyond"]].to_numpy()
    # exactextract keeps coverage fractions in single precision
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    total = out["population_total"].to_numpy()
    parts = out["population_within"].to_numpy() + out["population_beyond"].to_numpy()
    np.testing.assert_allclose(parts, total, rtol=1e-9, atol=0)
    assert 0 < out["population_within"].sum() < out["population_total"].sum()
    assert out.index.equals(boxes.index) and "population_total" not in boxes.columns


def test_children_share_float_column_series_and_raster(boxes, pop_path, clinics, tmp_path):
    base = population_within(boxes, pop_path, clinics, distance_m=5_000)
    by_float = population_within(boxes, pop_path, clinics, distance_m=5_000, children=0.4)
    np.testing.assert_allclose(by_float["children_within"], 0.4 * base["population_within"])
    shares = pd.Series(np.linspace(0.2, 0.5, len(boxes)), index=boxes["ucode"])
    by_series = population_within(boxes, pop_path, clinics, children=shares)
    np.testing.assert_allclose(
        by_series["children_beyond"], shares.to_numpy() * base["population_beyond"].to_numpy()
    )
    by_col = population_within(
        boxes.assign(u18=shares.to_numpy()), pop_path, clinics, children="u18"
    )
    np.testing.assert_allclose(by_col["children_total"], by_series["children_total"])
    # a children raster: 0.3 x the population raster
    with rasterio.open(pop_path) as src:
        profile, arr = src.profile, src.read(1)
    child = np.where(arr == src.nodata, arr, arr * 0.3).astype("float32")
    cpath = tmp_path / "u18.tif"
    with rasterio.open(cpath, "w", **profile) as dst:
        dst.write(child, 1)
    by_raster = population_within(boxes, pop_path, clinics, children=cpath)
    np.testing.assert_allclose(
        by_raster["children_within"], 0.3 * base["population_within"], rtol=1e-6
    )
    np.testing.assert_allclose(
        by_raster["children_within"] + by_raster["children_beyond"],
        by_raster["children_total"],
        rtol=1e-9,
    )


def test_concelhos_total_equals_within_plus_beyond(sao_miguel_units, pop_path, clinics):
    units, path = sao_miguel_units, pop_path  # the same GPW file as ../shared's (verbatim)
    out = population_within(units, path, clinics, distance_m=5_000)
    np.testing.assert_allclose(
        out["population_within"] + out["population_beyond"], out["population_total"], rtol=1e-9
    )
    ref = _reference(units, path, clinics, 5_000)
    np.testing.assert_allclose(out["population_within"], ref[:, 1], rtol=1e-6)
    np.testing.assert_allclose(out["population_total"], ref[:, 0], rtol=1e-6)


def test_bad_arguments(boxes, pop_path, clinics):
    with pytest.raises(InputError, match="distance_m"):
        population_within(boxes, pop_path, clinics, distance_m=-1)
    with pytest.raises(InputError, match="outside"):
        population_within(boxes, pop_path, clinics, children=1.5)
    with pytest.raises(InputError, match="already exists"):
        population_within(boxes.assign(population_total=1), pop_path, clinics)


_lon = st.floats(-25.9, -25.1, allow_nan=False)
_lat = st.floats(37.6, 38.0, allow_nan=False)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.lists(st.tuples(_lon, _lat), min_size=1, max_size=5),
    extra=st.tuples(_lon, _lat),
    distance=st.floats(500, 8_000),
)
def test_adding_a_facility_never_lowers_population_within(boxes, pop_path, base, extra, distance):
    f1 = gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in base], crs=4326)
    f2 = gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in [*base, extra]], crs=4326)
    a = population_within(boxes, pop_path, f1, distance_m=distance)
    b = population_within(boxes, pop_path, f2, distance_m=distance)
    assert (b["population_within"].to_numpy() >= a["population_within"].to_numpy()).all()
    np.testing.assert_array_equal(a["population_total"], b["population_total"])
