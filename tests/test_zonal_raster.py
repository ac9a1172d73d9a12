"""zonal_raster / pixel_weights against exactextract and brute-force references."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract

from conftest import write_raster
from geopipe.errors import GeometryError, InputError, RasterError
from geopipe.zonal import raster as zr
from geopipe.zonal.raster import pixel_weights, zonal_raster

GPW = "real/prt_sao_miguel/gpw_v411_2020_count_2020.tif"
VNM_POP = "real/vnm/vnm_ppp_2020_1km_Aggregated_UNadj.tif"


def _write(path: Path, arr: np.ndarray, transform: Affine, crs="EPSG:4326", **kw) -> Path:
    return write_raster(path, arr, transform, crs, **kw)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 60 x 80 random raster and awkward polygons: hole, multipart, partly off-raster, tiny."""
    tmp = tmp_path_factory.mktemp("zonal")
    rng = np.random.default_rng(0)
    tr = Affine(0.1, 0, 10, 0, -0.1, 5)
    vals = rng.random((60, 80)) * 100
    vals[5, 5:20] = -1.0  # nodata
    wts = rng.random((60, 80)) * 10
    geoms = [
        shapely.Point(13, 2).buffer(1.7).difference(shapely.Point(13.2, 2).buffer(0.5)),
        shapely.MultiPolygon([shapely.box(9, 0, 11.03, 1.57), shapely.Point(16, 3).buffer(0.9)]),
        shapely.box(10.2, 0.0, 11.03, 1.57),
        shapely.Polygon([(10.05, 4.95), (11, 4.9), (10.5, 4.0)]),
        shapely.box(17.5, 4.43, 19.0, 6.0),  # partly north and east of the raster
        shapely.box(10.31, 3.31, 10.33, 3.33),  # inside a single pixel
    ]
    units = gpd.GeoDataFrame(
        {"ucode": [f"U{i}" for i in range(len(geoms))]}, geometry=geoms, crs=4326
    )
    return {
        "units": units,
        "values": _write(tmp / "v.tif", vals, tr, nodata=-1.0),
        "weights": _write(tmp / "w.tif", wts, tr),
        "tmp": tmp,
        "transform": tr,
    }


