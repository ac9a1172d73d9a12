"""Every file of the bad-input corpus (tests/data/bad/, made by make_bad_inputs.py) yields the
expected check result, GeopipeError or warning — never an unhandled exception."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geopipe import errors
from geopipe.errors import GeopipeError, GeopipeWarning
from geopipe.io.admin import read_admin
from geopipe.io.points import read_points
from geopipe.quality.boundaries import check_admin
from geopipe.quality.checks import CheckResult
from geopipe.quality.indicators import check_indicators
from geopipe.quality.points import check_points
from geopipe.quality.quarantine import rejected_to_quarantine
from geopipe.quality.rasters import check_raster

BAD = Path(__file__).resolve().parent / "data" / "bad"
CORPUS = json.loads((BAD / "expected.json").read_text(encoding="utf-8"))
HELPERS = {
    "aoi_admin.geojson",
    "fact_previous.csv",
    "expected.json",
    "EXPECTED.md",
    "make_bad_inputs.py",
}


@pytest.fixture(scope="module")
def aoi() -> gpd.GeoDataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        return read_admin(BAD / "aoi_admin.geojson")


def _run(entry: dict, aoi: gpd.GeoDataFrame) -> list[CheckResult]:
    path = BAD / entry["file"]
    opts = dict(entry.get("options", {}))
    runner = entry["runner"]
    if runner == "read_admin":
        return check_admin(read_admin(path))
    if runner in ("admin_raw", "admin_raw_gb"):
        frame = gpd.read_file(path, engine="pyogrio")
        if runner == "admin_raw_gb":  # a geoBoundaries table checked as is: its id is the ucode
            frame = frame.rename(columns={"shapeID": "ucode"})
        return check_admin(frame)
    if runner == "read_points":
        points = read_points(path, **opts)
        return check_points(points, admin=aoi, allowed=entry.get("allowed"))
    if runner == "points_raw":
        table = pd.read_csv(path)
        points = gpd.GeoDataFrame(
            table,
            geometry=gpd.points_from_xy(
                pd.to_numeric(table["lon"], errors="coerce"),
                pd.to_numeric(table["lat"], errors="coerce"),
            ),
            crs=4326,
        )
        return check_points(points, admin=aoi, id_col="id")
    if runner == "raster":
        return check_raster(path, admin=aoi)
    if runner == "fact":
        previous = pd.read_csv(BAD / opts["previous"]) if "previous" in opts else None
        return check_indicators(pd.read_csv(path), previous=previous)
    raise AssertionError(f"unknown runner {runner}")


def test_corpus_is_complete_and_small() -> None:
    files = {p.name for p in BAD.iterdir() if p.is_file()}
    listed = {e["file"] for e in CORPUS}
    shapefile_parts = {"adm_no_prj.shx", "adm_no_prj.dbf"}
    assert files - listed - HELPERS - shapefile_parts == set(), (
        "every file in tests/data/bad is listed"
    )
    assert listed <= files
    assert len(listed) >= 25
    assert sum((BAD / f).stat().st_size for f in files) < 1_000_000
    required = [
        "adm_truncated.geojson",
        "ras_truncated.tif",
        "adm_broken_footer.parquet",
        "adm_empty.geojson",
        "ras_projected_no_prj.asc",
        "pts_latin1_bom.csv",
        "adm_mixed_types.geojson",
        "adm_3d.geojson",
        "adm_antimeridian.geojson",
    ]
    assert set(required) <= listed
    assert not (BAD / "ras_projected_no_prj.prj").exists() and not (BAD / "adm_no_prj.prj").exists()


@pytest.mark.parametrize(
    "entry",
    CORPUS,
    ids=[
        f"{e['file']}-{e['runner']}-{e.get('check_id', e.get('error', 'warning'))}" for e in CORPUS
    ],
)
def test_bad_input(entry: dict, aoi: gpd.GeoDataFrame) -> None:
    kind = entry["kind"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "error":
            cls = getattr(errors, entry["error"])
            with pytest.raises(cls) as info:
                _run(entry, aoi)
            assert isinstance(info.value, GeopipeError)
            msg = str(info.value)
            assert entry["fragment"] in msg
            assert "fix:" in msg, "the message says how to fix it"
            if entry.get("names_file", True):
                assert entry["file"].split(".")[0] in msg, "the message names the file"
            return
        results = _run(entry, aoi)
    assert all(isinstance(r, CheckResult) for r in results)
    json.dumps([r.to_dict() for r in results])  # JSON-able
    if kind == "warning":
        texts = [str(w.message) for w in caught if issubclass(w.category, GeopipeWarning)]
        assert any(entry["fragment"] in t for t in texts), texts
        return
    hits = [r for r in results if r.check_id == entry["check_id"]]
    assert len(hits) == 1, [r.check_id for r in results]
    result = hits[0]
    assert result.level == entry["level"], result
    if "rows" in entry:
        assert result.rows_affected == entry["rows"], result
    if "fragment" in entry:
        assert entry["fragment"] in result.message
    if result.level != "pass":
        assert result.message and result.source


def test_latin1_bom_names_are_decoded() -> None:
    """The Latin-1 fallback keeps accented names intact (the values, independent of the header)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        points = read_points(BAD / "pts_latin1_bom.csv", lon="lon", lat="lat")
    assert "Centre de santé" in set(points.iloc[:, points.columns.str.endswith("name")].iloc[:, -1])
    assert len(points) == 2


def test_rejected_rows_are_quarantined_not_lost() -> None:
    """read_points' rejected rows + kept rows = rows in the file (pandas count as the reference)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        points = read_points(BAD / "pts_zero_null.csv", id_col="id")
    q = rejected_to_quarantine(points)
    assert len(points) + len(q) == len(pd.read_csv(BAD / "pts_zero_null.csv"))
    assert set(q["record_id"]) == {"P2", "P3", "P4"}
    assert set(q["check_id"]) == {
        "points.zero_coordinates",
        "points.null_coordinates",
        "points.coordinates_not_numeric",
    }
    assert q["reason"].str.len().gt(0).all()


def test_latin1_bom_header_is_clean() -> None:
    """The BOM in front of Latin-1 text does not end up in the first column name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        points = read_points(BAD / "pts_latin1_bom.csv", lon="lon", lat="lat")
    assert points["name"].tolist() == ["École Gitarama", "Centre de santé"]
