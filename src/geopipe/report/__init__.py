"""``report.html``: one self-contained page per run folder that people open and look at.

:func:`write_report_html` reads a written run folder (``adm*.parquet``, ``h3_r*.parquet``,
``dim_indicator.parquet``, ``manifest.json``) and writes ``report.html``: the data-quality results,
the indicators per level as tables, a choropleth per indicator for every admin level and grid, and
the manifest's inputs, timings and package versions. Everything is inline (CSS, a small script
written for this page, the map geometry as numbers): it opens offline and fetches nothing.

Maps are drawn on ``<canvas>`` by the inline script from simplified, integer-quantised geometry
shared by all the maps of a level, so a grid of thousands of cells costs its geometry once, not
once per indicator. Classes are quantiles computed here; units without a value (no data or
suppressed) are grey.
"""

from __future__ import annotations

from .html import write_report_html

__all__ = ["write_report_html"]
