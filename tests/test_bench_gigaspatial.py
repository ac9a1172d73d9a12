"""The gigaspatial benchmark's comparison logic, its references and its gigaspatial adapter.

The comparison helpers (alignment of two results by zone id, difference statistics, tolerances,
the results file) and the independent references (pixel-centre sums, brute-force geodesic
nearest) are tested on hand-made inputs against brute-force loops. The tests that run
gigaspatial's generators through ``benchmarks/_giga_side.py`` skip when no Python with
gigaspatial is found (see ``find_giga_python``); they check its results against the same
brute-force references and against geopipe on tiny inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Geod

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_gigaspatial as bg  # noqa: E402

# --------------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------------


def test_align_fills_missing_and_nan_zones_with_zero():
    ours = pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"])
    theirs = pd.Series([1.0, np.nan, 4.0], index=["a", "b", "d"])  # NaN: no pixel in b
    both = bg.align(ours, theirs)
    assert list(both.index) == ["a", "b", "c", "d"]
    assert both.loc["b"].tolist() == [2.0, 0.0]
    assert both.loc["c"].tolist() == [3.0, 0.0]
    assert both.loc["d"].tolist() == [0.0, 4.0]


def test_align_inner_keeps_only_common_ids():
    both = bg.align(
        pd.Series([1.0, 2.0], index=["a", "b"]), pd.Series([5.0], index=["b"]), fill=None
    )
    assert list(both.index) == ["b"]
    assert both.loc["b"].tolist() == [2.0, 5.0]


def test_align_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="theirs: duplicate zone ids"):
        bg.align(pd.Series([1.0], index=["a"]), pd.Series([1.0, 2.0], index=["a", "a"]))


def test_diff_stats_relative_to_floor_and_total():
    both = pd.DataFrame(
        {"ours": [101.0, 0.5, 10.0], "theirs": [100.0, 0.0, 10.0]}, index=["x", "y", "z"]
    )
    st = bg.diff_stats(both, floor=1.0)
    # x: 1/100; y: 0.5/max(0, 1) = 0.5 (the floor keeps near-zero zones from dominating)
    assert st["max_rel"] == pytest.approx(0.5)
    assert st["worst_zone"] == "y"
    assert st["total_rel"] == pytest.approx(1.5 / 110.0)
    assert st["zones_differing"] == 2
    assert st["zones"] == 3
    assert bg.within(st, max_rel=0.5, total_rel=0.02)
    assert not bg.within(st, max_rel=0.49, total_rel=0.02)
    assert not bg.within(st, max_rel=0.5, total_rel=0.01)


def test_write_result_keeps_other_benchmarks_keys(tmp_path):
    path = tmp_path / "results" / "latest.json"
    bg.write_result("io", {"ratio": 1.0}, path)
    bg.write_result("gigaspatial", {"cases": [1, 2]}, path)
    bg.write_result("gigaspatial", {"cases": [3]}, path)
    assert json.loads(path.read_text()) == {"io": {"ratio": 1.0}, "gigaspatial": {"cases": [3]}}
    assert not list(path.parent.glob("*.tmp"))


def test_find_giga_python_reports_a_broken_override():
    python, why = bg.find_giga_python({"GEOPIPE_GIGASPATIAL_PYTHON": "/nonexistent/python"})
    assert python is None
    assert "cannot import gigaspatial" in why


def test_main_skips_with_reason_without_gigaspatial(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bg, "find_giga_python", lambda: (None, "no gigaspatial here"))
    monkeypatch.setattr(bg, "RESULTS", tmp_path / "latest.json")
    bg.main()
    assert "skipped: no gigaspatial here" in capsys.readouterr().out
    assert not (tmp_path / "latest.json").exists()


def test_giga_admin_table_uses_gigaspatial_column_names():
    units = gpd.GeoDataFrame(
        {"ucode": ["RWA_0001_0001_V1"], "name": ["Gasabo"]},
        geometry=[shapely.box(0, 0, 1, 1)],
        crs=4326,
    )
    out = bg.giga_admin_table(units, 2, "RWA")
    assert list(out.columns) == ["admin2_id_giga", "name", "iso_3166_1_alpha_3", "geometry"]
    assert out.iloc[0]["admin2_id_giga"] == "RWA_0001_0001_V1"
    assert out.crs == units.crs


def _fake_giga(calls: list) -> object:
    def run(python, job, workdir):
        calls.append(job)
        return {
            "times": [3.0, 1.0, 2.0],
            "ids": ["a", "b"],
            "values": [10.0, np.nan],
            "import_s": 0.1,
        }

    return run


def test_run_case_checks_on_gigaspatial_zones_and_reuses_its_run(monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setattr(bg, "run_giga", _fake_giga(calls))
    inp = bg.Inputs("t", gpd.GeoDataFrame())
    ours = pd.Series([10.0, 0.0, 5.0], index=["a", "b", "c"])  # c: beyond gigaspatial's cover
    case = bg.Case(
        "t", "m", lambda i: ours, lambda i: {"case": "x"}, 0.0, 0.0, "why", on_theirs=True
    )
    done: dict = {}
    row = bg.run_case(case, inp, "python", tmp_path, done)
    assert row["ok"]  # NaN (no pixel) on gigaspatial's side counts as 0; c is left out
    assert row["zones"] == 2
    assert row["only_geopipe_zones"] == 1
    assert row["only_geopipe_total"] == 5.0
    assert row["gigaspatial_s"] == 2.0  # median of its runs
    assert row["ratio_gigaspatial_over_geopipe"] > 0
    # the same job for another geopipe method: gigaspatial is not run again
    other = bg.Case("t", "m2", lambda i: ours * 2, lambda i: {"case": "x"}, 0.0, 0.0, "why")
    row2 = bg.run_case(other, inp, "python", tmp_path, done)
    assert len(calls) == 1
    assert not row2["ok"]  # 20 vs 10, and c counted: outside the zero tolerance
    assert row2["max_rel"] == pytest.approx(10.0)  # c: 10 against 0 (floor 1)


def test_the_two_h3_cases_of_a_data_set_share_one_gigaspatial_job():
    inp = bg.Inputs("x", gpd.GeoDataFrame(), files={"boundary": "b.parquet", "raster": "r.tif"})
    for cases in (bg.rwanda_cases(), bg.synthetic_cases()):
        h3 = [c for c in cases if "H3" in c.measure]
        assert len(h3) == 2
        assert h3[0].job(inp) == h3[1].job(inp)
        assert h3[0].slow == h3[1].slow


# --------------------------------------------------------------------------------------------
# independent references, against brute-force loops
# --------------------------------------------------------------------------------------------


def _raster(path: Path, crs: str = "EPSG:4326") -> np.ndarray:
    rng = np.random.default_rng(3)
    data = rng.gamma(2.0, 3.0, (40, 50)).astype("float32")
    data[5, 7] = -1.0  # nodata
    profile = {
        "driver": "GTiff",
        "height": 40,
        "width": 50,
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": Affine(0.01, 0, 30.0, 0, -0.01, -1.0),
        "nodata": -1.0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return data


def _zones() -> gpd.GeoDataFrame:
    a = shapely.Polygon([(30.013, -1.02), (30.31, -1.05), (30.2, -1.33), (30.02, -1.3)])
    b = shapely.box(30.31, -1.38, 30.47, -1.07)
    return gpd.GeoDataFrame({"ucode": ["A", "B"]}, geometry=[a, b], crs=4326)


def _brute_centre_sums(data: np.ndarray, zones: gpd.GeoDataFrame) -> list[float]:
    out = []
    for geom in zones.geometry:
        total = 0.0
        for r in range(data.shape[0]):
            for c in range(data.shape[1]):
                x, y = 30.0 + (c + 0.5) * 0.01, -1.0 - (r + 0.5) * 0.01
                if data[r, c] != -1.0 and geom.contains(shapely.Point(x, y)):
                    total += float(data[r, c])
        out.append(total)
    return out


def test_centre_sums_equal_a_loop_over_pixel_centres(tmp_path):
    data = _raster(tmp_path / "r.tif")
    zones = _zones()
    got = bg.centre_sums(zones, tmp_path / "r.tif", ["A", "B"])
    assert got.tolist() == pytest.approx(_brute_centre_sums(data, zones), rel=1e-9)
    assert got.index.tolist() == ["A", "B"]


def test_brute_nearest_equals_scalar_geodesics():
    rng = np.random.default_rng(5)
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(rng.uniform(29, 31, 700), rng.uniform(-3, -1, 700)), crs=4326
    )
    fac = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(rng.uniform(29, 31, 7), rng.uniform(-3, -1, 7)), crs=4326
    )
    got = bg.brute_nearest_m(pts, fac)
    same, pos = bg.brute_nearest_m(pts, fac, which=True)
    assert np.array_equal(got, same)
    geod = Geod(ellps="WGS84")
    for i in (0, 499, 500, 699):  # both sides of the 500-point chunk border
        p = pts.geometry.iloc[i]
        d = [geod.inv(p.x, p.y, f.x, f.y)[2] for f in fac.geometry]
        assert got[i] == pytest.approx(min(d), rel=1e-12)
        assert pos[i] == int(np.argmin(d))


# --------------------------------------------------------------------------------------------
# gigaspatial's side (skips without gigaspatial)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def giga_python() -> str:
    python, why = bg.find_giga_python()
    if python is None:
        pytest.skip(f"gigaspatial is not available: {why}")
    return python


def test_giga_raster_sum_equals_pixel_centres_through_admin_loader(giga_python, tmp_path):
    """gigaspatial's AdminBoundariesViewGenerator, fed a local file by the adapter, sums the
    pixels whose centre is inside: the brute-force loop's numbers, under the ucodes."""
    data = _raster(tmp_path / "r.tif")
    zones = _zones()
    admin = bg.giga_admin_table(zones, 2, "RWA")
    admin.to_parquet(tmp_path / "zones.parquet")
    job = {
        "dataset": "t",
        "case": "raster_sum",
        "repeats": 1,
        "zones_kind": "admin",
        "iso3": "RWA",
        "admin_level": 2,
        "zones": str(tmp_path / "zones.parquet"),
        "raster": str(tmp_path / "r.tif"),
    }
    out = bg.run_giga(giga_python, job, tmp_path)
    assert out["ids"] == ["A", "B"]
    assert out["values"] == pytest.approx(_brute_centre_sums(data, zones), rel=1e-6)
    assert len(out["times"]) == 1


