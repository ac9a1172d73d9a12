"""The pipeline runner: Extract -> Units -> Aggregate -> Indicators -> Load.

Each stage is a plain function an analyst can call alone; :func:`run_pipeline` chains them for a
:class:`~geopipe.config.PipelineConfig` and writes the run folder::

    out/<run>/dim_admin.parquet  dim_indicator.parquet  fact_indicator.parquet
              adm0.parquet adm1.parquet ...  warehouse.duckdb  manifest.json

All files are first written into a staging folder next to the run folder, which then replaces the
old run folder in one atomic swap: a failed run leaves the previous outputs untouched, and a BI
refresh never sees a half-written run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .config import PipelineConfig, PointLayer, load_config
from .errors import InputError, MissingColumnError, problem

__all__ = [
    "RunResult",
    "add_age_shares",
    "add_connectivity",
    "add_measures",
    "add_point_counts",
    "add_raster_sums",
    "add_service_coverage",
    "add_wealth",
    "append_history",
    "compare_top_level",
    "indicator_sources",
    "run_pipeline",
    "wide_by_level",
]


@dataclass
class RunResult:
    """What a run produced: the output folder, the tables in memory, and the manifest content."""

    output: Path
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    up_to_date: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def run_pipeline(config: PipelineConfig | str | Path, *, output: str | Path | None = None, force: bool = False) -> RunResult:
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
    from .manifest import RunManifest

    cfg = config if isinstance(config, PipelineConfig) else load_config(config)
    out_dir = Path(output) if output is not None else cfg.output
    manifest = RunManifest.start(run=cfg.name, parameters=_parameters(cfg))
    timer = manifest  # RunManifest.step times each stage into manifest.timings
    with timer.step("fingerprint_inputs"):
        for role, path in sorted(cfg.input_files().items()):
            manifest.add_input(role, path)
    # the run id names the input state (inputs + parameters), so reruns reproduce identical tables
    manifest.run_id = manifest.inputs_key()[:12]
    previous = out_dir / "manifest.json"
    if not force and previous.is_file():
        old = RunManifest.read(previous)
        if old.inputs_key() == manifest.inputs_key() and all((out_dir / o).is_file() for o in old.outputs):
            return RunResult(out_dir, {}, old.to_dict(), up_to_date=True)

    import shutil
    import tempfile

    if out_dir.parent.is_dir():  # leftovers of runs killed mid-write (older than an hour)
        from .io.atomic import remove_stale_temps

        remove_stale_temps(out_dir.parent)
    with timer.step("read_admin"):
        admin = _read_admin(cfg)
    with timer.step("input_checks"):
        from .quality.report import check_inputs

        checks, quarantined = check_inputs(cfg, admin)
    cache_tmp = Path(tempfile.mkdtemp(prefix=".geopipe-cache-", dir=out_dir.parent if out_dir.parent.exists() else None))
    try:
        tables, reports, skipped = _build(cfg, admin, manifest, checks, out_dir, cache_tmp, force)
        with timer.step("write"):
            written = _write_run(out_dir, tables, manifest, reports, skipped, cache_tmp, checks, quarantined)
    finally:
        shutil.rmtree(cache_tmp, ignore_errors=True)
    if cfg.history is not None:
        with timer.step("history"):
            append_history(tables["fact_indicator"], admin, cfg.history)
    return RunResult(out_dir, tables, written, timings=dict(manifest.timings))


def append_history(fact: pd.DataFrame, admin: pd.DataFrame, root: Path | str) -> list[Path]:
    """Add this run's fact rows to a history dataset partitioned by ``iso3`` and ``date``.

    A monthly refresh adds a partition; re-running the same month replaces that partition only
    (atomically), so ``read_parquet('<root>/fact_indicator/**/*.parquet', hive_partitioning=true)``
    always sees whole months.
    """
    from .io.partitioned import write_partitioned

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    iso = admin.set_index("ucode")["iso3"]
    rows = fact.assign(iso3=fact["ucode"].map(iso).to_numpy())
    return write_partitioned(rows, root / "fact_indicator", ("iso3", "date"))


def _build(cfg: PipelineConfig, admin: gpd.GeoDataFrame, manifest: Any, checks: list[Any], out_dir: Path, cache_tmp: Path, force: bool) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, str]]:
    """Units -> measures -> indicators -> roll-up -> suppression -> quality gate; tables in memory."""
    from .indicators.catalog import indicator_catalog
    from .indicators.compute import compute_indicators
    from .indicators.rollup import rollup
    from .quality.indicators import check_indicators
    from .quality.privacy import suppress_small_counts
    from .quality.report import raise_on_fail

    timer = manifest
    finest_level = int(admin["admin_level"].max())
    units = admin[admin["admin_level"] == finest_level].reset_index(drop=True)
    input_sha = {role: rec["sha256"] for role, rec in manifest.inputs.items()}
    admin_key = _digest({"inputs": {r: input_sha[r] for r in input_sha if r.startswith("admin")}, "params": manifest.parameters["admin_options"]})
    unit_keys = {f"adm{finest_level}": admin_key, **{f"h3_r{r}": _digest({"admin": admin_key, "h3": r}) for r in cfg.h3_resolutions}}
    cache = MeasureCache(cache_tmp / "none" if force else out_dir / ".cache", cache_tmp, input_sha, unit_keys)
    with timer.step("measures"):
        units, reports = add_measures(units, cfg, cache=cache, unitset=f"adm{finest_level}")
    with timer.step("indicators"):
        ids = list(cfg.indicators) if cfg.indicators else None
        result = compute_indicators(units, ids, date=cfg.date)
        fact = rollup(result.fact, admin, to_level=int(admin["admin_level"].min()))
        dim_indicator = _dim_indicator(indicator_catalog(), fact, cfg)
    with timer.step("country_check"):
        manifest.quality["country_vs_finest"] = _jsonable(compare_top_level(admin, fact, cfg.rasters.get("population_total")))
    with timer.step("privacy_and_checks"):
        previous_path = out_dir / "fact_indicator.parquet"
        previous = pd.read_parquet(previous_path) if previous_path.is_file() else None
        q = cfg.quality
        checks += check_indicators(fact, previous=previous, max_change=float(q.get("max_change", 0.25)), levels=q.get("levels"))
        fact = suppress_small_counts(fact, admin, k=float(q.get("k", 5)))
        manifest.quality["suppression"] = _jsonable(fact.attrs.get("geopipe", {}).get("suppression", {}))
        fact.attrs = {}
        raise_on_fail(checks)  # before anything is written: a failed run leaves the old outputs
    from .manifest import fact_lineage

    tables: dict[str, pd.DataFrame] = {"dim_admin": admin, "dim_indicator": dim_indicator, "fact_indicator": fact}
    tables["fact_lineage"] = fact_lineage(fact, run_id=manifest.run_id, sources=manifest.inputs, uses=indicator_sources(cfg, sorted(fact["indicator_id"].unique())))
    tables.update(wide_by_level(fact, admin))
    for res in cfg.h3_resolutions:
        with timer.step(f"h3_r{res}"):
            cells = _h3_table(admin, res, cfg, ids, cache)
            tables[f"h3_r{res}"], manifest.quality[f"suppression_h3_r{res}"] = suppress_cells(cells, fact, k=float(cfg.quality.get("k", 5)))
    reports["measure_cache"] = dict(sorted(cache.status.items()))
    return tables, reports, result.skipped


def indicator_sources(cfg: PipelineConfig, ids: list[str]) -> dict[str, list[str]]:
    """Input roles (keys of ``manifest.inputs``) each indicator is computed from, for lineage."""
    from .indicators.catalog import get_indicators

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

    used = catalog[catalog["indicator_id"].isin(fact["indicator_id"].unique())].reset_index(drop=True)
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


# --------------------------------------------------------------------------- stages
def _read_admin(cfg: PipelineConfig) -> gpd.GeoDataFrame:
    from .io.admin import read_admin

    source = cfg.admin_source
    return read_admin(source, **cfg.admin_options)


def add_measures(units: gpd.GeoDataFrame, cfg: PipelineConfig, *, cache: MeasureCache | None = None, unitset: str = "units") -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Add every measure the config asks for to ``units`` (admin units or H3 fragments).

    Columns are named by the catalog's sum / mean indicator ids: raster sums
    (``population_total``, ...), point counts, ``children_in_poverty``/``wealth_index_mean``
    (``wealth``), ``download_mbps_mean``/``population_broadband``/... (``connectivity``) and
    ``population_within_health``/``children_beyond_5km_health``/``distance_to_health_km_mean``
    (``service``). Returns the units and a report per stage for the manifest.

    With a :class:`MeasureCache`, each group of measures is reused from the previous run when its
    own inputs and parameters are unchanged (``unitset`` names the set of units, e.g. ``adm2``).
    """
    groups: list[tuple[str, list[str], dict[str, Any], Any]] = [("rasters", [f"raster_{k}" for k in cfg.rasters], {}, lambda u: add_raster_sums(u, cfg.rasters))]
    if cfg.age_shares is not None:
        groups.append(("age_shares", ["age_shares"], {}, lambda u: (add_age_shares(u, cfg.age_shares), {})))
    groups.append(("points", [f"points_{p.name}" for p in cfg.points], _parameters(cfg)["points"], lambda u: add_point_counts(u, cfg.points)))
    if cfg.wealth:
        groups.append(("wealth", ["wealth_tiles", "raster_population_u18"], _parameters(cfg)["wealth"], lambda u: add_wealth(u, cfg)))
    if cfg.connectivity:
        deps = ["connectivity_tiles", "raster_population_total"] + (["raster_population_u18"] if "population_u18" in cfg.rasters else [])
        groups.append(("connectivity", deps, _parameters(cfg)["connectivity"], lambda u: add_connectivity(u, cfg)))
    if cfg.service:
        deps = [f"points_{cfg.service['facilities']}", "raster_population_total"] + (["raster_population_u18"] if "population_u18" in cfg.rasters else [])
        params = {**_parameters(cfg)["service"], "points": _parameters(cfg)["points"][cfg.service["facilities"]]}
        groups.append(("service", deps, params, lambda u: (add_service_coverage(u, cfg), {})))
    reports: dict[str, Any] = {}
    for name, deps, params, compute in groups:
        if cache is None:
            units, reports[name] = compute(units)
        else:
            units, reports[name] = cache.apply(unitset, name, deps, params, units, compute)
    return units, reports


