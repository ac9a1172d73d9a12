"""A partition holds the raster window (rows and columns) its units cover, and reads nothing
twice: values inside the window come from memory, anything outside from the file."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from geopipe.io.raster import iter_blocks, load_raster
from geopipe.pipeline.engines import _window


@pytest.fixture()
def raster(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.random((300, 400)).astype("float32")
    data[5, 7] = -1.0  # nodata
    path = tmp_path / "r.tif"
    profile = dict(driver="GTiff", height=300, width=400, count=1, dtype="float32",
                   crs="EPSG:4326", transform=from_origin(30.0, -1.0, 0.01, 0.01), nodata=-1.0,
                   tiled=True, blockxsize=64, blockysize=64, compress="zstd")  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path, data


def test_a_window_holds_only_its_rows_and_columns(raster):
    path, data = raster
    win = load_raster(path, rows=(40, 170), cols=(90, 260))
    assert win.in_memory and not win.whole
    assert win._raw.shape == (130, 170)
    full = load_raster(path)
    assert full.whole
    rng = np.random.default_rng(1)
    inside = rng.integers(40, 170, 500), rng.integers(90, 260, 500)
    everywhere = rng.integers(0, 300, 500), rng.integers(0, 400, 500)
    for rows, cols in (inside, everywhere, (np.array([5]), np.array([7]))):
        got, ok = win.values_at(rows, cols)
        want, want_ok = full.values_at(rows, cols)
        np.testing.assert_array_equal(ok, want_ok)
        np.testing.assert_array_equal(got, want)
        ref = data[rows, cols].astype(float)
        np.testing.assert_array_equal(got[ok], ref[ok])
    # whole-row blocks and the whole band are not in a window: they come from the file
    blocks = list(win.blocks([(50, 60)]))
    np.testing.assert_array_equal(blocks[0][2], np.where(data[50:60] == -1, 0, data[50:60]))
    assert win.read().shape == (300, 400)


def test_column_windows_read_by_blocks_equal_the_band(raster):
    path, data = raster
    got = np.concatenate([b[2] for b in iter_blocks(path, [(0, 128), (128, 300)], raw=True,
                                                    cols=(33, 301))])  # fmt: skip
    want = np.where(data == -1, 0, data)[:, 33:301]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32736"])
def test_the_window_covers_every_pixel_the_units_touch(raster, crs):
    from geopipe.zonal.raster import pixel_weights

    path, _ = raster
    header = load_raster(path, max_bytes=0)
    units = gpd.GeoDataFrame(
        geometry=[shapely.box(30.9, -2.6, 32.3, -1.9), shapely.box(31.4, -3.4, 33.1, -2.2)],
        crs="EPSG:4326",
    ).to_crs(crs)
    (r0, r1), (c0, c1) = _window(units, header)
    w = pixel_weights(units.to_crs("EPSG:4326"), header)
    assert r0 <= w.row.min() and w.row.max() < r1
    assert c0 <= w.col.min() and w.col.max() < c1
    # and it is a box around them, not the whole raster
    assert (r1 - r0) * (c1 - c0) < 0.6 * 300 * 400
