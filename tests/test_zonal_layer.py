"""zonal_layer: population-weighted value layers (tiles, rasters, points) against brute force."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from exactextract import exact_extract
from pyproj import Geod
from rasterio.transform import from_origin

import geopipe as gp

U18 = "rwa_population_u18_2020_modelled_232m.tif"


@pytest.fixture(scope="module")
def districts(rwanda_admin):
    admin = rwanda_admin
    return admin[admin.admin_level == 2].reset_index(drop=True).iloc[:6]


@pytest.fixture(scope="module")
def pixels(districts, sample_dir):
    """Independent per-pixel table from exactextract: unit, coverage, centre, value."""
    res = exact_extract(
        str(sample_dir / U18),
        districts[["ucode", "geometry"]],
        ["coverage", "center_x", "center_y", "values"],
        include_cols=["ucode"],
        output="pandas",
    )
    rows = []
    for r in res.itertuples():
        rows.append(
            pd.DataFrame(
                {
                    "ucode": r.ucode,
                    "coverage": r.coverage,
                    "x": r.center_x,
                    "y": r.center_y,
                    "value": r.values,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_tiles_vs_pixel_join(districts, pixels, sample_dir):
    rwi = gp.read_tiles(sample_dir / "RWA_relative_wealth_index.csv")
    out = gp.zonal_layer(districts, sample_dir / U18, rwi, "rwi", below=0.0, prefix="w")
    pts = gpd.GeoDataFrame(pixels, geometry=gpd.points_from_xy(pixels.x, pixels.y), crs=4326)
    joined = gpd.sjoin(pts, rwi[["rwi", "geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    w = joined["coverage"] * joined["value"]
    has = joined["rwi"].notna()
    ref = pd.DataFrame(
        {
            "covered": w.where(has, 0).groupby(joined["ucode"]).sum(),
            "below": w.where(has & (joined["rwi"] < 0), 0).groupby(joined["ucode"]).sum(),
            "wsum": (w * joined["rwi"]).where(has, 0).groupby(joined["ucode"]).sum(),
            "uncovered": w.where(~has, 0).groupby(joined["ucode"]).sum(),
        }
    ).reindex(out["ucode"])
    # exactextract stores coverage fractions in float32: agreement to ~1e-6
    np.testing.assert_allclose(out["w_covered"], ref["covered"], rtol=1e-5)
    np.testing.assert_allclose(out["w_below"], ref["below"], rtol=1e-5)
    np.testing.assert_allclose(out["w_mean"], ref["wsum"] / ref["covered"], rtol=1e-5)
    np.testing.assert_allclose(out["w_uncovered"], ref["uncovered"], rtol=1e-5, atol=1e-3)
    total = exact_extract(
        str(sample_dir / U18), districts[["ucode", "geometry"]], "sum", output="pandas"
    )["sum"]
    np.testing.assert_allclose(out["w_covered"] + out["w_uncovered"], total, rtol=1e-6)


def test_raster_layer_vs_rasterio_sample(districts, pixels, sample_dir, tmp_path):
    # a value raster on another grid (0.01°, its own origin) than the population raster
    rng = np.random.default_rng(7)
    values = rng.normal(size=(260, 260)).astype("float32")
    values[:5, :] = -9999  # nodata rows
    path = tmp_path / "wealth.tif"
    profile = {
        "driver": "GTiff",
        "width": 260,
        "height": 260,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(28.7, -0.9, 0.01, 0.01),
        "nodata": -9999,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    out = gp.zonal_layer(districts, sample_dir / U18, path, below=0.0, prefix="w")
    with rasterio.open(path) as src:
        sampled = np.array(
            [v[0] for v in src.sample(zip(pixels.x, pixels.y, strict=True))], dtype=float
        )
    has = sampled != -9999
    w = pixels["coverage"] * pixels["value"]
    ref_cov = w.where(has, 0).groupby(pixels["ucode"]).sum().reindex(out["ucode"])
    ref_mean = (w * sampled).where(has, 0).groupby(pixels["ucode"]).sum().reindex(
        out["ucode"]
    ) / ref_cov
    np.testing.assert_allclose(out["w_covered"], ref_cov, rtol=1e-5)
    np.testing.assert_allclose(out["w_mean"], ref_mean, rtol=1e-4, atol=1e-6)


def test_point_layer_nearest_within_radius(districts, pixels, sample_dir):
    rng = np.random.default_rng(3)
    clusters = gpd.GeoDataFrame(
        {"score": rng.normal(size=40)},
        geometry=gpd.points_from_xy(rng.uniform(29.8, 30.4, 40), rng.uniform(-2.2, -1.4, 40)),
        crs=4326,
    )
    radius = 6000.0
    out = gp.zonal_layer(
        districts, sample_dir / U18, clusters, "score", max_distance=radius, below=0.0, prefix="w"
    )
    # brute force: every pixel against every cluster with pyproj
    geod = Geod(ellps="WGS84")
    px, py = pixels["x"].to_numpy(), pixels["y"].to_numpy()
    d = np.stack(
        [
            geod.inv(px, py, np.full(len(px), cx), np.full(len(px), cy))[2]
            for cx, cy in zip(clusters.geometry.x, clusters.geometry.y, strict=True)
        ],
        axis=1,
    )
    nearest = d.argmin(axis=1)
    has = d.min(axis=1) <= radius
    score = clusters["score"].to_numpy()[nearest]
    w = pixels["coverage"] * pixels["value"]
    ref_below = w.where(has & (score < 0), 0).groupby(pixels["ucode"]).sum().reindex(out["ucode"])
    ref_cov = w.where(has, 0).groupby(pixels["ucode"]).sum().reindex(out["ucode"])
    np.testing.assert_allclose(out["w_below"], ref_below, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["w_covered"], ref_cov, rtol=1e-5, atol=1e-6)
    with pytest.raises(gp.GeopipeError, match="max_distance"):
        gp.zonal_layer(districts, sample_dir / U18, clusters, "score")


def test_missing_value_column(districts, sample_dir):
    rwi = gp.read_tiles(sample_dir / "RWA_relative_wealth_index.csv")
    with pytest.raises(gp.GeopipeError, match="'nope'"):
        gp.zonal_layer(districts, sample_dir / U18, rwi, "nope")


def test_tests_weighted_speed_per_sao_miguel_municipality(sao_miguel_units, ookla_tiles):
    """Ookla tests-weighted mean download per municipality vs a direct geopandas overlay."""
    from geopipe.steps.layers import _tests_weighted

    units, tiles = sao_miguel_units, ookla_tiles
    tests, mean = _tests_weighted(units, tiles, "avg_d_kbps", 0.001, "tests")
    out = {"speed_tests": pd.Series(tests), "download_mbps_tests_mean": pd.Series(mean)}
    ea = "EPSG:6933"
    t = tiles.to_crs(ea).assign(tile_area=lambda f: f.area, tile=np.arange(len(tiles)))
    u = units.to_crs(ea).assign(unit=np.arange(len(units)))
    pieces = gpd.overlay(t, u, how="intersection", keep_geom_type=True)
    w = pieces.area / pieces["tile_area"] * pieces["tests"]
    ref = (w * pieces["avg_d_kbps"] / 1000).groupby(pieces["unit"]).sum() / w.groupby(
        pieces["unit"]
    ).sum()
    np.testing.assert_allclose(
        out["download_mbps_tests_mean"].to_numpy(),
        ref.reindex(range(len(units))).to_numpy(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        out["speed_tests"].to_numpy(),
        w.groupby(pieces["unit"]).sum().reindex(range(len(units))).to_numpy(),
        rtol=1e-6,
    )


def test_batches_give_the_same_result(districts, sample_dir, monkeypatch):
    """Memory-bounded batches of units (a small pixel budget) change nothing in the result."""
    import geopipe.zonal.layers as layers

    rwi = gp.read_tiles(sample_dir / "RWA_relative_wealth_index.csv")
    whole = gp.zonal_layer(districts, sample_dir / U18, rwi, "rwi", below=0.0, prefix="w")
    monkeypatch.setattr(layers, "MAX_PIXELS", 20_000)
    assert len(layers.unit_batches(districts, sample_dir / U18)) >= 3
    batched = gp.zonal_layer(districts, sample_dir / U18, rwi, "rwi", below=0.0, prefix="w")
    cols = ["w_covered", "w_mean", "w_below", "w_uncovered"]
    np.testing.assert_allclose(batched[cols].to_numpy(), whole[cols].to_numpy(), rtol=1e-12)


def test_tile_lookup_on_a_pixel_lattice_equals_the_polygon_search():
    # pixel centres of a 3" grid with holes; quadkey tiles at zoom 14 with a gap and a tile listed
    # twice (the first wins); against point-in-polygon on the tiles' own polygons
    from geopipe.io.tiles import quadkey_to_polygon, tile_to_quadkey
    from geopipe.zonal.layers import _polygon_index, _quadkey_lookup, _tile_x, _tile_y

    rng = np.random.default_rng(3)
    rows, cols = np.divmod(np.arange(600 * 700), 700)
    keep = rng.random(len(rows)) < 0.8
    rows, cols = rows[keep] + 40, cols[keep] + 15
    lon = 29.0001234 + (cols + 0.5) / 1200.0  # no centre on a tile edge (`within` excludes edges)
    lat = -1.3001234 - (rows + 0.5) / 1200.0
    x = np.arange(_tile_x(lon.min(), 2**14), _tile_x(lon.max(), 2**14) + 1)
    y = np.arange(_tile_y(lat.max(), 2**14), _tile_y(lat.min(), 2**14) + 1)
    tx, ty = (a.ravel() for a in np.meshgrid(x, y))
    some = rng.random(len(tx)) < 0.85
    tx, ty = np.r_[tx[some], tx[some][:5]], np.r_[ty[some], ty[some][:5]]
    quadkeys = pd.Series(tile_to_quadkey(tx, ty, np.full(len(tx), 14)))
    lookup = _quadkey_lookup(quadkeys)
    on_lattice = lookup(lon, lat, (rows, cols))
    per_pixel = lookup(lon, lat)
    layer = gpd.GeoDataFrame(geometry=quadkey_to_polygon(quadkeys), crs=4326)
    reference = _polygon_index(layer)(lon, lat, None)
    np.testing.assert_array_equal(on_lattice, reference)
    np.testing.assert_array_equal(per_pixel, reference)
    assert (reference == -1).any() and (reference >= 0).mean() > 0.7
    # not a lattice (a projected raster: latitude varies along a row): per pixel, same answer
    tilted = lat + cols * 1e-7
    np.testing.assert_array_equal(
        lookup(lon, tilted, (rows, cols)), _polygon_index(layer)(lon, tilted, None)
    )
