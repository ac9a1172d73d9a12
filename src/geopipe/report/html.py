"""Assemble report.html from a written run folder (see the package docstring)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from geopipe.errors import MissingFileError, problem

from ._maps import NO_DATA, PALETTE, classify, encode_geometry, significant
from ._page import CSS, SCRIPT

__all__ = ["write_report_html"]

#: most rows shown in a level's indicator table (the GeoParquet file has them all)
MAX_TABLE_ROWS = 300
#: levels with more units than this carry no per-unit values for the maps' tooltips (file size)
MAX_TOOLTIP_VALUES = 2000
#: levels and grids with more units than this are summarised but not mapped: the page would be too
#: big for a browser, and building it would hold every fragment of every country in memory (a
#: run of many countries); the GeoParquet file has them all
MAX_MAP_FEATURES = 100_000
_LEVEL = re.compile(r"^adm(\d+)\.parquet$")
_GRID = re.compile(r"^h3_r(\d+)\.parquet$")


def write_report_html(run_dir: Path) -> Path:
    """Write ``run_dir/report.html``: quality, indicator tables, choropleths, inputs and timings.

    Parameters
    ----------
    run_dir
        A written run folder: ``manifest.json``, ``dim_indicator.parquet``, ``adm<N>.parquet``
        and ``h3_r<res>.parquet`` wide GeoParquet files (each optional except the manifest).

    Returns
    -------
    Path
        The written ``report.html`` (one self-contained file; it opens offline).

    Raises
    ------
    MissingFileError
        ``run_dir`` has no ``manifest.json``.

    Examples
    --------
    >>> import geopipe as gp
    >>> result = gp.run_pipeline("pipelines/sample.yaml", output="out/rwa")  # doctest: +SKIP
    >>> gp.write_report_html(result.output)  # doctest: +SKIP
    PosixPath('out/rwa/report.html')
    """
    from geopipe.io.atomic import atomic_write_text

    run = Path(run_dir)
    manifest_path = run / "manifest.json"
    if not manifest_path.is_file():
        raise MissingFileError(
            problem(
                f"run folder '{run}'",
                "has no manifest.json",
                "pass a folder written by geopipe run",
                where="write_report_html",
            )
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    catalog = _catalog(run)
    layers = _layers(run, catalog)
    data = {"levels": [layer["map"] for layer in layers], "noData": NO_DATA}
    body = [
        _header(manifest, layers),
        _quality(manifest),
        *[_level_section(i, layer) for i, layer in enumerate(layers)],
        _inputs(manifest),
    ]
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>geopipe run {_e(manifest.get('run'))}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "<div id='tip'></div><script id='mapdata' type='application/json'>"
        + json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        + f"</script><script>{SCRIPT}</script></body></html>\n"
    )
    return atomic_write_text(run / "report.html", page)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _catalog(run: Path) -> dict[str, dict[str, Any]]:
    path = run / "dim_indicator.parquet"
    if not path.is_file():
        return {}
    import pandas as pd

    table = pd.read_parquet(path)
    return {str(r["indicator_id"]): r for r in table.to_dict("records")}


def _layers(run: Path, catalog: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per admin level and grid file: its table, indicator columns and map data."""
    found = []
    for path in sorted(run.glob("*.parquet")):
        level, grid = _LEVEL.match(path.name), _GRID.match(path.name)
        if level:
            found.append((0, int(level.group(1)), path, f"Admin level {level.group(1)}"))
        elif grid:
            found.append((1, int(grid.group(1)), path, f"H3 resolution {grid.group(1)}"))
    return [_layer(path, title, catalog, grid=g == 1) for g, _, path, title in sorted(found)]


