"""Every indicator formula against a hand computation on a tiny world.

Two units A (left) and B (right) of a country C, a 4 x 2 population raster with 0.01° pixels whose
values are easy to sum by hand, a wealth layer, a speed layer, schools and one health facility.
Distances are checked against pyproj's geodesic on the pixel centres (an independent reference).
"""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

import geopipe as gp
from conftest import TINY_FACILITY as FACILITY
from conftest import TINY_POP as POP
from conftest import tiny_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("world")
    p = gp.Pipeline.from_dict(tiny_world(d))
    admin_table = gp.read_admin(
        d / "admin.geojson", **{k: v for k, v in p.sources["admin"].options.items()}
    )
    units = admin_table[admin_table.admin_level == 1].reset_index(drop=True)
    units = gp.pipeline.measure_units(p, units)
    catalog = p.catalog()
    fact = gp.compute_indicators(units, date=p.date, catalog=catalog).fact
    rolled = gp.rollup(fact, admin_table, catalog=catalog)
    return rolled.pivot_table(index="ucode", columns="indicator_id", values="value").rename(
        index={"XXX_V1": "C", "XXX_0001_V1": "A", "XXX_0002_V1": "B"}
    )


def _pixel_distances_km():
    geod = Geod(ellps="WGS84")
    cx = np.array([0.005, 0.015, 0.025, 0.035])
    cy = np.array([0.015, 0.005])
    lon, lat = np.meshgrid(cx, cy)
    _, _, d = geod.inv(
        np.full(lon.size, FACILITY[0]), np.full(lon.size, FACILITY[1]), lon.ravel(), lat.ravel()
    )
    return d.reshape(lon.shape) / 1000.0


def test_population(world):
    assert world.loc["A", "population_total"] == pytest.approx(140)
    assert world.loc["B", "population_total"] == pytest.approx(220)
    assert world.loc["C", "population_total"] == pytest.approx(360)
    assert world.loc["A", "population_u18"] == pytest.approx(70)
    assert world.loc["C", "population_u5"] == pytest.approx(36)


def test_child_poverty(world):
    # A: col 0 (rwi -0.5) holds 5 + 25 children, col 1 (rwi 0.2) 10 + 30; B: col 2 (0.2) 15 + 35, col 3 no data
    assert world.loc["A", "children_in_poverty"] == pytest.approx(30)
    assert world.loc["B", "children_in_poverty"] == pytest.approx(0)
    assert world.loc["A", "child_poverty_rate"] == pytest.approx(30 / 70)
    assert world.loc["C", "child_poverty_rate"] == pytest.approx(30 / 180)
    assert world.loc["A", "wealth_index_mean"] == pytest.approx((30 * -0.5 + 40 * 0.2) / 70)
    assert world.loc["B", "wealth_index_mean"] == pytest.approx(0.2)
    assert world.loc["B", "children_with_wealth_data"] == pytest.approx(50)
    assert world.loc["C", "wealth_index_mean"] == pytest.approx((30 * -0.5 + 90 * 0.2) / 120)


def test_connectivity(world):
    # A entirely in the 20 Mbit/s tile; B: col 2 in the 5 Mbit/s tile, col 3's tile has 0 tests (dropped)
    assert world.loc["A", "download_mbps_mean"] == pytest.approx(20)
    assert world.loc["B", "download_mbps_mean"] == pytest.approx(5)
    assert world.loc["C", "download_mbps_mean"] == pytest.approx((140 * 20 + 100 * 5) / 240)
    assert world.loc["C", "share_population_broadband"] == pytest.approx(140 / 360)
    # tests-weighted: tile tests x area share; A holds the 5-test tile, B the 1-test tile
    assert world.loc["A", "download_mbps_tests_mean"] == pytest.approx(20)
    assert world.loc["B", "speed_tests"] == pytest.approx(1)
    assert world.loc["C", "download_mbps_tests_mean"] == pytest.approx((5 * 20 + 1 * 5) / 6)
    assert world.loc["A", "children_without_connectivity"] == pytest.approx(0)
    assert world.loc["B", "children_without_connectivity"] == pytest.approx(110)
    assert world.loc["A", "schools_total"] == 3 and world.loc["B", "schools_total"] == 1
    assert world.loc["A", "schools_connected_share"] == pytest.approx(2 / 3)
    assert world.loc["C", "schools_connected_share"] == pytest.approx(2 / 4)


def test_service_coverage(world):
    d = _pixel_distances_km()
    within = d <= 1.2
    assert within.sum() == 3  # the facility's pixel and its two direct neighbours
    a, b = np.s_[:, :2], np.s_[:, 2:]
    assert world.loc["A", "health_facilities"] == 1 and world.loc["B", "health_facilities"] == 0
    assert world.loc["A", "share_population_within_1200m_health"] == pytest.approx(
        POP[a][within[a]].sum() / 140
    )
    assert world.loc["B", "share_population_within_1200m_health"] == pytest.approx(0)
    assert world.loc["C", "children_beyond_1200m_health"] == pytest.approx(0.5 * POP[~within].sum())
    assert world.loc["A", "distance_to_health_km_mean"] == pytest.approx(
        (POP[a] * d[a]).sum() / 140, rel=1e-9
    )
    assert world.loc["B", "distance_to_health_km_mean"] == pytest.approx(
        (POP[b] * d[b]).sum() / 220, rel=1e-9
    )
    assert world.loc["C", "distance_to_health_km_mean"] == pytest.approx(
        (POP * d).sum() / 360, rel=1e-9
    )
    assert world.loc["A", "schools_per_10k_children"] == pytest.approx(3 / 70 * 1e4)


def test_compute_indicators_without_the_long_table():
    import pandas as pd

    from geopipe.indicators.compute import FACT_COLUMNS, compute_indicators

    units = pd.DataFrame(
        {"ucode": ["A", "B"], "schools_total": [4, 0], "schools_connected": [1, 0]}
    )
    both = compute_indicators(units, ["schools_connected_share"], date="2024-01-01")
    wide_only = compute_indicators(
        units, ["schools_connected_share"], date="2024-01-01", long=False
    )
    pd.testing.assert_frame_equal(wide_only.wide, both.wide)
    assert len(both.fact) > 0 and wide_only.fact.empty
    assert list(wide_only.fact.columns) == FACT_COLUMNS
