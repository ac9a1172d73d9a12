"""Issue 12: hierarchies from a single finest-level file, nearest parents, islands outside the
country outline (Viet Nam), and the checks validate reports about them."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geopipe as gp
from geopipe.io.admin import DIM_ADMIN_COLUMNS
from geopipe.quality.hierarchy import check_hierarchy

UCODE = re.compile(r"^[A-Z]{3}(_\d{4})*_V\d+$")
POP = "rwa_population_2020_modelled_232m.tif"


def _read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", gp.GeopipeWarning)  # a clean source reads without warnings
        return gp.read_admin(path, **kw)


@pytest.fixture(scope="module")
def single_files(testdata):
    d = testdata / "admin"
    return {
        "codab": _read(d / "codab_rwa_adm3.gpkg"),
        "gadm": _read(d / "gadm_rwa_adm2.gpkg"),
        "georepo": _read(d / "georepo_rwa_adm2.geojson"),
    }


def _raw(testdata, fmt):
    d = testdata / "admin"
    return gpd.read_file(
        {
            "codab": d / "codab_rwa_adm3.gpkg",
            "gadm": d / "gadm_rwa_adm2.gpkg",
            "georepo": d / "georepo_rwa_adm2.geojson",
        }[fmt]
    )


def _ucode_form_ok(table: pd.DataFrame) -> bool:
    parts = table["ucode"].str.replace(r"_V\d+$", "", regex=True).str.count("_")
    return bool(table["ucode"].str.match(UCODE).all() and (parts == table["admin_level"]).all())


@pytest.mark.parametrize(
    ("fmt", "counts"),
    [
        ("codab", {0: 1, 1: 5, 2: 30, 3: 60}),
        ("gadm", {0: 1, 1: 5, 2: 30}),
        ("georepo", {0: 1, 1: 5, 2: 30}),
    ],
)
def test_single_finest_file_yields_every_level(single_files, testdata, fmt, counts):
    table = single_files[fmt]
    raw = _raw(testdata, fmt)
    assert list(table.columns) == DIM_ADMIN_COLUMNS
    assert table.groupby("admin_level").size().to_dict() == counts
    assert table["ucode"].is_unique and _ucode_form_ok(table)
    finest = max(counts)
    # every unit but the country has a parent one level up, and its ucode extends the parent's
    by = table.set_index("ucode")
    child = table[table.admin_level > 0]
    assert (child["parent_ucode"].map(by["admin_level"]) == child["admin_level"] - 1).all()
    stem = child["parent_ucode"].str.replace(r"_V\d+$", "", regex=True)
    assert (child["ucode"].str.replace(r"_\d{4}_V\d+$", "", regex=True) == stem).all()
    # the parents are the ones the source's own code columns name (independent: the raw file)
    code_col, parent_cols = {
        "codab": ("ADM3_PCODE", ["ADM2_PCODE", "ADM1_PCODE", "ADM0_PCODE"]),
        "gadm": ("GID_2", ["GID_1", "GID_0"]),
        "georepo": ("ucode", ["adm1_ucode", "adm0_ucode"]),
    }[fmt]
    fine = table[table.admin_level == finest].set_index("source_id")
    sid = by["source_id"]
    chain = fine["parent_ucode"]
    for col in parent_cols:
        expected = raw.set_index(code_col)[col].astype(str)
        assert (chain.map(sid).sort_index() == expected.sort_index()).all(), col
        chain = chain.map(by["parent_ucode"])
    # derived units say so, and their geometry is the union of their children
    derived = table[table.admin_level < finest]
    assert derived["source"].str.startswith("derived: dissolved level-").all()
    for lv in range(finest):
        kids = table[table.admin_level == lv + 1]
        for ucode, group in kids.groupby("parent_ucode"):
            union = shapely.union_all(group.geometry.to_numpy())
            assert (
                shapely.equals_exact(
                    shapely.normalize(union), shapely.normalize(by.loc[ucode, "geometry"]), 1e-9
                )
                or shapely.symmetric_difference(union, by.loc[ucode, "geometry"]).area < 1e-12
            )
    assert (table["iso3"] == "RWA").all()


def test_codes_names_and_pcodes_of_derived_units(single_files, testdata):
    codab = single_files["codab"]
    raw = _raw(testdata, "codab")
    districts = codab[codab.admin_level == 2]
    assert dict(zip(districts["pcode"], districts["name"], strict=True)) == dict(
        zip(raw["ADM2_PCODE"], raw["ADM2_EN"], strict=True)
    )
    assert codab.loc[codab.admin_level == 0, ["name", "pcode", "ucode"]].values.tolist() == [
        ["Rwanda", "RW", "RWA_V1"]
    ]
    assert codab.loc[codab.admin_level == 3, "ucode"].str.match(r"^RWA_\d{4}_\d{4}_\d{4}_V1$").all()
    gadm = single_files["gadm"]
    assert sorted(gadm.loc[gadm.admin_level == 1, "name"]) == sorted(set(raw["ADM1_EN"]))
    # GeoRepo: ucodes the export gives are kept as given (not renumbered in name order)
    geo = single_files["georepo"]
    graw = _raw(testdata, "georepo")
    assert set(geo.loc[geo.admin_level == 2, "ucode"]) == set(graw["ucode"])
    assert set(geo.loc[geo.admin_level == 1, "ucode"]) == set(graw["adm1_ucode"])
    assert sorted(geo.loc[geo.admin_level == 1, "name"]) == sorted(set(graw["adm1_name"]))
    assert geo.attrs["geopipe"]["parents"]["derived"] == {1: 5, 0: 1}


def test_population_rolled_up_equals_exactextract_on_dissolved_parents(single_files, sample_dir):
    from exactextract import exact_extract

    raster = sample_dir / POP
    for fmt, table in single_files.items():
        finest = int(table["admin_level"].max())
        units = table[table.admin_level == finest]
        measured = gp.zonal_raster(units, raster, stats=("sum",)).rename(
            columns={"sum": "population_total"}
        )
        fact = gp.compute_indicators(
            pd.DataFrame(measured.drop(columns="geometry")), ["population_total"], date="2020-01-01"
        ).fact
        up = gp.rollup(fact, table).set_index("ucode")["value"]
        parents = table[table.admin_level < finest].reset_index(drop=True)
        ref = exact_extract(str(raster), parents, ["sum"], output="pandas")["sum"].to_numpy()
        np.testing.assert_allclose(
            up.reindex(parents["ucode"]).to_numpy(), ref, rtol=1e-6, err_msg=fmt
        )
        assert up[table.loc[table.admin_level == 0, "ucode"].item()] > 1e6


def test_codes_decide_and_geometry_confirms(testdata, tmp_path):
    raw3 = gpd.read_file(testdata / "admin" / "codab_rwa_adm3.gpkg")
    districts = raw3.dissolve("ADM2_PCODE", as_index=False)[
        ["ADM2_PCODE", "ADM2_EN", "ADM1_PCODE", "ADM1_EN", "ADM0_PCODE", "geometry"]
    ]
    districts.to_file(tmp_path / "adm2.gpkg", driver="GPKG")
    # one sector coded under the wrong district: codes win, the disagreement is reported
    wrong = raw3.copy()
    i = int(np.flatnonzero(wrong["ADM2_PCODE"] != wrong["ADM2_PCODE"].iloc[0])[0])
    wrong.loc[i, ["ADM2_PCODE", "ADM1_PCODE"]] = wrong.loc[0, ["ADM2_PCODE", "ADM1_PCODE"]].values
    wrong.to_file(tmp_path / "adm3.gpkg", driver="GPKG")
    with pytest.warns(gp.GeopipeWarning, match="lie mostly outside the parent their codes name"):
        table = gp.read_admin({2: tmp_path / "adm2.gpkg", 3: tmp_path / "adm3.gpkg"})
    info = table.attrs["geopipe"]["parents"]
    assert info["derived"] == {1: 5, 0: 1}  # level 2 came from its own file, not derived
    assert table.groupby("admin_level").size().to_dict() == {0: 1, 1: 5, 2: 30, 3: 60}
    assert not table.loc[table.admin_level == 2, "source"].str.startswith("derived").any()
    assert len(info["code_geometry_disagreements"]) == 1
    bad = info["code_geometry_disagreements"][0]
    assert bad["unit"] == wrong.loc[i, "ADM3_EN"]
    assert bad["parent_by_code"] == wrong.loc[0, "ADM2_EN"]
    assert bad["parent_by_geometry"] == wrong.loc[i, "ADM2_EN"]
    by = table.set_index("ucode")
    unit = table[table["name"] == wrong.loc[i, "ADM3_EN"]].iloc[0]
    assert by.loc[unit["parent_ucode"], "name"] == wrong.loc[0, "ADM2_EN"]  # codes decided
    result = next(r for r in check_hierarchy(table) if r.check_id == "admin.parent_code_mismatch")
    assert result.level == "warn" and result.rows_affected == 1


def test_derive_false_keeps_only_the_levels_read(testdata):
    table = gp.read_admin(testdata / "admin" / "gadm_rwa_adm2.gpkg", derive=False)
    assert set(table["admin_level"]) == {2}
    assert table["ucode"].str.match(r"^RWA_0000_\d{4}_V1$").all()


def test_mapping_names_ancestors(testdata):
    raw = _raw(testdata, "codab").rename(
        columns={
            "ADM3_PCODE": "sector_code",
            "ADM3_EN": "sector",
            "ADM2_PCODE": "district_code",
            "ADM2_EN": "district",
            "ADM1_PCODE": "province_code",
            "ADM1_EN": "province",
        }
    )
    raw = raw[
        [
            "sector_code",
            "sector",
            "district_code",
            "district",
            "province_code",
            "province",
            "geometry",
        ]
    ]
    mapping = {
        "name": "sector",
        "id": "sector_code",
        "id_2": "district_code",
        "name_2": "district",
        "id_1": "province_code",
        "name_1": "province",
    }
    table = gp.read_admin(raw, level=3, mapping=mapping, iso3="RWA")
    assert table.groupby("admin_level").size().to_dict() == {1: 5, 2: 30, 3: 60}
    assert _ucode_form_ok(table)
    by = table.set_index("ucode")
    sectors = table[table.admin_level == 3].set_index("source_id")
    district = sectors["parent_ucode"].map(by["name"])
    assert (district.sort_index() == raw.set_index("sector_code")["district"].sort_index()).all()


# --------------------------------------------------------------------------- Viet Nam
@pytest.fixture(scope="module")
def vnm(testdata):
    d = testdata / "real" / "vnm"
    with pytest.warns(gp.GeopipeWarning, match="Côn Đảo") as caught:
        admin = gp.read_admin({0: d / "vnm_adm0.geojson", 1: d / "vnm_adm1.geojson"})
    return admin, [str(w.message) for w in caught], d / "vnm_ppp_2020_1km_Aggregated_UNadj.tif"


def test_vietnam_island_outside_the_outline_goes_to_the_nearest_parent(vnm):
    admin, messages, _ = vnm
    con_dao = admin[admin["name"] == "Côn Đảo"].iloc[0]
    country = admin[admin.admin_level == 0].iloc[0]
    assert con_dao["parent_ucode"] == country["ucode"] == "VNM_V1"
    assert con_dao["parent_overlap"] == 0.0
    # independent: Côn Đảo really is disjoint from the outline, some tens of km away
    assert not shapely.intersects(con_dao.geometry, country.geometry)
    # reference distance: planar, in UTM zone 48N (the islands' zone), where scale error < 0.1 %
    utm = gpd.GeoSeries([con_dao.geometry, country.geometry], crs=4326).to_crs(32648)
    km = utm.iloc[0].distance(utm.iloc[1]) / 1000
    nearest = admin.attrs["geopipe"]["parents"]["nearest"]
    assert [n["unit"] for n in nearest] == ["Côn Đảo"]
    assert nearest[0]["distance_km"] == pytest.approx(km, rel=2e-3) and 20 < km < 200
    assert any("nearest one" in m and "Côn Đảo" in m for m in messages)


def test_vietnam_rollup_of_population_works(vnm):
    from exactextract import exact_extract

    admin, _, raster = vnm
    provinces = admin[admin.admin_level == 1]
    measured = gp.zonal_raster(provinces, raster).rename(columns={"sum": "population_total"})
    fact = gp.compute_indicators(
        pd.DataFrame(measured.drop(columns="geometry")), ["population_total"], date="2020-01-01"
    ).fact
    up = gp.rollup(fact, admin).set_index("ucode")["value"]
    ref = exact_extract(str(raster), provinces.reset_index(drop=True), ["sum"], output="pandas")
    assert up["VNM_V1"] == pytest.approx(ref["sum"].sum(), rel=1e-9)
    con_dao = provinces.reset_index(drop=True)["name"].eq("Côn Đảo").to_numpy()
    assert ref["sum"].to_numpy()[con_dao].item() > 0  # its people are in the country total


def test_check_hierarchy_reports_the_island_with_area_and_population(vnm):
    from exactextract import exact_extract

    admin, _, raster = vnm
    results = {r.check_id: r for r in check_hierarchy(admin, population=raster)}
    near = results["admin.nearest_parent"]
    assert near.level == "warn" and near.rows_affected == 1 and "Côn Đảo" in near.message
    out = results["admin.outside_country"]
    assert out.level == "warn" and "Côn Đảo" in out.details["units"]
    # independent reference: the polygon parts of the provinces disjoint from the outline
    country = admin.loc[admin.admin_level == 0, "geometry"].item()
    parts = shapely.get_parts(admin.loc[admin.admin_level == 1, "geometry"].to_numpy())
    lost = parts[~shapely.intersects(parts, country)]
    assert out.rows_affected == len(lost)
    area = gpd.GeoSeries(lost, crs=4326).to_crs("EPSG:6933").area.sum() / 1e6
    assert out.details["area_km2"] == pytest.approx(area, rel=1e-9)
    on_raster = gpd.GeoDataFrame(geometry=list(lost), crs=4326)
    ref = exact_extract(str(raster), on_raster, ["sum"], output="pandas")["sum"].sum()
    assert out.details["population"] == pytest.approx(ref, rel=1e-6) and ref > 1000
    # the warning reaches quality_report.md
    report = gp.quality_report(list(results.values()))
    assert "admin.nearest_parent" in report and "Côn Đảo" in report
    assert "admin.outside_country" in report


def test_check_hierarchy_passes_on_a_clean_hierarchy(rwanda_admin):
    results = check_hierarchy(rwanda_admin)
    assert [r.level for r in results] == ["pass", "pass", "pass"]


def test_check_field_inputs_reports_the_island_and_stops_on_empty_layers(vnm):
    """The one call a run's input stage makes (before anything is written)."""
    from geopipe.errors import ConfigError, EmptyInputError
    from geopipe.quality.field import check_field_inputs

    admin, _, raster = vnm
    results = check_field_inputs(admin, population=raster)
    by_id = {r.check_id: r for r in results}
    assert by_id["admin.nearest_parent"].level == "warn"
    assert by_id["admin.outside_country"].details["population"] > 0
    assert by_id["raster.outside_units"].details["outside_share"] > 0
    report = gp.quality_report(results)
    assert "Côn Đảo" in report and "raster.outside_units" in report
    # a typo in quality.levels is a ConfigError with a suggestion, not silently ignored
    with pytest.raises(ConfigError, match="did you mean 'admin.gap'"):
        check_field_inputs(admin, levels={"admin.gapp": "fail"})
    # a facility layer with lat/lon swapped stops the run before any output is written
    clinics = gpd.GeoDataFrame(
        {"point_id": ["A", "B"]},
        geometry=gpd.points_from_xy([21.03, 10.78], [105.85, 106.7]),
        crs=4326,
    )
    with pytest.raises(EmptyInputError, match="clinics.csv.*swapped"):
        check_field_inputs(admin, layers={"clinics.csv": clinics})