def test_giga_fractional_and_point_count_equal_geopipe(giga_python, tmp_path):
    import geopipe as gp

    _raster(tmp_path / "r.tif")
    zones = _zones()
    zones.to_parquet(tmp_path / "zones.parquet")
    base = {"dataset": "t", "repeats": 1, "zones_kind": "geometry", "zone_id": "ucode"}
    base["zones"] = str(tmp_path / "zones.parquet")
    frac = bg.run_giga(
        giga_python,
        {**base, "case": "raster_fractional", "raster": str(tmp_path / "r.tif")},
        tmp_path,
    )
    ours = gp.zonal_raster(zones, tmp_path / "r.tif", stats=("sum",))["sum"].to_numpy()
    st = bg.diff_stats(
        bg.align(pd.Series(ours, index=["A", "B"]), pd.Series(frac["values"], index=frac["ids"]))
    )
    assert st["max_rel"] < 1e-3  # exact shares on both sides (areas in UTM vs the raster grid)

    rng = np.random.default_rng(9)
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(rng.uniform(30, 30.5, 400), rng.uniform(-1.4, -1.0, 400)),
        crs=4326,
    )
    pts.to_parquet(tmp_path / "pts.parquet")
    cnt = bg.run_giga(
        giga_python,
        {**base, "case": "point_count", "points": str(tmp_path / "pts.parquet")},
        tmp_path,
    )
    want = [int(g.contains(pts.geometry).sum()) for g in zones.geometry]
    assert cnt["values"] == want
    assert gp.count_points(zones, pts)["n_points"].tolist() == want


