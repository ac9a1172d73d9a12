"""One pixel pass: the districts are computed through the pixel weights of the grid fragments
that tile them, and equal what their own pixels give (issue 14)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopipe as gp
from geopipe.grids.h3 import h3_grid
from geopipe.pipeline.run import Fragments, measure_units
from geopipe.zonal.raster import pixel_weights, zonal_raster

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pipelines" / "sample.yaml"
POP = ROOT / "data" / "sample" / "rwa_population_2020_modelled_232m.tif"


@pytest.fixture(scope="module")
def districts_and_fragments(rwanda_admin):
    districts = rwanda_admin[rwanda_admin["admin_level"] == 2].reset_index(drop=True)
    cells = h3_grid(rwanda_admin, 7, split=True).reset_index(drop=True)
    return districts, cells


def test_the_h3_fragments_tile_the_districts(districts_and_fragments):
    districts, cells = districts_and_fragments
    tiles = Fragments.tiling("h3_r7", cells, districts)
    assert tiles is not None
    assert (districts["ucode"].to_numpy()[tiles.parent] == cells["ucode"].to_numpy()).all()
    # a district that lost a fragment is no longer tiled: its own pixels are used
    assert Fragments.tiling("h3_r7", cells.iloc[1:], districts) is None
    # nor when a fragment names a unit the districts do not have
    other = cells.assign(ucode=cells["ucode"].where(cells.index != 0, "XXX"))
    assert Fragments.tiling("h3_r7", other, districts) is None


def test_relabelled_weights_give_every_statistic_of_the_districts_own(districts_and_fragments):
    """Weights built for the fragments and relabelled to their districts against weights built
    for the districts: every statistic a step can publish, and min and max. (exactextract's
    weighted median interpolates over the pairs, so it depends on how many pairs a pixel is
    split into; no step publishes it: it cannot be rolled up.)"""
    districts, cells = districts_and_fragments
    tiles = Fragments.tiling("h3_r7", cells, districts)
    own = pixel_weights(districts, POP)
    through = pixel_weights(cells, POP).relabel(tiles.parent, len(districts))
    np.testing.assert_allclose(through.unit_weight(), own.unit_weight(), rtol=1e-12)
    stats = ("sum", "mean", "count", "min", "max")
    a = zonal_raster(districts, POP, stats=stats, pixel_weights=own)
    b = zonal_raster(districts, POP, stats=stats, pixel_weights=through)
    for stat in stats:
        np.testing.assert_allclose(b[stat], a[stat], rtol=1e-12, err_msg=stat)
    # the pairs are shared, not copied: only the unit labels are new
    frag = pixel_weights(cells, POP)
    relabelled = frag.relabel(tiles.parent, len(districts))
    assert relabelled.row is frag.row and relabelled.coverage is frag.coverage


def test_a_run_computes_the_districts_as_their_own_pixels_would(tmp_path):
    """The run's district columns (through the fragments) against measure_units (the districts'
    own pixel weights, no grid) for every pixel step of the sample."""
    p = gp.Pipeline.from_yaml(SAMPLE)
    run = gp.run_pipeline(p, output=tmp_path / "run")
    assert run.counts.get("relabelled:admin:" + _grid_id(run), 0) == 1
    own = measure_units(p)
    adm2 = run.tables["adm2"].set_index("ucode")
    pixel_columns = [c for s in p.steps if s.pixel for c in s.columns() if c in adm2.columns]
    assert len(pixel_columns) >= 10
    own = own.set_index("ucode").loc[adm2.index]
    for col in pixel_columns:
        unsuppressed = ~adm2[col].isna()
        np.testing.assert_allclose(
            adm2.loc[unsuppressed, col], own.loc[unsuppressed, col], rtol=1e-12, err_msg=col
        )


def test_without_a_grid_the_districts_use_their_own_pixels(tmp_path):
    p = gp.Pipeline.from_yaml(SAMPLE)
    units = dataclasses.replace(p.units, h3=(), square=())
    run = gp.run_pipeline(dataclasses.replace(p, units=units), output=tmp_path / "run")
    assert any(k.startswith("weights:admin:") for k in run.counts)
    assert not any(k.startswith("relabelled:") for k in run.counts)
    ref = gp.run_pipeline(p, output=tmp_path / "ref").tables["fact_indicator"]
    mine = run.tables["fact_indicator"]
    merged = ref.merge(mine, on=["ucode", "indicator_id", "date"], suffixes=("_ref", ""))
    assert len(merged) == len(mine) == len(ref)
    pd.testing.assert_series_equal(
        merged["suppressed"], merged["suppressed_ref"], check_names=False
    )
    np.testing.assert_allclose(merged["value"], merged["value_ref"], rtol=1e-12, equal_nan=True)


def _grid_id(run) -> str:
    return next(k.split(":")[2] for k in run.counts if k.startswith("weights:h3_r7:"))


def test_additive_steps_give_the_districts_what_their_pixels_give(tmp_path, monkeypatch):
    """Districts of additive steps come from their fragments' columns (sums and weighted means,
    no second pixel pass): the same numbers as through the fragments' pixels to 1e-12, for
    every additive step of the sample and a connectivity step without Ookla's tests."""
    from geopipe.steps.base import Step

    p = gp.Pipeline.from_yaml(SAMPLE)
    steps = tuple(
        dataclasses.replace(s, tests_column=None) if s.kind == "connectivity" else s
        for s in p.steps
    )
    kept = tuple(i for i in p.indicators if i != "download_mbps_tests_mean")
    p = dataclasses.replace(p, steps=steps, indicators=kept)
    rolled = [s.kind for s in p.steps if s.pixel and s.additive()]
    assert {"raster_stats", "child_poverty", "connectivity", "travel_time_coverage"} <= set(rolled)
    mine = gp.run_pipeline(p, output=tmp_path / "rolled").tables["adm2"].set_index("ucode")
    for cls in {type(s) for s in p.steps}:
        monkeypatch.setattr(cls, "additive", Step.additive)
    ref = gp.run_pipeline(p, output=tmp_path / "pixels").tables["adm2"].set_index("ucode")
    cols = [c for s in p.steps if s.pixel for c in s.columns() if c in mine.columns]
    assert len(cols) >= 10
    for col in cols:
        np.testing.assert_allclose(mine[col], ref.loc[mine.index, col], rtol=1e-12, err_msg=col)


def test_from_fragments_sums_and_weighted_means():
    from geopipe.pipeline.engines import from_fragments
    from geopipe.steps.layers import ValueLayer

    step = ValueLayer(layer="rwi", value="rwi", weight="population_u18", below=0.0)
    parent = np.array([0, 1, 0, 0, 2])
    cols = {
        "rwi_covered": np.array([2.0, 1.0, 0.0, 3.0, 0.0]),
        "rwi_mean": np.array([1.0, -1.0, np.nan, 0.5, np.nan]),
        "rwi_below": np.array([0.0, 1.0, 0.0, 0.0, 0.0]),
    }
    got = from_fragments(step, cols, parent, 4)
    assert list(got) == step.columns()
    np.testing.assert_array_equal(got["rwi_covered"], [5.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(got["rwi_below"], [0.0, 1.0, 0.0, 0.0])
    # (1 x 2 + 0.5 x 3) / 5; no weight, no mean; a unit with no fragment has none
    np.testing.assert_allclose(got["rwi_mean"], [0.7, -1.0, np.nan, np.nan])
    # a weight the batch does not hold: computed through the pixels instead
    assert (
        from_fragments(step, {c: v for c, v in cols.items() if c != "rwi_covered"}, parent, 4)
        is None
    )
