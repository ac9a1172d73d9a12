"""Multi-country runs: one pipeline, a ``countries:`` list and ``{iso3}`` in source paths; one
warehouse for all of them.

Each country is planned, computed, checked and suppressed exactly as a single-country run of
that country (:func:`compute_run` on ``pipeline.for_country(iso3)``), so its rows equal that run's.
The tables of all countries form one run folder (``dim_admin``, ``fact_indicator``, wide tables
per level and grid, one DuckDB file): each country writes its files into a part folder as soon as
it is computed (on the worker that computed it), and the run folder is joined from the parts a
row group at a time (:func:`~geopipe.pipeline.outputs.write_run_parts`), so the memory of a run
does not grow with the number of countries. In each file the rows of a country are together and
sorted within the country, countries in the order of the list. A country that fails — a
missing input, a failed quality gate — is reported and does not block the others: its rows from
the previous run folder are kept, the manifest names it under ``countries.failed``, and the run
ends with a :class:`~geopipe.errors.PartialRunError` (exit code 5) once the others are written.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from .._heap import releasing_heap
from ..errors import GeopipeError, PartialRunError, problem
from ..io.atomic import TEMP_PREFIX
from .engines import Engine, iter_tasks
from .model import Pipeline
from .outputs import RunTables
from .state import digest, is_up_to_date

__all__ = ["run_countries"]


def run_countries(
    p: Pipeline,
    out_dir: Path,
    *,
    force: bool = False,
    only: Sequence[str] | None = None,
    engine: Engine | None = None,
) -> Any:
    """Run every country of ``p`` and write one warehouse (see the module docstring).

    Examples
    --------
    >>> gp.run_pipeline("pipelines/countries.yaml")  # doctest: +SKIP
    """
    from ..io.atomic import remove_temps_of
    from .run import RunResult, plan_run

    plans = {}
    failed: dict[str, str] = {}
    for iso in p.countries:
        try:
            plans[iso] = plan_run(p.for_country(iso), out_dir, engine)
        except GeopipeError as exc:
            failed[iso] = f"{type(exc).__name__}: {exc}"
    key = digest(
        {
            "countries": {i: plan.key for i, plan in sorted(plans.items())},
            "failed": sorted(failed),
            "geopipe": __version__,
        }
    )
    if not force and not only and not failed:
        fresh, _ = is_up_to_date(out_dir, key, p.history)
        if fresh:
            return RunResult(out_dir, {}, {}, up_to_date=True)
    remove_temps_of(out_dir)
    # countries are tasks of their own on a pool or cluster (each computed locally there, with
    # the same partitions, so the rows are the same as on the local engine); locally they run
    # one after the other. Either way each country writes its files into a part folder of its
    # own and keeps nothing in memory: the run folder is then joined from the parts, a row group
    # at a time, so memory does not grow with the number of countries
    engine = engine or Engine()
    spread = engine.kind != "local" and len(plans) > 1
    inner = dataclasses.replace(engine, kind="local") if spread else engine
    staging = out_dir.parent / f"{TEMP_PREFIX}{out_dir.name}-{secrets.token_hex(6)}"
    calls = [
        (p, iso, plan, out_dir, force, only, inner, staging / iso) for iso, plan in plans.items()
    ]
    warehouse = _PartsWarehouse(staging / "warehouse.duckdb")
    try:
        runs = {}
        # one country is computed here, its pixel steps going to the engine; each country's
        # tables are loaded into the warehouse as soon as it and those before it are done
        for iso, result in zip(
            plans, iter_tasks(engine if spread else Engine(), _compute_country, calls), strict=True
        ):
            if isinstance(result, str):
                failed[iso] = result
            else:
                runs[iso] = result
                warehouse.add(staging / iso)
        parts = [staging / iso for iso in runs]
        kept = _previous_rows(out_dir, sorted(failed))
        if kept:
            from .outputs import write_part

            write_part(kept, staging / "_kept")
            parts.append(staging / "_kept")
            warehouse.add(staging / "_kept")
        if not parts:
            raise PartialRunError(
                problem("countries", f"all failed: {failed}", "fix the inputs named above")
            )
        written, manifest = _write_countries(
            p, key, out_dir, runs, failed, kept, parts, warehouse.builder
        )
    finally:
        warehouse.abort()
        shutil.rmtree(staging, ignore_errors=True)
    if failed:
        raise PartialRunError(
            problem(
                f"countries {sorted(failed)}",
                "were not refreshed (their previous tables were kept where there were any): "
                + "; ".join(f"{i}: {m}" for i, m in sorted(failed.items())),
                f"fix their inputs and rerun; {sorted(runs)} were written to {out_dir}",
            )
        )
    return RunResult(out_dir, RunTables(out_dir), written, timings=dict(manifest.timings))


def _write_countries(
    p: Pipeline,
    key: str,
    out_dir: Path,
    runs: dict[str, Any],
    failed: dict[str, str],
    kept: dict[str, pd.DataFrame],
    parts: list[Path],
    warehouse: Any = None,
) -> tuple[dict[str, Any], Any]:
    """The run folder of all countries from their part folders, and its manifest."""
    from ..manifest import RunManifest
    from .run import _write

    manifest = RunManifest.start(
        run=p.name, run_id=key[:12], parameters={"run_key": key, "pipeline": p.settings()}
    )
    checks, quarantined, reports = [], {}, {}
    for iso, run in runs.items():
        manifest.inputs.update({f"{iso}/{r}": v for r, v in run.manifest.inputs.items()})
        manifest.quality[f"country:{iso}"] = run.manifest.quality
        manifest.timings.update({f"{iso}/{k}": v for k, v in run.manifest.timings.items()})
        checks += run.checks
        quarantined.update({f"{iso}_{k}": v for k, v in run.quarantined.items()})
        reports[iso] = run.reports
    manifest.quality["countries"] = {
        "done": sorted(runs),
        "failed": failed,
        "kept_previous": sorted(kept_isos(kept)),
    }
    with manifest.step("write"):
        written = _write(
            out_dir, {}, manifest, {"steps": reports}, {}, checks, quarantined, parts, warehouse
        )
    # the countries share one state folder: an entry used by any of them stays
    used = {k for run in runs.values() for k in run.cache.used}
    for run in runs.values():
        run.cache.commit(keep=used)
    return written, manifest


@releasing_heap
def _compute_country(
    p: Pipeline,
    iso: str,
    plan: Any,
    out_dir: Path,
    force: bool,
    only: Sequence[str] | None,
    engine: Engine,
    part: Path,
) -> Any:
    """Compute one country and write its files into ``part`` (:func:`~.outputs.write_part`);
    returns its :class:`ComputedRun` without tables, rasters or pending cache entries (those
    are in ``part`` too), or the error."""
    from .outputs import write_part
    from .run import compute_run, output_error

    try:
        run = compute_run(p.for_country(iso), plan, out_dir, force=force, only=only, engine=engine)
    except GeopipeError as exc:
        return f"{type(exc).__name__}: {exc}"
    tables = dict(run.tables)
    lineage = tables["fact_lineage"]
    tables["fact_lineage"] = lineage.assign(source_id=iso + "/" + lineage["source_id"])
    try:
        write_part(tables, part)
        run.cache.spill(part / "steps")
    except OSError as exc:
        raise output_error(part, exc) from exc
    run.tables, run.ctx, run.admin = {}, None, None
    return run


class _PartsWarehouse:
    """The warehouse of a multi-country run, loaded a part folder at a time (in the order of
    the parts: the rows of each table are grouped by country in list order, as in its files)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.builder: Any = None

    def add(self, part: Path) -> None:
        import pyarrow.parquet as pq

        from ..io.warehouse import TableParts, WarehouseBuilder

        files = {f.stem: f for f in sorted(part.glob("*.parquet"))}
        geo = {n: b"geo" in (pq.read_schema(f).metadata or {}) for n, f in files.items()}
        if self.builder is None:
            self.builder = WarehouseBuilder(
                self.path, geometry_tables=sorted(n for n, g in geo.items() if g)
            )
        elif "dim_indicator" in files:  # the catalog is the same in every part: the first one's
            del files["dim_indicator"]
        for name, f in files.items():
            self.builder.add(name, TableParts((f,), geo[name]))
        self.builder.suspend()  # its memory is not held while the next country is computed

    def abort(self) -> None:
        """Drop a warehouse not finished (a failed run)."""
        if self.builder is not None:
            self.builder.abort()


