"""square_grid: geowrangler-compatible cells, stable ids, fragments that tile the units."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from exactextract import exact_extract
from pyproj import Geod

from geopipe.errors import InputError
from geopipe.grids.square import square_grid
from geopipe.zonal.raster import zonal_raster

VNM = Path(__file__).parent / "data" / "real" / "vnm"
GEOD = Geod(ellps="WGS84")


@functools.cache
def provinces_all() -> gpd.GeoDataFrame:
    g = gpd.read_file(VNM / "vnm_adm1.geojson")
    g["ucode"] = [f"VNM_{i:04d}" for i in range(len(g))]
    return g


@functools.cache
def provinces() -> gpd.GeoDataFrame:
    g = gpd.read_file(VNM / "vnm_adm1.geojson").iloc[[0, 10, 30]]
    g["ucode"] = [f"VNM_{i:04d}" for i in range(len(g))]
    return g.reset_index(drop=True)


def _geowrangler_cells(admin: gpd.GeoDataFrame, size: float) -> gpd.GeoDataFrame:
    from geowrangler.grids import SquareGridBoundary, SquareGridGenerator

    b = admin.to_crs("EPSG:6933").total_bounds
    x0, y0 = np.floor(b[0] / size), np.floor(b[1] / size)
    boundary = SquareGridBoundary(x0 * size, y0 * size, b[2], b[3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gw = SquareGridGenerator(size, grid_projection="EPSG:6933", boundary=boundary)
        cells = gw.generate_grid(admin)
    cells["cell_id"] = [
        f"sq_{int(size)}_{int(x + x0)}_{int(y + y0)}"
        for x, y in zip(cells["x"], cells["y"], strict=True)
    ]
    return cells


@pytest.mark.parametrize("size", [2_000, 5_000])
def test_matches_geowrangler(size):
    admin = provinces()
    ours = square_grid(admin, size, split=False)
    ref = _geowrangler_cells(admin, size)
    assert set(ours["cell_id"]) == set(ref["cell_id"])
    merged = ours.merge(ref[["cell_id", "geometry"]], on="cell_id")
    dist = shapely.hausdorff_distance(
        merged["geometry_x"].to_numpy(), merged["geometry_y"].to_numpy()
    )
    assert dist.max() < 1e-9


def test_matches_geowrangler_sao_miguel(sao_miguel_units):
    admin = sao_miguel_units.copy()
    admin["ucode"] = [f"PRT_{i:04d}" for i in range(len(admin))]
    ours = square_grid(admin, 1_000, split=False)
    ref = _geowrangler_cells(admin, 1_000)
    assert set(ours["cell_id"]) == set(ref["cell_id"])


def test_ids_stable_across_aois():
    admin = provinces()
    full = square_grid(admin, 5_000, split=False).set_index("cell_id")
    part = square_grid(admin.iloc[[1]], 5_000, split=False).set_index("cell_id")
    common = part.index.intersection(full.index)
    assert len(common) == len(part)
    assert shapely.equals(
        part.loc[common].geometry.to_numpy(), full.loc[common].geometry.to_numpy()
    ).all()
    # the id encodes the cell's position: x = floor(X / size) in EPSG:6933
    cx = gpd.GeoSeries(full.geometry, crs=4326).to_crs("EPSG:6933").centroid
    xs = np.floor(cx.x.to_numpy() / 5_000).astype(int)
    assert [int(i.split("_")[2]) for i in full.index] == list(xs)


def test_split_tiles_units_and_population():
    admin = provinces()
    grid = square_grid(admin, 5_000)
    assert list(grid.columns) == ["cell_id", "ucode", "area_km2", "cell_share", "geometry"]
    for ucode, geom in zip(admin["ucode"], admin.geometry, strict=True):
        union = shapely.union_all(grid.geometry[grid["ucode"] == ucode].to_numpy())
        a_union = abs(GEOD.geometry_area_perimeter(union)[0])
        a_unit = abs(GEOD.geometry_area_perimeter(geom)[0])
        assert a_union == pytest.approx(a_unit, rel=1e-4)
    geoms = grid.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    inter = shapely.intersection(geoms[a[a < b]], geoms[b[a < b]])
    assert gpd.GeoSeries(inter, crs=4326).to_crs("EPSG:6933").area.sum() < 1.0
    # whole cells have the nominal area (equal-area grid)
    whole = grid[grid["cell_share"] == 1.0]
    np.testing.assert_allclose(whole["area_km2"], 25.0, rtol=1e-9)
    # populations add up per unit
    raster = VNM / "vnm_ppp_2020_1km_Aggregated_UNadj.tif"
    per_unit = zonal_raster(grid, raster).groupby("ucode")["sum"].sum()
    ref = exact_extract(str(raster), admin, "sum", include_cols=["ucode"], output="pandas")
    np.testing.assert_allclose(per_unit.loc[ref["ucode"]].to_numpy(), ref["sum"], rtol=1e-4)


def test_split_false_owner_is_the_unit_with_the_largest_overlay_area():
    """Reference: each cell rebuilt from its id as a box in EPSG:6933, gpd.overlay with the units
    there; the owner is the unit with the largest piece."""
    from conftest import NEIGHBOURS, overlay_owners

    admin = provinces_all().iloc[NEIGHBOURS]
    size = 5_000
    whole = square_grid(admin, size, split=False)
    xy = np.array([c.split("_")[2:] for c in whole["cell_id"]], dtype=np.int64)
    boxes = shapely.box(
        xy[:, 0] * size, xy[:, 1] * size, (xy[:, 0] + 1) * size, (xy[:, 1] + 1) * size
    )
    cells = gpd.GeoDataFrame({"cell_id": whole["cell_id"].to_numpy()}, geometry=boxes, crs=6933)
    ref = overlay_owners(cells, admin, "EPSG:6933")
    shared = ref[ref["second"] > 0.05]
    assert len(shared) >= 40
    clear = ref[(ref["best"] - ref["second"] > 1e-3) | (ref["second"] == 0)]
    assert len(clear) >= len(ref) - 5
    got = whole.set_index("cell_id")["ucode"]
    assert list(clear.index[got[clear.index].to_numpy() != clear["ucode"].to_numpy()]) == []
    assert shared.index.isin(clear.index).sum() >= len(shared) - 2


def test_other_crs_is_densified():
    admin = provinces().iloc[[0]]
    grid = square_grid(admin, 10_000, crs="EPSG:32648", split=False)
    assert (shapely.get_num_coordinates(grid.geometry.to_numpy()) > 5).all()
    back = grid.to_crs("EPSG:32648").area
    np.testing.assert_allclose(back, 1e8, rtol=1e-6)


def test_errors():
    admin = provinces()
    with pytest.raises(InputError, match="size_m"):
        square_grid(admin, -5)
    with pytest.raises(InputError, match="crs"):
        square_grid(admin, 1000, crs="EPSG:4326")
    with pytest.raises(InputError, match="candidate cells"):
        square_grid(admin, 1)
