"""Quality results for people (Markdown) and machines (JSON), and the gate that stops a run."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import DataQualityError
from .checks import CheckResult

__all__ = [
    "check_inputs",
    "quality_report",
    "raise_on_fail",
    "results_to_json",
    "results_to_records",
    "summarise",
]

_ICON = {"pass": "pass", "warn": "**warn**", "fail": "**FAIL**"}


def summarise(results: Iterable[CheckResult]) -> dict[str, int]:
    """Count results per level: ``{"pass": n, "warn": n, "fail": n}``."""
    counts = {"pass": 0, "warn": 0, "fail": 0}
    for r in results:
        counts[r.level] += 1
    return counts


def results_to_records(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    """JSON-able dicts, one per result (for ``manifest.json``'s quality section)."""
    return [r.to_dict() for r in results]


def results_to_json(results: Iterable[CheckResult], *, indent: int | None = 2) -> str:
    """The results as a JSON document: ``{"summary": {...}, "results": [...]}``.

    Examples
    --------
    >>> from geopipe.quality.checks import CheckResult
    >>> text = results_to_json([CheckResult("admin.gap", "warn", "adm2.geojson", 1, "gap")], indent=None)
    >>> json.loads(text)["summary"]
    {'pass': 0, 'warn': 1, 'fail': 0}
    """
    results = list(results)
    doc = {"summary": summarise(results), "results": results_to_records(results)}
    return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def quality_report(
    results: Iterable[CheckResult],
    *,
    title: str = "Data quality report",
    quarantined: dict[str, int] | None = None,
) -> str:
    """A Markdown report: a summary, then per source a table of checks (level, rows, message, examples).

    Parameters
    ----------
    results
        Results of the ``check_*`` functions.
    title
        First heading.
    quarantined
        Optional ``{source: rows quarantined}`` to list under the summary.

    Examples
    --------
    >>> from geopipe.quality.checks import CheckResult
    >>> print(quality_report([CheckResult("points.outside_boundaries", "warn", "rwi.csv", 51, "51 points outside")]))
    ... # doctest: +ELLIPSIS
    # Data quality report
    ...
    """
    results = list(results)
    counts = summarise(results)
    lines = [
        f"# {title}",
        "",
        f"{len(results)} checks: {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail.",
        "",
    ]
    problems = [r for r in results if r.level != "pass"]
    if problems:
        lines += ["## Needs attention", ""]
        lines += [
            f"- {_ICON[r.level]} `{r.check_id}` on {r.source}: {r.message}"
            for r in sorted(problems, key=lambda r: (r.level != "fail", r.source))
        ]
        lines.append("")
    if quarantined:
        lines += ["## Quarantined rows", "", "| source | rows |", "|---|---:|"]
        lines += [f"| {_cell(s)} | {n:,} |" for s, n in sorted(quarantined.items())]
        lines.append("")
    by_source: dict[str, list[CheckResult]] = {}
    for r in results:
        by_source.setdefault(r.source, []).append(r)
    for source, rows in by_source.items():
        lines += [
            f"## {source}",
            "",
            "| check | level | rows | message | examples |",
            "|---|---|---:|---|---|",
        ]
        for r in rows:
            examples = ", ".join(f"`{e}`" for e in r.examples[:5])
            lines.append(
                f"| `{r.check_id}` | {_ICON[r.level]} | {r.rows_affected:,} | {_cell(r.message)} | {_cell(examples)} |"
            )
        lines.append("")
    return "\n".join(lines)


def raise_on_fail(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Raise :class:`~geopipe.errors.DataQualityError` listing every failing check at once.

    Returns the results unchanged when none fails (so it can be chained).

    Examples
    --------
    >>> from geopipe.quality.checks import CheckResult
    >>> raise_on_fail([CheckResult("admin.crs", "fail", "adm.shp", 3, "no CRS")])
    Traceback (most recent call last):
    ...
    geopipe.errors.DataQualityError: 1 data-quality check failed: admin.crs on adm.shp (3 rows): no CRS; fix: correct the inputs, or lower the check's level with levels={'<check_id>': 'warn'}
    """
    results = list(results)
    failed = [r for r in results if r.level == "fail"]
    if failed:
        listed = "; ".join(
            f"{r.check_id} on {r.source} ({r.rows_affected:,} rows): {r.message}" for r in failed
        )
        noun = "check" if len(failed) == 1 else "checks"
        raise DataQualityError(
            f"{len(failed)} data-quality {noun} failed: {listed}; "
            "fix: correct the inputs, or lower the check's level with levels={'<check_id>': 'warn'}"
        )
    return results


def check_inputs(cfg: Any, admin: Any) -> tuple[list[CheckResult], dict[str, Any]]:
    """Run every input check of a pipeline config: boundaries, rasters, point layers, tile layers.

    Options come from the config's ``quality:`` section (all optional): ``levels`` (``{check_id:
    "warn"|"fail"}``), ``tolerance``, ``area_tolerance``, ``min_decimals``, ``coverage_tolerance``
    and ``allowed`` (``{point layer name: {column: values}}``). Tile layers (``wealth.tiles``,
    ``connectivity.tiles``) are checked as points at their tile centres, with the quadkey as id.

    Parameters
    ----------
    cfg
        A :class:`~geopipe.config.PipelineConfig`.
    admin
        The ``dim_admin`` table read from ``cfg`` (points are checked against its finest level).

    Returns
    -------
    (results, quarantine)
        The check results, and ``{source file name: quarantine table}`` for the rows the readers
        left out (write them with :func:`geopipe.quality.quarantine.write_quarantine`).

    Examples
    --------
    >>> results, quarantined = check_inputs(cfg, admin)  # doctest: +SKIP
    >>> text = quality_report(results, quarantined={k: len(v) for k, v in quarantined.items()})  # doctest: +SKIP
    """
    import warnings
    from pathlib import Path

    import geopandas as gpd
    import shapely

    from ..errors import GeopipeWarning
    from ..io.points import read_points
    from .boundaries import check_admin
    from .points import check_points
    from .quarantine import rejected_to_quarantine
    from .rasters import check_raster

    opts = dict(getattr(cfg, "quality", None) or {})
    levels = opts.get("levels")
    allowed = opts.get("allowed") or {}
    results = check_admin(
        admin,
        tolerance=float(opts.get("tolerance", 0.01)),
        area_tolerance=float(opts.get("area_tolerance", 0.001)),
        levels=levels,
    )
    finest = admin[admin["admin_level"] == admin["admin_level"].max()]
    for path in dict(cfg.rasters).values():
        results += check_raster(
            path,
            admin=admin,
            coverage_tolerance=float(opts.get("coverage_tolerance", 0.01)),
            levels=levels,
        )
    quarantined: dict[str, Any] = {}
    min_decimals = int(opts.get("min_decimals", 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)  # the readers' warnings become results here
        for layer in cfg.points:
            points = read_points(layer.source, **layer.options)
            name = Path(str(layer.source)).name
            results += check_points(
                points,
                admin=finest,
                min_decimals=min_decimals,
                allowed=allowed.get(layer.name),
                source=name,
                levels=levels,
            )
            rejected = rejected_to_quarantine(points, name)
            if len(rejected):
                quarantined[name] = rejected
        for spec in (getattr(cfg, "wealth", None), getattr(cfg, "connectivity", None)):
            if not spec or not spec.get("tiles"):
                continue
            kind = spec.get("kind", "tiles")
            if kind == "raster":
                results += check_raster(spec["tiles"], admin=finest, levels=levels)
                continue
            if kind == "points":
                from ..io.points import read_points

                layer_points = read_points(spec["tiles"])
                ids = layer_points["point_id"].astype(str).to_numpy()
                geoms = layer_points.geometry.to_numpy()
            else:
                from ..io.tiles import read_tiles

                tiles = read_tiles(spec["tiles"], zoom=spec.get("zoom"))
                ids = tiles["quadkey"].astype(str).to_numpy()
                geoms = shapely.centroid(tiles.geometry.to_numpy())
            centres = gpd.GeoDataFrame({"point_id": ids}, geometry=geoms, crs=4326)
            results += check_points(
                centres,
                admin=finest,
                min_decimals=0,
                source=Path(str(spec["tiles"])).name,
                levels=levels,
            )
    return results, quarantined
