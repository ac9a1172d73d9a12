"""areal_interpolate vs tobler, a hand calculation on three tiles, and a direct Ookla computation."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from hypothesis import given, settings
from hypothesis import strategies as st
from tobler.area_weighted import area_interpolate

from conftest import write_raster
from geopipe.errors import GeometryError, InputError, MissingColumnError
from geopipe.io.tiles import read_tiles
from geopipe.zonal.areal import areal_interpolate, overlay_table

EA = "EPSG:6933"
# tobler passes int arrays to scipy.sparse, which warns about a future dtype change
pytestmark = pytest.mark.filterwarnings("ignore:Input has data type:FutureWarning")


@pytest.fixture(scope="module")
def ookla(testdata):
    return read_tiles(testdata / "zonal" / "ookla_fixed_2020Q1_sao_miguel.csv")


@pytest.fixture(scope="module")
def grid():
    xs = np.linspace(-25.87, -25.13, 6)
    ys = np.linspace(37.68, 37.93, 4)
    geoms = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(3) for i in range(5)]
    return gpd.GeoDataFrame({"ucode": [f"B{k:02d}" for k in range(15)]}, geometry=geoms, crs=4326)


def test_three_tiles_by_hand():
    # tiles [0,1], [1,2], [2,3] x [0,1] degrees; units split at 1.5 E. In a cylindrical
    # equal-area CRS the area share of a split box is exactly its longitude share.
    tiles = gpd.GeoDataFrame(
        {"tests": [10, 20, 30], "mbps": [100.0, 50.0, 20.0]},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(3)],
        crs=4326,
    )
    units = gpd.GeoDataFrame(
        {"ucode": ["W", "E"]},
        geometry=[shapely.box(0, 0, 1.5, 1), shapely.box(1.5, 0, 3, 1)],
        crs=4326,
    )
    by_area = areal_interpolate(tiles, units, extensive=["tests"], intensive=["mbps"])
    np.testing.assert_allclose(by_area["tests"], [10 + 20 / 2, 20 / 2 + 30])
    np.testing.assert_allclose(by_area["mbps"], [(100 + 50 / 2) / 1.5, (50 / 2 + 20) / 1.5])
    by_tests = areal_interpolate(tiles, units, intensive=["mbps"], weight="tests")
    np.testing.assert_allclose(
        by_tests["mbps"], [(100 * 10 + 50 * 10) / 20, (50 * 10 + 20 * 30) / 40]
    )


@pytest.mark.parametrize("allocate_total", [False, True])
def test_matches_tobler_on_ookla_tiles(ookla, grid, allocate_total):
    ext, inten = ["tests", "devices"], ["avg_d_kbps", "avg_lat_ms"]
    ours = areal_interpolate(
        ookla, grid, extensive=ext, intensive=inten, allocate_total=allocate_total
    )
    ref = area_interpolate(
        ookla.to_crs(EA),
        grid.to_crs(EA),
        extensive_variables=ext,
        intensive_variables=inten,
        allocate_total=allocate_total,
    )
    # tobler stores its area table as float32: agreement to ~1e-8, not to float64 precision
    for c in ext:
        np.testing.assert_allclose(ours[c], ref[c], rtol=1e-6, atol=1e-9)
    hit = ours["tests"] > 0  # tobler reports 0 where no tile reaches; we report nan
    for c in inten:
        np.testing.assert_allclose(ours.loc[hit, c], ref.loc[hit, c], rtol=1e-6)
        assert ours.loc[~hit, c].isna().all()
    if allocate_total:  # every tile lies in the grid: totals are conserved
        assert ours["tests"].sum() == pytest.approx(ookla["tests"].sum(), rel=1e-12)


def test_table_is_reusable_and_checked(ookla, grid):
    table = overlay_table(ookla, grid)
    assert {"source", "unit", "area_m2", "source_area_m2"} <= set(table.columns)
    a = areal_interpolate(ookla, grid, extensive=["tests"], intensive=["avg_d_kbps"])
    b = areal_interpolate(ookla, grid, extensive=["tests"], intensive=["avg_d_kbps"], table=table)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(InputError, match="refers to rows"):
        areal_interpolate(ookla.iloc[:10], grid, extensive=["tests"], table=table)


def test_raster_weight(ookla, grid, tmp_path):
    # a raster that is 1 everywhere: weights are then planar-degree areas, within 0.2 % of
    # equal-area weights over São Miguel's 0.3° of latitude
    path = tmp_path / "ones.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=400,
        height=200,
        count=1,
        dtype="float64",
        crs="EPSG:4326",
        transform=Affine(0.002, 0, -25.9, 0, -0.002, 38.0),
    ) as dst:
        dst.write(np.ones((200, 400)), 1)
    by_area = areal_interpolate(ookla, grid, extensive=["tests"], intensive=["avg_d_kbps"])
    by_ras = areal_interpolate(
        ookla, grid, extensive=["tests"], intensive=["avg_d_kbps"], weight=path
    )
    hit = by_area["tests"] > 0
    np.testing.assert_allclose(
        by_ras.loc[hit, "avg_d_kbps"], by_area.loc[hit, "avg_d_kbps"], rtol=2e-3
    )
    np.testing.assert_allclose(by_ras["tests"], by_area["tests"], rtol=2e-3, atol=1e-6)


def test_raster_weight_two_tiles_by_hand(tmp_path):
    """Two tiles, 0.5° pixels aligned with the tile edges: every weight is a sum of whole pixels."""
    # columns [0, .5], [.5, 1], [1, 1.5], [1.5, 2]; tile 0 = the first two, tile 1 = the last two
    pop = np.array([[1.0, 2.0, 3.0, 9.0], [1.0, 2.0, 1.0, 3.0]])
    path = write_raster(tmp_path / "pop.tif", pop, Affine(0.5, 0, 0, 0, -0.5, 1))
    tiles = gpd.GeoDataFrame(
        {"tests": [10.0, 40.0], "mbps": [100.0, 20.0]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        crs=4326,
    )
    units = gpd.GeoDataFrame(
        {"ucode": ["W", "E"]},
        geometry=[shapely.box(0, 0, 1.5, 1), shapely.box(1.5, 0, 2, 1)],
        crs=4326,
    )
    out = areal_interpolate(tiles, units, extensive=["tests"], intensive=["mbps"], weight=path)
    # tile 0 weighs 1+2+1+2 = 6, all in W; tile 1 weighs 3+1 = 4 in W and 9+3 = 12 in E
    np.testing.assert_allclose(out["tests"], [10 + 40 * 4 / 16, 40 * 12 / 16])
    np.testing.assert_allclose(out["mbps"], [(100 * 6 + 20 * 4) / (6 + 4), 20.0])
    # by area the answer differs (so a weight that is ignored cannot pass)
    by_area = areal_interpolate(tiles, units, extensive=["tests"], intensive=["mbps"])
    np.testing.assert_allclose(by_area["tests"], [30.0, 20.0])
    # E covers only the western half of the last column: 6 of tile 1's 16 people
    units.geometry = [shapely.box(0, 0, 1.5, 1), shapely.box(1.5, 0, 1.75, 1)]
    part = areal_interpolate(tiles, units, extensive=["tests"], weight=path)
    np.testing.assert_allclose(part["tests"], [10 + 40 * 4 / 16, 40 * 6 / 16])
    kept = areal_interpolate(tiles, units, extensive=["tests"], weight=path, allocate_total=True)
    np.testing.assert_allclose(kept["tests"], [10 + 40 * 4 / 10, 40 * 6 / 10])


@pytest.mark.parametrize("allocate_total", [False, True])
def test_raster_weight_matches_exactextract_on_overlay_pieces(
    ookla, grid, testdata, allocate_total
):
    """Reference: gpd.overlay pieces in the raster's CRS, population of each piece and of each
    tile from exactextract, then the formulas of the module docstring written out."""
    raster = testdata / "real" / "prt_sao_miguel" / "gpw_v411_2020_count_2020.tif"
    ext, inten = ["tests", "devices"], ["avg_d_kbps"]
    out = areal_interpolate(
        ookla, grid, extensive=ext, intensive=inten, weight=raster, allocate_total=allocate_total
    )
    tiles = ookla.reset_index(drop=True).reset_index(names="tile")
    pieces = gpd.overlay(
        tiles, grid.reset_index(names="unit"), how="intersection", keep_geom_type=True
    )
    pieces["w"] = exact_extract(str(raster), pieces, "sum", output="pandas")["sum"].to_numpy()
    if allocate_total:
        tile_w = pieces.groupby("tile")["w"].sum()
    else:
        tile_w = exact_extract(str(raster), tiles, "sum", output="pandas")["sum"]
    pieces["share"] = pieces["w"] / pieces["tile"].map(tile_w)
    units = range(len(grid))
    for c in ext:
        ref = (pieces[c] * pieces["share"].fillna(0)).groupby(pieces["unit"]).sum()
        np.testing.assert_allclose(out[c], ref.reindex(units, fill_value=0.0), rtol=1e-6, atol=1e-9)
    g = pieces.assign(wv=pieces["w"] * pieces["avg_d_kbps"]).groupby("unit")[["wv", "w"]].sum()
    ref = (g["wv"] / g["w"].where(g["w"] > 0)).reindex(units)
    np.testing.assert_allclose(out["avg_d_kbps"], ref, rtol=1e-6)
    # the population weight matters here: by area, the means move by more than 1 % somewhere
    by_area = areal_interpolate(ookla, grid, intensive=inten)
    hit = ref.notna().to_numpy()
    moved = np.abs(by_area["avg_d_kbps"].to_numpy()[hit] / ref.to_numpy()[hit] - 1)
    assert moved.max() > 0.01


def test_ookla_tests_weighted_download_per_municipality(sao_miguel_units, ookla_tiles):
    units, tiles = sao_miguel_units, ookla_tiles
    out = areal_interpolate(
        tiles, units, extensive=["tests"], intensive=["avg_d_kbps"], weight="tests"
    )
    # direct: geopandas.overlay in an equal-area CRS, tests split by area share, then a
    # tests-weighted mean of the tile speeds per municipality
    t = tiles.to_crs(EA).assign(tile_area=lambda d: d.area)
    pieces = gpd.overlay(
        t, units.to_crs(EA).reset_index(names="unit"), how="intersection", keep_geom_type=True
    )
    pieces["w"] = pieces["tests"] * pieces.area / pieces["tile_area"]
    g = pieces.assign(wd=pieces["w"] * pieces["avg_d_kbps"]).groupby("unit")[["wd", "w"]].sum()
    direct = (g["wd"] / g["w"]).reindex(range(len(units)))
    np.testing.assert_allclose(out["avg_d_kbps"].to_numpy(), direct.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(
        out["tests"].to_numpy(), g["w"].reindex(range(len(units))), rtol=1e-9
    )
    # and tobler agrees on the area-weighted version
    ref = area_interpolate(
        tiles.to_crs(EA),
        units.to_crs(EA),
        extensive_variables=["tests"],
        intensive_variables=["avg_d_kbps"],
        allocate_total=False,
    )
    ours = areal_interpolate(tiles, units, extensive=["tests"], intensive=["avg_d_kbps"])
    np.testing.assert_allclose(ours["avg_d_kbps"], ref["avg_d_kbps"], rtol=1e-6)  # float32


def test_errors(ookla, grid):
    pts = ookla.assign(geometry=ookla.representative_point())
    with pytest.raises(GeometryError, match="read_tiles"):
        areal_interpolate(pts, grid, extensive=["tests"])
    with pytest.raises(MissingColumnError, match="nope"):
        areal_interpolate(ookla, grid, extensive=["nope"])
    with pytest.raises(InputError, match="both empty"):
        areal_interpolate(ookla, grid)
    with pytest.raises(InputError, match="is a string"):
        areal_interpolate(ookla, grid, extensive="tests")


_SPLIT = st.tuples(st.integers(0, 14), st.floats(0.05, 0.95), st.booleans())


@settings(max_examples=25, deadline=None)
@given(split=_SPLIT)
def test_splitting_a_unit_keeps_extensive_totals(ookla, grid, split):
    k, frac, vertical = split
    xmin, ymin, xmax, ymax = grid.geometry.iloc[k].bounds
    if vertical:
        cut = xmin + frac * (xmax - xmin)
        halves = [shapely.box(xmin, ymin, cut, ymax), shapely.box(cut, ymin, xmax, ymax)]
    else:
        cut = ymin + frac * (ymax - ymin)
        halves = [shapely.box(xmin, ymin, xmax, cut), shapely.box(xmin, cut, xmax, ymax)]
    parts = gpd.GeoDataFrame({"ucode": ["a", "b"]}, geometry=halves, crs=4326)
    whole = areal_interpolate(ookla, grid.iloc[[k]], extensive=["tests", "devices"])
    split_ = areal_interpolate(ookla, parts, extensive=["tests", "devices"])
    for c in ["tests", "devices"]:
        assert split_[c].sum() == pytest.approx(whole[c].iloc[0], rel=1e-9, abs=1e-9)


def test_overlay_of_a_few_units_reads_only_the_tiles_near_them(monkeypatch):
    """A partition's units overlay only the lon/lat tiles whose box meets theirs, with the same
    rows (positions in the whole source) as an overlay of every tile."""
    from geopipe.zonal import areal

    tiles = gpd.GeoDataFrame(
        geometry=[
            shapely.box(x, y, x + 0.1, y + 0.1)
            for x in np.arange(0, 2, 0.1)
            for y in np.arange(0, 2, 0.1)
        ],
        crs=4326,
    )
    units = gpd.GeoDataFrame(geometry=[shapely.Point(0.73, 1.21).buffer(0.17)], crs=4326)
    near = areal._near_units(tiles, units, "EPSG:6933")
    assert 0 < len(near) < len(tiles) / 10
    got = overlay_table(tiles, units)
    monkeypatch.setattr(areal, "_near_units", lambda s, u, c: np.arange(len(s)))
    pd.testing.assert_frame_equal(got, overlay_table(tiles, units))
    # projected sources, or another equal-area CRS: the box test could miss one, so every tile
    assert len(areal._near_units(tiles.to_crs(32735), units, "EPSG:6933")) == len(tiles)
    assert len(areal._near_units(tiles, units, "ESRI:54034")) == len(tiles)
