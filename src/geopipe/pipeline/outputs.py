"""Tables and files of a run: wide per-level tables, grid suppression, checks, the run folder."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ._util import jsonable

__all__ = [
    "RunTables",
    "append_history",
    "compare_top_level",
    "wide_by_level",
    "write_part",
    "write_run",
    "write_run_parts",
]


class RunTables(Mapping[str, pd.DataFrame]):
    """The tables of a written run folder, each read when first asked for (a multi-country run
    does not hold its tables in memory): ``RunTables(folder)["adm1"]``.

    Tables with geometry are read as GeoDataFrames (without the ``bbox`` covering column).

    Examples
    --------
    >>> tables = RunTables(Path("out/countries"))  # doctest: +SKIP
    >>> tables["fact_indicator"].head()  # doctest: +SKIP
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._read: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._read:
            path = self.folder / f"{name}.parquet"
            if not path.is_file():
                raise KeyError(name)
            import pyarrow.parquet as pq

            from ..io.geoparquet import read_geoparquet

            geo = b"geo" in (pq.read_schema(path).metadata or {})
            self._read[name] = read_geoparquet(path) if geo else pd.read_parquet(path)
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p.stem for p in self.folder.glob("*.parquet")))

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.parquet")))


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
    from ..io.warehouse import write_duckdb

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir) as staging, ThreadPoolExecutor(max_workers=1) as pool:
        # the warehouse (DuckDB works outside the GIL) is built while the files are written
        warehouse = pool.submit(
            write_duckdb, tables, staging / "warehouse.duckdb", keys=_keys(tables)
        )
        for name, rows in write_part(tables, staging).items():
            manifest.add_output(name, staging / name, rows=rows)
        warehouse.result()
        manifest.add_output("warehouse.duckdb", staging / "warehouse.duckdb")
        _finish(staging, manifest, reports, skipped, checks, quarantined, finalize)
    return manifest.to_dict()


def _keys(names: Any) -> dict[str, tuple[str, ...]]:
    """Warehouse keys of the wide tables (the long tables' are the warehouse's defaults)."""
    return {
        n: ("cell_id", "ucode") if n.startswith(("h3_", "sq_")) else ("ucode",)
        for n in names
        if n.startswith(("adm", "h3_", "sq_"))
    }


def write_part(tables: dict[str, pd.DataFrame], folder: Path) -> dict[str, int]:
    """The files of a run folder made from ``tables`` (without the warehouse and the reports):
    ``<table>.parquet`` (GeoParquet for tables with geometry), ``bi/`` and ``geosight.csv``.

    A single-country run writes them into its run folder; each country of a multi-country run
    writes them into a part folder of its own, and :func:`write_run_parts` joins the parts.
    Returns file (relative to ``folder``) -> rows.

    Examples
    --------
    >>> write_part(run.tables, Path("out/.parts/RWA"))  # doctest: +SKIP
    {'adm0.parquet': 1, ...}
    """
    from ..io.bi import write_bi_tables
    from ..io.geoparquet import write_geoparquet, write_parquet
    from ..io.geosight import write_geosight

    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, table in tables.items():
        path = folder / f"{name}.parquet"
        if isinstance(table, gpd.GeoDataFrame):
            write_geoparquet(table, path)
        else:
            write_parquet(table, path)
        rows[path.name] = len(table)
    for name, path in write_bi_tables(tables, folder / "bi").items():  # flat tables for BI
        rows[f"bi/{path.name}"] = len(tables.get(name, ())) or None
    write_geosight(tables["fact_indicator"], folder / "geosight.csv")
    rows["geosight.csv"] = len(tables["fact_indicator"])
    return rows