def kept_isos(kept: dict[str, pd.DataFrame]) -> set[str]:
    admin = kept.get("dim_admin")
    return set() if admin is None or admin.empty else set(admin["iso3"].astype(str))


def _previous_rows(out_dir: Path, isos: list[str]) -> dict[str, pd.DataFrame]:
    """The previous run folder's rows of the countries that failed (their tables stay published)."""
    if not isos or not (out_dir / "dim_admin.parquet").is_file():
        return {}
    from ..io.geoparquet import read_geoparquet

    out: dict[str, pd.DataFrame] = {}
    admin = read_geoparquet(out_dir / "dim_admin.parquet")
    ucodes = set(admin.loc[admin["iso3"].isin(isos), "ucode"])
    if not ucodes:
        return {}
    for path in sorted(out_dir.glob("*.parquet")):
        name = path.stem
        if name in ("dim_indicator", "fact_lineage"):
            continue
        frame = (
            read_geoparquet(path)
            if name == "dim_admin" or name.startswith(("adm", "h3_", "sq_"))
            else pd.read_parquet(path)
        )
        if "ucode" in frame.columns:
            rows = frame[frame["ucode"].isin(ucodes)].reset_index(drop=True)
            out[name] = rows.drop(columns=["bbox"], errors="ignore")
    return out
