"""The end-to-end benchmark's peer script and its equality check.

The comparison is tested on hand-made tables (tolerances, renamed geopipe columns, missing
districts); the slow test runs the status-quo peer on the Rwanda sample, runs the sample pipeline,
and checks that every peer measure equals geopipe's within the benchmark's stated tolerances and
that the peer's own H3 fragments conserve its district population.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_end_to_end as e2e  # noqa: E402


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    peer = pd.DataFrame(
        {
            "district": ["A", "B", "C"],
            "population_total": [1000.0, 2000.0, 0.0],
            "health_facilities": [3, 0, 1],
            "population_within_5km_health": [900.0, 1500.0, 0.0],
        }
    )
    ours = pd.DataFrame(
        {
            "name": ["C", "A", "B"],  # another row order: matched by name
            "population_total": [0.0, 1000.0, 2000.0],
            "health_facilities": [1.0, 3.0, 0.0],
            "population_within_health": [0.0, 900.0, 1500.0],
        }
    )
    return peer, ours


def test_equal_tables_pass_and_old_or_new_column_name_is_accepted():
    peer, ours = _tables()
    res = e2e.compare_districts(peer, ours).set_index("measure")
    assert res["ok"].all()
    assert res.loc["population_within_5km_health", "geopipe_column"] == "population_within_health"
    assert (res["max_rel_diff"] == 0).all()
    renamed = ours.rename(columns={"population_within_health": "population_within_5km_health"})
    res = e2e.compare_districts(peer, renamed).set_index("measure")
    assert res.loc["population_within_5km_health", "geopipe_column"] == (
        "population_within_5km_health"
    )


def test_a_share_times_its_denominator_stands_in_for_a_missing_count():
    peer, ours = _tables()
    share = ours["population_within_health"] / ours["population_total"]
    ours["share_population_within_5km_health"] = share.fillna(0.0)  # 0 / 0 in district C
    res = e2e.compare_districts(peer, ours.drop(columns="population_within_health"))
    row = res.set_index("measure").loc["population_within_5km_health"]
    assert row["geopipe_column"] == "share_population_within_5km_health * population_total"
    assert row["ok"]
    assert row["max_rel_diff"] < 1e-12


def test_differences_beyond_tolerance_fail_and_name_the_district():
    peer, ours = _tables()
    peer.loc[1, "population_total"] = 2000.0 * 1.003  # 0.3 % > 0.2 %
    peer.loc[0, "health_facilities"] = 4  # counts must be exact
    peer.loc[0, "population_within_5km_health"] = 900.0 * 1.004  # 0.4 % <= 0.5 %
    res = e2e.compare_districts(peer, ours).set_index("measure")
    assert not res.loc["population_total", "ok"]
    assert res.loc["population_total", "worst_district"] == "B"
    assert res.loc["population_total", "max_rel_diff"] == pytest.approx(0.003)
    assert not res.loc["health_facilities", "ok"]
    assert res.loc["population_within_5km_health", "ok"]


def test_a_value_where_geopipe_has_zero_fails():
    peer, ours = _tables()
    peer.loc[2, "population_total"] = 1.0
    res = e2e.compare_districts(peer, ours).set_index("measure")
    assert not res.loc["population_total", "ok"]
    assert np.isinf(res.loc["population_total", "max_rel_diff"])


def test_missing_district_or_column_is_an_error():
    peer, ours = _tables()
    with pytest.raises(KeyError, match="peer only"):
        e2e.compare_districts(peer, ours.iloc[:2])
    with pytest.raises(KeyError, match="population_within_5km_health"):
        e2e.compare_districts(peer, ours.drop(columns="population_within_health"))


def test_h3_check_counts_fragments_and_population():
    a = pd.DataFrame({"population_total": [1.0, 2.0, 3.0]})
    assert e2e.compare_h3(a, a)["ok"].all()
    res = e2e.compare_h3(a.iloc[:2], a).set_index("measure")
    assert not res.loc["h3_r7 fragments", "ok"]
    assert not res.loc["h3_r7 population_total", "ok"]


@pytest.mark.slow
def test_peer_equals_geopipe_on_the_sample(tmp_path):
    from geopipe.pipeline import run_pipeline

    peer_out = tmp_path / "peer"
    done = subprocess.run(
        [sys.executable, str(e2e.PEER), "--output", str(peer_out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "peer wall time" in done.stdout
    result = run_pipeline(e2e.CONFIG, output=tmp_path / "geopipe", force=True)
    districts, cells = e2e.check_outputs(peer_out, result.output)
    assert districts["ok"].all(), districts.to_string()
    assert cells["ok"].all(), cells.to_string()
    assert set(districts["measure"]) == set(e2e.MEASURES)
    # the peer on its own: its H3 fragments hold its districts' people
    peer = pd.read_csv(peer_out / "adm2.csv")
    frags = pd.read_parquet(peer_out / "h3_r7.parquet")
    assert frags["population_total"].sum() == pytest.approx(peer["population_total"].sum(), 1e-6)
    assert (peer["population_within_5km_health"] <= peer["population_total"] * (1 + 1e-12)).all()