def _layer(
    path: Path, title: str, catalog: dict[str, dict[str, Any]], *, grid: bool
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    schema = meta.schema.to_arrow_schema()
    names = [c for c in schema.names if c not in ("geometry", "bbox")]
    layer: dict[str, Any] = {"title": title, "file": path.name, "catalog": catalog, "grid": grid}
    if meta.num_rows > MAX_MAP_FEATURES:  # summarised a column at a time, not mapped
        cols = _indicator_columns(names, schema, catalog)
        stats = {c: _stats(pq.read_table(path, columns=[c]).column(0).to_numpy()) for c in cols}
        empty = {"w": 1, "h": 1, "xy": [], "rings": [0], "units": [0], "maps": [], "labels": []}
        return {
            **layer,
            "frame": None,
            "rows": meta.num_rows,
            "columns": cols,
            "stats": stats,
            "map": empty,
        }
    import shapely

    table = pq.read_table(path)  # the run's GeoParquet is EPSG:4326 (contract): WKB is enough
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    frame = table.select(names).to_pandas()
    cols = _indicator_columns(names, schema, catalog)
    values = frame[cols].to_numpy(dtype="float64", na_value=np.nan)
    label = frame["name"] if "name" in frame else frame.get("cell_id", frame.index)
    k = int(min(len(PALETTE), max(2, len(frame))))  # no more classes than units
    data: dict[str, Any] = {
        **encode_geometry(geoms),
        "labels": label.astype(str).tolist(),
        "maps": [
            {**classify(values[:, j], k), "id": c, "name": _label(catalog, c)}
            for j, c in enumerate(cols)
        ],
    }
    if len(frame) <= MAX_TOOLTIP_VALUES:  # big grids: the tooltip shows the class instead
        data["values"] = {c: significant(values[:, j]) for j, c in enumerate(cols)}
    stats = {c: _stats(values[:, j]) for j, c in enumerate(cols)}
    return {
        **layer,
        "frame": frame,
        "rows": len(frame),
        "columns": cols,
        "stats": stats,
        "map": data,
    }


def _indicator_columns(names: list[str], schema: Any, catalog: dict[str, Any]) -> list[str]:
    """The catalog's columns of a table, or (no catalog) its floating-point columns."""
    import pyarrow as pa

    return [c for c in names if c in catalog] or [
        c for c in names if pa.types.is_floating(schema.field(c).type)
    ]


def _stats(values: Any) -> tuple[float, float, float, int, int]:
    """min, median, max of the finite values, their count and the count of all values."""
    v = np.asarray(values, dtype="float64")
    ok = v[np.isfinite(v)]
    if not ok.size:
        return (float("nan"),) * 3 + (0, len(v))
    return float(ok.min()), float(np.median(ok)), float(ok.max()), int(ok.size), len(v)


def _label(catalog: dict[str, dict[str, Any]], col: str) -> str:
    rec = catalog.get(col)
    return f"{rec['name']} ({rec['unit']})" if rec is not None else col


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "<span class='na'>–</span>"
    if isinstance(x, float):
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.3g}"
    if isinstance(x, int | np.integer) and not isinstance(x, bool):
        return f"{x:,}"
    return _e(x)


def _header(manifest: dict[str, Any], layers: list[dict[str, Any]]) -> str:
    timings = manifest.get("timings") or {}
    nav = " · ".join(
        f"<a href='#level{i}'>{_e(layer['title'])}</a>" for i, layer in enumerate(layers)
    )
    return (
        f"<header><h1>geopipe run <code>{_e(manifest.get('run'))}</code></h1>"
        f"<p>run id <code>{_e(manifest.get('run_id'))}</code> · started {_e(manifest.get('started'))}"
        f" · finished {_e(manifest.get('finished'))} · {sum(timings.values()):.1f} s of steps</p>"
        f"<nav><a href='#quality'>Data quality</a> · {nav} · <a href='#inputs'>Inputs and timings</a>"
        "</nav></header>"
    )


def _quality(manifest: dict[str, Any]) -> str:
    checks = (manifest.get("quality") or {}).get("checks") or []
    order = {"fail": 0, "warn": 1, "pass": 2}
    checks = sorted(checks, key=lambda c: (order.get(c.get("level"), 3), str(c.get("check_id"))))
    counts = {lv: sum(c.get("level") == lv for c in checks) for lv in ("fail", "warn", "pass")}

    def table(rows: list[dict[str, Any]]) -> str:
        body = "".join(
            f"<tr class='{_e(c.get('level'))}'><td>{_e(c.get('level'))}</td>"
            f"<td><code>{_e(c.get('check_id'))}</code></td><td>{_e(c.get('source'))}</td>"
            f"<td class='n'>{_num(c.get('rows_affected'))}</td><td>{_e(c.get('message'))}</td></tr>"
            for c in rows
        )
        return (
            "<table><thead><tr><th>level</th><th>check</th><th>source</th><th>rows</th>"
            f"<th>message</th></tr></thead><tbody>{body}</tbody></table>"
        )

    flagged = [c for c in checks if c.get("level") != "pass"]
    passed = [c for c in checks if c.get("level") == "pass"]
    badges = " ".join(f"<span class='badge {lv}'>{n} {lv}</span>" for lv, n in counts.items())
    return (
        f"<section id='quality'><h2>Data quality</h2><p>{len(checks)} checks: {badges}</p>"
        + _privacy(manifest)
        + (table(flagged) if flagged else "<p>Every check passed.</p>")
        + (f"<details><summary>{len(passed)} checks passed</summary>{table(passed)}</details>")
        + "</section>"
    )


