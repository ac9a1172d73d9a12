"""Quadkey decoding and read_tiles against the stored Ookla geometries and RWI tile centres."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geopipe.errors import FormatError, GeopipeWarning, MissingColumnError
from geopipe.io.tiles import quadkey_to_polygon, quadkey_to_tile, read_tiles, tile_to_quadkey


def _ref_quadkey(x: int, y: int, z: int) -> str:
    """Textbook Bing encoding, one character per level (reference for the vectorised code)."""
    out = []
    for i in range(z, 0, -1):
        mask = 1 << (i - 1)
        out.append(str((1 if x & mask else 0) + (2 if y & mask else 0)))
    return "".join(out)


def test_round_trip_against_textbook_encoding():
    rng = np.random.default_rng(0)
    z = rng.integers(1, 20, 500)
    x = rng.integers(0, 2**z)
    y = rng.integers(0, 2**z)
    keys = [_ref_quadkey(int(a), int(b), int(c)) for a, b, c in zip(x, y, z, strict=True)]
    assert tile_to_quadkey(x, y, z).tolist() == keys
    dx, dy, dz = quadkey_to_tile(keys)
    np.testing.assert_array_equal(dx, x)
    np.testing.assert_array_equal(dy, y)
    np.testing.assert_array_equal(dz, z)


def test_invalid_quadkeys_decode_to_minus_one():
    x, y, z = quadkey_to_tile(["0123", "0124", "", None, "3" * 24])
    assert z.tolist() == [4, -1, -1, -1, -1]
    assert x.tolist() == [int(_ref_quadkey(5, 3, 4) == "0123") * 5, -1, -1, -1, -1]
    assert y.tolist() == [3, -1, -1, -1, -1]
    assert quadkey_to_polygon(["0124"])[0] is None


def _ref_tile_box(quadkey: str) -> shapely.Polygon:
    """Textbook decoding: quadkey digits -> tile x, y -> Web Mercator tile bounds in lon/lat."""
    x = y = 0
    for d in map(int, quadkey):
        x, y = 2 * x + (d & 1), 2 * y + (d >> 1)
    n = 2 ** len(quadkey)

    def lat(row: int) -> float:
        return float(np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * row / n)))))

    return shapely.box(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


def _check_geojson_tiles(path) -> None:
    stored = gpd.read_file(path)
    tiles = read_tiles(path)
    assert tiles["quadkey"].tolist() == stored["quadkey"].tolist()
    assert tiles.crs.to_epsg() == 4326
    a = shapely.get_coordinates(shapely.normalize(tiles.geometry.array))
    b = shapely.get_coordinates(shapely.normalize(stored.geometry.array))
    np.testing.assert_allclose(a, b, atol=1e-9)
    pd.testing.assert_series_equal(tiles["tests"], stored["tests"], check_dtype=False)


def test_ookla_geojson_polygons_match_stored_geometry(shared_real):
    _check_geojson_tiles(shared_real / "prt_sao_miguel" / "ookla_fixed_2020Q1_sao_miguel.geojson")


def test_ookla_geojson_polygons_match_textbook_tiles(testdata, tmp_path):
    """Repo-only twin: the CSV's tiles written as GeoJSON with textbook tile bounds."""
    raw = pd.read_csv(
        testdata / "zonal" / "ookla_fixed_2020Q1_sao_miguel.csv", dtype={"quadkey": str}
    )
    stored = gpd.GeoDataFrame(raw, geometry=[_ref_tile_box(q) for q in raw["quadkey"]], crs=4326)
    stored.to_file(tmp_path / "ookla.geojson")
    _check_geojson_tiles(tmp_path / "ookla.geojson")


def test_ookla_csv_and_parquet_and_tile_wkt(testdata, tmp_path):
    csv = testdata / "zonal" / "ookla_fixed_2020Q1_sao_miguel.csv"
    tiles = read_tiles(csv)
    assert len(tiles) == 460 and tiles["quadkey"].str.len().eq(16).all()
    assert tiles["quadkey"].str.startswith("0").all()  # leading zeros kept from the CSV text
    # the Ookla parquet layout: quadkey + a `tile` WKT column, no geo metadata
    raw = pd.read_csv(csv, dtype={"quadkey": str})
    raw["tile"] = shapely.to_wkt(quadkey_to_polygon(raw["quadkey"]))
    raw.to_parquet(tmp_path / "ookla.parquet")
    from_parquet = read_tiles(tmp_path / "ookla.parquet")
    assert from_parquet["quadkey"].tolist() == tiles["quadkey"].tolist()
    # without a quadkey column, the quadkey is recovered from the WKT tile
    no_key = raw.drop(columns="quadkey")
    from_wkt = read_tiles(no_key)
    assert from_wkt["quadkey"].tolist() == tiles["quadkey"].tolist()
    assert shapely.equals_exact(from_wkt.geometry.array, tiles.geometry.array, 1e-9).all()


def test_rwi_float_quadkeys_get_leading_zeros_back(sample_dir):
    path = sample_dir / "RWA_relative_wealth_index.csv"  # byte-identical to ../shared's copy
    as_text = read_tiles(path)
    as_float = read_tiles(pd.read_csv(path).astype({"quadkey": float}))
    assert as_float["quadkey"].tolist() == as_text["quadkey"].tolist()
    assert as_text["quadkey"].str.len().eq(14).all()
    # the tile centres are the latitude/longitude columns of the file (independent reference)
    c = shapely.centroid(as_text.geometry.array)
    np.testing.assert_allclose(shapely.get_x(c), as_text["longitude"], atol=1e-6)
    np.testing.assert_allclose(shapely.get_y(c), as_text["latitude"], atol=1e-6)


def test_leading_zero_restoration_with_zoom():
    # western-hemisphere quadkeys start with 0 or 2: a float column drops the 0
    keys = ["0213", "0031", "2130"]
    df = pd.DataFrame({"quadkey": [float(k) for k in keys], "rwi": [0.1, 0.2, 0.3]})
    assert read_tiles(df)["quadkey"].tolist() == keys  # zoom inferred from the longest
    df2 = pd.DataFrame({"quadkey": [213.0, 31.0], "rwi": [0.1, 0.2]})
    assert read_tiles(df2, zoom=4)["quadkey"].tolist() == ["0213", "0031"]
    # text that went through a float ("213.0") is repaired too, with a warning for short keys
    df3 = pd.DataFrame({"quadkey": ["213.0", "2130"], "v": [1, 2]})
    with pytest.warns(GeopipeWarning, match="shorter than zoom 4"):
        assert read_tiles(df3)["quadkey"].tolist() == ["0213", "2130"]


def test_bad_rows_are_reported_not_silently_dropped():
    df = pd.DataFrame({"quadkey": ["0213", "02x3", "", "0213"], "v": [1, 2, 3, 4]})
    with pytest.warns(GeopipeWarning) as rec:
        out = read_tiles(df)
    messages = " ".join(str(w.message) for w in rec)
    assert "2 of 4 rows" in messages and "invalid quadkey" in messages
    assert "repeat a quadkey" in messages
    assert out["v"].tolist() == [1, 4]


def test_errors():
    with pytest.raises(MissingColumnError, match="quadkey"):
        read_tiles(pd.DataFrame({"a": [1]}))
    with pytest.raises(FormatError, match="non-integer"):
        read_tiles(pd.DataFrame({"quadkey": [1.5]}))
