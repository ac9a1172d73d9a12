"""check_* functions against independent references (geodesic areas, geopandas.sjoin, numpy on the
raster, pandas), plus quarantine files, the Markdown/JSON report and the fail gate."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from pyproj import Geod

from geopipe.errors import DataQualityError, GeopipeWarning, InputError, MissingColumnError
from geopipe.io.points import read_points
from geopipe.quality.boundaries import check_admin
from geopipe.quality.checks import CheckResult
from geopipe.quality.indicators import check_indicators
from geopipe.quality.points import check_points, flag_points
from geopipe.quality.quarantine import (
    quarantine,
    quarantine_flagged,
    rejected_to_quarantine,
    write_quarantine,
)
from geopipe.quality.rasters import check_raster
from geopipe.quality.report import quality_report, raise_on_fail, results_to_json

GEOD = Geod(ellps="WGS84")


def _by_id(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check_id: r for r in results}


def _geodesic_km2(geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


@pytest.fixture(scope="module")
def rwanda(rwanda_admin) -> gpd.GeoDataFrame:
    return rwanda_admin


def test_overlap_area_matches_geodesic_area() -> None:
    west, east = shapely.box(29.0, -3.0, 30.2, -1.0), shapely.box(29.8, -3.0, 31.0, -1.0)
    admin = gpd.GeoDataFrame(
        {"ucode": ["W", "E"], "admin_level": [1, 1]}, geometry=[west, east], crs=4326
    )
    result = _by_id(check_admin(admin))["admin.overlap"]
    expected = _geodesic_km2(west.intersection(east))
    got = result.details["by_level"]["1"]["km2"]
    assert got == pytest.approx(expected, rel=2e-3)
    share = expected / (_geodesic_km2(west) + _geodesic_km2(east))
    assert result.details["by_level"]["1"]["share"] == pytest.approx(share, rel=2e-3)
    assert result.level == "warn"
    assert result.examples in (("W|E",), ("E|W",))
    assert (
        _by_id(check_admin(admin, levels={"admin.overlap": "fail"}))["admin.overlap"].level
        == "fail"
    )


def test_child_outside_parent_share_against_geodesic() -> None:
    parent, child = shapely.box(29.0, -3.0, 30.0, -1.0), shapely.box(29.5, -3.0, 30.5, -2.0)
    admin = gpd.GeoDataFrame(
        {"ucode": ["P", "C"], "admin_level": [1, 2], "parent_ucode": [None, "P"]},
        geometry=[parent, child],
        crs=4326,
    )
    r = _by_id(check_admin(admin))["admin.child_outside_parent"]
    expected = _geodesic_km2(child.difference(parent)) / _geodesic_km2(child)
    assert r.details["worst_share_outside"] == pytest.approx(expected, rel=2e-3)
    assert r.rows_affected == 1 and r.examples == ("C",)
    assert _by_id(check_admin(admin, tolerance=0.6))["admin.child_outside_parent"].level == "pass"


def test_rwanda_gaps_against_geopandas(rwanda: gpd.GeoDataFrame) -> None:
    results = _by_id(check_admin(rwanda))
    ea = rwanda.to_crs("EPSG:6933")
    adm1 = ea[ea.admin_level == 1].union_all()
    adm2 = ea[ea.admin_level == 2].union_all()
    expected = adm1.difference(adm2).area / 1e6
    assert results["admin.gap"].details["by_level"]["2"]["km2"] == pytest.approx(expected, rel=1e-3)
    # the real quirk: ADM1 and ADM2 come from different sources, their edges do not match
    assert results["admin.gap"].level == "warn"
    for cid in (
        "admin.duplicate_ucode",
        "admin.missing_parent",
        "admin.crs",
        "admin.coordinates_out_of_bounds",
        "admin.antimeridian",
    ):
        assert results[cid].level == "pass", cid


def test_check_admin_bad_arguments() -> None:
    with pytest.raises(MissingColumnError, match="ucode"):
        check_admin(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326))
    admin = gpd.GeoDataFrame({"ucode": ["A"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(InputError, match="levels"):
        check_admin(admin, levels={"admin.overlap": "error"})


def test_rwi_tiles_outside_districts_against_sjoin(rwanda: gpd.GeoDataFrame, sample_dir) -> None:
    """The real Meta RWI file: tiles whose centre is outside every district are a warning with a count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        rwi = read_points(sample_dir / "RWA_relative_wealth_index.csv", id_col="quadkey")
    districts = rwanda[rwanda.admin_level == 2]
    r = _by_id(check_points(rwi, admin=districts))["points.outside_boundaries"]
    joined = gpd.sjoin(
        rwi[["point_id", "geometry"]], districts[["geometry"]], how="left", predicate="intersects"
    )
    outside = joined.groupby("point_id")["index_right"].apply(lambda s: s.isna().all())
    assert r.level == "warn"
    assert r.rows_affected == int(outside.sum()) > 0
    assert set(r.examples) <= set(outside[outside].index)


