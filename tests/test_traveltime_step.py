"""The travel-time coverage step against the plain function it wraps (itself tested against
scipy's Dijkstra and pyproj), with conservation and roll-up on the sample."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import geopipe as gp

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def pipeline():
    p = gp.Pipeline.from_yaml(ROOT / "pipelines" / "sample.yaml")
    keep = [s for s in p.steps if s.kind in ("raster_stats", "point_count", "travel_time_coverage")]
    return dataclasses.replace(
        p,
        steps=tuple(keep),
        units=gp.Units(),
        indicators=(
            "share_population_within_60min_health",
            "children_beyond_60min_health",
            "travel_time_to_health_min_mean",
        ),
    )


def test_step_equals_the_plain_function(pipeline):
    units = gp.pipeline.measure_units(pipeline)
    facilities = gp.read_points(SAMPLE / "rwa_who_public_health_facilities.csv")
    tt = gp.travel_time(SAMPLE / "rwa_friction_walking_modelled_1km.tif", facilities)
    plain = gp.travel_time_coverage(
        units[["ucode", "geometry"]],
        SAMPLE / "rwa_population_2020_modelled_232m.tif",
        tt,
        minutes=60,
        children=SAMPLE / "rwa_population_u18_2020_modelled_232m.tif",
    )
    np.testing.assert_allclose(
        units["population_within_60min_health"], plain["population_within_60min"], rtol=1e-12
    )
    np.testing.assert_allclose(
        units["children_beyond_60min_health"], plain["children_beyond_60min"], rtol=1e-12
    )
    np.testing.assert_allclose(
        units["travel_time_to_health_min_mean"], plain["population_traveltime_mean_min"], rtol=1e-12
    )
    # within + beyond = total (the total is the raster sum of the same pixels)
    beyond = plain["population_beyond_60min"].to_numpy()
    np.testing.assert_allclose(
        units["population_within_60min_health"] + beyond, units["population_total"], rtol=1e-9
    )


def test_run_names_rolls_up_and_reads_once(pipeline, tmp_path):
    result = gp.run_pipeline(pipeline, output=tmp_path / "run")
    dim = result.tables["dim_indicator"].set_index("indicator_id")
    assert dim.loc["share_population_within_60min_health", "name"] == (
        "Share of population within 60 minutes of a health facility"
    )
    assert "friction" in dim.loc["travel_time_to_health_min_mean", "description"]
    wide = result.tables["fact_indicator"].pivot_table(
        index="ucode", columns="indicator_id", values="value"
    )
    admin = result.tables["dim_admin"].set_index("ucode")
    kids = admin.index[admin["admin_level"] == 2]
    country = admin.index[admin["admin_level"] == 0][0]
    share = (
        wide.loc[kids, "population_within_60min_health"].sum()
        / wide.loc[kids, "population_total"].sum()
    )
    assert wide.loc[country, "share_population_within_60min_health"] == pytest.approx(
        share, rel=1e-12
    )
    w = wide.loc[kids, "population_with_travel_time_health"]
    mean = (wide.loc[kids, "travel_time_to_health_min_mean"] * w).sum() / w.sum()
    assert wide.loc[country, "travel_time_to_health_min_mean"] == pytest.approx(mean, rel=1e-12)
    assert result.counts["read:friction"] == 1
    lineage = result.tables["fact_lineage"].groupby("indicator_id")["source_id"].apply(set)
    assert {"friction", "health_facilities", "population_total"} <= lineage[
        "share_population_within_60min_health"
    ]