def test_georepo_api_parents_list_yields_every_level(testdata, tmp_path):
    import json

    raw = _raw(testdata, "georepo")
    entities = [
        {
            "ucode": r["ucode"],
            "name": r["name"],
            "admin_level": 2,
            "parents": [
                {"ucode": r["adm0_ucode"], "admin_level": 0, "name": r["adm0_name"]},
                {"ucode": r["adm1_ucode"], "admin_level": 1, "name": r["adm1_name"]},
            ],
            "geometry": json.loads(shapely.to_geojson(r.geometry)),
        }
        for _, r in raw.iterrows()
    ]
    path = tmp_path / "rwa_level2_api.json"
    path.write_text(json.dumps({"results": entities}), encoding="utf-8")
    table = gp.read_admin(path)
    assert table.groupby("admin_level").size().to_dict() == {0: 1, 1: 5, 2: 30}
    assert _ucode_form_ok(table)
    fine = table[table.admin_level == 2].set_index("ucode")
    assert (
        fine["parent_ucode"].sort_index() == raw.set_index("ucode")["adm1_ucode"].sort_index()
    ).all()
    provinces = table[table.admin_level == 1]
    assert sorted(provinces["name"]) == sorted(set(raw["adm1_name"]))


def test_concept_ucodes_stay_unique_when_the_source_gives_some(testdata, tmp_path):
    raw = _raw(testdata, "georepo")
    raw["concept_ucode"] = [f"#RWA_{i}" for i in range(1, len(raw) + 1)]  # 1..30 taken
    raw.to_file(tmp_path / "export.geojson", driver="GeoJSON")
    geo = gp.read_admin(tmp_path / "export.geojson")
    assert geo["concept_ucode"].is_unique
    kept = geo[geo.admin_level == 2].set_index("ucode")["concept_ucode"]
    assert (kept.sort_index() == raw.set_index("ucode")["concept_ucode"].sort_index()).all()
    derived = geo.loc[geo.admin_level < 2, "concept_ucode"]
    assert sorted(derived) == sorted(f"#RWA_{i}" for i in range(31, 37))


