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


def check_inputs(
    pipeline: Any, admin: Any, *, read: Any = None, steps: Any = None
) -> tuple[list[CheckResult], dict[str, Any]]:
    """Run the input checks of a pipeline: boundaries, and every source its steps read.

    Sources are checked as they were read (``read(name)``; default: read them here), so a run
    reads each file once. Options come from the pipeline's ``quality:`` settings (all optional):
    ``levels`` (``{check_id: "warn"|"fail"}``), ``tolerance``, ``area_tolerance``,
    ``min_decimals``, ``coverage_tolerance`` and ``allowed`` (``{points source: {column:
    values}}``). Rasters used as value layers may hold negative values; tile layers are checked as
    points at their tile centres, with the quadkey as id.

    Parameters
    ----------
    pipeline
        A :class:`~geopipe.Pipeline`.
    admin
        Its ``dim_admin`` table (points are checked against its finest level).
    read
        ``read(source name) -> data``, e.g. the run context's ``source``.
    steps
        The steps whose sources to check (default: every step).

    Returns
    -------
    (results, quarantine)
        The check results, and ``{source file name: quarantine table}`` for the rows the readers
        left out (write them with :func:`geopipe.quality.quarantine.write_quarantine`).

    Examples
    --------
    >>> results, quarantined = check_inputs(gp.Pipeline.from_yaml("pipelines/sample.yaml"), admin)  # doctest: +SKIP
    """
    from pathlib import Path

    import geopandas as gpd
    import shapely

    from .boundaries import check_admin
    from .points import check_points
    from .quarantine import rejected_to_quarantine
    from .rasters import check_raster

    if read is None:
        from ..pipeline.context import read_source

        cache: dict[str, Any] = {}

        def read(name: str) -> Any:
            if name not in cache:
                cache[name] = read_source(pipeline.sources[name])
            return cache[name]

    steps = list(pipeline.steps if steps is None else steps)
    q = dict(pipeline.quality or {})
    levels, allowed = q.get("levels"), q.get("allowed") or {}
    results = check_admin(
        admin,
        tolerance=float(q.get("tolerance", 0.01)),
        area_tolerance=float(q.get("area_tolerance", 0.001)),
        levels=levels,
    )
    finest = admin[admin["admin_level"] == admin["admin_level"].max()]
    layers = {getattr(s, "layer", None) for s in steps}
    quarantined: dict[str, Any] = {}
    from .checks import validate_check_levels
    from .hierarchy import check_hierarchy
    from .points import require_points_inside

    validate_check_levels(levels)
    population = next(
        (getattr(s, "raster", None) for s in steps if "population_total" in s.columns()), None
    )
    results += check_hierarchy(
        admin, population=read(population) if population else None, levels=levels
    )
    # the readers' warnings reach the user once (each source is read once) and become results
    for name in sorted({n for s in steps for n in s.sources().values()}):
        src = pipeline.sources[name]
        label = Path(str(src.path)).name
        if src.kind == "raster":
            results += check_raster(
                read(name),
                admin=finest if name in layers else admin,
                negative_allowed=name in layers,
                coverage_tolerance=float(q.get("coverage_tolerance", 0.01)),
                levels=levels,
            )
        elif src.kind == "points":
            points = read(name)
            require_points_inside(points, finest, source=label, where="check_inputs")
            results += check_points(
                points,
                admin=finest,
                min_decimals=int(q.get("min_decimals", 3)),
                allowed=allowed.get(name),
                source=label,
                levels=levels,
            )
            rejected = rejected_to_quarantine(points, label)
            if len(rejected):
                quarantined[label] = rejected
        elif src.kind == "tiles":
            tiles = read(name)
            require_points_inside(tiles, finest, source=label, where="check_inputs")
            centres = gpd.GeoDataFrame(
                {"point_id": tiles["quadkey"].astype(str).to_numpy()},
                geometry=shapely.centroid(tiles.geometry.to_numpy()),
                crs=4326,
            )
            results += check_points(
                centres, admin=finest, min_decimals=0, source=label, levels=levels
            )
    return results, quarantined
