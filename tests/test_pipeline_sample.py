"""The Rwanda sample pipeline end to end, checked against independent references.

Builds the run folder in a temporary directory and reads every output back with geopandas, pyarrow
and DuckDB; population per district against exactextract on the district polygon; facility and
school counts against a plain geopandas.sjoin; roll-up invariants on the written tables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from exactextract import exact_extract

import geopipe as gp
from geopipe.config import load_config
from geopipe.pipeline import run_pipeline

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pipelines" / "sample.yaml"
TABLES = [
    "dim_admin",
    "dim_indicator",
    "fact_indicator",
    "fact_lineage",
    "adm0",
    "adm1",
    "adm2",
    "h3_r7",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "sample"
    result = run_pipeline(CONFIG, output=out)
    return result


@pytest.fixture(scope="module")
def wide(run):
    return {lv: gpd.read_parquet(run.output / f"adm{lv}.parquet") for lv in (0, 1, 2)}


def test_layout(run):
    names = sorted(p.name for p in run.output.iterdir() if not p.name.startswith("."))
    assert names == sorted(
        [
            *(f"{t}.parquet" for t in TABLES),
            "warehouse.duckdb",
            "manifest.json",
            "geosight.csv",
            "quality_report.md",
            "report.html",
            "bi",
        ]
    )
    assert not list(run.output.parent.glob(".*tmp*"))  # no staging folder left behind


def test_population_matches_exactextract(wide, sample_dir):
    adm2 = wide[2]
    cfg = load_config(CONFIG)
    summed = {s.raster for s in cfg.steps if s.kind == "raster_stats"}
    rasters = {n: s.path for n, s in cfg.sources.items() if n in summed}
    for column, raster in rasters.items():
        ref = exact_extract(
            str(raster), adm2[["ucode", "geometry"]], "sum", include_cols=["ucode"], output="pandas"
        )
        mine = adm2.set_index("ucode")[column]
        theirs = ref.set_index("ucode")["sum"].reindex(mine.index)
        np.testing.assert_allclose(mine.to_numpy(), theirs.to_numpy(), rtol=1e-9)


def test_counts_match_sjoin(wide, sample_dir):
    adm2 = wide[2][["ucode", "geometry", "health_facilities", "schools_total", "schools_connected"]]
    health = gp.read_points(sample_dir / "rwa_who_public_health_facilities.csv")
    schools = gp.read_points(sample_dir / "rwa_schools_modelled.csv")
    for points, column in (
        (health, "health_facilities"),
        (schools, "schools_total"),
        (schools[schools.connectivity == "Yes"], "schools_connected"),
    ):
        joined = gpd.sjoin(points[["geometry"]], adm2[["ucode", "geometry"]], predicate="within")
        ref = joined.groupby("ucode").size().reindex(adm2["ucode"], fill_value=0)
        assert adm2.set_index("ucode")[column].astype(int).tolist() == ref.tolist(), column


def test_every_family_is_produced(run, wide):
    cfg = load_config(CONFIG)
    for level in (0, 1, 2):
        missing = [
            i for i in cfg.indicators if i not in wide[level].columns or wide[level][i].isna().all()
        ]
        assert missing == [], (level, missing)
    families = set(pd.read_parquet(run.output / "dim_indicator.parquet")["family"])
    assert families == {"population", "child_poverty", "connectivity", "service_coverage"}


def test_rollup_invariants(run, wide):
    catalog = gp.indicator_catalog().set_index("indicator_id")
    present = [i for i in catalog.index if i in wide[2].columns]
    sums = [i for i in present if catalog.loc[i, "aggregation"] == "sum"]
    ratios = [i for i in present if catalog.loc[i, "aggregation"] == "ratio"]
    means = [i for i in present if catalog.loc[i, "aggregation"] == "weighted_mean"]
    assert len(sums) >= 10 and len(ratios) >= 4 and len(means) >= 3
    for child_level in (2, 1):
        child = wide[child_level]
        parent = wide[child_level - 1].set_index("ucode")
        grouped = child.groupby("parent_ucode")[sums].sum()
        np.testing.assert_allclose(
            grouped.to_numpy(), parent.loc[grouped.index, sums].to_numpy(), rtol=1e-12
        )
        for ind in ratios:  # recomputed from the rolled-up parts, never a mean of ratios
            num, den, scale = catalog.loc[ind, ["numerator", "denominator", "scale"]]
            np.testing.assert_allclose(parent[ind], parent[num] / parent[den] * scale, rtol=1e-12)
        for ind in means:  # re-weighted by the rolled-up weight
            w = catalog.loc[ind, "weight"]
            ok = child[ind].notna()
            expected = (child.loc[ok, ind] * child.loc[ok, w]).groupby(
                child.loc[ok, "parent_ucode"]
            ).sum() / child.loc[ok, w].groupby(child.loc[ok, "parent_ucode"]).sum()
            np.testing.assert_allclose(parent.loc[expected.index, ind], expected, rtol=1e-12)
    # country = sum over the 30 districts
    assert wide[0]["population_total"].item() == pytest.approx(
        wide[2]["population_total"].sum(), rel=1e-12
    )


def test_h3_fragments_add_up_to_the_districts(run, wide):
    cells = gpd.read_parquet(run.output / "h3_r7.parquet")
    assert cells["cell_id"].str.fullmatch(r"[0-9a-f]{15}").all()
    assert set(cells["ucode"]) == set(wide[2]["ucode"])
    sums = [
        "population_total",
        "population_broadband",
        "population_within_5km_health",
        "schools_total",
        "health_facilities",
    ]
    per_unit = cells.groupby("ucode")[sums].sum()
    district = wide[2].set_index("ucode").loc[per_unit.index, sums]
    np.testing.assert_allclose(
        per_unit.to_numpy(), district.to_numpy(), rtol=1e-4, atol=1e-6
    )  # 0.01 %
    # sensitive child counts: small fragment values are suppressed (null), so the published
    # fragments add up to at most the district, and no district has exactly one hidden fragment
    for col in ("population_u18", "children_in_poverty", "children_beyond_5km_health"):
        published = cells.groupby("ucode")[col].sum()
        assert (
            published <= wide[2].set_index("ucode").loc[published.index, col] * (1 + 1e-9) + 1e-6
        ).all()
        hidden = cells[col].isna().groupby(cells["ucode"]).sum()
        assert not (hidden == 1).any(), col
        assert cells.loc[cells[col].notna(), col].pipe(lambda v: ((v == 0) | (v >= 5)).all())
    sup = json.loads((run.output / "manifest.json").read_text())["quality"]["suppression_h3_r7"]
    assert sup["values_hidden"] > 0


def test_country_row_vs_the_source_country_polygon(run, wide, sample_dir):
    """Rwanda's ADM0 and ADM2 come from different sources: the country row is the sum of the
    districts, and the difference to the source's own country polygon is reported, not hidden."""
    manifest = json.loads((run.output / "manifest.json").read_text())
    diff = manifest["quality"]["country_vs_finest"]["RWA_V1"]
    adm0 = wide[0].to_crs("EPSG:6933").area.item() / 1e6
    union = wide[2].to_crs("EPSG:6933").union_all().area / 1e6
    assert diff["area_km2_source"] == pytest.approx(adm0, rel=1e-9)
    assert diff["area_km2_finest"] == pytest.approx(union, rel=1e-9)
    ref = exact_extract(
        str(load_config(CONFIG).sources["population_total"].path),
        wide[0][["ucode", "geometry"]],
        "sum",
        output="pandas",
    )["sum"].item()
    assert diff["population_total_source_polygon"] == pytest.approx(ref, rel=1e-9)
    assert diff["population_total_finest"] == pytest.approx(
        wide[0]["population_total"].item(), rel=1e-12
    )
    # the country row equals a direct computation on the union of the finest units (0.01 %)
    union_gdf = gpd.GeoDataFrame({"ucode": ["union"]}, geometry=[wide[2].union_all()], crs=4326)
    direct = exact_extract(
        str(load_config(CONFIG).sources["population_total"].path), union_gdf, "sum", output="pandas"
    )["sum"].item()
    assert wide[0]["population_total"].item() == pytest.approx(direct, rel=1e-4)
    assert (
        abs(diff["population_relative_difference"]) > 0
    )  # the source's own ADM0 differs, and it is reported


