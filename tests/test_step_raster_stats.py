"""raster_stats sums over the shared pixel pairs: equal to gp.zonal_raster (exactextract's
definitions, itself checked against exactextract in test_zonal_raster.py) for every statistic,
on the sample's districts and on its H3 fragments, with nodata pixels in both rasters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import geopipe as gp
from geopipe.pipeline.run import measure_units
from geopipe.steps import RasterStats

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def pipeline():
    p = gp.Pipeline.from_yaml(ROOT / "pipelines" / "sample.yaml")
    steps = (
        RasterStats(
            raster="population_u18",
            stats=("sum", "mean", "weighted_mean"),
            weights="population_total",
            column="u18",
        ),
        RasterStats(raster="friction", stats=("mean",)),
    )
    ids = tuple(i.id for s in steps for i in s.indicators())
    return dataclasses.replace(p, steps=steps, indicators=ids)


@pytest.mark.parametrize("units", ["districts", "h3"])
def test_every_statistic_equals_zonal_raster(pipeline, units):
    table = measure_units(pipeline)
    if units == "h3":
        table = measure_units(pipeline, gp.h3_grid(table, 7, split=True).reset_index(drop=True))
    bare = table[["geometry"]]
    ref = gp.zonal_raster(
        bare,
        {"u18": SAMPLE / "rwa_population_u18_2020_modelled_232m.tif"},
        stats=("sum", "mean", "count", "weighted_mean"),
        weights=SAMPLE / "rwa_population_2020_modelled_232m.tif",
    )
    for col in ("u18_sum", "u18_mean", "u18_count", "u18_weighted_mean"):
        np.testing.assert_allclose(table[col], ref[col], rtol=1e-12, atol=1e-9, err_msg=col)
    fr = gp.zonal_raster(
        bare,
        {"friction": SAMPLE / "rwa_friction_walking_modelled_1km.tif"},
        stats=("mean", "count"),
    )
    np.testing.assert_allclose(table["friction_mean"], fr["friction_mean"], rtol=1e-12)
    np.testing.assert_allclose(table["friction_count"], fr["friction_count"], rtol=1e-12)
    assert table["u18_weight"].sum() > 0
