"""count_points against plain geopandas.sjoin on real Rwanda data and on border points."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geopipe.errors import GeometryError, GeopipeWarning, InputError, MissingColumnError
from geopipe.zonal.points import assign_points, count_points


@pytest.fixture(scope="module")
def adm2(testdata):
    return gpd.read_file(testdata / "zonal" / "rwa_adm2.geojson")


@pytest.fixture(scope="module")
def health(testdata):
    return gpd.read_file(testdata / "zonal" / "rwa_healthsites_2020.geojson")


def _sjoin_first(units: gpd.GeoDataFrame, pts: gpd.GeoDataFrame) -> np.ndarray:
    """Reference: plain sjoin(intersects), then the smallest unit position per point."""
    u = units.reset_index(drop=True)
    j = gpd.sjoin(pts.reset_index(drop=True), u, predicate="intersects", how="inner")
    first = j["index_right"].groupby(level=0).min()
    out = np.full(len(pts), -1)
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def _random_points(units: gpd.GeoDataFrame, n: int, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = units.total_bounds
    pad = 0.05
    x = rng.uniform(xmin - pad, xmax + pad, n)
    y = rng.uniform(ymin - pad, ymax + pad, n)
    return gpd.GeoDataFrame(
        {"kind": rng.choice(["a", "b", "c"], n)}, geometry=shapely.points(x, y), crs=4326
    )


def test_health_facilities_per_district_match_sjoin(adm2, health):
    out = count_points(adm2, health, by="amenity", name="health")
    ref = gpd.sjoin(health, adm2, predicate="within").groupby("index_right").size()
    expected = ref.reindex(adm2.index, fill_value=0).to_numpy()
    np.testing.assert_array_equal(out["health"].to_numpy(), expected)
    ref_by = (
        gpd.sjoin(health, adm2, predicate="within")
        .groupby(["index_right", "amenity"])
        .size()
        .unstack(fill_value=0)
        .reindex(adm2.index, fill_value=0)
    )
    for cat in ref_by.columns:
        np.testing.assert_array_equal(out[f"health_{cat}"].to_numpy(), ref_by[cat].to_numpy())
    # one column per category, and they add up to the total
    cat_cols = [c for c in out.columns if c.startswith("health_")]
    assert sorted(cat_cols) == sorted(f"health_{c}" for c in health["amenity"].unique())
    np.testing.assert_array_equal(out[cat_cols].sum(axis=1).to_numpy(), out["health"].to_numpy())


def test_many_points_use_the_label_raster_and_match_sjoin(adm2):
    pts = _random_points(adm2, 60_000, seed=1)  # > the raster threshold
    np.testing.assert_array_equal(assign_points(adm2, pts), _sjoin_first(adm2, pts))
    out = count_points(adm2, pts, by="kind")
    ref = pd.Series(_sjoin_first(adm2, pts))
    ref = ref[ref >= 0].value_counts().reindex(range(len(adm2)), fill_value=0)
    np.testing.assert_array_equal(out["n_points"].to_numpy(), ref.to_numpy())


def test_points_on_shared_borders_are_counted_once_for_the_first_unit(adm2):
    # vertices of the district polygons: most lie on a border shared by two or three districts
    verts = shapely.get_coordinates(adm2.geometry.boundary.array)
    verts = np.unique(verts, axis=0)
    pts = gpd.GeoDataFrame(geometry=shapely.points(verts), crs=4326)
    pts = pd.concat([pts] * 12, ignore_index=True)  # enough rows for the label-raster path
    got = assign_points(adm2, pts)
    np.testing.assert_array_equal(got, _sjoin_first(adm2, pts))
    out = count_points(adm2, pts)
    assert out["n_points"].sum() == (got >= 0).sum()  # each point at most once
    # shuffle the units: the rule follows row order, so the owner changes accordingly
    perm = np.random.default_rng(3).permutation(len(adm2))
    shuffled = adm2.iloc[perm]
    np.testing.assert_array_equal(assign_points(shuffled, pts), _sjoin_first(shuffled, pts))


def test_overlapping_units_take_the_smallest_position():
    units = gpd.GeoDataFrame(
        {"ucode": ["big", "small"]},
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(2, 2, 4, 4)],
        crs=4326,
    )
    pts = _random_points(units, 5_000, seed=2)
    got = assign_points(units, pts)
    np.testing.assert_array_equal(got, _sjoin_first(units, pts))
    assert (got == 1).sum() == 0


def _sjoin_counts(units: gpd.GeoDataFrame, pts: gpd.GeoDataFrame, by: str | None = None):
    """Reference counts: the sjoin owner of each point (smallest position), then value_counts."""
    owner = pd.Series(_sjoin_first(units, pts))
    if by is None:
        return owner[owner >= 0].value_counts().reindex(range(len(units)), fill_value=0)
    frame = pd.DataFrame({"owner": owner, by: pts[by].to_numpy()})
    frame = frame[frame["owner"] >= 0]
    return (
        frame.groupby(["owner", by])
        .size()
        .unstack(fill_value=0)
        .reindex(range(len(units)), fill_value=0)
    )


@pytest.mark.parametrize("provinces_first", [False, True])
@pytest.mark.parametrize("n_random", [0, 10_000])  # exact path only / label raster path too
def test_count_points_on_overlapping_units_match_sjoin(
    adm2, health, sample_dir, provinces_first, n_random
):
    """Districts and provinces in one frame: every point lies in two units and is counted once,
    for the first of them in row order (reference: sjoin)."""
    adm1 = gpd.read_file(sample_dir / "rwa_adm1.geojson")[["shapeName", "geometry"]]
    parts = [adm1, adm2[["shapeName", "geometry"]]]
    units = pd.concat(parts[::-1] if not provinces_first else parts, ignore_index=True)
    verts = np.unique(shapely.get_coordinates(adm2.geometry.boundary.array), axis=0)[::7]
    pts = pd.concat(
        [
            health[["geometry"]].assign(kind="health"),
            gpd.GeoDataFrame(geometry=shapely.points(verts), crs=4326).assign(kind="vertex"),
            _random_points(adm2, n_random, seed=5),
        ],
        ignore_index=True,
    )
    out = count_points(units, pts, by="kind", name="n")
    ref = _sjoin_counts(units, pts)
    np.testing.assert_array_equal(out["n"].to_numpy(), ref.to_numpy())
    ref_by = _sjoin_counts(units, pts, by="kind")
    for cat in ref_by.columns:
        np.testing.assert_array_equal(out[f"n_{cat}"].to_numpy(), ref_by[cat].to_numpy())
    # counted once: the total is the number of points in the union, while almost every point
    # lies in two units (so a count per containing unit would be about twice as large)
    union = shapely.union_all(units.geometry.to_numpy())
    assert out["n"].sum() == int(shapely.intersects(union, pts.geometry.to_numpy()).sum())
    pairs = len(gpd.sjoin(pts, units, predicate="intersects"))
    assert pairs > 1.8 * out["n"].sum()


def test_count_points_in_nested_boxes_by_hand():
    units = gpd.GeoDataFrame(
        {"ucode": ["small", "big", "right"]},
        geometry=[shapely.box(2, 2, 4, 4), shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)],
        crs=4326,
    )
    pts = gpd.GeoDataFrame(
        geometry=shapely.points([(3, 3), (2, 3), (1, 1), (6, 5), (10, 5), (12, 5), (20, 5)]),
        crs=4326,
    )
    # (3,3), (2,3) on small's edge -> small; (1,1), (6,5), (10,5) on big's edge -> big;
    # (12,5) -> right; (20,5) outside
    assert count_points(units, pts)["n_points"].tolist() == [2, 3, 1]


def test_returns_new_frame_same_index_and_order(adm2, health):
    units = adm2.set_index(pd.Index([f"u{i}" for i in range(len(adm2))][::-1]))
    before = units.copy()
    out = count_points(units, health)
    assert out.index.equals(units.index)
    pd.testing.assert_frame_equal(units, before)  # input untouched
    assert "n_points" not in units.columns
    assert out["n_points"].dtype == np.int64


def test_other_crs_points_are_transformed(adm2, health):
    a = count_points(adm2, health)["n_points"]
    b = count_points(adm2, health.to_crs(3857))["n_points"]
    pd.testing.assert_series_equal(a, b)


def test_missing_categories_and_geometries_are_reported(adm2, health):
    pts = health.copy()
    pts.loc[pts.index[:3], "amenity"] = None
    pts.loc[pts.index[3], "geometry"] = None
    with pytest.warns(GeopipeWarning, match="1 of 119 points have no geometry"):
        out = count_points(adm2, pts, by="amenity")
    cat_cols = [c for c in out.columns if c.startswith("n_points_")]
    assert "n_points_missing" in cat_cols
    np.testing.assert_array_equal(out[cat_cols].sum(axis=1), out["n_points"])


def test_errors_name_the_problem(adm2, health):
    with pytest.raises(MissingColumnError, match="'nope'"):
        count_points(adm2, health, by="nope")
    with pytest.raises(InputError, match="already exists"):
        count_points(adm2.assign(n_points=1), health)
    with pytest.raises(GeometryError, match="non-Point"):
        count_points(adm2, adm2)
    with pytest.raises(GeometryError, match="no CRS"):
        count_points(adm2, health.set_crs(None, allow_override=True))
    with pytest.raises(InputError, match="not a GeoDataFrame"):
        count_points(pd.DataFrame(adm2), health)


@pytest.mark.parametrize("source", ["giga", "giga layout"])
def test_giga_schools_by_connectivity(request, adm2, source):
    from conftest import giga_layout_schools

    if source == "giga":
        shared = request.getfixturevalue("shared_real")
        df = pd.read_csv(shared / "rwa" / "rwa_giga_schools_connectivity.csv")
    else:  # repo-only: the same layout, made from the modelled schools
        df = giga_layout_schools(repeats=())
    schools = gpd.GeoDataFrame(
        df[["giga_id_school", "connectivity"]],
        geometry=gpd.points_from_xy(df["lon"], df["lat"]),
        crs=4326,
    )
    out = count_points(adm2, schools, by="connectivity", name="schools")
    j = gpd.sjoin(schools, adm2, predicate="within")
    ref = j.groupby(["index_right", "connectivity"]).size().unstack(fill_value=0)
    ref = ref.reindex(adm2.index, fill_value=0)
    np.testing.assert_array_equal(out["schools_1"], ref[1])
    np.testing.assert_array_equal(out["schools_0"], ref[0])
    assert out["schools"].sum() == len(j)
    if source == "giga":
        assert out["schools"].sum() == len(schools)  # SOURCES.md: all points fall inside ADM2
