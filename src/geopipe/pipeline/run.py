"""Run a pipeline: sources -> units -> steps -> indicators -> roll-up -> checks -> run folder.

Everything the runner decides is read off the :class:`~geopipe.pipeline.model.Pipeline`: which
files to fingerprint (the sources the needed steps name), which steps to run (those the published
indicators need), each step's cache key (its parameters and its sources' bytes), the lineage of
every indicator (its steps' sources) and the up-to-date key (every setting and every input).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import __version__
from .._heap import reusing_heap
from ..errors import GeopipeWarning, OutputError, problem
from ..indicators.catalog import Indicator
from ..io.raster import bounded_block_cache
from ..steps import Step
from .context import RunContext
from .engines import Engine
from .model import REMOTE_KINDS, Pipeline
from .state import (
    StepCache,
    check_output_folder,
    digest,
    fingerprint_inputs,
    is_up_to_date,
    run_key,
    state_folder,
)

__all__ = [
    "ComputedRun",
    "RunPlan",
    "RunResult",
    "compute_run",
    "measure_units",
    "plan_run",
    "run_pipeline",
    "run_steps",
]


@dataclasses.dataclass
class RunResult:
    """What a run produced: the output folder, the tables in memory, and the manifest content."""

    output: Path
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    up_to_date: bool = False
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)


@reusing_heap
def run_pipeline(
    pipeline: Pipeline | str | Path,
    *,
    output: str | Path | None = None,
    force: bool = False,
    only: Sequence[str] | None = None,
    engine: Engine | str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    partition_level: int | None = None,
    memory_mb: int | None = None,
) -> RunResult:
    """Run a pipeline end to end and write its run folder.

    Parameters
    ----------
    pipeline
        A :class:`~geopipe.Pipeline`, or the path of a pipeline YAML file.
    output
        Override the pipeline's output folder.
    force
        Rebuild everything even when nothing changed since the last run.
    only
        Recompute only these steps (``kind`` or ``kind:column``, see ``Step.name``); the other
        steps' columns come from the previous runs' state (a step never computed is an error).
    engine, workers, scheduler, partition_level, memory_mb
        Where the pixel steps run (:class:`~geopipe.pipeline.engines.Engine`): ``"local"``
        (default), ``"processes"`` or ``"dask"``; the tables are the same whichever is used.
        ``partition_level`` and ``memory_mb`` (the budget of one partition) decide the
        partitions.

    Returns
    -------
    RunResult
        ``result.output`` is the run folder; ``result.tables`` the tables written.

    Examples
    --------
    >>> import geopipe as gp
    >>> result = gp.run_pipeline("pipelines/sample.yaml")  # doctest: +SKIP
    >>> result.tables["adm2"][["name", "population_total"]].head()  # doctest: +SKIP
    """
    from ..io.atomic import remove_temps_of

    p = pipeline if isinstance(pipeline, Pipeline) else Pipeline.from_yaml(pipeline)
    out_dir = Path(output) if output is not None else Path(p.output or f"out/{p.name}")
    check_output_folder(out_dir, history=p.history)
    if not isinstance(engine, Engine):
        engine = Engine(
            engine,
            workers=workers,
            scheduler=scheduler,
            partition_level=partition_level,
            memory_mb=memory_mb,
        )
    if p.countries:
        from .countries import run_countries

        return run_countries(p, out_dir, force=force, only=only, engine=engine)
    plan = plan_run(p, out_dir, engine)
    if not force and not only:
        fresh, _reason = is_up_to_date(
            out_dir, plan.key, p.history, geosight=p.geosight is not None
        )
        if fresh:
            return RunResult(out_dir, {}, plan.previous or {}, up_to_date=True)
    remove_temps_of(out_dir)
    run = compute_run(p, plan, out_dir, force=force, only=only, engine=engine)
    with run.manifest.step("write"):
        written = _write(
            out_dir, run.tables, run.manifest, run.reports, run.skipped, run.checks, run.quarantined
        )
    run.cache.commit()  # state only once the run folder is written
    if p.history is not None:
        written = _write_history(out_dir, run.tables, run.admin, p.history, run.manifest)
    if p.geosight is not None:
        written = _push_geosight(p, run.tables["fact_indicator"], out_dir, written)
    return RunResult(
        out_dir,
        run.tables,
        written,
        timings=dict(run.manifest.timings),
        counts=dict(run.ctx.counts),
    )


@dataclasses.dataclass
class ComputedRun:
    """The tables of a run in memory, before anything is written, and what was used to make them."""

    tables: dict[str, pd.DataFrame]
    manifest: Any
    reports: dict[str, Any]
    skipped: dict[str, str]
    checks: list[Any]
    quarantined: dict[str, Any]
    admin: gpd.GeoDataFrame
    ctx: RunContext
    cache: StepCache


@bounded_block_cache
@reusing_heap
def compute_run(
    p: Pipeline,
    plan: RunPlan,
    out_dir: Path,
    *,
    force: bool = False,
    only: Sequence[str] | None = None,
    engine: Engine | None = None,
) -> ComputedRun:
    """Read, check, run the steps, compute, roll up and suppress: a run's tables in memory.

    Examples
    --------
    >>> run = compute_run(p, plan_run(p, out), out)  # doctest: +SKIP
    >>> run.tables["fact_indicator"].head()  # doctest: +SKIP
    """
    from ..manifest import RunManifest

    manifest = RunManifest.start(
        run=p.name,
        run_id=plan.key[:12],
        parameters={"run_key": plan.key, "pipeline": plan.settings},
    )
    manifest.inputs = _portable(plan.fingerprints, p.config_path)
    ctx = RunContext(p, plan.fingerprints, preread=plan.fetched, cache_dir=plan.cache_dir)
    ctx.engine = engine or Engine()
    ctx.run_key = plan.key
    from .engines import warm_up

    warm_up(ctx.engine)  # the pool's workers start while the inputs are read
    cache = StepCache(state_folder(out_dir), plan.fingerprints, plan.roles)
    cache.read = not force
    cache.only = set(only or ())
    from concurrent.futures import ThreadPoolExecutor

    with manifest.step("read_admin"):
        admin = ctx.admin()
    # the grids depend on the boundaries alone: built on a second core from now on, while the
    # inputs are read and the first steps run (GEOS, h3ronpy and NumPy release the GIL)
    pool = ThreadPoolExecutor(max_workers=1)
    grids = pool.submit(_grids, p, admin)
    pool.shutdown(wait=False)
    with manifest.step("read_inputs"):
        for name in sorted({n for s in plan.steps for n in s.sources().values()}):
            ctx.source(name)
    # the input checks read nothing more: they run on a second core while the steps compute,
    # and the quality gate waits for them before anything is written
    from ..quality.report import check_inputs

    pool = ThreadPoolExecutor(max_workers=1)
    checked = pool.submit(check_inputs, p, admin, read=ctx.source, steps=plan.steps)
    pool.shutdown(wait=False)
    tables, reports, skipped = _build(
        p, ctx, admin, plan.catalog, plan.steps, cache, manifest, checked, out_dir, grids
    )
    checks, quarantined = checked.result()
    ctx.verify_unchanged()
    manifest.timings.update({f"step:{k}": round(v, 6) for k, v in sorted(ctx.timings.items())})
    manifest.quality["step_cache"] = dict(sorted(cache.status.items()))
    reports["step_cache"] = manifest.quality["step_cache"]
    return ComputedRun(tables, manifest, reports, skipped, checks, quarantined, admin, ctx, cache)


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run will do, derived from the pipeline before any work: its catalog, the steps
    needed, the source files by role with their fingerprints, and the run key."""

    catalog: dict[str, Indicator]
    steps: list[Step]
    roles: dict[str, list[str]]
    fingerprints: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    key: str
    previous: dict[str, Any] | None
    fetched: dict[str, Any] = dataclasses.field(default_factory=dict)
    cache_dir: Path | None = None


