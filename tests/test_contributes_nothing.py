"""Issue 12: a layer that contributes nothing is an input error naming the file and the likely
cause (points files, tiles); the raster cases are in test_zonal_raster.py."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geopipe as gp
from geopipe.errors import EmptyInputError, InputError
from geopipe.quality.points import require_points_inside


@pytest.fixture(scope="module")
def health(testdata):
    """The 119 real Rwanda health sites (healthsites.io) as a lon/lat table."""
    pts = gpd.read_file(testdata / "zonal" / "rwa_healthsites_2020.geojson")
    return pd.DataFrame(
        {"osm_id": pts["osm_id"], "lon": pts.geometry.x.round(6), "lat": pts.geometry.y.round(6)}
    )


def _csv(frame: pd.DataFrame, path, **kw):
    frame.to_csv(path, index=False, **kw)
    return path


def test_swapped_lat_lon_columns_are_named_as_the_cause(health, tmp_path, rwanda_admin):
    swapped = health.rename(columns={"lon": "lat", "lat": "lon"})  # headers exchanged
    path = _csv(swapped, tmp_path / "health_swapped.csv")
    points = gp.read_points(path)  # every value is a valid coordinate: nothing rejected
    assert len(points) == len(health)
    districts = rwanda_admin[rwanda_admin.admin_level == 2]
    with pytest.raises(EmptyInputError, match="swapped") as err:
        gp.count_points(districts, points)
    assert "health_swapped.csv" in str(err.value) and "119" in str(err.value)
    with pytest.raises(EmptyInputError, match="latitude and longitude columns are swapped"):
        require_points_inside(points, rwanda_admin)
    # the same file read the right way round counts every facility (independent: a plain sjoin)
    fixed = gp.read_points(path, lon="lat", lat="lon")
    counts = gp.count_points(districts, fixed)
    ref = gpd.sjoin(fixed, districts[["ucode", "geometry"]], predicate="intersects")
    assert counts["n_points"].sum() == ref["index_right"].notna().sum() > 100
    require_points_inside(fixed, rwanda_admin)  # passes silently


def test_points_of_another_area_name_the_extents(health, rwanda_admin):
    far = health.assign(lon=health["lon"] + 60.0)  # somewhere in the Indian Ocean / Asia
    points = gp.read_points(far)
    with pytest.raises(EmptyInputError, match="another area") as err:
        gp.count_points(rwanda_admin, points)
    assert "boundaries lon" in str(err.value)
    # opting out (a category subset, a partition): zeros, no error
    out = gp.count_points(rwanda_admin, points, allow_none_inside=True)
    assert (out["n_points"] == 0).all()
    # some inside is not "nothing": count_points counts them
    mixed = pd.concat([far.iloc[:5], health.iloc[5:]], ignore_index=True)
    assert gp.count_points(rwanda_admin, gp.read_points(mixed))["n_points"].max() > 0


def test_decimal_comma_is_named_as_the_cause(health, tmp_path):
    path = _csv(health, tmp_path / "health_fr.csv", sep=";", decimal=",")
    assert "-1,9" in path.read_text() or "-2," in path.read_text()
    with pytest.raises(EmptyInputError, match="decimal comma") as err:
        gp.read_points(path)
    msg = str(err.value)
    assert "health_fr.csv" in msg and "decimal=','" in msg and "119" in msg
    assert isinstance(err.value, InputError)
    # decimal=',' reads the same coordinates as the '.' file (independent: the source geometry)
    read = gp.read_points(path, decimal=",")
    np.testing.assert_allclose(read.geometry.x, health["lon"], atol=1e-9)
    np.testing.assert_allclose(read.geometry.y, health["lat"], atol=1e-9)


def test_some_decimal_comma_rows_warn_with_the_hint(health, tmp_path):
    text = health.astype(str)
    text.loc[:9, "lat"] = text.loc[:9, "lat"].str.replace(".", ",", regex=False)
    text.loc[:9, "lon"] = text.loc[:9, "lon"].str.replace(".", ",", regex=False)
    path = _csv(text, tmp_path / "mixed.csv", sep=";")
    with pytest.warns(gp.GeopipeWarning, match=r"10 rows parse as numbers with a decimal comma"):
        points = gp.read_points(path)
    assert len(points) == len(health) - 10


def test_every_row_without_coordinates(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("name,lat,lon\nA,,\nB,,\n")
    with pytest.raises(EmptyInputError, match="blank.csv.*all 2 rows were rejected"):
        gp.read_points(path)
    projected = tmp_path / "utm.csv"
    projected.write_text("name,lat,lon\nA,9780000,500000\nB,9790000,510000\n")
    with pytest.raises(EmptyInputError, match="projected metres.*crs="):
        gp.read_points(projected)


def test_tiles_with_no_valid_quadkey(tmp_path, testdata):
    raw = pd.read_csv(
        testdata / "zonal" / "ookla_fixed_2020Q1_sao_miguel.csv", dtype={"quadkey": str}
    )
    bad = raw.assign(quadkey=raw["quadkey"].str.replace("0", "9"))  # not quadkeys any more
    bad = bad[bad["quadkey"].str.contains("9")]
    path = _csv(bad, tmp_path / "tiles.csv")
    with pytest.raises(EmptyInputError, match="tiles.csv.*invalid quadkey"):
        gp.read_tiles(path)
    tiles = gp.read_tiles(testdata / "zonal" / "ookla_fixed_2020Q1_sao_miguel.csv")
    assert len(tiles) == len(raw)
    # tiles over another area: require_points_inside says so (tiles stand by a point inside)
    rwanda = gp.read_admin(testdata / "zonal" / "rwa_adm2.geojson", level=2, iso3="RWA")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gp.GeopipeWarning)
        with pytest.raises(EmptyInputError, match="another area"):
            require_points_inside(tiles, rwanda, source="ookla tiles")


def test_swapped_columns_beyond_90_degrees_are_named_by_the_reader(tmp_path):
    # Viet Nam: longitudes 102-110 read as latitudes are out of range, so every row is rejected
    path = tmp_path / "vnm_clinics.csv"
    path.write_text("name,lat,lon\nHa Noi,105.85,21.03\nHo Chi Minh City,106.70,10.78\n")
    with pytest.raises(EmptyInputError, match="vnm_clinics.csv.*columns are swapped.*lon="):
        gp.read_points(path)
    assert len(gp.read_points(path, lon="lat", lat="lon")) == 2
