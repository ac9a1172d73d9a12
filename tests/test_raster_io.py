"""Raster reading: info for the manifest, VRT mosaics, clear errors."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from rasterio.windows import Window

from geopipe.errors import FormatError, MissingFileError, RasterError
from geopipe.io.raster import build_vrt, open_raster, raster_info
from geopipe.zonal.raster import zonal_raster

VNM_POP = "real/vnm/vnm_ppp_2020_1km_Aggregated_UNadj.tif"


def test_raster_info_matches_rasterio(testdata):
    path = testdata / VNM_POP
    info = raster_info(path)
    json.dumps(info)
    with rasterio.open(path) as ds:
        assert info["crs"] == "EPSG:4326"
        assert (info["height"], info["width"]) == (ds.height, ds.width) == (1781, 879)
        assert info["res"] == pytest.approx(list(ds.res))
        assert info["bounds"] == pytest.approx(list(ds.bounds))
        assert info["dtype"] == "float32"
        assert info["nodata"] == ds.nodata == -99999
        assert (info["scale"], info["offset"]) == (1.0, 0.0)


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist") as err:
        open_raster(tmp_path / "nope.tif")
    assert isinstance(err.value, FileNotFoundError)


def test_folder_given_as_a_raster(tmp_path, testdata):
    # issue 12: a folder was reported as "does not exist"
    import shutil

    folder = tmp_path / "worldpop"
    folder.mkdir()
    shutil.copy(testdata / "real" / "prt_sao_miguel" / "gpw_v411_2020_count_2020.tif", folder)
    with pytest.raises(FormatError, match=r"is a folder, not a raster file.*gpw_v411_2020_count"):
        raster_info(folder)


def test_not_a_raster(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("this is not a GeoTIFF")
    with pytest.raises(FormatError, match="cannot be read as a raster"):
        open_raster(bad)


def test_no_crs(tmp_path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=4,
        width=4,
        count=1,
        dtype="uint8",
        transform=Affine(1, 0, 0, 0, -1, 4),
    ) as ds:
        ds.write(np.ones((4, 4), dtype="uint8"), 1)
    with pytest.raises(RasterError, match="has no CRS"):
        open_raster(path)


def test_truncated(tmp_path):
    path = tmp_path / "trunc.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=512,
        width=512,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(0.01, 0, 0, 0, -0.01, 5),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    ) as ds:
        ds.write(rng.random((512, 512)).astype("float32"), 1)
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated|cannot be read"):
        open_raster(cut)


def _tiles(tmp_path, arr, transform, n=2):
    """Cut a raster into n x n tiles (the last ones absorb the remainder)."""
    h, w = arr.shape
    paths = []
    rs = np.linspace(0, h, n + 1).astype(int)
    cs = np.linspace(0, w, n + 1).astype(int)
    for i in range(n):
        for j in range(n):
            win = Window(cs[j], rs[i], cs[j + 1] - cs[j], rs[i + 1] - rs[i])
            p = tmp_path / f"tile_{i}_{j}.tif"
            with rasterio.open(
                p,
                "w",
                driver="GTiff",
                height=win.height,
                width=win.width,
                count=1,
                dtype=arr.dtype,
                crs="EPSG:4326",
                nodata=-99999.0,
                transform=Affine(
                    transform.a,
                    0,
                    transform.c + cs[j] * transform.a,
                    0,
                    transform.e,
                    transform.f + rs[i] * transform.e,
                ),
            ) as ds:
                ds.write(arr[rs[i] : rs[i + 1], cs[j] : cs[j + 1]], 1)
            paths.append(p)
    return paths


def test_vrt_mosaic_roundtrip_and_zonal(tmp_path, testdata):
    src = testdata / VNM_POP
    with rasterio.open(src) as ds:
        arr, transform = ds.read(1), ds.transform
    tiles = _tiles(tmp_path, arr, transform, n=3)
    vrt = build_vrt(tiles, tmp_path / "mosaic.vrt")
    with open_raster(vrt) as ds:
        assert ds.transform.almost_equals(transform)
        np.testing.assert_array_equal(ds.read(1), arr)
        assert ds.nodata == -99999
    units = gpd.read_file(testdata / "real/vnm/vnm_adm1.geojson").iloc[:8]
    units["ucode"] = [str(i) for i in range(len(units))]
    a = zonal_raster(units, vrt)
    ref = exact_extract(str(src), units, "sum", output="pandas")
    np.testing.assert_allclose(a["sum"], ref["sum"], rtol=1e-7)
    info = a.attrs["geopipe"]["zonal_raster"][str(vrt)]["raster"]
    assert info["driver"] == "VRT" and info["crs"] == "EPSG:4326"


def test_vrt_rejects_mismatched_tiles(tmp_path):
    for name, res in (("a.tif", 1.0), ("b.tif", 2.0)):
        with rasterio.open(
            tmp_path / name,
            "w",
            driver="GTiff",
            height=4,
            width=4,
            count=1,
            dtype="float32",
            crs="EPSG:4326",
            transform=Affine(res, 0, 0, 0, -res, 10),
        ) as ds:
            ds.write(np.ones((4, 4), dtype="float32"), 1)
    with pytest.raises(RasterError, match="res"):
        build_vrt([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.vrt")


def test_zonal_raster_reports_bad_raster(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("nope")
    units = gpd.GeoDataFrame({"ucode": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(FormatError, match="bad.tif"):
        zonal_raster(units, bad)


@pytest.mark.parametrize("shape", [(10, 10), (101, 57), (1000, 999), (3001, 77)])
def test_held_raster_decimates_as_gdal_does(tmp_path, shape):
    """A raster held in memory, read at a smaller ``out_shape`` (nearest), gives the pixels
    GDAL's decimated read of the file gives, with the same mask."""
    from rasterio.enums import Resampling

    from geopipe.io.raster import load_raster, overview_shape

    h, w = shape
    rng = np.random.default_rng(h)
    data = rng.random((h, w), dtype=np.float32)
    data[rng.random((h, w)) < 0.1] = -9.0
    path = tmp_path / "r.tif"
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "float32"}
    transform = Affine(0.01, 0, 0, 0, -0.01, 0)
    with rasterio.open(
        path, "w", **profile, nodata=-9.0, crs="EPSG:4326", transform=transform
    ) as ds:
        ds.write(data, 1)
    held, header = load_raster(path), load_raster(path, max_bytes=0)
    assert held.whole and not header.in_memory
    for step in (2, 3, 7):
        out = (int(np.ceil(h / step)), int(np.ceil(w / step)))
        with rasterio.open(path) as ds:
            ref = ds.read(1, out_shape=out, resampling=Resampling.nearest, masked=True)
        for data in (held, header):  # from memory; from the one pass over the file
            got = data.read(1, out_shape=out, resampling=Resampling.nearest, masked=True)
            assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(ref))
            assert np.array_equal(got.filled(0), ref.filled(0))
    # the pass's total is the sum over the float64 blocks, as held in memory
    with rasterio.open(path) as ds:
        arr = ds.read(1, masked=True).astype(np.float64)
    assert header.total() == held.total() == pytest.approx(float(arr.sum()), rel=1e-12)
    # the total asked for first: its pass keeps the checks' sample until they read it
    first = load_raster(path, max_bytes=0)
    assert first.total() == held.total()
    full = first.read(1, out_shape=overview_shape(h, w), masked=True)
    assert np.array_equal(full.filled(0), arr.filled(0)) and list(first._scans) == ["total"]