def plan_run(p: Pipeline, out_dir: Path | None = None, engine: Engine | None = None) -> RunPlan:
    """Plan a run of ``p`` into ``out_dir``: fingerprints the inputs and computes the run key.

    The key covers every setting that can change an output (:meth:`Pipeline.settings` and the
    engine's :meth:`~geopipe.pipeline.engines.Engine.partitioning`), the sha256 of every input file the needed steps read and the geopipe version; a run whose key
    equals the previous run's (and whose outputs are intact) is up to date.

    Examples
    --------
    >>> plan = plan_run(gp.Pipeline.from_yaml("pipelines/sample.yaml"))  # doctest: +SKIP
    >>> len(plan.key)  # doctest: +SKIP
    64
    """
    catalog = p.catalog()
    steps = p.needed_steps(None)
    used = {p.units.admin, *(name for s in steps for name in s.sources().values())}
    files = p.input_files()
    roles = {name: [r for r in files if r == name or r.startswith(f"{name}_adm")] for name in used}
    wanted = {r for rs in roles.values() for r in rs}
    previous = _previous_manifest(out_dir) if out_dir is not None else None
    fps = fingerprint_inputs(
        {r: f for r, f in files.items() if r in wanted},
        (previous or {}).get("inputs"),
        None if p.config_path is None else Path(p.config_path).parent,
    )
    problems = p.environment_problems()
    if problems:
        from ..errors import ConfigError

        raise ConfigError(
            problem(
                f"pipeline {p.name!r}",
                "; ".join(problems),
                "set the variables (their values are never logged)",
            )
        )
    cache_dir = None if out_dir is None else state_folder(out_dir) / "remote"
    fetched: dict[str, Any] = {}
    for name in sorted(used, key=lambda n: n != p.units.admin):  # the admin units first
        src = p.sources[name]
        if src.kind not in REMOTE_KINDS:
            continue
        from .context import read_source

        admin = None
        if src.kind == "dhis2":  # org units are matched to the pipeline's admin units
            admin = fetched.get(p.units.admin)
            if admin is None:
                admin = fetched[p.units.admin] = read_source(p.sources[p.units.admin])
        fetched[name] = read_source(src, cache_dir=cache_dir, admin=admin)
        # fingerprinted by what the server returned: an unchanged view keeps the run up to date
        fps[name] = {
            "path": f"{src.kind}:{src.options.get('view_uuid', src.options.get('base_url', ''))}",
            "sha256": _content_sha(fetched[name]),
        }
        roles[name] = [name]
    settings = p.settings()
    partitioning = (engine or Engine()).partitioning()
    key = run_key({**settings, "partitions": partitioning}, fps, __version__)
    return RunPlan(catalog, steps, roles, fps, settings, key, previous, fetched, cache_dir)