def test_point_flags_against_brute_force() -> None:
    aoi = gpd.GeoDataFrame({"ucode": ["A"]}, geometry=[shapely.box(29, -3, 31, -1)], crs=4326)
    xs = [29.5, 0.0, np.nan, -2.5, 29.5, 35.0, 29.12]
    ys = [-2.5, 0.0, np.nan, 30.5, -2.5, -2.0, -2.3]
    pts = gpd.GeoDataFrame(
        {
            "point_id": ["a", "b", "c", "d", "a", "f", "g"],
            "status": ["Yes", "No", "x", "1", "yes", None, "No"],
        },
        geometry=gpd.points_from_xy(xs, ys),
        crs=4326,
    )
    flags = flag_points(pts, admin=aoi, allowed={"status": ["Yes", "No"]})
    # references computed row by row in plain Python
    decimals = [
        max(len(repr(float(v)).split(".")[1].rstrip("0")) for v in (x, y)) if np.isfinite(x) else 3
        for x, y in zip(xs, ys, strict=True)
    ]
    inside = [
        shapely.box(29, -3, 31, -1).intersects(shapely.Point(x, y))
        for x, y in zip(xs, ys, strict=True)
    ]
    ok = [np.isfinite(x) and (x, y) != (0.0, 0.0) for x, y in zip(xs, ys, strict=True)]
    assert flags["points.null_coordinates"].tolist() == [not np.isfinite(x) for x in xs]
    assert flags["points.zero_coordinates"].tolist() == [
        x == 0 and y == 0 for x, y in zip(xs, ys, strict=True)
    ]
    assert flags["points.duplicate_id"].tolist() == pts["point_id"].duplicated(keep=False).tolist()
    assert flags["points.low_precision"].tolist() == [
        o and d < 3 for o, d in zip(ok, decimals, strict=True)
    ]
    swapped = [
        o and not i and shapely.box(29, -3, 31, -1).intersects(shapely.Point(y, x))
        for o, i, x, y in zip(ok, inside, xs, ys, strict=True)
    ]
    assert flags["points.swapped_lat_lon"].tolist() == swapped
    assert flags["points.outside_boundaries"].tolist() == [
        o and not i and not s for o, i, s in zip(ok, inside, swapped, strict=True)
    ]
    assert flags["points.value_domain"].tolist() == [False, False, True, True, False, False, False]
    results = _by_id(check_points(pts, admin=aoi, allowed={"status": ["Yes", "No"]}))
    assert results["points.value_domain"].details["status"]["found"] == ["1", "x"]
    assert results["points.duplicate_id"].examples == ("a",)
    with pytest.raises(MissingColumnError, match="connectivity"):
        check_points(pts, allowed={"connectivity": ["Yes"]})
    assert (
        check_points(gpd.GeoDataFrame(geometry=[shapely.Point(1, 1)], crs=None))[0].check_id
        == "points.crs"
    )


def test_check_raster_against_numpy(testdata, tmp_path) -> None:
    import rasterio
    from rasterio.transform import from_bounds

    data = np.arange(100, dtype="float32").reshape(10, 10) - 7  # 7 negative pixels
    data[9, 9] = -1.0  # nodata
    path = tmp_path / "r.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=10,
        width=10,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_bounds(29, -3, 30, -2, 10, 10),
        nodata=-1.0,
    ) as ds:
        ds.write(data, 1)
    aoi = gpd.GeoDataFrame({"ucode": ["A"]}, geometry=[shapely.box(29, -3, 31, -2)], crs=4326)
    results = _by_id(check_raster(path, admin=aoi))
    with rasterio.open(path) as ds:
        arr = ds.read(1, masked=True)
    assert results["raster.negative_values"].rows_affected == int((arr < 0).sum()) == 6
    assert results["raster.negative_values"].level == "fail"
    # half the area of interest lies beyond the raster; some pixels inside are nodata
    valid_share = 1 - np.ma.getmaskarray(arr).sum() / arr.size
    expected = (
        1
        - (_geodesic_km2(shapely.box(29, -3, 30, -2)) / _geodesic_km2(shapely.box(29, -3, 31, -2)))
        * valid_share
    )
    assert results["raster.coverage"].details["uncovered_share"] == pytest.approx(
        expected, rel=1e-3
    )
    assert results["raster.coverage"].level == "warn"
    assert check_raster(path, negative_allowed=True) and "raster.negative_values" not in _by_id(
        check_raster(path, negative_allowed=True)
    )


