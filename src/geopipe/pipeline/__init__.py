"""The pipeline engine: a :class:`Pipeline` (sources, units, steps, indicators, quality, outputs)
built in Python or from YAML, and :func:`run_pipeline`, which writes its run folder::

    out/<run>/dim_admin.parquet  dim_indicator.parquet  fact_indicator.parquet  fact_lineage.parquet
              adm0.parquet adm1.parquet ...  h3_r7.parquet  warehouse.duckdb  geosight.csv
              quality_report.md  manifest.json

All files are first written into a staging folder next to the run folder, which then replaces the
old run folder in one atomic swap: a failed run leaves the previous outputs untouched, and a BI
refresh never sees a half-written run. What a run keeps to be incremental lives beside the run
folder (``.<name>.geopipe-state``), never in it.

Modules: ``model`` (the Pipeline and its YAML form), ``context`` (reads each input once, shares
pixel weights), ``state`` (output guard, keys, step cache), ``run`` (the runner), ``outputs``
(tables and files of a run).
"""

from __future__ import annotations

from .model import SOURCE_KINDS, Pipeline, Source, Units
from .outputs import append_history, compare_top_level, wide_by_level
from .run import RunResult, measure_units, run_pipeline, run_steps

__all__ = [
    "SOURCE_KINDS",
    "Pipeline",
    "RunResult",
    "Source",
    "Units",
    "append_history",
    "compare_top_level",
    "measure_units",
    "run_pipeline",
    "run_steps",
    "wide_by_level",
]