class MeasureCache:
    """Measures of the previous run, reused per (unit set, group) when their inputs are unchanged.

    Entries live in ``<run>/.cache/<unitset>__<group>.parquet``: the columns the group added, with
    the key (sha256 of the group's input files, its parameters and the unit set) in the file's
    metadata. A run reads the old folder's entries and writes the entries it used into the new one.
    """

    def __init__(self, old: Path, new: Path, input_sha: dict[str, str], unit_keys: dict[str, str]) -> None:
        self.old, self.new = old, new
        self.input_sha = input_sha
        self.unit_keys = unit_keys
        self.status: dict[str, str] = {}

    def _key(self, unitset: str, group: str, deps: list[str], params: dict[str, Any]) -> str:
        import hashlib
        import json

        blob = json.dumps({"units": self.unit_keys[unitset], "group": group, "inputs": {d: self.input_sha.get(d) for d in sorted(deps)}, "params": params}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def apply(self, unitset: str, group: str, deps: list[str], params: dict[str, Any], units: gpd.GeoDataFrame, compute: Any) -> tuple[gpd.GeoDataFrame, Any]:
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        key = self._key(unitset, group, deps, params)
        name = f"{unitset}__{group}.parquet"
        old = self.old / name
        if old.is_file():
            meta = pq.read_schema(old).metadata or {}
            if meta.get(b"geopipe_key", b"").decode() == key:
                table = pq.read_table(old)
                if table.num_rows == len(units):
                    cached = table.to_pandas()
                    out = units.copy()
                    for col in cached.columns:
                        out[col] = cached[col].to_numpy()
                    self._store(name, table)
                    self.status[f"{unitset}/{group}"] = "reused"
                    return out, json.loads(meta.get(b"geopipe_report", b"{}"))
        out, report = compute(units)
        added = [c for c in out.columns if c not in units.columns]
        table = pa.Table.from_pandas(pd.DataFrame(out[added]).reset_index(drop=True), preserve_index=False)
        table = table.replace_schema_metadata({"geopipe_key": key, "geopipe_report": json.dumps(_jsonable(report), sort_keys=True, default=str)})
        self._store(name, table)
        self.status[f"{unitset}/{group}"] = "computed"
        return out, report

    def _store(self, name: str, table: Any) -> None:
        import pyarrow.parquet as pq

        self.new.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.new / name, compression="zstd")


