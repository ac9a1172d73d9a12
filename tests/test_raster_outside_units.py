"""Issue 12: the population outside every unit is a quality check shown in quality_report.md."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

import geopipe as gp
from geopipe.quality.rasters import check_outside_units

VNM_POP = "real/vnm/vnm_ppp_2020_1km_Aggregated_UNadj.tif"


@pytest.fixture(scope="module")
def provinces(testdata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gp.GeopipeWarning)
        admin = gp.read_admin(testdata / "real" / "vnm" / "vnm_adm1.geojson")
    return admin[admin.admin_level == 1].reset_index(drop=True)


def test_share_outside_matches_exactextract_and_the_raster_total(provinces, testdata):
    from exactextract import exact_extract

    raster = testdata / VNM_POP
    result = check_outside_units(provinces, raster, warn_share=0.01)
    with rasterio.open(raster) as ds:
        total = float(ds.read(1, masked=True).sum(dtype=np.float64))
    inside = exact_extract(str(raster), provinces, ["sum"], output="pandas")["sum"].sum()
    assert result.check_id == "raster.outside_units"
    assert result.details["raster_total"] == pytest.approx(total, rel=1e-9)
    assert result.details["outside_share"] == pytest.approx(1 - inside / total, rel=1e-6)
    assert 0.01 < result.details["outside_share"] < 0.02  # ~1.07 % of Viet Nam's people
    assert result.level == "warn" and result.rows_affected == pytest.approx(total - inside, abs=1)
    # the threshold is configurable; a fail level can be asked for
    assert check_outside_units(provinces, raster, warn_share=0.02).level == "pass"
    assert (
        check_outside_units(provinces, raster, levels={"raster.outside_units": "fail"}).level
        == "fail"
    )
    report = gp.quality_report([result])
    assert "raster.outside_units" in report and "1.07%" in report


def test_renormalize_says_what_moved(provinces, testdata):
    raster = testdata / VNM_POP
    frac = check_outside_units(provinces, raster, edge="fraction")
    ren = check_outside_units(provinces, raster, edge="renormalize")
    out = gp.zonal_raster(provinces, raster, edge="renormalize")
    rep = next(iter(out.attrs["geopipe"]["zonal_raster"].values()))
    # independent: what renormalize assigns minus what the fraction rule assigns
    moved = rep["assigned_total"] - frac.details["inside_total"]
    assert ren.details["moved_total"] == pytest.approx(moved, rel=1e-6) and moved > 0
    assert ren.details["left_outside_share"] == pytest.approx(
        1 - rep["assigned_total"] / rep["raster_total"], rel=1e-6, abs=1e-9
    )
    assert "moved" in ren.message and "stays outside" in ren.message


def test_bad_arguments(provinces, testdata):
    with pytest.raises(gp.GeopipeError, match="warn_share"):
        check_outside_units(provinces, testdata / VNM_POP, warn_share=2)
    with pytest.raises(gp.GeopipeError, match="edge"):
        check_outside_units(provinces, testdata / VNM_POP, edge="all")
