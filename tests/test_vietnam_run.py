"""Issue 12 done-when: the Viet Nam geoBoundaries ADM0 + ADM1 run finishes, Côn Đảo (outside the
simplified ADM0 outline) is under Viet Nam, and the warning is in quality_report.md.

Uses the current YAML format (pipelines/sample.yaml); adapt the YAML here if the format changes.
"""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

import geopipe as gp


def test_vietnam_adm0_adm1_run(tmp_path, testdata):
    from exactextract import exact_extract

    d = testdata / "real" / "vnm"
    cfg = tmp_path / "vnm.yaml"
    cfg.write_text(
        f"""
name: vnm
date: 2020-01-01
output: {tmp_path / "out"}
admin:
  source:
    0: {d / "vnm_adm0.geojson"}
    1: {d / "vnm_adm1.geojson"}
rasters:
  population_total: {d / "vnm_ppp_2020_1km_Aggregated_UNadj.tif"}
indicators: [population_total]
""",
        encoding="utf-8",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gp.GeopipeWarning)
        result = gp.run_pipeline(cfg)
    out = result.output
    dim = pd.read_parquet(out / "dim_admin.parquet")
    con_dao = dim[dim["name"] == "Côn Đảo"].iloc[0]
    assert con_dao["parent_ucode"] == "VNM_V1" and con_dao["parent_overlap"] == 0.0
    fact = pd.read_parquet(out / "fact_indicator.parquet")
    country = fact[(fact["ucode"] == "VNM_V1") & (fact["indicator_id"] == "population_total")]
    provinces = gp.read_admin(d / "vnm_adm1.geojson")
    ref = exact_extract(
        str(d / "vnm_ppp_2020_1km_Aggregated_UNadj.tif"), provinces, ["sum"], output="pandas"
    )
    assert country["value"].item() == pytest.approx(ref["sum"].sum(), rel=1e-9)
    report = (out / "quality_report.md").read_text(encoding="utf-8")
    assert "admin.nearest_parent" in report and "Côn Đảo" in report
    assert "raster.outside_units" in report
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "admin.nearest_parent" in json.dumps(manifest, ensure_ascii=False)
