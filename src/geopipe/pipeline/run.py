"""Run a pipeline config end to end: Extract -> Units -> Aggregate -> Indicators -> Load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ..config import PipelineConfig, load_config
from ._util import digest, jsonable, parameters
from .measures import MeasureCache, add_measures, h3_table
from .outputs import append_history, compare_top_level, suppress_cells, wide_by_level, write_run

__all__ = ["RunResult", "indicator_sources", "run_pipeline"]


@dataclass
class RunResult:
    """What a run produced: the output folder, the tables in memory, and the manifest content."""

    output: Path
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    up_to_date: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    config: PipelineConfig | str | Path, *, output: str | Path | None = None, force: bool = False
) -> RunResult:
    """Run a pipeline end to end and write its run folder.

    Parameters
    ----------
    config
        A :class:`PipelineConfig` or the path of a YAML config.
    output
        Override the config's output folder.
    force
        Rebuild even when the inputs and parameters are unchanged since the last run.

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
    from ..manifest import RunManifest

    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    out_dir = Path(output) if output is not None else cfg.output
    manifest = RunManifest.start(run=cfg.name, parameters=parameters(cfg))
    timer = manifest  # RunManifest.step times each stage into manifest.timings
    with timer.step("fingerprint_inputs"):
        for role, path in sorted(cfg.input_files().items()):
            manifest.add_input(role, path)
    # the run id names the input state (inputs + parameters), so reruns reproduce identical tables
    manifest.run_id = manifest.inputs_key()[:12]
    previous = out_dir / "manifest.json"
    if not force and previous.is_file():
        old = RunManifest.read(previous)
        if old.inputs_key() == manifest.inputs_key() and all(
            (out_dir / o).is_file() for o in old.outputs
        ):
            return RunResult(out_dir, {}, old.to_dict(), up_to_date=True)

    import shutil
    import tempfile

    if out_dir.parent.is_dir():  # leftovers of runs killed mid-write (older than an hour)
        from ..io.atomic import remove_stale_temps

        remove_stale_temps(out_dir.parent)
    with timer.step("read_admin"):
        admin = _read_admin(cfg)
    with timer.step("input_checks"):
        from ..quality.report import check_inputs

        checks, quarantined = check_inputs(cfg, admin)
    cache_tmp = Path(
        tempfile.mkdtemp(
            prefix=".geopipe-cache-", dir=out_dir.parent if out_dir.parent.exists() else None
        )
    )
    try:
        tables, reports, skipped = _build(cfg, admin, manifest, checks, out_dir, cache_tmp, force)
        with timer.step("write"):
            written = write_run(
                out_dir, tables, manifest, reports, skipped, cache_tmp, checks, quarantined
            )
    finally:
        shutil.rmtree(cache_tmp, ignore_errors=True)
    if cfg.history is not None:
        with timer.step("history"):
            append_history(tables["fact_indicator"], admin, cfg.history)
    return RunResult(out_dir, tables, written, timings=dict(manifest.timings))


def _build(
    cfg: PipelineConfig,
    admin: gpd.GeoDataFrame,
    manifest: Any,
    checks: list[Any],
    out_dir: Path,
    cache_tmp: Path,
    force: bool,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, str]]:
    """Units -> measures -> indicators -> roll-up -> suppression -> quality gate; tables in memory."""
    from ..indicators.catalog import indicator_catalog
    from ..indicators.compute import compute_indicators
    from ..indicators.rollup import rollup
    from ..quality.indicators import check_indicators
    from ..quality.privacy import suppress_small_counts
    from ..quality.report import raise_on_fail

    timer = manifest
    finest_level = int(admin["admin_level"].max())
    units = admin[admin["admin_level"] == finest_level].reset_index(drop=True)
    input_sha = {role: rec["sha256"] for role, rec in manifest.inputs.items()}
    admin_key = digest(
        {
            "inputs": {r: input_sha[r] for r in input_sha if r.startswith("admin")},
            "params": manifest.parameters["admin_options"],
        }
    )
    unit_keys = {
        f"adm{finest_level}": admin_key,
        **{f"h3_r{r}": digest({"admin": admin_key, "h3": r}) for r in cfg.h3_resolutions},
    }
    cache = MeasureCache(
        cache_tmp / "none" if force else out_dir / ".cache", cache_tmp, input_sha, unit_keys
    )
    with timer.step("measures"):
        units, reports = add_measures(units, cfg, cache=cache, unitset=f"adm{finest_level}")
    with timer.step("indicators"):
        ids = list(cfg.indicators) if cfg.indicators else None
        result = compute_indicators(units, ids, date=cfg.date)
        fact = rollup(result.fact, admin, to_level=int(admin["admin_level"].min()))
        dim_indicator = _dim_indicator(indicator_catalog(), fact, cfg)
    with timer.step("country_check"):
        manifest.quality["country_vs_finest"] = jsonable(
            compare_top_level(admin, fact, cfg.rasters.get("population_total"))
        )
    with timer.step("privacy_and_checks"):
        previous_path = out_dir / "fact_indicator.parquet"
        previous = pd.read_parquet(previous_path) if previous_path.is_file() else None
        q = cfg.quality
        checks += check_indicators(
            fact,
            previous=previous,
            max_change=float(q.get("max_change", 0.25)),
            levels=q.get("levels"),
        )
        fact = suppress_small_counts(fact, admin, k=float(q.get("k", 5)))
        manifest.quality["suppression"] = jsonable(
            fact.attrs.get("geopipe", {}).get("suppression", {})
        )
        fact.attrs = {}
        raise_on_fail(checks)  # before anything is written: a failed run leaves the old outputs
    from ..manifest import fact_lineage

    tables: dict[str, pd.DataFrame] = {
        "dim_admin": admin,
        "dim_indicator": dim_indicator,
        "fact_indicator": fact,
    }
    tables["fact_lineage"] = fact_lineage(
        fact,
        run_id=manifest.run_id,
        sources=manifest.inputs,
        uses=indicator_sources(cfg, sorted(fact["indicator_id"].unique())),
    )
    tables.update(wide_by_level(fact, admin))
    for res in cfg.h3_resolutions:
        with timer.step(f"h3_r{res}"):
            cells = h3_table(admin, res, cfg, ids, cache)
            tables[f"h3_r{res}"], manifest.quality[f"suppression_h3_r{res}"] = suppress_cells(
                cells, fact, k=float(cfg.quality.get("k", 5))
            )
    reports["measure_cache"] = dict(sorted(cache.status.items()))
    return tables, reports, result.skipped