def add_wealth(units: gpd.GeoDataFrame, cfg: PipelineConfig) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Child poverty from a wealth tile layer weighted by the under-18 raster."""
    from .zonal.layers import zonal_layer

    spec = cfg.wealth
    kind = spec.get("kind", "tiles")
    if kind == "raster":
        tiles, value = spec["tiles"], None
    elif kind == "points":
        from .io.points import read_points

        tiles, value = read_points(spec["tiles"]), spec["value"]
    else:
        tiles, value = _read_value_layer(spec["tiles"], spec.get("zoom")), spec["value"]
    max_d = float(spec["max_distance_km"]) * 1000.0 if spec.get("max_distance_km") else None
    out = zonal_layer(units, {"_w": cfg.rasters["population_u18"]}, tiles, value, below=float(spec["poverty_threshold"]), scale=float(spec["scale"]), max_distance=max_d)
    out = out.rename(columns={"_w_below": "children_in_poverty", "_w_mean": "wealth_index_mean", "_w_covered": "children_with_wealth_data"})
    uncovered = float(out.pop("_w_uncovered").sum())
    total = uncovered + float(out["children_with_wealth_data"].sum())
    report = {"layer": kind, "features": len(tiles) if kind != "raster" else None, "children_without_wealth_data": uncovered, "share_children_without_wealth_data": uncovered / total if total else None}
    return out, report


def _read_value_layer(path: Path, zoom: int | None) -> gpd.GeoDataFrame:
    """Quadkey tiles (Meta RWI, Ookla) through read_tiles; any other polygon layer as it is."""
    from .io._files import read_vector, to_wgs84
    from .io.tiles import read_tiles

    try:
        return read_tiles(path, zoom=zoom)
    except MissingColumnError:
        layer = read_vector(Path(path), what="value layer", where="pipeline")
        return to_wgs84(layer, crs=None, path=str(path), where="pipeline")


def add_connectivity(units: gpd.GeoDataFrame, cfg: PipelineConfig) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Population-weighted speed, broadband population and children without connectivity."""
    from .zonal.layers import zonal_layer

    spec = cfg.connectivity
    tiles = _read_value_layer(spec["tiles"], spec.get("zoom"))
    if "tests" in tiles.columns:
        tiles = tiles[pd.to_numeric(tiles["tests"], errors="coerce").fillna(0) >= int(spec["min_tests"])]
    rasters = {"_p": cfg.rasters["population_total"]}
    if "population_u18" in cfg.rasters:
        rasters["_c"] = cfg.rasters["population_u18"]
    thr = float(spec["broadband_mbps"])
    out = zonal_layer(units, rasters, tiles, spec["value"], scale=float(spec["scale"]), at_least=thr, below=thr)
    out = out.rename(columns={"_p_mean": "download_mbps_mean", "_p_at_least": "population_broadband", "_p_covered": "population_with_speed_data"})
    if "_c_below" in out.columns:
        out["children_without_connectivity"] = out["_c_below"] + out["_c_uncovered"]
    report = {"tiles": len(tiles), "population_without_speed_data": float(out["_p_uncovered"].sum())}
    out = out.drop(columns=[c for c in out.columns if c.startswith(("_p_", "_c_"))])
    return out, report