def test_check_hierarchy_with_a_raster_that_misses_the_islands(vnm, testdata):
    admin, _, _ = vnm
    elsewhere = testdata / "real" / "prt_sao_miguel" / "gpw_v411_2020_count_2020.tif"
    out = next(
        r
        for r in check_hierarchy(admin, population=elsewhere)
        if r.check_id == "admin.outside_country"
    )
    assert out.details["population"] == 0.0 and "no raster data" in out.details["population_note"]


def test_children_naming_different_grandparents_are_reported(testdata, tmp_path):
    raw = gpd.read_file(testdata / "admin" / "codab_rwa_adm3.gpkg")
    first = raw["ADM2_PCODE"].iloc[0]
    other = raw.loc[raw["ADM1_PCODE"] != raw["ADM1_PCODE"].iloc[0], "ADM1_PCODE"].iloc[0]
    raw.loc[raw["ADM2_PCODE"] == first, "ADM1_PCODE"] = [raw["ADM1_PCODE"].iloc[0], other]
    raw.to_file(tmp_path / "adm3.gpkg", driver="GPKG")
    with pytest.warns(gp.GeopipeWarning, match=rf"name different ancestors above them \({first}\)"):
        table = gp.read_admin(tmp_path / "adm3.gpkg")
    assert table.groupby("admin_level").size().to_dict() == {0: 1, 1: 5, 2: 30, 3: 60}