def _privacy(manifest: dict[str, Any]) -> str:
    """Small-number suppression and skipped indicators, as recorded in the manifest."""
    quality = manifest.get("quality") or {}
    items = []
    for key in sorted(k for k in quality if k.startswith("suppression")):
        rec = quality[key] if isinstance(quality[key], dict) else {}
        where = "admin tables" if key == "suppression" else key.removeprefix("suppression_")
        facts = ", ".join(f"{_e(k)} {_num(v)}" for k, v in sorted(rec.items()))
        items.append(f"<li>Small-number suppression, {_e(where)}: {facts}</li>")
    skipped = quality.get("skipped_indicators") or {}
    for ind, why in sorted(skipped.items()):
        items.append(f"<li>Indicator <code>{_e(ind)}</code> not computed: {_e(why)}</li>")
    return f"<ul class='note'>{''.join(items)}</ul>" if items else ""


def _level_section(i: int, layer: dict[str, Any]) -> str:
    frame, cols, catalog, rows = layer["frame"], layer["columns"], layer["catalog"], layer["rows"]
    if frame is None:
        cards = (
            f"<p class='note'>{rows:,} units: more than {MAX_MAP_FEATURES:,}, not mapped here; "
            f"open {_e(layer['file'])} in a GIS or BI tool.</p>"
        )
    elif rows < 2:  # a one-unit map is one colour: the table says it all
        cards = "<p class='note'>One unit: no maps (see the table).</p>"
    else:
        cards = "".join(
            f"<figure class='map'><figcaption>{_e(m['name'])}</figcaption>"
            f"<canvas data-level='{i}' data-map='{j}'></canvas>"
            f"<div class='legend' data-level='{i}' data-map='{j}'></div></figure>"
            for j, m in enumerate(layer["map"]["maps"])
        )
    return (
        f"<section id='level{i}'><h2>{_e(layer['title'])} <small>{_e(layer['file'])}, "
        f"{rows:,} units</small></h2>{_summary_table(layer['stats'], catalog)}"
        f"{'' if layer['grid'] or frame is None else _unit_table(frame, cols)}"
        f"<div class='maps'>{cards}</div></section>"
    )


def _summary_table(
    stats: dict[str, tuple[float, float, float, int, int]], catalog: dict[str, dict[str, Any]]
) -> str:
    rows = []
    for c, (lo, mid, hi, ok, n) in stats.items():
        unit = catalog.get(c, {}).get("unit", "")
        rows.append(
            f"<tr><td><code>{_e(c)}</code></td><td>{_e(unit)}</td>"
            + "".join(f"<td class='n'>{_num(x)}</td>" for x in (lo, mid, hi))
            + f"<td class='n'>{ok:,} / {n:,}</td></tr>"
        )
    return (
        "<details open><summary>Indicators: range over the units</summary><table><thead><tr>"
        "<th>indicator</th><th>unit</th><th>min</th><th>median</th><th>max</th>"
        f"<th>units with a value</th></tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def _unit_table(frame: Any, cols: list[str]) -> str:
    keys = [c for c in ("ucode", "name", "cell_id") if c in frame]
    shown = frame.head(MAX_TABLE_ROWS)
    note = (
        f"<p class='note'>First {MAX_TABLE_ROWS:,} of {len(frame):,} units; the file has all.</p>"
        if len(frame) > MAX_TABLE_ROWS
        else ""
    )
    head = "".join(f"<th>{_e(c)}</th>" for c in keys + cols)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_e(r[k])}</td>" for k in keys)
        + "".join(f"<td class='n'>{_num(r[c])}</td>" for c in cols)
        + "</tr>"
        for r in shown[keys + cols].to_dict("records")
    )
    return (
        f"<details><summary>Indicators per unit</summary>{note}<div class='wide'><table>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></details>"
    )


def _inputs(manifest: dict[str, Any]) -> str:
    inputs = "".join(
        f"<tr><td>{_e(role)}</td><td>{_e(Path(str(rec.get('path'))).name)}</td>"
        f"<td class='n'>{_num(rec.get('size'))}</td><td><code>{_e(str(rec.get('sha256'))[:16])}</code></td></tr>"
        for role, rec in sorted((manifest.get("inputs") or {}).items())
    )
    timings = sorted((manifest.get("timings") or {}).items(), key=lambda kv: -kv[1])
    total = sum(v for _, v in timings) or 1.0
    steps = "".join(
        f"<tr><td>{_e(k)}</td><td class='n'>{v:.2f} s</td><td><span class='bar' "
        f"style='width:{100 * v / total:.0f}%'></span></td></tr>"
        for k, v in timings
    )
    versions = ", ".join(
        f"{_e(k)} {_e(v)}" for k, v in sorted((manifest.get("packages") or {}).items()) if v
    )
    return (
        "<section id='inputs'><h2>Inputs and timings</h2><div class='cols'><div><h3>Inputs</h3>"
        "<table><thead><tr><th>role</th><th>file</th><th>bytes</th><th>sha256</th></tr></thead>"
        f"<tbody>{inputs}</tbody></table></div><div><h3>Timings</h3><table><tbody>{steps}"
        f"</tbody></table></div></div><p class='note'>Versions: {versions}</p></section>"
    )