def add_service_coverage(units: gpd.GeoDataFrame, cfg: PipelineConfig) -> gpd.GeoDataFrame:
    """Population and children within a distance of the service's facilities; mean distance."""
    from .io.points import read_points
    from .zonal.distance import nearest_distance, population_within

    spec = cfg.service
    layer = next(p for p in cfg.points if p.name == spec["facilities"])
    facilities = read_points(layer.source, **layer.options)
    children = cfg.rasters.get("population_u18")
    out = population_within(units, cfg.rasters["population_total"], facilities, distance_m=spec["distance_km"] * 1000.0, children=children, prefix="_pw", children_prefix="_cw")
    out = out.rename(columns={"_pw_within": "population_within_health", "_cw_beyond": "children_beyond_5km_health"})
    out = nearest_distance(out, facilities, raster=cfg.rasters["population_total"], name="_dist")
    out["distance_to_health_km_mean"] = out["_dist_popweighted"] / 1000.0
    return out.drop(columns=[c for c in out.columns if c.startswith(("_pw_", "_cw_", "_dist"))])


def compare_top_level(admin: gpd.GeoDataFrame, fact: pd.DataFrame, population: Path | str | None) -> dict[str, Any]:
    """Source polygon of each top-level unit vs the union of its finest descendants.

    Parent figures are sums of the finest units; where the sources of the levels differ (Rwanda's
    ADM0 is OSM, its ADM2 is NISR) the area and the population of the source's own polygon differ
    from that sum. This reports both, per top-level ucode, for the manifest.
    """
    top_level, finest_level = int(admin["admin_level"].min()), int(admin["admin_level"].max())
    if top_level == finest_level:
        return {}
    parent_of = admin.set_index("ucode")["parent_ucode"]
    finest = admin[admin["admin_level"] == finest_level]
    ancestor = finest["ucode"]
    for _ in range(finest_level - top_level):
        ancestor = ancestor.map(parent_of)
    top = admin[admin["admin_level"] == top_level].reset_index(drop=True)
    eq = top.to_crs("EPSG:6933")
    union = finest.assign(_top=ancestor.to_numpy()).to_crs("EPSG:6933").dissolve("_top")
    pop_src = add_raster_sums(top, {"population_total": population})[0]["population_total"] if population else None
    rolled = fact[(fact["indicator_id"] == "population_total") & (fact["admin_level"] == top_level)].set_index("ucode")["value"]
    out: dict[str, Any] = {}
    for i, ucode in enumerate(top["ucode"]):
        src_area = float(eq.geometry.iloc[i].area) / 1e6
        fin_area = float(union.geometry.loc[ucode].area) / 1e6 if ucode in union.index else 0.0
        sym = float(eq.geometry.iloc[i].symmetric_difference(union.geometry.loc[ucode]).area) / 1e6 if ucode in union.index else src_area
        rec: dict[str, Any] = {"area_km2_source": src_area, "area_km2_finest": fin_area, "area_km2_symmetric_difference": sym}
        if pop_src is not None and ucode in rolled.index:
            rec["population_total_source_polygon"] = float(pop_src.iloc[i])
            rec["population_total_finest"] = float(rolled.loc[ucode])
            rec["population_relative_difference"] = (rec["population_total_source_polygon"] - rec["population_total_finest"]) / rec["population_total_finest"] if rec["population_total_finest"] else None
        out[str(ucode)] = rec
    return out


