"""read_admin: GeoRepo-style dim_admin from geoBoundaries, GeoRepo, GADM, COD-AB and mapped sources."""

from __future__ import annotations

import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geopipe as gp
from geopipe.errors import (
    FormatError,
    GeometryError,
    GeopipeError,
    InputError,
    MissingColumnError,
    MissingFileError,
)
from geopipe.io.admin import DIM_ADMIN_COLUMNS

UCODE = re.compile(r"^[A-Z]{3}(_\d{4})*_V\d+$")


@pytest.fixture(scope="module")
def rwanda(rwanda_admin):
    return rwanda_admin


def test_schema_and_counts(rwanda):
    assert list(rwanda.columns) == DIM_ADMIN_COLUMNS
    assert rwanda.crs.to_epsg() == 4326
    assert rwanda.groupby("admin_level").size().to_dict() == {0: 1, 1: 5, 2: 30}
    assert rwanda["ucode"].is_unique
    assert rwanda["ucode"].map(bool).all() and rwanda["ucode"].str.match(UCODE).all()
    assert (
        rwanda["concept_ucode"].str.match(r"^#RWA_\d+$").all() and rwanda["concept_ucode"].is_unique
    )
    assert (rwanda["iso3"] == "RWA").all()
    assert shapely.is_valid(rwanda.geometry.to_numpy()).all()
    assert set(rwanda.geom_type) <= {"Polygon", "MultiPolygon"}


def test_ucodes_follow_parent_codes(rwanda):
    by_ucode = rwanda.set_index("ucode")
    assert by_ucode.loc["RWA_V1", "admin_level"] == 0
    child = rwanda[rwanda.admin_level > 0]
    # every non-country unit has a parent exactly one level up, and its code extends the parent's
    parent_level = child["parent_ucode"].map(by_ucode["admin_level"])
    assert (parent_level == child["admin_level"] - 1).all()
    stem = child["parent_ucode"].str.replace(r"_V\d+$", "", regex=True)
    assert (child["ucode"].str.replace(r"_\d{4}_V\d+$", "", regex=True) == stem).all()
    # the 4-digit sequence follows name order within a parent
    for _, sibs in child.groupby("parent_ucode"):
        assert list(sibs.sort_values("ucode")["name"]) == sorted(sibs["name"])


def test_inferred_parents_match_independent_labels(rwanda, sample_dir):
    """geoBoundaries has no parent field: parents come from area overlap. The curator's
    ADM1_shapeName column (province containing the representative point) is an independent check."""
    raw = gpd.read_file(sample_dir / "rwa_adm2.geojson")[["shapeID", "ADM1_shapeName"]]
    adm2 = rwanda[rwanda.admin_level == 2].merge(raw, left_on="source_id", right_on="shapeID")
    names = rwanda.set_index("ucode")["name"]
    assert (adm2["parent_ucode"].map(names) == adm2["ADM1_shapeName"]).all()
    assert adm2.groupby("parent_ucode").size().sort_values().tolist() == [3, 5, 7, 7, 8]
    # the overlap share is recorded; ADM1 and ADM2 come from different sources so it is < 1
    share = rwanda.loc[rwanda.admin_level > 0, "parent_overlap"]
    assert share.between(0.95, 1.0).all() and (share < 1).any()
    assert rwanda.attrs["geopipe"]["parents"]["inferred"] == 35


def test_deterministic_and_topojson_equivalent(rwanda, sample_dir, testdata):
    again = gp.read_admin({lv: sample_dir / f"rwa_adm{lv}.geojson" for lv in (0, 1, 2)})
    pd.testing.assert_frame_equal(
        pd.DataFrame(rwanda.drop(columns="geometry")), pd.DataFrame(again.drop(columns="geometry"))
    )
    topo = gp.read_admin(
        {
            lv: testdata / "admin" / f"geoBoundaries-RWA-ADM{lv}_simplified.topojson"
            for lv in (0, 1, 2)
        }
    )
    assert topo["ucode"].tolist() == rwanda["ucode"].tolist()
    assert topo["parent_ucode"].fillna("").tolist() == rwanda["parent_ucode"].fillna("").tolist()