def test_vietnam_pipeline_run_reports_the_island(tmp_path):
    """The Viet Nam ADM0 + ADM1 run finishes: Côn Đảo under Viet Nam, the warning in the report."""
    real = Path(__file__).resolve().parent / "data" / "real" / "vnm"
    p = gp.Pipeline.from_dict(
        {
            "name": "vnm",
            "date": "2020-01-01",
            "sources": {
                "admin": {
                    "kind": "admin",
                    "path": {0: str(real / "vnm_adm0.geojson"), 1: str(real / "vnm_adm1.geojson")},
                },
                "population_total": {
                    "kind": "raster",
                    "path": str(real / "vnm_ppp_2020_1km_Aggregated_UNadj.tif"),
                },
            },
            "steps": [{"kind": "raster_stats", "raster": "population_total"}],
            "indicators": ["population_total"],
        }
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gp.GeopipeWarning)
        result = gp.run_pipeline(p, output=tmp_path / "run")
    admin = result.tables["dim_admin"]
    island = admin[admin["name"].str.contains("Côn Đảo|Con Dao|Bà Rịa", regex=True)]
    assert (island["parent_ucode"] == "VNM_V1").all() and len(island)
    report = (tmp_path / "run" / "quality_report.md").read_text(encoding="utf-8")
    assert "admin.nearest_parent" in report and "admin.outside_country" in report
    assert "raster.outside_units" in report