def suppress_cells(cells: gpd.GeoDataFrame, fact: pd.DataFrame, *, k: float = 5) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Small-number suppression for grid fragments, consistent with the published admin values.

    Fragments are treated as the children of their admin unit (``ucode``), whose published values
    (already suppressed at admin level in ``fact``) are their parent's: sensitive counts below ``k``
    are hidden, and more fragments are hidden until no district total minus its published fragments
    reveals a hidden one; ratios built on a hidden count are hidden too. Hidden values become null.
    """
    from .indicators.catalog import get_indicators
    from .quality.privacy import suppress_small_counts

    catalog = get_indicators()
    cols = [c for c in cells.columns if c in catalog]
    if not cols or cells.empty:
        return cells, {"k": k, "total": 0}
    frag = (cells["cell_id"].astype(str) + "@" + cells["ucode"].astype(str)).to_numpy()
    date = cells["date"].iloc[0] if "date" in cells.columns else None
    long = pd.DataFrame({"ucode": np.repeat(frag, len(cols)), "indicator_id": np.tile(cols, len(cells)), "value": cells[cols].to_numpy(dtype=float).ravel()})
    long["date"], long["suppressed"] = date, False
    parents = fact[fact["ucode"].isin(set(cells["ucode"])) & fact["indicator_id"].isin(cols)]
    parents = parents[parents["date"] == date] if date is not None else parents
    both = pd.concat([long, parents[["ucode", "indicator_id", "value", "date", "suppressed"]]], ignore_index=True)
    districts = cells["ucode"].astype(str).unique()
    tree = pd.DataFrame({"ucode": [*frag, *districts], "parent_ucode": [*cells["ucode"].astype(str), *([None] * len(districts))]})
    done = suppress_small_counts(both, tree, k=k)
    hidden = done["suppressed"].to_numpy()[: len(long)].reshape(len(cells), len(cols))
    out = cells.copy()
    values = np.array(out[cols].to_numpy(dtype=float), copy=True)
    values[hidden] = np.nan
    out[cols] = values
    return out, {"k": k, "cells_hidden": int(hidden.any(axis=1).sum()), "values_hidden": int(hidden.sum())}


def _h3_table(admin: gpd.GeoDataFrame, resolution: int, cfg: PipelineConfig, ids: list[str] | None, cache: MeasureCache | None = None) -> gpd.GeoDataFrame:
    """H3 cell fragments (split at the finest admin edges) with every indicator as a column."""
    import warnings

    from .errors import GeopipeWarning
    from .grids.h3 import h3_grid
    from .indicators.compute import compute_indicators

    cells = h3_grid(admin, resolution, split=True).reset_index(drop=True)
    cells, _ = add_measures(cells, cfg, cache=cache, unitset=f"h3_r{resolution}")
    cells["_row"] = np.arange(len(cells))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)  # already reported for the admin units
        wide = compute_indicators(cells, ids, date=cfg.date, key="_row").wide
    keep = ["cell_id", "ucode", "area_km2", "cell_share"]
    value_cols = [c for c in wide.columns if c not in keep and c not in ("_row", "geometry", "admin_level") and pd.api.types.is_numeric_dtype(wide[c])]
    wide = wide[[*[c for c in keep if c in wide.columns], *value_cols, "geometry"]]
    wide.insert(len(wide.columns) - 1, "date", cfg.date)
    return gpd.GeoDataFrame(wide, geometry="geometry", crs=cells.crs)


def add_raster_sums(units: gpd.GeoDataFrame, rasters: dict[str, Path | str]) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Add one column per raster: its coverage-weighted sum over each unit.

    Returns the new units and a report per raster (raster total, total inside the units, share
    of the raster's total outside the units).

    Examples
    --------
    >>> units, report = add_raster_sums(admin2, {"population_total": "pop.tif"})  # doctest: +SKIP
    """
    if not rasters:
        return units, {}
    from .zonal.raster import zonal_raster

    prefixed = {name: str(path) for name, path in rasters.items()}
    out = zonal_raster(units, prefixed, stats=("sum",))
    rename = {f"{name}_sum": name for name in rasters}
    out = out.rename(columns=rename)
    report = dict(out.attrs.get("geopipe", {}).get("zonal_raster", {}))
    out.attrs = dict(units.attrs)
    return out, report


