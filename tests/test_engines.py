"""Engines: local, a process pool and a Dask LocalCluster give identical tables, and a worker that
dies mid-run is survived (issue 14)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

import geopipe as gp
from geopipe.pipeline.engines import close_clients

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pipelines" / "sample.yaml"
TABLES = ("fact_indicator", "adm2", "h3_r7")

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    gp.run_pipeline(SAMPLE, output=out, partition_level=1)
    return out


def _same_tables(a: Path, b: Path) -> None:
    for name in TABLES:
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["processes", "dask"])
def test_engines_give_identical_tables(local_run, tmp_path, engine):
    try:
        gp.run_pipeline(
            SAMPLE, output=tmp_path / "run", engine=engine, workers=2, partition_level=1
        )
        if engine == "dask":  # the LocalCluster's workers keep freed memory (geopipe._heap)
            from geopipe._heap import KEEP_BYTES
            from geopipe.pipeline.engines import Engine, _client

            client = _client(Engine("dask", workers=2))
            trim = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
            mmaps = client.run(os.environ.get, "MALLOC_MMAP_MAX_")
            assert len(trim) == 2 and set(trim.values()) == {str(KEEP_BYTES)}, trim
            assert set(mmaps.values()) == {"0"}, mmaps
            arenas = client.run(os.environ.get, "MALLOC_ARENA_MAX")
            assert set(arenas.values()) == {"1"}, arenas

            def mapped_in_task() -> int:  # a task runs in a worker thread
                import ctypes

                class MallInfo2(ctypes.Structure):
                    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks",
                                "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                                "fordblks", "keepcost")]  # fmt: skip

                libc = ctypes.CDLL("libc.so.6")
                libc.mallinfo2.restype = MallInfo2
                before = libc.mallinfo2().hblkhd
                block = np.ones(10**7)  # 80 MB: over a thread arena's 64 MB heap
                after = libc.mallinfo2().hblkhd
                del block
                return int(after - before)

            assert client.submit(mapped_in_task, pure=False).result() == 0  # from the heap

            def profiling() -> bool:
                import dask

                return bool(dask.config.get("distributed.worker.profile.enabled"))

            assert set(client.run(profiling).values()) == {False}  # no dashboard to feed
    finally:
        close_clients()
    _same_tables(local_run, tmp_path / "run")


@pytest.mark.slow
def test_partitioned_equals_unpartitioned_to_rounding(local_run, tmp_path):
    """Partitions by province against one batch: the same values up to float summation order."""
    import pandas as pd

    gp.run_pipeline(SAMPLE, output=tmp_path / "whole")
    for name in TABLES:
        a = pd.read_parquet(local_run / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "whole" / f"{name}.parquet")
        assert a.shape == b.shape
        for col in a.columns:
            if a[col].dtype.kind == "f":
                np.testing.assert_allclose(a[col], b[col], rtol=1e-12, atol=1e-9, equal_nan=True)
            elif col not in ("geometry", "bbox"):
                assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), (name, col)


@gp.steps.step_type
@dataclasses.dataclass(frozen=True)
class DiesOnce(gp.steps.Step):
    """A pixel step whose first execution kills its worker process (a crash, an OOM kill)."""

    kind = "dies_once_test"
    pixel = True
    population: str = gp.steps.source("raster", default="population_total")
    marker: str = ""

    def indicators(self):
        return [
            gp.steps.measure(
                "pixels_seen",
                params=self.params(),
                unit="pixels",
                description="Coverage-weighted pixels of the population grid.",
            )
        ]

    def run(self, units, data):
        px = data.pixels(self.population)
        if (
            self.marker
            and not os.path.exists(self.marker)
            and os.environ.get("DASK_WORKER_KILL_OK") != "0"
        ):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-task
        return {"pixels_seen": np.bincount(px.unit, px.coverage, minlength=px.n)}


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_survived(tmp_path):
    p = gp.Pipeline.from_yaml(SAMPLE)
    marker = tmp_path / "killed"
    steps = (*p.steps, DiesOnce(marker=str(marker)))
    q = dataclasses.replace(
        p, steps=steps, units=gp.Units(), indicators=(*p.indicators, "pixels_seen")
    )
    ref = gp.run_pipeline(
        dataclasses.replace(q, steps=(*p.steps, DiesOnce())),
        output=tmp_path / "ref",
        partition_level=1,
    )
    try:
        gp.run_pipeline(q, output=tmp_path / "run", engine="dask", workers=2, partition_level=1)
    finally:
        close_clients()
    assert marker.is_file()  # a worker did die
    for name in ("fact_indicator", "adm2"):
        assert (ref.output / f"{name}.parquet").read_bytes() == (
            tmp_path / "run" / f"{name}.parquet"
        ).read_bytes()


def _countries(tmp_path, isos):
    """Three tiny synthetic countries (the tiny world with its own ucodes) and their config."""
    import json

    from conftest import tiny_world

    cfg = None
    for iso in isos:
        d = tmp_path / iso
        d.mkdir()
        cfg = tiny_world(d)
        admin = json.loads((d / "admin.geojson").read_text())
        for f in admin["features"]:
            for k in ("ucode", "parent"):
                if f["properties"].get(k):
                    f["properties"][k] = f["properties"][k].replace("XXX", iso)
        (d / "admin.geojson").write_text(json.dumps(admin))
    for src in cfg["sources"].values():
        src["path"] = src["path"].replace(f"/{isos[-1]}/", "/{iso3}/")
    cfg["sources"]["admin"]["iso3"] = "{iso3}"
    return {**cfg, "countries": list(isos)}


@pytest.mark.parametrize("engine", ["local", "processes", "dask"])
def test_three_countries_form_one_warehouse_equal_to_single_runs(tmp_path, engine):
    import pandas as pd

    isos = ["XXA", "XXB", "XXC"]
    cfg = _countries(tmp_path, isos)
    p = gp.Pipeline.from_dict(cfg)
    try:
        both = gp.run_pipeline(p, output=tmp_path / "all", engine=engine, workers=2)
    finally:
        close_clients()
    fact = both.tables["fact_indicator"]
    assert set(both.tables["dim_admin"]["iso3"]) == set(isos)
    for iso in isos:
        single = gp.run_pipeline(p.for_country(iso), output=tmp_path / f"one_{iso}")
        mine = (
            fact[fact["ucode"].str.startswith(iso)]
            .sort_values(["ucode", "indicator_id"])
            .reset_index(drop=True)
        )
        ref = (
            single.tables["fact_indicator"]
            .sort_values(["ucode", "indicator_id"])
            .reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(mine, ref)
    assert gp.run_pipeline(p, output=tmp_path / "all").up_to_date


def _rows_of(path, iso):
    """The rows of ``iso`` in a table file, sorted, as plain columns (geometry as WKB)."""
    import pyarrow.parquet as pq

    frame = pq.read_table(path).to_pandas()
    frame = frame.drop(columns=["bbox", "run_id"], errors="ignore")
    if "source_id" in frame.columns:  # the warehouse's lineage names the country of a source
        frame["source_id"] = frame["source_id"].str.removeprefix(f"{iso}/")
    if "ucode" in frame.columns:
        frame = frame[frame["ucode"].str.startswith(iso)]
    return frame.sort_values(list(frame.columns[:4])).reset_index(drop=True)


def test_every_file_of_the_warehouse_holds_each_country_as_its_single_run(tmp_path, monkeypatch):
    # the files are joined from the countries' parts (one row group at a time): every table,
    # BI table, the GeoSight CSV and the DuckDB warehouse hold each country's rows exactly as a
    # single-country run of it writes them, and the GeoParquet files pass the 1.1 check
    import duckdb
    import pandas as pd
    import pyarrow.parquet as pq

    from geopipe.io.geoparquet import check_geoparquet
    from geopipe.pipeline import countries

    isos = ["XXA", "XXB"]
    p = gp.Pipeline.from_dict(_countries(tmp_path, isos))
    returned = []
    real = countries._compute_country

    def spy(*args):
        run = real(*args)
        returned.append((dict(run.tables), dict(run.cache._pending)))
        return run

    monkeypatch.setattr(countries, "_compute_country", spy)
    run = gp.run_pipeline(p, output=tmp_path / "all")
    # what a country hands back to the parent holds no table and no cache entry in memory
    assert [tables for tables, _ in returned] == [{}, {}]
    pending = [e for _, cache in returned for e in cache.values()]
    assert pending and all(isinstance(e, Path) for e in pending)
    from geopipe.pipeline.state import state_folder

    stored = {f.name for f in (state_folder(run.output) / "steps").glob("*.parquet")}
    assert {e.name for e in pending} <= stored  # and were moved into the step cache
    assert not list(tmp_path.glob(".geopipe-tmp-*"))  # the part folders are gone
    singles = {i: gp.run_pipeline(p.for_country(i), output=tmp_path / i / "out") for i in isos}
    files = sorted(f.relative_to(run.output) for f in run.output.rglob("*.parquet"))
    assert files == sorted(
        f.relative_to(singles["XXA"].output) for f in singles["XXA"].output.rglob("*.parquet")
    )
    for rel in files:
        if b"geo" in (pq.read_schema(singles["XXA"].output / rel).metadata or {}):
            assert check_geoparquet(tmp_path / "all" / rel) == []
        for iso in isos:
            pd.testing.assert_frame_equal(
                _rows_of(tmp_path / "all" / rel, iso), _rows_of(singles[iso].output / rel, iso)
            )
    lines = (tmp_path / "all" / "geosight.csv").read_text().splitlines()
    one = [(singles[i].output / "geosight.csv").read_text().splitlines() for i in isos]
    assert lines == [one[0][0], *one[0][1:], *one[1][1:]]
    con = duckdb.connect(str(tmp_path / "all" / "warehouse.duckdb"), read_only=True)
    for table in ("fact_indicator", "dim_admin", "adm1", "bi_indicator_latest"):
        n = con.sql(f"select count(*) from {table}").fetchone()[0]
        ones = []
        for i in isos:
            c = duckdb.connect(str(singles[i].output / "warehouse.duckdb"), read_only=True)
            ones.append(c.sql(f"select count(*) from {table}").fetchone()[0])
            c.close()
        assert n == sum(ones) > 0
    assert run.tables["adm1"]["iso3"].tolist().count("XXB") == 2


@pytest.mark.parametrize("engine", ["local", "processes"])
def test_a_failing_country_keeps_its_previous_tables_and_does_not_block_the_others(
    tmp_path, engine
):
    isos = ["XXA", "XXB", "XXC"]
    cfg = _countries(tmp_path, isos)
    p = gp.Pipeline.from_dict(cfg)
    first = gp.run_pipeline(p, output=tmp_path / "all")
    before = first.tables["fact_indicator"]
    (tmp_path / "XXB" / "pop.tif").unlink()  # XXB's input goes missing
    (tmp_path / "XXC" / "health.csv").write_text(
        "lon,lat,name\n0.035,0.005,clinic\n"
    )  # XXC changes
    try:
        with pytest.raises(gp.GeopipeError, match="XXB") as err:
            gp.run_pipeline(p, output=tmp_path / "all", engine=engine, workers=2)
    finally:
        close_clients()
    assert gp.errors.exit_code(err.value) == 5
    import pandas as pd

    after = pd.read_parquet(tmp_path / "all" / "fact_indicator.parquet")
    b0 = (
        before[before["ucode"].str.startswith("XXB")]
        .sort_values(["ucode", "indicator_id"])
        .reset_index(drop=True)
    )
    b1 = (
        after[after["ucode"].str.startswith("XXB")]
        .sort_values(["ucode", "indicator_id"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(b0, b1, check_dtype=False)  # XXB kept its previous rows
    c = after[(after["ucode"] == "XXC_0001_V1") & (after["indicator_id"] == "health_facilities")][
        "value"
    ]
    assert c.iloc[0] == 0  # XXC was refreshed: its clinic moved to unit B


def test_validate_checks_every_country(tmp_path):
    import yaml

    from geopipe.cli import main

    cfg = _countries(tmp_path, ["XXA", "XXB"])
    path = tmp_path / "countries.yaml"
    path.write_text(yaml.safe_dump({**cfg, "output": str(tmp_path / "out")}))
    assert main(["validate", str(path)]) == 0
    (tmp_path / "XXB" / "pop.tif").unlink()
    assert main(["validate", str(path)]) == 3  # XXB's raster is missing


def test_one_country_of_a_countries_list_runs_its_partitions_on_the_pool(tmp_path, monkeypatch):
    # a one-country list is computed in this process, its pixel steps on the pool: no worker
    # may start a pool of its own (the pool would then never shut down)
    from geopipe.pipeline import countries, engines

    cfg = _countries(tmp_path, ["XXA"])
    p = gp.Pipeline.from_dict(cfg)
    seen = []
    real = engines.iter_tasks
    monkeypatch.setattr(
        countries, "iter_tasks", lambda e, fn, calls: seen.append(e.kind) or real(e, fn, calls)
    )
    try:
        run = gp.run_pipeline(p, output=tmp_path / "run", engine="processes", workers=2)
    finally:
        close_clients()  # returns: every worker exits
    assert seen == ["local"]
    single = gp.run_pipeline(p.for_country("XXA"), output=tmp_path / "one")
    assert run.tables["fact_indicator"]["value"].equals(single.tables["fact_indicator"]["value"])


def test_partitions_are_handed_out_largest_first_and_returned_in_order(monkeypatch):
    import geopandas as gpd
    import shapely

    from geopipe.pipeline import engines

    parts = [gpd.GeoDataFrame({"k": [k]}, geometry=[shapely.box(0, 0, s, s)]) for k, s in
             enumerate((1.0, 3.0, 2.0, 3.0))]  # fmt: skip
    handed: list[int] = []

    def fake_partition(pipeline, unitset, units, steps, run_key, cells):
        handed.append(int(units["k"].iloc[0]))
        return {"k": int(units["k"].iloc[0])}

    monkeypatch.setattr(engines, "run_partition", fake_partition)
    out = engines.run_partitions(engines.Engine("local"), None, "admin", parts, [])
    assert handed == [1, 3, 2, 0]  # by area, ties in list order
    assert out == [{"k": 0}, {"k": 1}, {"k": 2}, {"k": 3}]


def test_warm_up_starts_the_pool_workers_before_the_first_task():
    """The ``processes`` workers are started (and import the task's modules) when the run
    begins, so their start-up overlaps with the parent reading the inputs."""
    import sys
    import time

    from geopipe.pipeline.engines import _POOLS, Engine, _import_task_modules, warm_up

    engine = Engine("processes", workers=1)
    _POOLS.pop(1, None)
    warm_up(engine)
    pool = _POOLS[1]
    deadline = time.monotonic() + 60
    while not pool._processes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pool._processes) == 1
    # a warmed worker has the task's modules: the next call finds them imported
    loaded = pool.submit(_modules_loaded).result(timeout=120)
    assert {"geopipe.steps", "geopipe.zonal.raster", "scipy.spatial"} <= loaded
    _import_task_modules()  # in this process too, without error
    assert "geopipe.zonal.distance" in sys.modules
    pool.shutdown()
    _POOLS.pop(1, None)


def _modules_loaded() -> set[str]:
    import sys

    return set(sys.modules)


def test_raster_stats_warm_keeps_the_raster_total_for_the_report():
    from geopipe.pipeline.context import RunContext
    from geopipe.steps.measures import RasterStats

    p = gp.Pipeline.from_yaml(Path(__file__).resolve().parents[1] / "pipelines" / "sample.yaml")
    step = next(s for s in p.steps if isinstance(s, RasterStats))
    ctx = RunContext(p)
    data = ctx.batch("admin", ctx.admin())
    step.warm(data)
    total = ctx.memo[("raster_total", step.raster)]
    assert total == pytest.approx(ctx.source(step.raster).total(), rel=1e-12)
    assert total > 1e6  # Rwanda's people


def test_each_country_is_loaded_into_the_warehouse_before_the_next_one_is_computed(
    tmp_path, monkeypatch
):
    import duckdb

    from geopipe.pipeline import countries

    p = gp.Pipeline.from_dict(_countries(tmp_path, ["XXA", "XXB"]))
    events = []
    real_compute, real_add = countries._compute_country, countries._PartsWarehouse.add
    monkeypatch.setattr(
        countries,
        "_compute_country",
        lambda *a: events.append(("compute", a[1])) or real_compute(*a),
    )
    monkeypatch.setattr(
        countries._PartsWarehouse,
        "add",
        lambda self, part: events.append(("load", part.name)) or real_add(self, part),
    )
    run = gp.run_pipeline(p, output=tmp_path / "run")
    assert events == [("compute", "XXA"), ("load", "XXA"), ("compute", "XXB"), ("load", "XXB")]
    con = duckdb.connect(str(tmp_path / "run" / "warehouse.duckdb"), read_only=True)
    fact = con.sql("SELECT * FROM fact_indicator").df()
    want = run.tables["fact_indicator"]
    assert fact["ucode"].tolist() == want["ucode"].tolist()  # grouped by country, in list order
    assert np.array_equal(fact["value"].to_numpy(), want["value"].to_numpy(), equal_nan=True)