def test_sample_rasters_pass(rwanda: gpd.GeoDataFrame, sample_dir) -> None:
    results = check_raster(sample_dir / "rwa_population_2020_modelled_232m.tif", admin=rwanda)
    assert [r.check_id for r in results if r.level == "fail"] == []


def test_check_indicators_change_against_pandas() -> None:
    prev = pd.DataFrame(
        {
            "ucode": ["A", "B", "C"],
            "indicator_id": "population_total",
            "date": "2023-01-01",
            "value": [100.0, 200.0, 0.0],
        }
    )
    cur = pd.DataFrame(
        {
            "ucode": ["A", "B", "C"],
            "indicator_id": "population_total",
            "date": "2024-01-01",
            "value": [130.0, 210.0, 0.0],
        }
    )
    r = _by_id(check_indicators(cur, previous=prev, max_change=0.25))["indicators.change"]
    rel = (cur["value"] - prev["value"]).abs() / prev["value"].replace(0, np.nan)
    assert r.rows_affected == int((rel > 0.25).sum()) == 1
    assert r.examples[0].startswith("A population_total")
    assert r.level == "warn"
    strict = _by_id(
        check_indicators(cur, previous=prev, max_change=0.25, levels={"indicators.change": "fail"})
    )
    assert strict["indicators.change"].level == "fail"
    with pytest.raises(DataQualityError, match="indicators.change"):
        raise_on_fail(strict.values())


def test_check_indicators_on_a_computed_fact_pass() -> None:
    from geopipe.indicators.compute import compute_indicators

    units = pd.DataFrame(
        {"ucode": ["A", "B"], "schools_total": [4, 2], "schools_connected": [1, 2]}
    )
    fact = compute_indicators(units, ["schools_connected_share"], date="2024-01-01").fact
    assert all(r.passed for r in check_indicators(fact))


def test_quarantine_written_atomically_and_read_back(tmp_path) -> None:
    rows = gpd.GeoDataFrame(
        {"point_id": ["a", "b"], "n": [1, None], "when": pd.to_datetime(["2024-01-01", None])},
        geometry=[shapely.Point(0, 0), None],
        crs=4326,
    )
    q = quarantine(rows, "points.zero_coordinates", "coordinates are (0, 0)", "schools.csv")
    assert rows["n"].isna().sum() == 1  # input untouched
    rejected = rejected_to_quarantine(
        [{"row": 7, "point_id": "z", "reason": "missing coordinates", "lat": None}], "schools.csv"
    )
    paths = write_quarantine(
        {"schools.csv": pd.concat([q, rejected], ignore_index=True), "empty": q.iloc[0:0]}, tmp_path
    )
    assert list(paths) == ["schools.csv"]
    assert paths["schools.csv"] == tmp_path / "quarantine" / "schools.parquet"
    back = pq.read_table(paths["schools.csv"]).to_pandas()
    assert len(back) == 3
    assert back["check_id"].tolist() == ["points.zero_coordinates"] * 2 + [
        "points.null_coordinates"
    ]
    assert back["record_id"].tolist() == ["a", "b", "z"]
    assert back.loc[0, "geometry"] == "POINT (0 0)"
    assert [p.name for p in (tmp_path / "quarantine").iterdir()] == [
        "schools.parquet"
    ]  # no temp file left
    write_quarantine({"schools.csv": q}, tmp_path)  # replaced, not appended
    assert pq.read_metadata(paths["schools.csv"]).num_rows == 2