def test_level_inferred_from_shape_type(sample_dir):
    adm2 = gp.read_admin(sample_dir / "rwa_adm2.geojson")
    assert set(adm2["admin_level"]) == {2}
    assert adm2["parent_ucode"].isna().all()  # the parent level was not read
    # issue 12: a level-2 ucode has two 4-digit parts; 0000 stands for the parent not read
    assert adm2["ucode"].str.match(r"^RWA_0000_\d{4}_V1$").all()
    with pytest.raises(InputError, match="no units of level 1"):
        gp.read_admin({1: sample_dir / "rwa_adm2.geojson"})


@pytest.fixture(scope="module")
def formats(testdata):
    d = testdata / "admin"
    return {
        "codab": gp.read_admin(d / "codab_rwa.gpkg"),
        "gadm": gp.read_admin(d / "gadm_rwa.gpkg"),
        "georepo": gp.read_admin(
            {0: d / "georepo_api.json", 1: d / "georepo_api.json", 2: d / "georepo_export.geojson"},
            valid_on="2021-06-30",
        ),
    }


@pytest.mark.parametrize("fmt", ["codab", "gadm", "georepo"])
def test_other_sources_map_to_the_same_schema(formats, rwanda, fmt):
    table = formats[fmt]
    assert list(table.columns) == DIM_ADMIN_COLUMNS
    assert table.groupby("admin_level").size().to_dict() == {0: 1, 1: 5, 2: 30}
    assert table["ucode"].str.match(UCODE).all() and table["ucode"].is_unique
    # same units, same names, same hierarchy (parent names) as the geoBoundaries reading
    names = table.set_index("ucode")["name"]
    ref_names = rwanda.set_index("ucode")["name"]
    mine = set(zip(table["name"], table["parent_ucode"].map(names).fillna(""), strict=True))
    ref = set(zip(rwanda["name"], rwanda["parent_ucode"].map(ref_names).fillna(""), strict=True))
    assert mine == ref
    # parents came from the source's codes, not from geometry
    assert table.attrs["geopipe"]["parents"]["from_source"] == 35
    assert (table.loc[table.admin_level > 0, "parent_overlap"] == 1.0).all()


def test_codab_pcodes_and_iso3_from_alpha2(formats):
    codab = formats["codab"]
    assert (codab["iso3"] == "RWA").all()  # ADM0_PCODE is "RW"
    assert codab.loc[codab.admin_level == 2, "pcode"].str.match(r"^RW\d{4}$").all()


def test_georepo_keeps_source_codes_and_dates(formats, testdata):
    geo = formats["georepo"]
    assert geo.loc[geo.admin_level == 0, "ucode"].item() == "RWA_V1"
    assert geo.loc[geo.admin_level == 0, "concept_ucode"].item() == "#RWA_1"
    assert geo["start_date"].map(str).eq("2020-01-01").all()
    assert geo["end_date"].isna().all()
    assert set(geo.loc[geo.admin_level == 1, "pcode"]) == {f"RW0{i}" for i in range(1, 6)}
    # valid_on picks the version valid on a date
    old = gp.read_admin(testdata / "admin" / "georepo_api.json", valid_on="2019-06-01")
    assert old["ucode"].tolist() == ["RWA_0001_V0"] and old["name"].item().endswith("(old)")
    # without a date every version is kept, as in GeoRepo's "all versions" views
    every = gp.read_admin(testdata / "admin" / "georepo_api.json")
    assert {"RWA_0001_V0", "RWA_0001_V1"} <= set(every["ucode"])
    # a ucode given twice is an error that says how to fix it
    raw = gpd.read_file(testdata / "admin" / "georepo_export.geojson")
    twice = pd.concat([raw, raw.iloc[:1]], ignore_index=True)
    with pytest.raises(InputError, match="ucode.*not unique.*valid_on"):
        gp.read_admin(gpd.GeoDataFrame(twice, crs=4326))