def write_run_parts(
    out_dir: Path,
    parts: list[Path],
    manifest: Any,
    reports: dict[str, Any],
    skipped: dict[str, str],
    checks: list[Any],
    quarantined: dict[str, pd.DataFrame],
    finalize: Any = None,
    *,
    warehouse: Any = None,
) -> dict[str, Any]:
    """Write the run folder of a multi-country run from its countries' part folders
    (:func:`write_part`), atomically, holding one row group (one country's table for the
    warehouse) in memory at a time: each file is the parts' rows one after the other, in the
    order of ``parts``; ``dim_indicator`` is the first part's. ``warehouse``: a
    :class:`~geopipe.io.warehouse.WarehouseBuilder` the parts were loaded into already (in
    that order), finished here instead of loading the parts again.

    Examples
    --------
    >>> write_run_parts(Path("out/run"), [Path(".parts/XXA"), Path(".parts/XXB")], manifest,
    ...                 {}, {}, [], {})  # doctest: +SKIP
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    from ..io.atomic import atomic_dir, atomic_path
    from ..io.geoparquet import concat_parquet
    from ..io.warehouse import TableParts, write_duckdb

    def files(pattern: str) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for part in parts:
            for f in sorted(part.glob(pattern)):
                found.setdefault(f.relative_to(part).as_posix(), []).append(f)
        return found

    tables, bi = files("*.parquet"), files("bi/*.parquet")
    for found in (tables, bi):  # the catalog is the same in every part
        for name in found:
            if name.endswith("dim_indicator.parquet"):
                found[name] = found[name][:1]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir) as staging, ThreadPoolExecutor(max_workers=1) as pool:
        geo = {n: b"geo" in (pq.read_schema(f[0]).metadata or {}) for n, f in tables.items()}
        db = {n[: -len(".parquet")]: TableParts(tuple(f), geo[n]) for n, f in tables.items()}
        if warehouse is None:
            built = pool.submit(write_duckdb, db, staging / "warehouse.duckdb", keys=_keys(db))
        else:
            built = pool.submit(_finish_warehouse, warehouse, staging / "warehouse.duckdb", db)
        (staging / "bi").mkdir()
        for name, paths in {**tables, **bi}.items():
            path = concat_parquet(paths, staging / name)
            manifest.add_output(name, path, rows=pq.ParquetFile(path).metadata.num_rows)
        csvs = [part / "geosight.csv" for part in parts if (part / "geosight.csv").is_file()]
        with atomic_path(staging / "geosight.csv") as tmp, open(tmp, "wb") as out:
            rows = 0
            for k, csv in enumerate(csvs):
                with open(csv, "rb") as f:
                    header = f.readline()
                    if k == 0:
                        out.write(header)
                    for line in f:
                        out.write(line)
                        rows += 1
        built.result()
        manifest.add_output("warehouse.duckdb", staging / "warehouse.duckdb")
        manifest.add_output("geosight.csv", staging / "geosight.csv", rows=rows)
        _finish(staging, manifest, reports, skipped, checks, quarantined, finalize)
    return manifest.to_dict()


def _finish_warehouse(builder: Any, path: Path, db: dict[str, Any]) -> Path:
    """Finish a warehouse loaded part by part and move it to ``path`` (in the staged folder)."""
    import shutil

    shutil.move(builder.finish(keys=_keys(db)), path)
    return path


def _finish(
    staging: Path,
    manifest: Any,
    reports: dict[str, Any],
    skipped: dict[str, str],
    checks: list[Any],
    quarantined: dict[str, pd.DataFrame],
    finalize: Any,
) -> None:
    """Quarantine, quality report and manifest of a staged run folder; then ``finalize``."""
    from ..quality.quarantine import write_quarantine
    from ..quality.report import quality_report, results_to_records

    counts = {k: len(v) for k, v in quarantined.items()}
    if quarantined:
        write_quarantine(quarantined, staging)
    report = quality_report(checks, quarantined=counts)
    (staging / "quality_report.md").write_text(report, encoding="utf-8")
    manifest.add_output("quality_report.md", staging / "quality_report.md")
    for rec in manifest.outputs.values():  # record paths relative to the run folder
        rec["path"] = Path(rec["path"]).relative_to(staging).as_posix() if rec.get("path") else None
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