def test_quarantine_flagged_rows(tmp_path) -> None:
    pts = gpd.GeoDataFrame(
        {"point_id": ["a", "b", "c"]},
        geometry=gpd.points_from_xy([0, 30.12345, 30.12345], [0, -2.12345, -2.12345]),
        crs=4326,
    )
    flags = flag_points(pts)
    q = quarantine_flagged(pts, flags, "x.csv")
    expected = int(flags.to_numpy().sum())
    assert len(q) == expected == 3
    assert sorted(q["check_id"].unique()) == [
        "points.duplicate_coordinates",
        "points.zero_coordinates",
    ]


def test_report_and_json(rwanda: gpd.GeoDataFrame) -> None:
    results = [
        *check_admin(rwanda),
        CheckResult(
            "points.outside_boundaries",
            "warn",
            "RWA_relative_wealth_index.csv",
            51,
            "51 tiles outside",
            ["q1"],
        ),
    ]
    text = quality_report(results, quarantined={"schools.csv": 3})
    for r in results:
        assert f"`{r.check_id}`" in text
    assert (
        "## RWA_relative_wealth_index.csv" in text
        and "| `points.outside_boundaries` | **warn** | 51 |" in text
    )
    assert "| schools.csv | 3 |" in text
    doc = json.loads(results_to_json(results))
    assert len(doc["results"]) == len(results)
    assert doc["summary"] == {
        lv: sum(r.level == lv for r in results) for lv in ("pass", "warn", "fail")
    }
    assert raise_on_fail(results) == results


def test_raise_on_fail_lists_every_failure() -> None:
    results = [
        CheckResult("admin.crs", "fail", "a.shp", 3, "no CRS"),
        CheckResult("raster.overlap", "fail", "p.tif", 1, "no overlap"),
        CheckResult("admin.gap", "warn", "a.shp", 1, "gap"),
    ]
    with pytest.raises(DataQualityError) as info:
        raise_on_fail(results)
    msg = str(info.value)
    assert (
        "2 data-quality checks failed" in msg
        and "admin.crs on a.shp" in msg
        and "raster.overlap on p.tif" in msg
    )
    assert "admin.gap" not in msg and "fix:" in msg


def test_check_result_validates_and_serialises() -> None:
    with pytest.raises(InputError, match="level"):
        CheckResult("x", "error", "s")  # type: ignore[arg-type]
    r = CheckResult(
        "x",
        "warn",
        "s",
        np.int64(3),
        "m",
        list(range(20)),
        {"v": np.float64(np.nan), "a": np.arange(2)},
    )
    assert r.to_dict() == {
        "check_id": "x",
        "level": "warn",
        "source": "s",
        "rows_affected": 3,
        "message": "m",
        "examples": [str(i) for i in range(10)],
        "details": {"v": None, "a": [0, 1]},
    }
    json.dumps(r.to_dict(), allow_nan=False)


def test_check_inputs_on_the_sample_config(rwanda: gpd.GeoDataFrame, sample_dir, tmp_path) -> None:
    """make sample's inputs: the real RWI tiles outside every district are a warning with a count
    (reference: geopandas.sjoin of the CSV's own tile centres), nothing fails, the report says so."""
    from geopipe.config import load_config
    from geopipe.quality.report import check_inputs

    cfg = load_config(sample_dir.parents[1] / "pipelines" / "sample.yaml")
    results, quarantined = check_inputs(cfg, rwanda)
    assert [r for r in results if r.level == "fail"] == []
    rwi = pd.read_csv(sample_dir / "RWA_relative_wealth_index.csv", dtype={"quadkey": str})
    centres = gpd.GeoDataFrame(
        rwi, geometry=gpd.points_from_xy(rwi["longitude"], rwi["latitude"]), crs=4326
    )
    districts = rwanda[rwanda.admin_level == 2][["geometry"]]
    hit = gpd.sjoin(centres, districts, how="inner", predicate="intersects").index.unique()
    r = next(
        r
        for r in results
        if r.source == "RWA_relative_wealth_index.csv" and r.check_id == "points.outside_boundaries"
    )
    assert r.level == "warn" and r.rows_affected == len(rwi) - len(hit) > 0
    text = quality_report(results, quarantined={k: len(v) for k, v in quarantined.items()})
    assert f"| `points.outside_boundaries` | **warn** | {r.rows_affected} |" in text
    assert write_quarantine(quarantined, tmp_path) == {}  # the sample readers reject no row