def add_age_shares(units: gpd.GeoDataFrame, path: Path | str) -> gpd.GeoDataFrame:
    """Join an age-share table (``share_u18``, ``share_u5`` per unit) onto the units.

    The table is matched on the first key both sides have: ``ucode``, ``pcode``, ``source_id``
    (``shapeID`` / ``GID`` in the table are taken as ``source_id``), then ``name``. Units without a
    share are reported, never silently given one.
    """
    table = pd.read_csv(path, dtype=str)
    table = table.rename(columns={"shapeID": "source_id"})
    key = next((k for k in ("ucode", "pcode", "source_id", "name") if k in table.columns and k in units.columns and units[k].notna().all()), None)
    if key is None:
        raise MissingColumnError(problem(f"age-share table '{path}'", "has no ucode/pcode/source_id/shapeID/name column matching the units", "add one of them", where="add_age_shares"))
    shares = [c for c in ("share_u18", "share_u5") if c in table.columns]
    if not shares:
        raise MissingColumnError(problem(f"age-share table '{path}'", "has neither share_u18 nor share_u5", "add the share columns (0-1)", where="add_age_shares"))
    table = table[[key, *shares]].drop_duplicates(key)
    for col in shares:
        table[col] = pd.to_numeric(table[col], errors="coerce")
        bad = table[col].isna() | (table[col] < 0) | (table[col] > 1)
        if bad.any():
            raise InputError(problem(f"age-share table '{path}'", f"has {int(bad.sum())} {col} values outside 0-1 or not numbers", "fix the shares", where="add_age_shares"))
    out = units.drop(columns=[c for c in shares if c in units.columns]).merge(table, on=key, how="left")
    missing = out[shares[0]].isna()
    if missing.any():
        import warnings

        from .errors import GeopipeWarning

        warnings.warn(f"add_age_shares: {int(missing.sum())} units have no age share in '{path}' (e.g. {out.loc[missing, 'name'].iloc[0]!r}); their child counts stay empty", GeopipeWarning, stacklevel=2)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=units.crs)


