"""The partition planner: every unit in exactly one batch, batches within the memory budget, and
the tables of a run under a small budget (many windowed partitions) equal to the default run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio.transform import from_origin

import geopipe as gp
from geopipe.zonal.layers import BYTES_PER_PAIR, BYTES_PER_PAIR_AND_RASTER, plan_batches

ROOT = Path(__file__).resolve().parents[1]
GRID = {
    "crs": "EPSG:4326",
    "transform": from_origin(0, 10, 0.01, 0.01),
    "width": 1000,
    "height": 1000,
    "itemsize": 4,
}


def _units(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0.5, 9.5, n), rng.uniform(0.5, 9.5, n)
    r = rng.uniform(0.05, 0.4, n)
    return gpd.GeoDataFrame(geometry=shapely.buffer(shapely.points(x, y), r), crs=4326)


def _cost(units, batch, rasters, windowed):
    geoms = units.geometry.to_numpy()[batch]
    pairs = shapely.area(geoms) / 1e-4 + 2 * shapely.length(geoms) / 0.01 + 1
    cost = pairs.sum() * (BYTES_PER_PAIR + BYTES_PER_PAIR_AND_RASTER * rasters)
    if windowed:
        b = shapely.bounds(geoms)
        rows = np.ceil((10 - b[:, 1]).max() / 0.01) - np.floor((10 - b[:, 3]).min() / 0.01) + 2
        cols = np.ceil(b[:, 2].max() / 0.01) - np.floor(b[:, 0].min() / 0.01) + 2
        cost += rows * min(cols, 1000) * 4 * rasters  # the box around the batch's units
    return cost


@pytest.mark.parametrize("windowed", [False, True])
@pytest.mark.parametrize("budget_mb", [2, 8, 64])
def test_every_unit_once_and_every_batch_within_budget(windowed, budget_mb):
    units = _units(400)
    budget = budget_mb * 2**20
    batches = plan_batches(units, GRID, budget, rasters=3, windowed=windowed)
    together = np.sort(np.concatenate(batches))
    np.testing.assert_array_equal(together, np.arange(len(units)))
    for b in batches:
        # independent re-estimate of the batch's cost; a lone unit may exceed the budget
        assert len(b) == 1 or _cost(units, b, 3, windowed) <= budget * (1 + 1e-9)
    assert len(plan_batches(units, GRID, 2**30, rasters=3, windowed=windowed)) == 1
    if budget_mb == 2:
        assert len(batches) > 10


def test_every_raster_grid_is_costed_and_a_coarse_first_raster_does_not_decide():
    # a travel-time friction raster at 1 km sorts before the 100 m population rasters: the
    # batches used to be costed on it alone (500 units of a 10^8-pixel country in one 14 GB task)
    units = _units(400, seed=3)
    coarse = dict(GRID, transform=from_origin(0, 10, 0.1, 0.1), width=100, height=100)
    budget = 8 * 2**20
    both = plan_batches(units, [coarse, GRID, GRID], budget, windowed=True)
    assert [b.tolist() for b in both] == [
        b.tolist() for b in plan_batches(units, [GRID, coarse, GRID], budget, windowed=True)
    ]
    fine_alone = plan_batches(units, GRID, budget, rasters=2, windowed=True)
    assert (
        len(both) >= len(fine_alone) > 10 * len(plan_batches(units, coarse, budget, windowed=True))
    )
    np.testing.assert_array_equal(np.sort(np.concatenate(both)), np.arange(len(units)))
    for b in both:  # the fine grid's pairs and windows of two rasters, plus the coarse window
        geoms = units.geometry.to_numpy()[b]
        coarse_box = shapely.bounds(shapely.box(*shapely.total_bounds(geoms))) / 0.1
        coarse_px = (np.ceil(coarse_box[3]) - np.floor(coarse_box[1]) + 2) * (
            np.ceil(coarse_box[2]) - np.floor(coarse_box[0]) + 2
        )
        assert len(b) == 1 or _cost(units, b, 2, True) + coarse_px * 4 <= budget * 1.001


def test_groups_are_never_mixed_and_big_groups_are_split():
    units = _units(300, seed=1)
    groups = [np.arange(0, 300, 3), np.arange(1, 300, 3), np.arange(2, 300, 3)]
    batches = plan_batches(units, GRID, 4 * 2**20, windowed=True, groups=groups)
    assert len(batches) > 3  # each group is over the budget on its own
    for b in batches:
        assert len({int(i) % 3 for i in b}) == 1


def test_windowed_batches_run_top_to_bottom():
    # a budget that holds about a tenth of the rows: batches are horizontal bands
    units = _units(500, seed=2)
    batches = plan_batches(units, GRID, 2_000_000, rasters=1, windowed=True)
    tops = [float(units.geometry.iloc[b].total_bounds[3]) for b in batches]
    assert tops == sorted(tops, reverse=True)


def _sample_with(*kinds: str) -> gp.Pipeline:
    """The sample pipeline with only the steps of ``kinds`` and their indicators."""
    p = gp.Pipeline.from_yaml(ROOT / "pipelines" / "sample.yaml")
    steps = tuple(s for s in p.steps if s.kind in kinds)
    wanted = {i.id for s in steps for i in s.indicators()}
    indicators = tuple(i for i in p.indicators if i in wanted)
    return dataclasses.replace(p, steps=steps, indicators=indicators)


@pytest.fixture(scope="module")
def small_pipeline():
    return _sample_with("raster_stats", "distance_coverage")


def test_a_small_budget_gives_the_default_tables(small_pipeline, tmp_path, monkeypatch):
    import pandas as pd

    from geopipe.pipeline import engines

    calls = []
    real = engines.run_partition
    monkeypatch.setattr(engines, "run_partition", lambda *a: calls.append(len(a[2])) or real(*a))
    ref = gp.run_pipeline(small_pipeline, output=tmp_path / "ref", partition_level=1)
    default_parts, calls[:] = len(calls), []
    run = gp.run_pipeline(
        small_pipeline, output=tmp_path / "small", partition_level=1, memory_mb=16
    )
    assert len(calls) > 2 * default_parts  # the provinces were split to fit 16 MB
    for name in ("adm2", "h3_r7"):
        a = ref.tables[name].drop(columns="geometry")
        b = run.tables[name].drop(columns="geometry")
        num = a.select_dtypes("number").columns
        pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num))
        np.testing.assert_allclose(b[num].to_numpy(float), a[num].to_numpy(float), rtol=1e-9)
    # the budget is part of the run key: changing it is a new run, keeping it is up to date
    again = gp.run_pipeline(
        small_pipeline, output=tmp_path / "small", partition_level=1, memory_mb=16
    )
    assert again.up_to_date
    assert not gp.run_pipeline(
        small_pipeline, output=tmp_path / "small", partition_level=1
    ).up_to_date


def test_a_run_scope_result_is_computed_once_per_unit_set_not_per_partition(tmp_path, monkeypatch):
    from geopipe.pipeline import engines
    from geopipe.zonal import traveltime

    p = _sample_with("raster_stats", "travel_time_coverage")
    surfaces, parts = [], []
    real_tt, real_part = traveltime.travel_time, engines.run_partition
    monkeypatch.setattr(
        traveltime, "travel_time", lambda *a, **k: surfaces.append(1) or real_tt(*a, **k)
    )
    monkeypatch.setattr(engines, "run_partition", lambda *a: parts.append(1) or real_part(*a))
    gp.run_pipeline(p, output=tmp_path / "run", partition_level=1)
    assert len(parts) >= 4  # 5 provinces, districts and their H3 fragments in one task each
    assert len(surfaces) == 1  # once for the districts and the fragments (one pixel pass)


def test_a_run_costs_its_partitions_on_every_raster_it_reads(tmp_path, monkeypatch):
    from geopipe.zonal import layers

    p = _sample_with("raster_stats", "travel_time_coverage")
    steps = p.steps
    seen = []
    real = layers.plan_batches
    monkeypatch.setattr(
        layers, "plan_batches", lambda u, r, *a, **k: seen.append(r) or real(u, r, *a, **k)
    )
    gp.run_pipeline(p, output=tmp_path / "run", partition_level=1)
    read = sorted(Path(os.fspath(r)).name for r in seen[0])
    expected = {s.raster for s in steps if s.kind == "raster_stats"} | {"friction"}
    assert read == sorted(Path(p.sources[name].path).name for name in expected)
