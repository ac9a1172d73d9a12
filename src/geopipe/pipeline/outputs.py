"""Tables and files of a run: wide per-level tables, grid suppression, checks, the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ._util import jsonable

__all__ = ["append_history", "compare_top_level", "wide_by_level", "write_run"]


def append_history(fact: pd.DataFrame, admin: pd.DataFrame, root: Path | str) -> list[Path]:
    """Add this run's fact rows to a history dataset partitioned by ``iso3`` and ``date``.

    A monthly refresh adds a partition; re-running the same month replaces that partition only
    (atomically), so ``read_parquet('<root>/fact_indicator/**/*.parquet', hive_partitioning=true)``
    always sees whole months.
    """
    from ..io.partitioned import write_partitioned

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    iso = admin.set_index("ucode")["iso3"]
    rows = fact.assign(iso3=fact["ucode"].map(iso).to_numpy())
    return write_partitioned(rows, root / "fact_indicator", ("iso3", "date"))


def compare_top_level(
    admin: gpd.GeoDataFrame, fact: pd.DataFrame, population: Path | str | None
) -> dict[str, Any]:
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
    from ..zonal.raster import zonal_raster

    pop_src = zonal_raster(top, {"p": population})["p_sum"] if population is not None else None
    rolled = fact[
        (fact["indicator_id"] == "population_total") & (fact["admin_level"] == top_level)
    ].set_index("ucode")["value"]
    out: dict[str, Any] = {}
    for i, ucode in enumerate(top["ucode"]):
        src_area = float(eq.geometry.iloc[i].area) / 1e6
        fin_area = float(union.geometry.loc[ucode].area) / 1e6 if ucode in union.index else 0.0
        sym = (
            float(eq.geometry.iloc[i].symmetric_difference(union.geometry.loc[ucode]).area) / 1e6
            if ucode in union.index
            else src_area
        )
        rec: dict[str, Any] = {
            "area_km2_source": src_area,
            "area_km2_finest": fin_area,
            "area_km2_symmetric_difference": sym,
        }
        if pop_src is not None and ucode in rolled.index:
            rec["population_total_source_polygon"] = float(pop_src.iloc[i])
            rec["population_total_finest"] = float(rolled.loc[ucode])
            rec["population_relative_difference"] = (
                (rec["population_total_source_polygon"] - rec["population_total_finest"])
                / rec["population_total_finest"]
                if rec["population_total_finest"]
                else None
            )
        out[str(ucode)] = rec
    return out


def wide_by_level(
    fact: pd.DataFrame, admin: gpd.GeoDataFrame, catalog: Any = None
) -> dict[str, gpd.GeoDataFrame]:
    """One wide GeoDataFrame per admin level (``adm0``, ``adm1``, ...): unit columns + one column per indicator."""
    out: dict[str, gpd.GeoDataFrame] = {}
    if fact.empty:
        return out
    dates = sorted(fact["date"].unique())
    latest = fact[fact["date"] == dates[-1]]
    values = latest.pivot_table(
        index="ucode", columns="indicator_id", values="value", aggfunc="first", dropna=False
    )
    from ..indicators.catalog import get_indicators

    present = set(latest["indicator_id"])
    order = [i for i in (catalog if catalog is not None else get_indicators()) if i in present]
    values = values.reindex(columns=order)
    values.columns.name = None
    for level, group in admin.groupby("admin_level", sort=True):
        base = group[
            ["ucode", "name", "admin_level", "parent_ucode", "iso3", "pcode", "geometry"]
        ].reset_index(drop=True)
        base.insert(len(base.columns) - 1, "date", dates[-1])
        wide = base.merge(values, left_on="ucode", right_index=True, how="left")
        wide = wide[[c for c in wide.columns if c != "geometry"] + ["geometry"]]
        out[f"adm{int(level)}"] = gpd.GeoDataFrame(wide, geometry="geometry", crs=admin.crs)
    return out


def write_run(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    manifest: Any,
    reports: dict[str, Any],
    skipped: dict[str, str],
    checks: list[Any],
    quarantined: dict[str, pd.DataFrame],
    finalize: Any = None,
) -> dict[str, Any]:
    """Write the run folder atomically: tables, warehouse, GeoSight CSV, quality report, manifest.

    ``finalize(staging)`` runs last inside the staging folder (e.g. writes report.html).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..io.atomic import atomic_dir
    from ..io.geoparquet import write_geoparquet, write_parquet
    from ..io.geosight import write_geosight
    from ..io.warehouse import write_duckdb
    from ..quality.quarantine import write_quarantine
    from ..quality.report import quality_report, results_to_records

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir) as staging, ThreadPoolExecutor(max_workers=1) as pool:
        keys = {
            n: ("cell_id", "ucode") if n.startswith(("h3_", "sq_")) else ("ucode",)
            for n in tables
            if n.startswith(("adm", "h3_", "sq_"))
        }
        # the warehouse (DuckDB works outside the GIL) is built while the files are written
        warehouse = pool.submit(write_duckdb, tables, staging / "warehouse.duckdb", keys=keys)
        for name, table in tables.items():
            path = staging / f"{name}.parquet"
            if isinstance(table, gpd.GeoDataFrame):
                write_geoparquet(table, path)
            else:
                write_parquet(table, path)
            manifest.add_output(path.name, path, rows=len(table))
        from ..io.bi import write_bi_tables

        for name, path in write_bi_tables(tables, staging / "bi").items():  # flat tables for BI
            manifest.add_output(f"bi/{path.name}", path, rows=len(tables.get(name, ())) or None)
        write_geosight(tables["fact_indicator"], staging / "geosight.csv")
        warehouse.result()
        manifest.add_output("warehouse.duckdb", staging / "warehouse.duckdb")
        manifest.add_output(
            "geosight.csv", staging / "geosight.csv", rows=len(tables["fact_indicator"])
        )
        counts = {k: len(v) for k, v in quarantined.items()}
        if quarantined:
            write_quarantine(quarantined, staging)
        report = quality_report(checks, quarantined=counts)
        (staging / "quality_report.md").write_text(report, encoding="utf-8")
        manifest.add_output("quality_report.md", staging / "quality_report.md")
        for rec in manifest.outputs.values():  # record paths relative to the run folder
            rec["path"] = (
                Path(rec["path"]).relative_to(staging).as_posix() if rec.get("path") else None
            )
        manifest.quality["checks"] = results_to_records(checks)
        manifest.quality["quarantined_rows"] = counts
        manifest.quality["steps"] = jsonable(reports.get("steps", {}))
        manifest.quality["step_cache"] = reports.get("step_cache", {})
        manifest.quality["skipped_indicators"] = dict(skipped)
        manifest.finish().write(staging / "manifest.json")
        if finalize is not None:  # reads the written folder (report.html), then is listed too
            for name in finalize(staging) or ():
                manifest.add_output(name, staging / name)
                manifest.outputs[name]["path"] = name
            manifest.write(staging / "manifest.json")
    return manifest.to_dict()