@pytest.mark.parametrize("stat", ["sum", "mean", "count", "min", "max", "median"])
def test_stats_match_exactextract(synthetic, stat):
    out = zonal_raster(synthetic["units"], synthetic["values"], stats=(stat,))
    ref = exact_extract(str(synthetic["values"]), synthetic["units"], stat, output="pandas")
    # exactextract keeps coverage fractions in single precision: the interpolated median moves
    # by ~1e-6 relative
    rtol = 1e-5 if stat == "median" else 1e-7
    np.testing.assert_allclose(out[stat].to_numpy(), ref[stat].to_numpy(), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("stat", ["weighted_sum", "weighted_mean"])
def test_weighted_stats_match_exactextract(synthetic, stat):
    out = zonal_raster(
        synthetic["units"], synthetic["values"], stats=(stat,), weights=synthetic["weights"]
    )
    ref = exact_extract(
        str(synthetic["values"]),
        synthetic["units"],
        stat,
        weights=str(synthetic["weights"]),
        output="pandas",
    )
    np.testing.assert_allclose(out[stat].to_numpy(), ref[stat].to_numpy(), rtol=1e-7)


def _assert_coverage_matches_exactextract(units: gpd.GeoDataFrame, raster: Path) -> None:
    """Every unit's (pixel, coverage) pairs equal exactextract's (nodata pixels aside)."""
    pw = pixel_weights(units, raster)
    ref = exact_extract(str(raster), units, ["cell_id", "coverage"], output="pandas")
    width = pw.shape[1]
    with rasterio.open(raster) as ds:
        nodata = set(np.flatnonzero(ds.read(1).ravel() == ds.nodata))  # exactextract skips those
    for i, row in ref.iterrows():
        keep = np.asarray(row["coverage"]) > 1e-9
        expected = dict(
            zip(np.asarray(row["cell_id"])[keep], np.asarray(row["coverage"])[keep], strict=True)
        )
        sel = pw.unit == i
        got = dict(zip(pw.row[sel] * width + pw.col[sel], pw.coverage[sel], strict=True))
        got = {k: v for k, v in got.items() if k not in nodata}
        assert set(got) == set(expected), units["ucode"].iloc[i]
        # exactextract returns coverage as float32: compare at single precision
        np.testing.assert_allclose(
            [got[k] for k in expected], list(expected.values()), rtol=1e-6, atol=1e-7
        )


def test_pixel_weights_match_exactextract_coverage(synthetic):
    units = synthetic["units"]
    _assert_coverage_matches_exactextract(units, synthetic["values"])
    pw = pixel_weights(units, synthetic["values"])
    # pixel centres: same as rasterio's xy for the same pixels
    lon, lat = pw.pixel_lonlat()
    with rasterio.open(synthetic["values"]) as ds:
        x, y = rasterio.transform.xy(ds.transform, pw.row[:50], pw.col[:50])
    np.testing.assert_allclose(lon[:50], x)
    np.testing.assert_allclose(lat[:50], y)


@pytest.fixture(scope="module")
def last_row_and_column():
    """Polygons with edges inside the raster's last column (x 17.9-18) and last row (y -1 to
    -0.9) of the synthetic 60 x 80 grid, and polygons that run off its east and south sides."""
    geoms = [
        shapely.box(17.93, 2.02, 17.97, 2.98),  # inside the last column
        shapely.Polygon([(17.2, 1.0), (18.6, 1.3), (18.4, 2.1), (17.85, 2.45)]),  # off the east
        shapely.box(12.03, -0.97, 13.05, -0.52),  # bottom edge inside the last row
        shapely.Polygon([(14.0, -1.5), (15.3, -0.93), (14.6, -0.4)]),  # off the south
        shapely.Polygon([(17.55, -0.55), (17.98, -0.96), (17.91, -0.15)]),  # corner pixel
        shapely.box(16.95, -1.05, 18.05, 0.05),  # covers the corner, edges outside the grid
    ]
    return gpd.GeoDataFrame(
        {"ucode": [f"E{i}" for i in range(len(geoms))]}, geometry=geoms, crs=4326
    )


@pytest.mark.parametrize("stat", ["sum", "count", "mean", "max"])
def test_edges_on_the_last_row_and_column_match_exactextract(synthetic, last_row_and_column, stat):
    out = zonal_raster(last_row_and_column, synthetic["values"], stats=(stat,))
    ref = exact_extract(str(synthetic["values"]), last_row_and_column, stat, output="pandas")
    np.testing.assert_allclose(out[stat].to_numpy(), ref[stat].to_numpy(), rtol=1e-7, atol=1e-7)


def test_last_row_and_column_coverage_matches_exactextract(synthetic, last_row_and_column):
    _assert_coverage_matches_exactextract(last_row_and_column, synthetic["values"])
    pw = pixel_weights(last_row_and_column, synthetic["values"])
    height, width = pw.shape
    assert (pw.col == width - 1).any() and (pw.row == height - 1).any()


def test_units_reprojected_to_raster_crs(tmp_path):
    # UTM raster, lon/lat units: geopipe reprojects the units; reference = exactextract on
    # units reprojected by geopandas
    rng = np.random.default_rng(1)
    tr = Affine(100, 0, 500_000, 0, -100, 9_900_000)
    path = _write(
        tmp_path / "utm.tif", rng.random((200, 300)).astype("float32"), tr, crs="EPSG:32736"
    )
    units = gpd.GeoDataFrame(
        {"ucode": ["A", "B"]},
        geometry=[shapely.box(0, 9_880_000, 0, 0), shapely.box(0, 0, 0, 0)],
        crs="EPSG:32736",
    )
    units.geometry = [
        shapely.Point(510_000, 9_890_000).buffer(4_000),
        shapely.box(520_000, 9_885_000, 531_000, 9_895_500),
    ]
    ll = units.to_crs(4326)
    out = zonal_raster(ll, path, stats=("sum", "count"))
    ref = exact_extract(str(path), ll.to_crs("EPSG:32736"), ["sum", "count"], output="pandas")
    np.testing.assert_allclose(out["sum"], ref["sum"], rtol=1e-7)
    np.testing.assert_allclose(out["count"], ref["count"], rtol=1e-7)


def test_scale_offset_and_nodata(tmp_path, synthetic):
    raw = np.arange(60 * 80, dtype="int16").reshape(60, 80) % 100
    raw[10:12, :] = -9999
    path = _write(tmp_path / "scaled.tif", raw, synthetic["transform"], nodata=-9999)
    with rasterio.open(path, "r+") as ds:
        ds.scales = (0.5,)
        ds.offsets = (2.0,)
    units = synthetic["units"]
    out = zonal_raster(units, path, stats=("sum", "count"))
    # reference: exactextract's coverage fractions, values scaled by hand, nodata dropped
    cov = exact_extract(str(path), units, ["cell_id", "coverage"], output="pandas")
    flat = raw.ravel()
    for i, row in cov.iterrows():
        ids = np.asarray(row["cell_id"], dtype=np.int64)
        c = np.asarray(row["coverage"])
        ok = flat[ids] != -9999
        assert out["sum"][i] == pytest.approx(
            float((c[ok] * (flat[ids][ok] * 0.5 + 2)).sum()), rel=1e-6, abs=1e-9
        )
        assert out["count"][i] == pytest.approx(float(c[ok].sum()), rel=1e-6, abs=1e-9)


def test_several_rasters_share_one_weight_pass(synthetic, monkeypatch):
    calls = []
    real = zr.polygon_coverage

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(zr, "polygon_coverage", counting)
    units = synthetic["units"]
    out = zonal_raster(
        units, {"a": synthetic["values"], "b": synthetic["weights"]}, stats=("sum", "mean")
    )
    assert len(calls) == 1
    for pfx, path in (("a", synthetic["values"]), ("b", synthetic["weights"])):
        ref = exact_extract(str(path), units, ["sum", "mean"], output="pandas")
        np.testing.assert_allclose(out[f"{pfx}_sum"], ref["sum"], rtol=1e-7)
        np.testing.assert_allclose(out[f"{pfx}_mean"], ref["mean"], rtol=1e-7)
    assert set(out.attrs["geopipe"]["zonal_raster"]) == {"a", "b"}


def test_input_not_mutated(synthetic):
    units = synthetic["units"]
    before = units.copy()
    zonal_raster(units, synthetic["values"], prefix="pop")
    assert list(units.columns) == list(before.columns)
    assert units.geom_equals(before).all()


def test_errors(synthetic, tmp_path):
    units = synthetic["units"]
    with pytest.raises(InputError, match="stats"):
        zonal_raster(units, synthetic["values"], stats=("average",))
    with pytest.raises(InputError, match="edge"):
        zonal_raster(units, synthetic["values"], edge="all_touched")
    with pytest.raises(InputError, match="weights"):
        zonal_raster(units, synthetic["values"], stats=("weighted_mean",))
    with pytest.raises(GeometryError, match="CRS"):
        zonal_raster(gpd.GeoDataFrame(geometry=list(units.geometry)), synthetic["values"])
    other = _write(tmp_path / "other.tif", np.ones((10, 10)), Affine(1, 0, 0, 0, -1, 10))
    with pytest.raises(RasterError, match="grid"):
        zonal_raster(units, synthetic["values"], stats=("weighted_mean",), weights=other)


def test_sao_miguel_fraction_and_renormalize(testdata, sao_miguel_units):
    """The issue's numbers: fraction drops ~9.4 %; renormalize keeps every touched pixel."""
    units = sao_miguel_units.copy()
    real = units.attrs["source"] == "concelhos"
    units["ucode"] = [f"PRT_{i:04d}" for i in range(len(units))]
    raster = testdata / GPW
    frac = zonal_raster(units, raster)
    ref = exact_extract(str(raster), units, ["sum", "cell_id", "coverage"], output="pandas")
    np.testing.assert_allclose(frac["sum"], ref["sum"], rtol=1e-8)
    if real:
        assert frac["sum"].sum() == pytest.approx(131_864, abs=1)
    with rasterio.open(raster) as ds:
        arr = ds.read(1, masked=True).astype("float64")
    total = float(arr.sum())
    rep = frac.attrs["geopipe"]["zonal_raster"][str(raster)]
    json.dumps(rep)  # manifest-ready
    assert rep["raster_total"] == pytest.approx(total, rel=1e-9)
    assert rep["outside_share"] == pytest.approx(1 - frac["sum"].sum() / total, rel=1e-9)
    # the coast cuts populated pixels: a share of the island's people falls outside the units
    assert (
        rep["outside_share"] == pytest.approx(0.094, abs=0.001)
        if real
        else rep["outside_share"] > 0.01
    )
    # renormalize: the units hold the raster's total over the pixels they touch
    renorm = zonal_raster(units, raster, edge="renormalize")
    touched = np.unique(
        np.concatenate(
            [
                np.asarray(c)[np.asarray(w) > 0]
                for c, w in zip(ref["cell_id"], ref["coverage"], strict=True)
            ]
        ).astype(np.int64)
    )
    flat = arr.filled(0).ravel()
    assert renorm["sum"].sum() == pytest.approx(float(flat[touched].sum()), rel=1e-4)
    assert (renorm["sum"].to_numpy() >= frac["sum"].to_numpy() - 1e-9).all()


def test_renormalize_by_hand(tmp_path):
    """2 x 2 grid of 1° pixels; A covers half of pixel 30 and a quarter of pixel 40, B half of
    pixel 40. Renormalized, pixel 30 goes to A whole and pixel 40 is split 1 : 2."""
    path = _write(
        tmp_path / "r.tif", np.array([[10.0, 20.0], [30.0, 40.0]]), Affine(1, 0, 0, 0, -1, 2)
    )
    units = gpd.GeoDataFrame(
        {"ucode": ["A", "B"]},
        geometry=[shapely.box(0.5, 0, 1.25, 1), shapely.box(1.25, 0, 1.75, 1)],
        crs=4326,
    )
    frac = zonal_raster(units, path, stats=("sum", "count"))
    np.testing.assert_allclose(frac["sum"], [30 / 2 + 40 / 4, 40 / 2])
    renorm = zonal_raster(units, path, stats=("sum", "count"), edge="renormalize")
    np.testing.assert_allclose(renorm["sum"], [30 + 40 / 3, 40 * 2 / 3])
    np.testing.assert_allclose(renorm["count"], [1 + 1 / 3, 2 / 3])
    rep = renorm.attrs["geopipe"]["zonal_raster"][str(path)]
    assert rep["raster_total"] == pytest.approx(100.0)
    assert rep["outside_share"] == pytest.approx(0.3)  # pixels 10 and 20 are touched by no unit


def test_renormalize_matches_exactextract_coverage_shares(testdata):
    """Real provinces: each pixel's value split by exactextract coverage / Σ coverage over units."""
    from conftest import NEIGHBOURS

    units = gpd.read_file(testdata / "real/vnm/vnm_adm1.geojson").iloc[NEIGHBOURS]
    units = units.reset_index(drop=True).assign(ucode=lambda d: [f"V{i}" for i in range(len(d))])
    raster = testdata / VNM_POP
    ref = exact_extract(str(raster), units, ["cell_id", "coverage", "values"], output="pandas")
    unit = np.repeat(np.arange(len(units)), [len(c) for c in ref["cell_id"]])
    cell = np.concatenate(ref["cell_id"].to_numpy()).astype(np.int64)
    cov = np.concatenate(ref["coverage"].to_numpy()).astype(float)
    val = np.concatenate(ref["values"].to_numpy()).astype(float)
    total = pd.Series(cov).groupby(cell).transform("sum").to_numpy()
    expected = np.bincount(unit, val * cov / total, minlength=len(units))
    renorm = zonal_raster(units, raster, edge="renormalize")
    np.testing.assert_allclose(renorm["sum"], expected, rtol=1e-5)
    frac = zonal_raster(units, raster)
    np.testing.assert_allclose(frac["sum"], np.bincount(unit, val * cov), rtol=1e-6)
    # the outer boundary cuts populated pixels: the two rules differ measurably
    assert renorm["sum"].sum() > frac["sum"].sum() * 1.001


def test_vnm_provinces_match_exactextract(testdata):
    units = gpd.read_file(testdata / "real/vnm/vnm_adm1.geojson")
    units["ucode"] = [f"VNM_{i:04d}" for i in range(len(units))]
    raster = testdata / VNM_POP
    out = zonal_raster(units, raster, stats=("sum", "mean"))
    ref = exact_extract(str(raster), units, ["sum", "mean"], output="pandas")
    np.testing.assert_allclose(out["sum"], ref["sum"], rtol=1e-7)
    np.testing.assert_allclose(out["mean"], ref["mean"], rtol=1e-7)


def test_no_overlap_is_an_error_naming_the_file_and_cause(synthetic):
    # issue 12: a raster that overlaps no unit used to warn and publish zeros
    from geopipe.errors import EmptyInputError, InputError

    far = gpd.GeoDataFrame({"ucode": ["X"]}, geometry=[shapely.box(50, 50, 51, 51)], crs=4326)
    with pytest.raises(EmptyInputError, match="no unit overlaps it") as err:
        zonal_raster(far, synthetic["values"], stats=("sum", "mean"))
    assert isinstance(err.value, InputError)
    assert str(synthetic["values"]) in str(err.value) and "CRS" in str(err.value)


def test_all_nodata_over_the_units_is_an_error(synthetic):
    # issue 12: an all-nodata population raster published population_total = 0 everywhere
    from geopipe.errors import EmptyInputError

    empty = np.full((60, 80), -1.0)
    empty[0, 0] = 5.0  # one valid pixel, but under no unit
    path = _write(synthetic["tmp"] / "nodata.tif", empty, synthetic["transform"], nodata=-1.0)
    with pytest.raises(EmptyInputError, match="no valid pixel over the units") as err:
        zonal_raster(synthetic["units"].iloc[:3], path)
    assert "nodata.tif" in str(err.value) and "nodata" in str(err.value)
    # zeros that are valid data are not an error: the layer says "nobody lives here"
    zeros = _write(synthetic["tmp"] / "zeros.tif", np.zeros((60, 80)), synthetic["transform"])
    assert (zonal_raster(synthetic["units"].iloc[:3], zeros)["sum"] == 0).all()
