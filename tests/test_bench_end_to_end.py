"""The end-to-end benchmark: its equality check, the synthetic countries, and (slow) peer = geopipe.

The comparison is tested on hand-made tables (a wrong value fails, suppressed values are skipped
only when geopipe flags them, units must match); ``make_country`` at a tiny size is read back
(files, level structure, counts, grids, reproducibility); the slow tests run the status-quo peer
and geopipe on a tiny synthetic country and on the Rwanda sample and check every indicator.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_end_to_end as e2e  # noqa: E402
from benchmarks import synthetic  # noqa: E402


def _level() -> tuple[pd.DataFrame, pd.DataFrame]:
    peer = pd.DataFrame(
        {
            "name": ["A", "B", "C"],
            "population_total": [1000.0, 2000.0, 0.0],
            "population_u18": [400.0, 3.0, 0.0],
            "health_facilities": [3.0, 0.0, 1.0],
            "share_population_within_60min_health": [0.5, 0.25, np.nan],
        }
    )
    ours = peer.iloc[[2, 0, 1]].reset_index(drop=True).copy()  # another row order
    return peer, ours


def _row(res: pd.DataFrame, indicator: str) -> pd.Series:
    return res.set_index("indicator").loc[indicator]


def test_equal_tables_pass_in_any_row_order():
    peer, ours = _level()
    res = e2e.compare_level(peer, ours, "adm2", ["name"])
    assert res["ok"].all()
    assert (res["max_diff"] == 0).all()
    assert set(res["indicator"]) == {
        "population_total",
        "population_u18",
        "health_facilities",
        "share_population_within_60min_health",
    }


def test_a_wrong_value_fails_and_names_the_unit():
    peer, ours = _level()
    peer.loc[1, "population_total"] = 2000.0 * (1 + 3e-6)  # > 1e-6
    peer.loc[0, "health_facilities"] = 4.0  # counts are exact
    peer.loc[0, "share_population_within_60min_health"] = 0.5 + 0.009  # absolute, <= 0.01
    res = e2e.compare_level(peer, ours, "adm2", ["name"])
    pop = _row(res, "population_total")
    assert not pop["ok"] and pop["worst_unit"] == "B"
    assert pop["max_diff"] == pytest.approx(3e-6, rel=1e-6)
    assert not _row(res, "health_facilities")["ok"]
    assert _row(res, "share_population_within_60min_health")["ok"]
    peer.loc[0, "share_population_within_60min_health"] = 0.5 + 0.011
    res = e2e.compare_level(peer, ours, "adm2", ["name"])
    assert not _row(res, "share_population_within_60min_health")["ok"]


def test_a_value_where_geopipe_has_zero_or_nothing_fails():
    peer, ours = _level()
    peer.loc[2, "population_total"] = 1.0
    res = e2e.compare_level(peer, ours, "adm2", ["name"])
    assert not _row(res, "population_total")["ok"]
    assert np.isinf(_row(res, "population_total")["max_diff"])
    peer, ours = _level()
    ours.loc[ours["name"] == "A", "health_facilities"] = np.nan  # not suppressible
    assert not _row(e2e.compare_level(peer, ours, "adm2", ["name"]), "health_facilities")["ok"]
    peer, ours = _level()
    peer.loc[0, "population_total"] = np.nan  # the peer lost a value geopipe has
    assert not _row(e2e.compare_level(peer, ours, "adm2", ["name"]), "population_total")["ok"]


def test_suppressed_values_are_skipped_only_where_geopipe_flags_them():
    peer, ours = _level()
    ours.loc[ours["name"] == "B", "population_u18"] = np.nan  # 3 children: below k = 5
    flags = pd.DataFrame({"population_u18": [False, True, False]}, index=["A", "B", "C"])
    row = _row(e2e.compare_level(peer, ours, "adm2", ["name"], flags), "population_u18")
    assert row["ok"] and row["suppressed_skipped"] == 1 and row["compared"] == 2
    flags["population_u18"] = False  # a null geopipe did not flag is a failure
    row = _row(e2e.compare_level(peer, ours, "adm2", ["name"], flags), "population_u18")
    assert not row["ok"]
    # grids carry no flags: a null is skipped only for what suppression can hide
    row = _row(e2e.compare_level(peer, ours, "h3_r7", ["name"]), "population_u18")
    assert row["ok"] and row["suppressed_skipped"] == 1
    ours.loc[ours["name"] == "B", "population_total"] = np.nan
    assert not _row(e2e.compare_level(peer, ours, "h3_r7", ["name"]), "population_total")["ok"]


def test_grid_threshold_counts_are_checked_over_all_fragments():
    n = 1000
    peer = pd.DataFrame(
        {
            "cell_id": [f"c{i}" for i in range(n)],
            "district": "A",
            "population_total": np.full(n, 100.0),
            "share_population_within_60min_health": np.full(n, 0.5),
        }
    )
    ours = peer.copy()
    ours.loc[0, "share_population_within_60min_health"] = 0.0  # one fragment: half its people
    res = e2e.compare_level(peer, ours, "h3_r7", ["cell_id", "district"])
    row = _row(res, "share_population_within_60min_health")
    assert row["ok"] and row["max_diff"] == pytest.approx(0.5 / n)
    ours.loc[:9, "share_population_within_60min_health"] = 0.0  # 0.5 % of everyone: too many
    res = e2e.compare_level(peer, ours, "h3_r7", ["cell_id", "district"])
    assert not _row(res, "share_population_within_60min_health")["ok"]
    # at admin levels the same difference is judged unit by unit
    res = e2e.compare_level(
        peer.drop(columns="district"), ours.drop(columns="district"), "adm2", ["cell_id"]
    )
    assert not _row(res, "share_population_within_60min_health")["ok"]


def test_units_on_one_side_only_or_a_missing_column_are_errors():
    peer, ours = _level()
    with pytest.raises(KeyError, match="peer only"):
        e2e.compare_level(peer, ours.iloc[:2], "adm2", ["name"])
    with pytest.raises(KeyError, match="population_u18"):
        e2e.compare_level(peer, ours.drop(columns="population_u18"), "adm2", ["name"])


def test_every_sample_indicator_has_a_stated_tolerance():
    sample = yaml.safe_load(e2e.CONFIG.read_text())
    assert set(e2e.TOLERANCES) == set(sample["indicators"])
    from benchmarks import peer_status_quo as peer

    assert sample["indicators"] == peer.INDICATORS
    assert all(why for _, _, why in e2e.TOLERANCES.values())


def test_results_are_merged_into_latest_json(tmp_path, monkeypatch):
    path = tmp_path / "latest.json"
    path.write_text(json.dumps({"scaling": {"n": 1}, "end_to_end": {"old": 1}}))
    monkeypatch.setattr(e2e, "RESULTS", path)
    e2e.save({"sample": {"speedup": {"wall_s": 2.0}}})
    data = json.loads(path.read_text())
    assert data == {"scaling": {"n": 1}, "end_to_end": {"sample": {"speedup": {"wall_s": 2.0}}}}


# --- synthetic countries ---------------------------------------------------------------------

TINY = {"n_adm1": 4, "n_adm2": 25, "n_health": 150, "n_schools": 120}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("synthetic")
    return folder, synthetic.make_country(folder, "XAA", 0, 240, np.random.default_rng(3), **TINY)


def test_make_country_writes_the_sample_layout(tiny):
    folder, files = tiny
    assert set(files) == set(synthetic.FILES)
    assert all(p.is_file() and p.parent == folder / "XAA" for p in files.values())
    adm = {lv: gpd.read_file(files[f"adm{lv}"]).to_crs("EPSG:6933") for lv in (0, 1, 2)}
    assert [len(adm[lv]) for lv in (0, 1, 2)] == [1, TINY["n_adm1"], TINY["n_adm2"]]
    assert all(adm[lv].is_valid.all() for lv in adm)
    assert adm[2]["ADM2_PCODE"].is_unique and adm[2]["ADM2_EN"].is_unique
    assert set(adm[2]["ADM1_PCODE"]) == set(adm[1]["ADM1_PCODE"])  # every province has districts
    # districts tile the country, provinces are dissolves of their districts
    area0 = adm[0].geometry.area.sum()
    assert adm[2].geometry.area.sum() == pytest.approx(area0, rel=1e-9)
    for _, prov in adm[1].iterrows():
        parts = adm[2][adm[2]["ADM1_PCODE"] == prov["ADM1_PCODE"]]
        assert parts.geometry.area.sum() == pytest.approx(prov.geometry.area, rel=1e-9)
    health, schools = pd.read_csv(files["health_facilities"]), pd.read_csv(files["schools"])
    assert (len(health), len(schools)) == (TINY["n_health"], TINY["n_schools"])
    assert set(schools["connectivity"]) <= {"Yes", "No"}
    pts = gpd.GeoSeries.from_xy(health["lon"], health["lat"], crs=4326).to_crs("EPSG:6933")
    assert pts.within(adm[0].geometry.iloc[0]).all()


def test_make_country_rasters_are_aligned_float32_with_nodata_outside(tiny):
    _folder, files = tiny
    w, s, e, n = synthetic.country_extent(0, 240)
    stacks = []
    for key in ("population_total", "population_u18", "population_u5"):
        with rasterio.open(files[key]) as src:
            assert (src.width, src.height, src.dtypes[0]) == (240, 240, "float32")
            assert src.nodata == synthetic.POP_NODATA and src.block_shapes[0] == (512, 512)
            assert src.compression.name == "zstd"
            assert src.bounds == pytest.approx((w, s, e, n))
            stacks.append(src.read(1, masked=True))
    pop, u18, u5 = stacks
    assert 0.3 < pop.mask.mean() < 0.6  # nodata around the country's blob
    assert (pop.mask == u18.mask).all() and (pop.mask == u5.mask).all()
    assert (pop.compressed() > 0).all()
    assert ((u5 < u18) & (u18 < pop)).all()
    with rasterio.open(files["friction"]) as src:
        fr = src.read(1, masked=True)
        assert src.res == pytest.approx((synthetic.FRICTION_DEG,) * 2)
        assert (src.bounds.left, src.bounds.top) == pytest.approx((w, n))
        assert src.bounds.right >= e - 1e-9 and src.bounds.bottom <= s + 1e-9
    assert fr.min() >= 0.0096 and fr.max() <= 0.0301  # minutes per metre, 0.8-2.5 x 5 km/h


def test_make_country_tiles_and_reproducibility(tiny, tmp_path):
    _folder, files = tiny
    rwi = pd.read_csv(files["rwi"], dtype={"quadkey": str})
    speed = pd.read_parquet(files["speed"])
    assert list(rwi.columns) == ["quadkey", "latitude", "longitude", "rwi", "error"]
    assert (rwi["quadkey"].str.len() == synthetic.TILE_ZOOM).all()
    assert {"quadkey", "tile", "avg_d_kbps", "tests"} <= set(speed.columns)
    assert (speed["tests"] == 0).any() and (speed["tests"] > 0).any()
    from benchmarks.peer_status_quo import quadkey_tiles

    tiles = quadkey_tiles(speed["quadkey"])  # the quadkey and the WKT name the same tile
    wkt = gpd.GeoSeries.from_wkt(speed["tile"])
    assert np.allclose(tiles.bounds.to_numpy(), wkt.bounds.to_numpy(), atol=1e-9)
    again = synthetic.make_country(tmp_path, "XAA", 0, 240, np.random.default_rng(3), **TINY)
    for key in ("schools", "rwi", "population_total"):
        assert again[key].read_bytes() == files[key].read_bytes()


def test_countries_side_by_side_do_not_overlap():
    boxes = [synthetic.country_extent(i, 10_000) for i in range(16)]
    for a, b in itertools.pairwise(boxes):
        assert b[0] - a[2] >= synthetic.GAP_DEG - 1e-9
        assert (a[1], a[3]) == (b[1], b[3])
    assert boxes[-1][2] < 180


def test_pipeline_config_has_the_sample_steps_and_indicators(tiny, tmp_path):
    folder, files = tiny
    sample = yaml.safe_load(e2e.CONFIG.read_text())
    one = synthetic.pipeline_config(folder, "XAA", tmp_path / "run")
    many = synthetic.pipeline_config(folder, ["XAA", "XAB"], tmp_path / "run")
    for cfg in (one, many):
        for key in ("steps", "indicators", "units", "quality", "date"):
            assert cfg[key] == sample[key]
        assert set(cfg["sources"]) == set(sample["sources"])
    assert "countries" not in one and many["countries"] == ["XAA", "XAB"]
    assert one["sources"]["friction"]["path"] == str(files["friction"].resolve())
    assert many["sources"]["admin"]["path"][2].endswith("{iso3}/adm2.geojson")
    assert many["sources"]["admin"]["iso3"] == "{iso3}"
    from geopipe.pipeline import Pipeline

    path = synthetic.write_config(one, tmp_path / "one.yaml")
    assert Pipeline.from_yaml(path).name == "synthetic"
    inputs = synthetic.peer_inputs(folder, "XAA")
    assert Path(inputs["population_total"]) == files["population_total"].resolve()


# --- slow: the peer and geopipe, every indicator -------------------------------------------


@pytest.mark.slow
def test_peer_equals_geopipe_on_a_tiny_synthetic_country(tiny, tmp_path):
    from benchmarks import peer_status_quo as peer

    from geopipe.pipeline import run_pipeline

    folder, _ = tiny
    peer.run(synthetic.peer_inputs(folder, "XAA"), tmp_path / "peer")
    cfg = synthetic.write_config(
        synthetic.pipeline_config(folder, "XAA", tmp_path / "geopipe"), tmp_path / "c.yaml"
    )
    result = run_pipeline(cfg, force=True, engine="processes", workers=2, partition_level=1)
    # one pixel pass: the H3 fragments tile the districts, so they are computed in the districts'
    # partition tasks, none of their own
    assert "step:admin/partitions:processes" in result.timings
    assert not any(k.startswith("step:h3_r7/partitions") for k in result.timings)
    checks = e2e.check_outputs(tmp_path / "peer", result.output)
    assert checks["ok"].all(), checks[~checks["ok"]].to_string()
    assert set(checks["level"]) == {"adm0", "adm1", "adm2", "h3_r7"}
    assert set(checks["indicator"]) == set(e2e.TOLERANCES)
    assert (
        checks["compared"].sum() > 0.9 * (checks["compared"] + checks["suppressed_skipped"]).sum()
    )
    # the peer on its own: fragments hold the districts' people, districts the country's
    frags = pd.read_parquet(tmp_path / "peer" / "h3_r7.parquet")
    adm0 = pd.read_parquet(tmp_path / "peer" / "adm0.parquet")
    assert frags["population_total"].sum() == pytest.approx(adm0["population_total"].iloc[0])


@pytest.mark.slow
def test_peer_equals_geopipe_on_the_sample(tmp_path):
    from benchmarks import peer_status_quo as peer

    from geopipe.pipeline import run_pipeline

    peer.run(peer.SAMPLE, tmp_path / "peer")
    result = run_pipeline(e2e.CONFIG, output=tmp_path / "geopipe", force=True)
    checks = e2e.check_outputs(tmp_path / "peer", result.output)
    assert checks["ok"].all(), checks[~checks["ok"]].to_string()