def _content_sha(frame: Any) -> str:
    """sha256 of a fetched table's content (attributes and WKB geometry), independent of paging."""
    import hashlib

    h = hashlib.sha256()
    table = (
        frame.sort_values([c for c in ("ucode", "dx", "pe") if c in frame.columns]).reset_index(
            drop=True
        )
        if "ucode" in frame.columns
        else frame
    )
    attrs = table.drop(columns=[c for c in ("geometry",) if c in table.columns]).astype(str)
    h.update(pd.util.hash_pandas_object(attrs, index=False).to_numpy().tobytes())
    if "geometry" in table.columns:
        for wkb in table.geometry.to_wkb():
            h.update(wkb)
    return h.hexdigest()


def measure_units(pipeline: Pipeline, units: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Run a pipeline's steps on units (default: its finest admin units) and return the table.

    Nothing is cached or written: the analyst's view of what a run computes per unit, before
    indicators, roll-up and suppression.

    Examples
    --------
    >>> p = gp.Pipeline.from_yaml("pipelines/sample.yaml")  # doctest: +SKIP
    >>> districts = measure_units(p)  # doctest: +SKIP
    >>> districts[["name", "population_total", "health_facilities"]].head()  # doctest: +SKIP
    """
    ctx = RunContext(pipeline)
    if units is None:
        admin = ctx.admin()
        units = admin[admin["admin_level"] == admin["admin_level"].max()].reset_index(drop=True)
    used = {name for s in pipeline.steps for name in s.sources().values()}
    cache = StepCache(None, {}, {name: [] for name in used})
    cache.read, cache.only = False, set()
    return run_steps(ctx, "units", units, pipeline.needed_steps(None), cache, "units")[0]


def _previous_manifest(out_dir: Path) -> dict[str, Any] | None:
    import json

    path = out_dir / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _portable(fps: dict[str, dict[str, Any]], config: Path | None) -> dict[str, dict[str, Any]]:
    """Fingerprints with paths relative to the config's folder where possible (no machine paths)."""
    import os

    out = {}
    for role, fp in fps.items():
        rec = {k: v for k, v in fp.items() if k != "inode"}
        if (
            config is not None and "mtime_ns" in fp
        ):  # a file (remote sources keep their URL-free id)
            rec["path"] = os.path.relpath(fp["path"], config.parent)
        out[role] = rec
    return out


def _build(
    p: Pipeline,
    ctx: RunContext,
    admin: gpd.GeoDataFrame,
    catalog: dict[str, Indicator],
    steps: list[Step],
    cache: StepCache,
    manifest: Any,
    checks: Any,
    out_dir: Path,
    grids: Any,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, str]]:
    """Units -> steps -> indicators -> roll-up -> suppression -> quality gate; tables in memory
    (``grids``: the future of :func:`_grids`, started once the boundaries were read)."""
    from ..indicators.compute import compute_indicators
    from ..indicators.rollup import rollup
    from ..manifest import fact_lineage
    from ..quality import privacy
    from ..quality.indicators import check_indicators
    from ..quality.report import raise_on_fail
    from ._util import jsonable
    from .outputs import compare_top_level, wide_by_level

    finest = int(admin["admin_level"].max())
    units = admin[admin["admin_level"] == finest].reset_index(drop=True)
    admin_key = digest(
        {
            "admin": {
                r: fp["sha256"]
                for r, fp in ctx.fingerprints.items()
                if r in cache.source_roles[p.units.admin]
            },
            "options": p.settings()["sources"][p.units.admin],
        }
    )
    reports: dict[str, Any] = {}
    with manifest.step("steps"):
        # the pixel steps of the districts run through the first grid's fragments (one pass)
        units, reports["steps"] = run_steps(
            ctx,
            "admin",
            units,
            steps,
            cache,
            admin_key,
            fragments=functools.cache(
                lambda u=units: next(
                    (Fragments.tiling(name, cells, u) for name, cells in grids.result()), None
                )
            ),
        )
    with manifest.step("input_checks"):  # the time spent waiting for them
        checks = checks.result()[0]
    checks += _outside_units(p, ctx, units, steps, reports["steps"])
    ids = list(catalog)
    k = float(p.quality.get("k", 5))
    with manifest.step("indicators"):
        result = compute_indicators(units, ids, date=p.date, catalog=catalog)
        fact = rollup(result.fact, admin, to_level=int(admin["admin_level"].min()), catalog=catalog)
        dim_indicator = _dim_indicator(catalog, set(fact["indicator_id"]))
    with manifest.step("country_check"):
        pop = next(
            (s.raster for s in steps if "population_total" in s.columns() and hasattr(s, "raster")),
            None,
        )
        manifest.quality["country_vs_finest"] = jsonable(
            compare_top_level(admin, fact, ctx.source(pop) if pop else None)
        )
    with manifest.step("privacy_and_checks"):
        previous_path = out_dir / "fact_indicator.parquet"
        previous = _read_previous_fact(previous_path)
        q = p.quality
        checks += check_indicators(
            fact,
            previous=previous,
            max_change=float(q.get("max_change", 0.25)),
            levels=q.get("levels"),
            catalog=catalog,
        )
        fact = privacy.suppress_small_counts(fact, admin, k=k, catalog=catalog)
        manifest.quality["suppression"] = jsonable(
            fact.attrs.get("geopipe", {}).get("suppression", {})
        )
        fact.attrs = {}
        raise_on_fail(checks)  # before anything is written: a failed run leaves the old outputs
    tables: dict[str, pd.DataFrame] = {
        "dim_admin": admin,
        "dim_indicator": dim_indicator,
        "fact_indicator": fact,
    }
    tables["fact_lineage"] = fact_lineage(
        fact,
        run_id=manifest.run_id,
        sources=manifest.inputs,
        uses=_lineage(p, catalog, steps, cache, fact),
    )
    tables.update(wide_by_level(fact, admin, catalog))
    for name, cells in grids.result():
        with manifest.step(name):
            ukey = digest({"admin": admin_key, "grid": name})
            cells, reports[f"steps_{name}"] = run_steps(ctx, name, cells, steps, cache, ukey)
            wide = _grid_table(cells, ids, p.date, catalog)
            tables[name], manifest.quality[f"suppression_{name}"] = privacy.suppress_cells(
                wide, fact, k=k, catalog=catalog
            )
    return tables, reports, result.skipped