def indicator_sources(cfg: PipelineConfig, ids: list[str]) -> dict[str, list[str]]:
    """Input roles (keys of ``manifest.inputs``) each indicator is computed from, for lineage."""
    from ..indicators.catalog import get_indicators

    admin_roles = [r for r in cfg.input_files() if r.startswith("admin")]
    cols: dict[str, list[str]] = {k: [f"raster_{k}"] for k in cfg.rasters}
    for layer in cfg.points:
        for col in (layer.name, *layer.subsets):
            cols[col] = [f"points_{layer.name}"]
    if cfg.age_shares is not None:
        for col in ("population_u18", "population_u5"):
            cols.setdefault(col, ["age_shares", "raster_population_total"])
    if cfg.wealth:
        for col in ("children_in_poverty", "wealth_index_mean", "children_with_wealth_data"):
            cols[col] = ["wealth_tiles", "raster_population_u18"]
    if cfg.connectivity:
        for col in ("download_mbps_mean", "population_broadband", "population_with_speed_data"):
            cols[col] = ["connectivity_tiles", "raster_population_total"]
        for col in ("speed_tests", "download_mbps_tests_mean"):
            cols[col] = ["connectivity_tiles"]
        cols["children_without_connectivity"] = ["connectivity_tiles", "raster_population_u18"]
    if cfg.service:
        fac = f"points_{cfg.service['facilities']}"
        for col in ("population_within_health", "distance_to_health_km_mean"):
            cols[col] = [fac, "raster_population_total"]
        cols["children_beyond_5km_health"] = [fac, "raster_population_u18"]
    catalog = get_indicators()
    out: dict[str, list[str]] = {}
    for ind_id in ids:
        ind = catalog[ind_id]
        parts = [ind_id, *ind.depends_on]
        roles = {r for part in parts for r in cols.get(part, [])}
        out[ind_id] = sorted(roles | set(admin_roles))
    return out


def _dim_indicator(catalog: pd.DataFrame, fact: pd.DataFrame, cfg: PipelineConfig) -> pd.DataFrame:
    """The catalog rows of the indicators in ``fact``, with the run's parameter values."""
    import json

    used = catalog[catalog["indicator_id"].isin(fact["indicator_id"].unique())].reset_index(
        drop=True
    )
    run_params = {
        "poverty_threshold": cfg.wealth.get("poverty_threshold"),
        "broadband_mbps": cfg.connectivity.get("broadband_mbps"),
        "min_tests": cfg.connectivity.get("min_tests"),
        "distance_km": cfg.service.get("distance_km"),
    }

    def apply(text: str) -> str:
        params = json.loads(text)
        for k in params:
            if run_params.get(k) is not None:
                params[k] = run_params[k]
        return json.dumps(params, sort_keys=True)

    used["params"] = used["params"].map(apply)
    return used


def _read_admin(cfg: PipelineConfig) -> gpd.GeoDataFrame:
    from ..io.admin import read_admin

    source = cfg.admin_source
    return read_admin(source, **cfg.admin_options)