def add_point_counts(units: gpd.GeoDataFrame, layers: tuple[PointLayer, ...] | list[PointLayer]) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read each point layer and add its count per unit (plus the counts of its subsets)."""
    from .io.points import read_points
    from .zonal.points import count_points

    report: dict[str, Any] = {}
    for layer in layers:
        points = read_points(layer.source, **layer.options)
        units = count_points(units, points, name=layer.name)
        info = dict(points.attrs.get("geopipe", {}))
        rejected = info.pop("rejected", [])
        info["rejected_rows"] = len(rejected)
        info["counted"] = int(units[layer.name].sum())
        info["outside_units"] = len(points) - info["counted"]
        for sub, (column, values) in layer.subsets.items():
            if column not in points.columns:
                raise MissingColumnError(problem(f"points '{layer.source}'", f"has no column {column!r} for subset {sub!r}", f"use one of {list(map(str, points.columns))}", where="add_point_counts"))
            wanted = {v.strip().lower() for v in values}
            chosen = points[points[column].astype(str).str.strip().str.lower().isin(wanted)]
            units = count_points(units, chosen, name=sub)
            info[f"subset_{sub}"] = int(units[sub].sum())
        report[layer.name] = info
    return units, report


def wide_by_level(fact: pd.DataFrame, admin: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """One wide GeoDataFrame per admin level (``adm0``, ``adm1``, ...): unit columns + one column per indicator."""
    out: dict[str, gpd.GeoDataFrame] = {}
    if fact.empty:
        return out
    dates = sorted(fact["date"].unique())
    latest = fact[fact["date"] == dates[-1]]
    values = latest.pivot_table(index="ucode", columns="indicator_id", values="value", aggfunc="first", dropna=False)
    from .indicators.catalog import get_indicators

    present = set(latest["indicator_id"])
    order = [i for i in get_indicators() if i in present]  # catalog order
    values = values.reindex(columns=order)
    values.columns.name = None
    for level, group in admin.groupby("admin_level", sort=True):
        base = group[["ucode", "name", "admin_level", "parent_ucode", "iso3", "pcode", "geometry"]].reset_index(drop=True)
        base.insert(len(base.columns) - 1, "date", dates[-1])
        wide = base.merge(values, left_on="ucode", right_index=True, how="left")
        wide = wide[[c for c in wide.columns if c != "geometry"] + ["geometry"]]
        out[f"adm{int(level)}"] = gpd.GeoDataFrame(wide, geometry="geometry", crs=admin.crs)
    return out


# --------------------------------------------------------------------------- load
def _parameters(cfg: PipelineConfig) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "date": cfg.date.isoformat(),
        "admin_options": {k: (str(v) if not isinstance(v, int | float | bool | type(None)) else v) for k, v in sorted(cfg.admin_options.items())},
        "indicators": list(cfg.indicators) if cfg.indicators else None,
        "points": {p.name: {"options": {k: str(v) for k, v in sorted(p.options.items())}, "subsets": {k: [c, list(v)] for k, (c, v) in sorted(p.subsets.items())}} for p in cfg.points},
        "h3_resolutions": list(cfg.h3_resolutions),
        "wealth": {k: v for k, v in sorted(cfg.wealth.items()) if k != "tiles"},
        "connectivity": {k: v for k, v in sorted(cfg.connectivity.items()) if k != "tiles"},
        "service": dict(sorted(cfg.service.items())),
    }


def _write_run(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    manifest: Any,
    reports: dict[str, Any],
    skipped: dict[str, str],
    cache_dir: Path,
    checks: list[Any],
    quarantined: dict[str, pd.DataFrame],
) -> dict[str, Any]:
    import shutil

    from .io.atomic import atomic_dir
    from .io.geoparquet import write_geoparquet, write_parquet
    from .io.geosight import write_geosight
    from .io.warehouse import write_duckdb
    from .quality.quarantine import write_quarantine
    from .quality.report import quality_report, results_to_records

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir) as staging:
        for name, table in tables.items():
            path = staging / f"{name}.parquet"
            if isinstance(table, gpd.GeoDataFrame):
                write_geoparquet(table, path)
            else:
                write_parquet(table, path)
            manifest.add_output(path.name, path, rows=len(table))
        write_duckdb(tables, staging / "warehouse.duckdb")
        manifest.add_output("warehouse.duckdb", staging / "warehouse.duckdb")
        write_geosight(tables["fact_indicator"], staging / "geosight.csv")
        manifest.add_output("geosight.csv", staging / "geosight.csv", rows=len(tables["fact_indicator"]))
        counts = {k: len(v) for k, v in quarantined.items()}
        if quarantined:
            write_quarantine(quarantined, staging)
        report = quality_report(checks, quarantined=counts)
        (staging / "quality_report.md").write_text(report, encoding="utf-8")
        manifest.add_output("quality_report.md", staging / "quality_report.md")
        for rec in manifest.outputs.values():  # record paths relative to the run folder
            rec["path"] = Path(rec["path"]).name if rec.get("path") else None
        manifest.quality["checks"] = results_to_records(checks)
        manifest.quality["quarantined_rows"] = counts
        manifest.quality["rasters"] = _jsonable(reports.get("rasters", {}))
        manifest.quality["points"] = _jsonable(reports.get("points", {}))
        manifest.quality["layers"] = _jsonable({k: v for k, v in reports.items() if k in ("wealth", "connectivity")})
        manifest.quality["measure_cache"] = reports.get("measure_cache", {})
        manifest.quality["skipped_indicators"] = dict(skipped)
        manifest.finish().write(staging / "manifest.json")
        if cache_dir.is_dir():
            shutil.copytree(cache_dir, staging / ".cache")
    return manifest.to_dict()


def _digest(obj: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