def _outside_units(
    p: Pipeline,
    ctx: RunContext,
    units: gpd.GeoDataFrame,
    steps: list[Step],
    reports: dict[str, Any],
) -> list[Any]:
    """``raster.outside_units`` for the population raster, from its step's totals (no new read)."""
    from ..quality.rasters import check_outside_units

    step = next(
        (s for s in steps if "population_total" in s.columns() and hasattr(s, "raster")), None
    )
    if step is None:
        return []
    rep = dict(reports.get(step.name) or {})
    reuse = (
        {**rep, "touched_total": rep.get("assigned_total")}
        if rep.get("edge") == "fraction"
        else None
    )
    return [
        check_outside_units(
            units,
            ctx.source(step.raster),
            edge=step.edge,
            source=Path(str(p.sources[step.raster].path)).name,
            warn_share=float(p.quality.get("outside_share", 0.01)),
            levels=p.quality.get("levels"),
            report=reuse,
        )
    ]


def _read_previous_fact(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception:  # a damaged previous table is rebuilt, not compared
        return None


def _grids(p: Pipeline, admin: gpd.GeoDataFrame) -> list[tuple[str, gpd.GeoDataFrame]]:
    from ..grids.h3 import h3_grid
    from ..grids.square import square_grid

    out = [(f"h3_r{r}", h3_grid(admin, r, split=True).reset_index(drop=True)) for r in p.units.h3]
    out += [
        (f"sq_{s:g}", square_grid(admin, s, split=True).reset_index(drop=True))
        for s in p.units.square
    ]
    return out


def run_steps(
    ctx: RunContext,
    unitset: str,
    units: gpd.GeoDataFrame,
    steps: Sequence[Step],
    cache: StepCache,
    unitset_key: str,
    *,
    fragments: Callable[[], Fragments | None] | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Add every step's columns to ``units``: cached columns are reused, the rest computed.

    Consecutive pixel steps run together over memory-bounded batches of units, so the pixel
    weights of a batch on a raster grid are built once and shared; other steps run on all units.
    With ``fragments`` (a function giving grid fragments that tile ``units``, called when the
    first pixel steps run, e.g. once a grid built meanwhile is ready) the pixel steps run on the
    fragments in the same pass and the units are computed through the fragments' pixels; the
    fragments' columns wait in ``ctx.given`` for the grid's own :func:`run_steps`, which stores
    them instead of computing them again.
    """
    out = units.copy()
    reports: dict[str, Any] = {}
    keys: dict[str, str] = {}
    pending: list[tuple[Step, str]] = []
    for step in steps:
        key = cache.key(unitset_key, step, {c: keys[c] for c in step.needs_columns()})
        keys.update({c: key for c in step.columns()})
        reuse = cache.read and step.name not in cache.only and step.kind not in cache.only
        hit = cache.get(key, len(out)) if reuse else None
        if hit is not None:
            for col, values in hit[0].items():
                out[col] = values
            reports[step.name] = hit[1]
            cache.status[f"{unitset}/{step.name}"] = "reused"
            continue
        if cache.only and step.name not in cache.only and step.kind not in cache.only:
            from ..errors import ConfigError

            raise ConfigError(
                problem(
                    f"step {step.name!r}",
                    "has no result from an earlier run to reuse with --only",
                    "run the whole pipeline once first",
                )
            )
        pending_cols = {c for s, _ in pending for c in s.columns()}
        if set(step.needs_columns()) & pending_cols:
            _flush(ctx, unitset, out, pending, cache, reports, fragments)
        given = ctx.given.get(unitset, {}).pop(step.name, None)
        if given is not None:  # computed with the units these fragments tile, in one pass
            _store(out, step, key, given, ctx.batch(unitset, out), cache, reports, unitset)
            continue
        if step.pixel:
            pending.append((step, key))
            continue
        data = ctx.batch(unitset, out)
        with ctx.timed(f"{unitset}/{step.name}"):
            result = step.run(out, data)
        _store(out, step, key, result, data, cache, reports, unitset)
    _flush(ctx, unitset, out, pending, cache, reports, fragments)
    return out, reports


def _flush(
    ctx: RunContext,
    unitset: str,
    out: gpd.GeoDataFrame,
    pending: list[tuple[Step, str]],
    cache: StepCache,
    reports: dict[str, Any],
    fragments: Callable[[], Fragments | None] | None = None,
) -> None:
    """Run the pending pixel steps over batches of units sharing pixel weights, then store them
    (computing ``fragments`` in the same pass when they tile the units)."""
    if not pending:
        return
    steps = [s for s, _ in pending]
    rasters = sorted(
        {
            name
            for s in steps
            for role, name in s.sources().items()
            if "raster" in s.source_kinds()[role]
        }
    )
    renorm = any(getattr(s, "edge", "fraction") == "renormalize" for s in steps)
    # through the fragments unless a unit's pixels are needed at once, or a step reads columns
    # (the fragments do not have them yet)
    through = fragments is not None and rasters and not renorm
    tiles = fragments() if through and not any(s.needs_columns() for s in steps) else None
    engine = ctx.engine
    in_process = (engine.kind == "local" and engine.partition_level is None) or renorm
    grids = [ctx.source(r) for r in rasters if ctx.pipeline.sources[r].kind == "raster"]
    if renorm or not grids:  # a unit set's pixels at once
        batches = [np.arange(len(out))]
    else:
        batches = _plan(ctx, out, grids, in_process, tiles)
    parts = (out.iloc[b].reset_index(drop=True) for b in batches)
    members = (None if tiles is None else tiles.of(b) for b in batches)
    if in_process:
        from .engines import run_batch

        done: Any = (run_batch(ctx, unitset, u, steps, m) for u, m in zip(parts, members))
    else:
        from concurrent.futures import ThreadPoolExecutor

        from .engines import run_partitions

        # what the reports need of the inputs alone (raster totals) is read meanwhile
        with ThreadPoolExecutor(max_workers=1) as spare:
            whole = ctx.batch(unitset, out)
            warmed = spare.submit(lambda: [s.warm(whole) for s in steps])
            with ctx.timed(f"{unitset}/partitions:{engine.kind}"):
                done = run_partitions(
                    engine,
                    ctx.pipeline,
                    unitset,
                    list(parts),
                    steps,
                    ctx.run_key,
                    None if tiles is None else list(members),
                )
            warmed.result()
    sizes = {unitset: len(out), **({} if tiles is None else {tiles.name: len(tiles.cells)})}
    cols = _gather(sizes, steps, batches, done, tiles)
    data = ctx.batch(unitset, out)
    for step, key in pending:
        _store(out, step, key, cols[unitset][step.name], data, cache, reports, unitset)
    if tiles is not None:
        ctx.given.setdefault(tiles.name, {}).update(cols[tiles.name])
    pending.clear()


def _plan(
    ctx: RunContext,
    out: gpd.GeoDataFrame,
    rasters: list[Any],
    in_process: bool,
    tiles: Fragments | None,
) -> list[np.ndarray]:
    """Batches of ``out`` (positions) within the engine's budget, grouped by partition, costed
    on the grid of every raster the steps read."""
    from ..zonal.layers import plan_batches

    engine = ctx.engine
    groups = None
    if engine.partition_level is not None:
        groups = _partitions(ctx, out, engine.partition_level)
    return plan_batches(
        out,
        rasters,
        engine.budget_bytes,
        windowed=not in_process,
        groups=groups,
        through=None if tiles is None else (tiles.cells, tiles.parent),
    )


def _gather(
    sizes: dict[str, int],
    steps: list[Step],
    batches: list[np.ndarray],
    done: Any,
    tiles: Fragments | None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Full-length columns ``{unit set: {step: {column: values}}}`` from the batches' results."""
    cols: dict[str, dict[str, dict[str, np.ndarray]]] = {
        name: {s.name: {} for s in steps} for name in sizes
    }
    for batch, results in zip(batches, done, strict=True):
        where = {name: batch for name in sizes}
        if tiles is not None:
            where[tiles.name] = tiles.positions(batch)
        for name, by_step in results.items():
            for step_name, values in by_step.items():
                for col, v in values.items():
                    full = cols[name][step_name]
                    full.setdefault(col, np.full(sizes[name], np.nan))[where[name]] = v
    return cols


@dataclasses.dataclass
class Fragments:
    """Grid fragments that tile a unit set (the districts): its pixel steps run on them in the
    same pass, and the districts are computed through the fragments' pixel weights.

    ``parent[i]`` is the position in the unit set of fragment ``i``'s unit.
    """

    name: str
    cells: gpd.GeoDataFrame
    parent: np.ndarray

    @classmethod
    def tiling(
        cls, name: str, cells: gpd.GeoDataFrame, units: gpd.GeoDataFrame
    ) -> Fragments | None:
        """The fragments of grid ``name`` for ``units`` when they tile every unit, else ``None``.

        Each unit's fragments must add up to its area to 1e-9, measured where the fragments were
        cut (planar longitude and latitude, so the comparison sees the cut and nothing else: in
        an equal-area projection the fragments' extra vertices along a district's edge move the
        sum by up to 8e-7 of the area on the synthetic countries).

        Examples
        --------
        >>> Fragments.tiling("h3_r7", h3_grid(admin, 7), districts).parent[:3]  # doctest: +SKIP
        array([12, 12, 4])
        """
        if "ucode" not in cells.columns or not len(units) or cells.crs is None:
            return None
        position = pd.Series(np.arange(len(units)), index=units["ucode"].astype(str))
        if not position.index.is_unique:
            return None
        parent = cells["ucode"].astype(str).map(position)
        if parent.isna().any():
            return None
        parent = parent.to_numpy(dtype=np.int64)
        own = units.geometry if units.crs is None else units.geometry.to_crs(cells.crs)
        tiled = np.bincount(parent, shapely.area(cells.geometry.values), minlength=len(units))
        if not np.allclose(tiled, shapely.area(own.values), rtol=1e-9, atol=0.0):
            return None
        return cls(name, cells, parent)

    def positions(self, batch: np.ndarray) -> np.ndarray:
        """Positions of the fragments of the units at ``batch`` (sorted positions)."""
        return np.flatnonzero(np.isin(self.parent, batch))

    def of(self, batch: np.ndarray) -> tuple[str, gpd.GeoDataFrame, np.ndarray]:
        """``(grid name, fragments, parent)`` of the units at ``batch``, ``parent`` counted in
        the batch (what :func:`~geopipe.pipeline.engines.run_batch` takes)."""
        pos = self.positions(batch)
        cells = self.cells.iloc[pos].reset_index(drop=True)
        return self.name, cells, np.searchsorted(batch, self.parent[pos])


def _partitions(ctx: RunContext, units: gpd.GeoDataFrame, level: int) -> list[np.ndarray]:
    """Positions of ``units`` grouped by their admin ancestor at ``level`` (grid fragments by
    their finest unit's ancestor), in the order of first appearance."""
    admin = ctx.admin()
    parent = admin.set_index("ucode")["parent_ucode"]
    lvl = admin.set_index("ucode")["admin_level"]
    key = units["ucode"].astype(str)
    for _ in range(int(lvl.max()) - level):
        up = key.map(parent)
        key = key.where(key.map(lvl) <= level, up)
    codes, _ = pd.factorize(key)
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def _store(
    out: gpd.GeoDataFrame,
    step: Step,
    key: str,
    cols: dict[str, np.ndarray],
    data: Any,
    cache: StepCache,
    reports: dict[str, Any],
    unitset: str,
) -> None:
    missing = [c for c in step.columns() if c not in cols]
    if missing:
        raise OutputError(
            problem(
                f"step {step.name!r}",
                f"did not return its columns {missing}",
                "return every declared column from run()",
            )
        )
    for col in step.columns():
        out[col] = np.asarray(cols[col], dtype=float)
    report = step.report(out, data, {c: out[c].to_numpy() for c in step.columns()})
    reports[step.name] = report
    cache.put(key, {c: out[c].to_numpy() for c in step.columns()}, report)
    cache.status[f"{unitset}/{step.name}"] = "computed"


def _grid_table(
    cells: gpd.GeoDataFrame, ids: list[str], date: Any, catalog: dict[str, Indicator]
) -> gpd.GeoDataFrame:
    """Wide table of grid fragments: unit columns + one column per indicator."""
    from ..indicators.compute import compute_indicators

    cells = cells.copy()
    cells["_row"] = np.arange(len(cells))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)  # already reported for the admin units
        wide = compute_indicators(
            cells, ids, date=date, key="_row", catalog=catalog, long=False
        ).wide
    keep = [c for c in ("cell_id", "ucode", "area_km2", "cell_share") if c in wide.columns]
    values = [c for c in catalog if c in wide.columns]
    wide = wide[[*keep, *values, "geometry"]]
    wide.insert(len(wide.columns) - 1, "date", date)
    return gpd.GeoDataFrame(wide, geometry="geometry", crs=cells.crs)


def _dim_indicator(catalog: dict[str, Indicator], present: set[str]) -> pd.DataFrame:
    """``dim_indicator`` rows of the published indicators: what the run's steps declared, with the
    parameters they actually ran with."""
    from ..indicators.catalog import dim_indicator_table

    return dim_indicator_table(ind for ind in catalog.values() if ind.id in present)


def _lineage(
    p: Pipeline,
    catalog: dict[str, Indicator],
    steps: list[Step],
    cache: StepCache,
    fact: pd.DataFrame,
) -> dict[str, list[str]]:
    """Input roles each indicator is computed from: its step's sources, or its parts' (declared)."""
    admin_roles = cache.source_roles[p.units.admin]
    producer = {c: s for s in steps for c in s.columns()}
    owned = {i.id: s for s in steps for i in s.indicators()}

    def roles(ind_id: str, seen: frozenset = frozenset()) -> set[str]:
        step = producer.get(ind_id) or owned.get(ind_id)
        out = {
            r
            for name in (step.sources().values() if step else ())
            for r in cache.source_roles[name]
        }
        if step is not None:
            for col in step.needs_columns():
                out |= roles(col, seen | {ind_id})
        for dep in catalog[ind_id].depends_on:
            if dep not in seen:
                out |= roles(dep, seen | {ind_id})
        return out

    return {i: sorted(roles(i) | set(admin_roles)) for i in sorted(fact["indicator_id"].unique())}


def _write(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    manifest: Any,
    reports: dict[str, Any],
    skipped: dict[str, str],
    checks: list[Any],
    quarantined: dict[str, Any],
    parts: list[Path] | None = None,
    warehouse: Any = None,
) -> dict[str, Any]:
    """Write the run folder (from ``tables``, or joined from the ``parts`` folders of a
    multi-country run, whose ``warehouse`` may be loaded already: a
    :class:`~geopipe.io.warehouse.WarehouseBuilder`); any failure to write is an OutputError
    naming the path and the cause."""
    from .outputs import write_run, write_run_parts

    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if parts is not None:
            return write_run_parts(
                out_dir,
                parts,
                manifest,
                reports,
                skipped,
                checks,
                quarantined,
                _report_html,
                warehouse=warehouse,
            )
        return write_run(
            out_dir, tables, manifest, reports, skipped, checks, quarantined, finalize=_report_html
        )
    except OutputError:
        raise
    except OSError as exc:
        raise output_error(out_dir, exc) from exc


def output_error(folder: Path, exc: OSError) -> OutputError:
    """The OutputError of a run folder (or part folder) that could not be written."""
    import errno

    cause = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EDQUOT: "the disk quota is exceeded",
    }.get(exc.errno, str(exc))
    return OutputError(
        problem(
            f"run folder '{folder}'",
            f"could not be written ({cause}: {getattr(exc, 'filename', None) or exc})",
            "free space or fix permissions and rerun; the previous outputs were left untouched",
        )
    )