def test_outputs_read_back_identically(run):
    con = duckdb.connect(str(run.output / "warehouse.duckdb"), read_only=True)
    for name in TABLES:
        path = run.output / f"{name}.parquet"
        table = pq.read_table(path)
        in_db = con.sql(f"select count(*) from {name}").fetchone()[0]
        assert table.num_rows == in_db == len(run.tables[name]), name
        if b"geo" in (table.schema.metadata or {}):
            assert gp.check_geoparquet(path) == [], name
            gdf = gpd.read_parquet(path)
            assert gdf.crs.to_epsg() == 4326
            assert gdf.geometry.is_valid.all()
    fact = pd.read_parquet(run.output / "fact_indicator.parquet")
    assert list(fact.columns) == [
        "ucode",
        "admin_level",
        "indicator_id",
        "date",
        "value",
        "unit",
        "suppressed",
    ]
    assert not fact.duplicated(["ucode", "indicator_id", "date"]).any()
    db_fact = con.sql(
        "select ucode, indicator_id, value from fact_indicator order by ucode, indicator_id"
    ).df()
    pq_fact = fact.sort_values(["ucode", "indicator_id"])[
        ["ucode", "indicator_id", "value"]
    ].reset_index(drop=True)
    pd.testing.assert_frame_equal(db_fact, pq_fact, check_dtype=False)
    # DuckDB (spatial extension loaded offline from its PyPI package) reads the geometry directly
    from geopipe.io.warehouse import load_spatial

    assert load_spatial(con)
    parquet_path = str(run.output / "adm2.parquet")
    area = con.sql(f"select sum(ST_Area(geometry)) from read_parquet('{parquet_path}')").fetchone()[
        0
    ]
    assert area == pytest.approx(
        float(shapely.area(gpd.read_parquet(parquet_path).geometry.to_numpy()).sum()), rel=1e-9
    )