def test_check_of_a_held_raster_equals_the_file_check(tmp_path, monkeypatch):
    """Decimated (a small cell budget), the checks of a raster the run holds give the results
    of the checks reading the file."""
    from geopipe.io.raster import load_raster
    from geopipe.quality import rasters
    from geopipe.quality.rasters import check_raster

    rng = np.random.default_rng(5)
    data = rng.random((301, 203), dtype=np.float32) * 10
    data[:40] = -1.0  # nodata strip
    data[200:203, 100:110] = -3.0  # negative values
    path = tmp_path / "r.tif"
    transform = Affine(0.01, 0, 29.0, 0, -0.01, -1.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=301,
        width=203,
        count=1,
        dtype="float32",
        nodata=-1.0,
        crs="EPSG:4326",
        transform=transform,
    ) as ds:
        ds.write(data, 1)
    aoi = gpd.GeoDataFrame({"ucode": ["A"]}, geometry=[shapely.box(29.2, -3.5, 31, -1.5)], crs=4326)
    monkeypatch.setattr(rasters, "_MAX_CELLS", 5_000)  # decimate by 4
    on_file = check_raster(path, admin=aoi)
    expected = [(r.check_id, r.level, r.rows_affected, r.details) for r in on_file]
    assert any(r.check_id == "raster.negative_values" and r.rows_affected for r in on_file)
    for data in (load_raster(path), load_raster(path, max_bytes=0)):  # held; header only
        got = check_raster(data, admin=aoi)
        assert [(r.check_id, r.level, r.rows_affected, r.details) for r in got] == expected