def test_giga_nearest_is_haversine_to_its_degree_nearest(giga_python, tmp_path):
    rng = np.random.default_rng(11)
    pts = gpd.GeoDataFrame(
        {"pid": [f"p{i}" for i in range(300)]},
        geometry=gpd.points_from_xy(rng.uniform(29, 31, 300), rng.uniform(-3, -1, 300)),
        crs=4326,
    )
    fac = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(rng.uniform(29, 31, 20), rng.uniform(-3, -1, 20)), crs=4326
    )
    pts.to_parquet(tmp_path / "p.parquet")
    fac.to_parquet(tmp_path / "f.parquet")
    job = {
        "dataset": "t",
        "case": "nearest",
        "repeats": 1,
        "points": str(tmp_path / "p.parquet"),
        "facilities": str(tmp_path / "f.parquet"),
        "point_id": "pid",
    }
    out = bg.run_giga(giga_python, job, tmp_path)
    assert out["ids"] == pts["pid"].tolist()
    truth = bg.brute_nearest_m(pts, fac)
    got = np.asarray(out["values"])
    # within 1 % of the true (ellipsoidal) nearest distance
    assert np.all(np.abs(got - truth) <= 0.01 * truth)
    # and exactly the haversine distance (R = 6,371 km) to the facility it picked
    f = fac.geometry.iloc[np.asarray(out["nearest"])]
    lat1, lon1 = np.radians(pts.geometry.y.to_numpy()), np.radians(pts.geometry.x.to_numpy())
    lat2, lon2 = np.radians(f.y.to_numpy()), np.radians(f.x.to_numpy())
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    assert got == pytest.approx(2 * 6_371e3 * np.arcsin(np.sqrt(a)), rel=1e-9)


def test_run_giga_reports_a_failing_case(giga_python, tmp_path):
    job = {
        "dataset": "t",
        "case": "raster_sum",
        "repeats": 1,
        "zones_kind": "geometry",
        "zone_id": "ucode",
        "zones": str(tmp_path / "missing.parquet"),
        "raster": "x.tif",
    }
    with pytest.raises(RuntimeError, match="gigaspatial case t_raster_sum_ failed"):
        bg.run_giga(giga_python, job, tmp_path)