def test_warehouse_keys(run):
    con = duckdb.connect(str(run.output / "warehouse.duckdb"), read_only=True)
    pk = dict(
        con.sql(
            "select table_name, constraint_column_names from duckdb_constraints() where constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    )
    assert pk["fact_indicator"] == ["ucode", "indicator_id", "date"]
    assert pk["adm2"] == ["ucode"] and pk["h3_r7"] == ["cell_id", "ucode"]


def test_warehouse_opens_without_geopipe(run):
    code = (
        "import duckdb, sys\n"
        f"con = duckdb.connect({str(run.output / 'warehouse.duckdb')!r}, read_only=True)\n"
        "rows = con.sql(\"select admin_name, value from v_indicator_by_admin where indicator_id = 'population_total' and admin_level = 0\").fetchall()\n"
        "assert 'geopipe' not in sys.modules\n"
        "print(rows[0][0], round(rows[0][1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Rwanda ")


def test_lineage(run):
    lineage = pd.read_parquet(run.output / "fact_lineage.parquet")
    manifest = json.loads((run.output / "manifest.json").read_text())
    assert set(lineage["run_id"]) == {manifest["run_id"]}
    by = lineage.groupby("indicator_id")["source_id"].apply(set)
    assert by["child_poverty_rate"] == {
        "population_u18",
        "rwi",
        "admin_adm0",
        "admin_adm1",
        "admin_adm2",
    }
    assert "schools" in by["schools_connected_share"]
    assert "population_total" not in by["schools_connected_share"]
    assert by["health_facilities"] >= {"health_facilities", "admin_adm2"}
    assert by["share_population_within_5km_health"] >= {"health_facilities", "population_total"}
    for row in lineage.itertuples():
        assert row.source_version == "sha256:" + manifest["inputs"][row.source_id]["sha256"]


def test_manifest(run):
    manifest = json.loads((run.output / "manifest.json").read_text())
    assert set(manifest["outputs"]) == {
        *(f"{t}.parquet" for t in TABLES),
        "warehouse.duckdb",
        "geosight.csv",
        "quality_report.md",
        "report.html",
        *(f"bi/{p.name}" for p in (run.output / "bi").iterdir()),
    }
    assert manifest["outputs"]["adm2.parquet"]["rows"] == 30
    assert {"population_total", "health_facilities", "admin_adm2"} <= set(manifest["inputs"])
    assert all(not __import__("os").path.isabs(r["path"]) for r in manifest["inputs"].values())
    for rec in manifest["inputs"].values():
        assert len(rec["sha256"]) == 64
    assert manifest["packages"]["geopipe"] == gp.__version__
    pop = manifest["quality"]["steps"]["raster_stats:population_total"]
    assert 0 <= pop["outside_share"] < 0.01


def test_rerun_is_up_to_date_and_reproducible(run, tmp_path):
    again = run_pipeline(CONFIG, output=run.output)
    assert again.up_to_date
    other = run_pipeline(CONFIG, output=tmp_path / "again")
    for name in TABLES:
        assert (run.output / f"{name}.parquet").read_bytes() == (
            other.output / f"{name}.parquet"
        ).read_bytes(), name
    forced = run_pipeline(CONFIG, output=tmp_path / "again", force=True)
    assert not forced.up_to_date


def test_failed_run_leaves_previous_outputs(run, tmp_path):
    out = tmp_path / "keep"
    shutil.copytree(run.output, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    cfg = load_config(CONFIG)
    broken = tmp_path / "broken.csv"
    broken.write_text("name,value\nx,1\n")  # no coordinates: read_points fails mid-run
    sources = {**cfg.sources, "health_facilities": gp.Source("points", broken)}
    bad = __import__("dataclasses").replace(cfg, sources=sources)
    with pytest.raises(gp.GeopipeError):
        run_pipeline(bad, output=out, force=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".geopipe")]  # no staging left


def test_cli(tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "geopipe.cli", "run", str(CONFIG), "--output", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "adm2.parquet" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert second.stdout.startswith("up to date")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ndate: 2020-13-01\nsources: {admin: {kind: admin, path: nowhere.geojson}}\n"
    )
    failed = subprocess.run(
        [sys.executable, "-m", "geopipe.cli", "run", str(bad)], capture_output=True, text=True
    )
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    assert "not an ISO date" in failed.stderr and "nowhere.geojson" in failed.stderr


def test_incremental_rerun_recomputes_only_what_changed(tmp_path, sample_dir):
    """One changed input: only the measures that depend on it are recomputed; the rest is reused."""
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    text = (
        CONFIG.read_text()
        .replace("../data/sample/", f"{data}/")
        .replace("../out/sample", str(tmp_path / "out"))
    )
    config = tmp_path / "sample.yaml"
    config.write_text(text)
    first = run_pipeline(config)
    assert set(first.manifest["quality"]["step_cache"].values()) == {"computed"}
    schools = pd.read_csv(data / "rwa_schools_modelled.csv")
    schools.iloc[:-100].to_csv(data / "rwa_schools_modelled.csv", index=False)  # 100 schools closed
    second = run_pipeline(config)
    status = second.manifest["quality"]["step_cache"]
    assert {k for k, v in status.items() if v == "computed"} == {
        "admin/point_count:schools_total",
        "h3_r7/point_count:schools_total",
    }
    assert {k for k, v in status.items() if v == "reused"} >= {
        "admin/raster_stats:population_total",
        "admin/child_poverty:children_in_poverty",
        "admin/connectivity:download_mbps_mean",
        "admin/distance_coverage:population_within_5km_health",
        "h3_r7/raster_stats:population_total",
    }
    before, after = first.tables["adm0"].iloc[0], second.tables["adm0"].iloc[0]
    assert after["schools_total"] == before["schools_total"] - 100
    assert after["population_total"] == before["population_total"]
    assert after["children_in_poverty"] == before["children_in_poverty"]
    # the reused measures give the very same tables as a full rebuild
    full = run_pipeline(config, output=tmp_path / "full", force=True)
    for name in ("fact_indicator", "adm2", "h3_r7"):
        assert (tmp_path / "out" / f"{name}.parquet").read_bytes() == (
            tmp_path / "full" / f"{name}.parquet"
        ).read_bytes(), name
    assert set(full.manifest["quality"]["step_cache"].values()) == {"computed"}


def test_history_partitions_append_and_replace(tmp_path):
    """Monthly refreshes add a partition; re-running a month replaces only that partition."""
    cfg = load_config(CONFIG)
    history = tmp_path / "history"
    replace = __import__("dataclasses").replace
    jan = replace(cfg, history=history, units=gp.Units())
    feb = replace(jan, date=__import__("datetime").date(2020, 2, 1))
    run_pipeline(jan, output=tmp_path / "jan")
    run_pipeline(feb, output=tmp_path / "feb")
    parts = sorted(p.relative_to(history).as_posix() for p in history.rglob("*.parquet"))
    assert parts == [
        "fact_indicator/iso3=RWA/date=2020-01-01/part-0.parquet",
        "fact_indicator/iso3=RWA/date=2020-02-01/part-0.parquet",
    ]
    feb_file = history / parts[1]
    feb_bytes, feb_mtime = feb_file.read_bytes(), feb_file.stat().st_mtime_ns
    run_pipeline(jan, output=tmp_path / "jan", force=True)
    assert (
        feb_file.read_bytes() == feb_bytes and feb_file.stat().st_mtime_ns == feb_mtime
    )  # untouched
    con = duckdb.connect()
    got = con.sql(
        f"select date::varchar as d, count(*) from read_parquet('{history}/fact_indicator/**/*.parquet', hive_partitioning=true) group by 1 order by 1"
    ).fetchall()
    n = len(pd.read_parquet(tmp_path / "jan" / "fact_indicator.parquet"))
    assert got == [("2020-01-01", n), ("2020-02-01", n)]


def test_values_equal_the_v0_reference(run):
    """The step engine reproduces the v0.1 runner's values (tests/data/reference, captured before
    the redesign) for a few units of every level and every indicator, and six H3 fragments.
    ``population_within_health`` is published as ``population_within_5km_health`` now."""
    ref = json.loads((ROOT / "tests" / "data" / "reference" / "sample_v0_values.json").read_text())
    renamed = {"population_within_health": "population_within_5km_health"}
    fact = pd.read_parquet(run.output / "fact_indicator.parquet").set_index(
        ["ucode", "indicator_id"]
    )
    assert len(ref["admin"]) == 138
    for rec in ref["admin"]:
        value = fact.loc[
            (rec["ucode"], renamed.get(rec["indicator_id"], rec["indicator_id"])), "value"
        ]
        if rec["value"] is None:
            assert pd.isna(value), rec
        else:
            assert value == pytest.approx(rec["value"], rel=1e-9, abs=1e-12), rec
    cells = pd.read_parquet(run.output / "h3_r7.parquet").set_index(["cell_id", "ucode"])
    assert len(cells) == ref["h3_r7_rows"]
    for rec in ref["h3_r7"]:
        row = cells.loc[(rec["cell_id"], rec["ucode"])]
        for col, value in rec.items():
            if col in ("cell_id", "ucode"):
                continue
            got = row[renamed.get(col, col)]
            assert pd.isna(got) if value is None else got == pytest.approx(value, rel=1e-9), (
                rec["cell_id"],
                col,
            )