def test_explicit_mapping(sample_dir):
    raw = gpd.read_file(sample_dir / "rwa_adm1.geojson").rename(
        columns={"shapeName": "prov", "shapeID": "code"}
    )
    raw = raw[["prov", "code", "geometry"]]
    with pytest.raises(MissingColumnError, match="mapping"):
        gp.read_admin(raw, level=1)
    mapped = gp.read_admin(raw, level=1, mapping={"name": "prov", "id": "code"}, iso3="rwa")
    assert sorted(mapped["name"]) == sorted(raw["prov"])
    assert (mapped["iso3"] == "RWA").all() and (mapped["admin_level"] == 1).all()
    with pytest.raises(MissingColumnError, match="nope"):
        gp.read_admin(raw, level=1, mapping={"name": "nope"}, iso3="RWA")
    with pytest.raises(InputError, match="unknown"):
        gp.read_admin(raw, level=1, mapping={"name": "prov", "label": "x"}, iso3="RWA")


def test_invalid_geometries_repaired_and_counted(sample_dir):
    raw = gpd.read_file(sample_dir / "rwa_adm1.geojson")
    bowtie = shapely.Polygon([(29.0, -2.0), (29.2, -1.8), (29.2, -2.0), (29.0, -1.8), (29.0, -2.0)])
    raw.loc[0, "geometry"] = bowtie
    raw.loc[1, "geometry"] = shapely.Polygon()
    with pytest.warns(gp.GeopipeWarning) as caught:
        table = gp.read_admin(raw)
    messages = " ".join(str(w.message) for w in caught)
    assert "repaired 1 invalid" in messages and "rejected 1 units" in messages
    assert table.attrs["geopipe"]["geometries_repaired"] == 1
    assert table.attrs["geopipe"]["geometries_rejected"] == 1
    assert len(table) == 4 and shapely.is_valid(table.geometry.to_numpy()).all()
    fixed = table.loc[table["source_id"] == raw.loc[0, "shapeID"], "geometry"].item()
    assert fixed.geom_type == "MultiPolygon" and fixed.area == pytest.approx(0.02, rel=1e-9)


def test_reprojects_and_requires_a_crs(sample_dir, tmp_path):
    raw = gpd.read_file(sample_dir / "rwa_adm1.geojson").to_crs(32735)
    back = gp.read_admin(raw)
    assert back.crs.to_epsg() == 4326
    assert np.allclose(
        back.total_bounds, gpd.read_file(sample_dir / "rwa_adm1.geojson").total_bounds, atol=1e-6
    )
    no_crs = raw.set_crs(None, allow_override=True)
    with pytest.raises(GeometryError, match="no CRS"):
        gp.read_admin(no_crs)
    assert len(gp.read_admin(no_crs, crs="EPSG:32735")) == 5


def test_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(MissingFileError, match="nowhere.geojson.*does not exist"):
        gp.read_admin(tmp_path / "nowhere.geojson")
    empty = tmp_path / "empty.geojson"
    empty.write_text("")
    with pytest.raises(FormatError, match="empty"):
        gp.read_admin(empty)
    truncated = tmp_path / "cut.geojson"
    truncated.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Pol'
    )
    with pytest.raises(FormatError, match="cut.geojson.*truncated"):
        gp.read_admin(truncated)
    with pytest.raises(InputError, match="admin levels"):
        gp.read_admin({"a": truncated})
    # every error is a GeopipeError and the matching built-in
    with pytest.raises(FileNotFoundError):
        gp.read_admin(tmp_path / "nowhere.geojson")
    assert issubclass(MissingFileError, GeopipeError)


def test_does_not_mutate_input(sample_dir):
    raw = gpd.read_file(sample_dir / "rwa_adm1.geojson")
    before = raw.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gp.read_admin(raw)
    pd.testing.assert_frame_equal(pd.DataFrame(raw), pd.DataFrame(before))