def _report_html(staging: Path) -> list[str]:
    """report.html of the staged run folder (quality, indicators per level, maps, inputs)."""
    from ..report import write_report_html

    return [write_report_html(staging).name]


def _push_geosight(
    p: Pipeline, fact: pd.DataFrame, out_dir: Path, written: dict[str, Any]
) -> dict[str, Any]:
    """Push the published (suppressed) values to GeoSight; state and report in the state folder.

    The run folder is already written; the manifest records the push only once it completed, so
    a push that failed part-way makes the next run not "up to date", and that run resumes from
    the state file, sending only what the server lacks.
    """
    import json

    from ..io.atomic import atomic_write_text
    from ..remote import geosight

    g = dict(p.geosight or {})
    state = state_folder(out_dir)
    state.mkdir(parents=True, exist_ok=True)
    report = geosight.push(
        fact,
        g.pop("base_url"),
        g.pop("dataset_uuid"),
        g.pop("indicators"),
        state_path=state / "geosight_state.jsonl",
        report_path=state / "geosight_push.json",
        **g,
    )
    data = dict(written)
    data["geosight"] = {
        "sent": report.sent,
        "unchanged": report.unchanged,
        "failed": len(report.failed),
        "complete": not report.failed,
    }
    atomic_write_text(
        out_dir / "manifest.json", json.dumps(data, sort_keys=True, indent=2, default=str) + "\n"
    )
    return data


def _write_history(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    admin: gpd.GeoDataFrame,
    history: Path,
    manifest: Any,
) -> dict[str, Any]:
    """Add this run's fact rows to the history and record the partition in the manifest.

    The run is complete only when the manifest names the partition with its sha256: a crash
    between the run folder's swap and this step leaves a manifest without it, so the next run is
    not "up to date" and writes the partition again.
    """
    import os

    from ..manifest import sha256_file
    from .outputs import append_history

    try:
        written = append_history(tables["fact_indicator"], admin, history)
        files = sorted(
            f
            for w in written
            for f in (Path(w).rglob("*.parquet") if Path(w).is_dir() else [Path(w)])
        )
        data = manifest.to_dict()
        data["history"] = [
            {"path": os.path.relpath(f, history), "sha256": sha256_file(f)} for f in files
        ]
        import json

        from ..io.atomic import atomic_write_text

        atomic_write_text(
            out_dir / "manifest.json", json.dumps(data, sort_keys=True, indent=2) + "\n"
        )
        return data
    except OSError as exc:
        raise OutputError(
            problem(
                f"history '{history}'",
                f"could not be written ({exc})",
                "fix the folder and rerun: the run folder is written, and the next run writes the history",
            )
        ) from exc
