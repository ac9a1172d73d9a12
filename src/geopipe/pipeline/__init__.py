"""The pipeline runner: Extract -> Units -> Aggregate -> Indicators -> Load.

Each stage is a plain function an analyst can call alone; :func:`run_pipeline` chains them for a
:class:`~geopipe.config.PipelineConfig` and writes the run folder::

    out/<run>/dim_admin.parquet  dim_indicator.parquet  fact_indicator.parquet  fact_lineage.parquet
              adm0.parquet adm1.parquet ...  h3_r7.parquet  warehouse.duckdb  geosight.csv
              quality_report.md  manifest.json

All files are first written into a staging folder next to the run folder, which then replaces the
old run folder in one atomic swap: a failed run leaves the previous outputs untouched, and a BI
refresh never sees a half-written run.

Modules: ``run`` (the runner), ``measures`` (aggregation onto units, with the measure cache),
``outputs`` (tables and files of a run).
"""

from __future__ import annotations

from .measures import (
    MeasureCache,
    add_age_shares,
    add_connectivity,
    add_measures,
    add_point_counts,
    add_raster_sums,
    add_service_coverage,
    add_wealth,
)
from .outputs import append_history, compare_top_level, suppress_cells, wide_by_level
from .run import RunResult, indicator_sources, run_pipeline

__all__ = [
    "MeasureCache",
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
    "suppress_cells",
    "wide_by_level",
]
