"""The indicator catalog (``catalog.yaml`` beside this file) as typed objects and as ``dim_indicator``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import pandas as pd
import yaml

from ..errors import ConfigError, InputError, problem

__all__ = [
    "DIM_INDICATOR_COLUMNS",
    "FAMILIES",
    "Indicator",
    "catalog_markdown",
    "dim_indicator_table",
    "get_indicators",
    "indicator_catalog",
]

Aggregation = Literal["sum", "ratio", "weighted_mean"]
FAMILIES = ("population", "child_poverty", "connectivity", "service_coverage", "other")
DIM_INDICATOR_COLUMNS = [
    "indicator_id",
    "name",
    "unit",
    "description",
    "family",
    "aggregation",
    "numerator",
    "denominator",
    "weight",
    "scale",
    "sensitive",
    "params",
]


@dataclass(frozen=True)
class Indicator:
    """One catalog entry. ``column`` is the unit-table column a sum / weighted mean is read from."""

    id: str
    name: str
    unit: str
    family: str
    aggregation: Aggregation
    description: str
    sensitive: bool = False
    numerator: str | None = None
    denominator: str | None = None
    weight: str | None = None
    scale: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    derive: dict[str, str] | None = None
    column: str | None = None

    def render(self, values: dict[str, Any], params: dict[str, Any] | None = None) -> Indicator:
        """This entry with its ``{placeholders}`` filled from ``values`` (and ``params`` set).

        Examples
        --------
        >>> ind = get_indicators()["population_within_{distance}_{service}"]
        >>> ind.render({"distance": "2km", "service": "schools", "distance_text": "2 km",
        ...             "facility_name": "school", "facilities": "schools"}).id
        'population_within_2km_schools'
        """
        fill = _Fill(values)

        def f(text: str | None) -> str | None:
            return None if text is None else text.format_map(fill)

        return dataclasses.replace(
            self,
            id=f(self.id),
            name=f(self.name),
            description=f(self.description),
            numerator=f(self.numerator),
            denominator=f(self.denominator),
            weight=f(self.weight),
            column=f(self.column),
            params=dict(params if params is not None else self.params),
        )

    @property
    def source_column(self) -> str:
        return self.column or self.id

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Other indicators this one is computed (and rolled up) from."""
        refs = (self.numerator, self.denominator, self.weight)
        return tuple(r for r in refs if r is not None)


class _Fill(dict):
    """format_map values that leave unknown placeholders as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@cache
def _load() -> dict[str, Indicator]:
    text = (
        resources.files("geopipe.indicators").joinpath("catalog.yaml").read_text(encoding="utf-8")
    )
    entries = yaml.safe_load(text)
    out: dict[str, Indicator] = {}
    for entry in entries:
        ind = Indicator(**entry)
        if ind.id in out:
            raise ConfigError(
                problem(
                    "catalog.yaml",
                    f"lists {ind.id!r} twice",
                    "keep one entry",
                    where="indicator_catalog",
                )
            )
        out[ind.id] = ind
    _validate(out)
    return out


def _validate(catalog: dict[str, Indicator]) -> None:
    errors = []
    for ind in catalog.values():
        if ind.family not in FAMILIES:
            errors.append(f"{ind.id}: family {ind.family!r} not in {FAMILIES}")
        if ind.aggregation == "ratio" and not (ind.numerator and ind.denominator):
            errors.append(f"{ind.id}: a ratio needs numerator and denominator")
        if ind.aggregation == "weighted_mean" and not ind.weight:
            errors.append(f"{ind.id}: a weighted_mean needs a weight")
        for ref in ind.depends_on:
            if ref not in catalog or catalog[ref].aggregation != "sum":
                errors.append(f"{ind.id}: {ref!r} must be a sum indicator of the catalog")
    if errors:
        raise ConfigError(
            problem(
                "catalog.yaml",
                "is inconsistent: " + "; ".join(errors),
                "fix the entries",
                where="indicator_catalog",
            )
        )


def get_indicators(
    ids: list[str] | tuple[str, ...] | None = None,
    catalog: Mapping[str, Indicator] | None = None,
) -> dict[str, Indicator]:
    """Entries by id (all when ``ids`` is None), in catalog order; unknown ids raise.

    ``catalog`` is a run's own catalog (default: the built-in one).

    Examples
    --------
    >>> list(get_indicators(["population_total"]))
    ['population_total']
    """
    catalog = _load() if catalog is None else catalog
    if ids is None:
        return dict(catalog)
    unknown = [i for i in ids if i not in catalog]
    if unknown:
        raise InputError(
            problem(
                "indicator ids",
                f"{unknown} are not in the catalog",
                f"use ids from gp.indicator_catalog() or the pipeline's catalog: {sorted(catalog)}",
                where="indicators",
            )
        )
    wanted = set(ids)
    return {k: v for k, v in catalog.items() if k in wanted}


def dim_indicator_table(indicators: Iterable[Indicator]) -> pd.DataFrame:
    """The ``dim_indicator`` table of some catalog entries (one row each, params as JSON).

    Examples
    --------
    >>> dim_indicator_table(get_indicators(["population_total"]).values())["unit"].tolist()
    ['people']
    """
    rows = [
        {
            "indicator_id": ind.id,
            "name": ind.name,
            "unit": ind.unit,
            "description": ind.description,
            "family": ind.family,
            "aggregation": ind.aggregation,
            "numerator": ind.numerator,
            "denominator": ind.denominator,
            "weight": ind.weight,
            "scale": float(ind.scale),
            "sensitive": bool(ind.sensitive),
            "params": json.dumps(ind.params, sort_keys=True),
        }
        for ind in indicators
    ]
    return pd.DataFrame(rows, columns=DIM_INDICATOR_COLUMNS)


def indicator_catalog(family: str | None = None) -> pd.DataFrame:
    """The indicator catalog as the ``dim_indicator`` table.

    Parameters
    ----------
    family
        Keep one family (``population``, ``child_poverty``, ``connectivity``, ``service_coverage``).

    Examples
    --------
    >>> import geopipe as gp
    >>> cat = gp.indicator_catalog()
    >>> cat.set_index("indicator_id").loc["child_poverty_rate", "aggregation"]
    'ratio'
    """
    if family is not None and family not in FAMILIES:
        raise InputError(
            problem(
                "family", f"was {family!r}", f"use one of {FAMILIES}", where="indicator_catalog"
            )
        )
    return dim_indicator_table(
        ind for ind in _load().values() if family is None or ind.family == family
    )


_FAMILY_TITLES = {
    "population": "Population",
    "child_poverty": "Child poverty",
    "connectivity": "Connectivity",
    "service_coverage": "Service coverage",
    "other": "Other",
}
_ROLLUP_WORDS = {
    "sum": "sum of the children's values",
    "ratio": "Σ numerator / Σ denominator of the children (never a mean of ratios)",
    "weighted_mean": "Σ (value × weight) / Σ weight over the children",
}


def catalog_markdown() -> str:
    """``docs/indicators.md``, generated from the catalog (a test keeps the file in sync).

    Regenerate with ``python -m geopipe.indicators.catalog > docs/indicators.md``.
    """
    lines = [
        "# Indicators",
        "",
        "Generated from `src/geopipe/indicators/catalog.yaml` by `python -m geopipe.indicators.catalog`;",
        "do not edit by hand. The ids are a contract: BI reports rely on them.",
        "",
        "Every value is computed on the finest units (districts, or H3 cell fragments) and rolled up:",
        "sums add, ratios are recomputed from the rolled-up numerator and denominator, weighted means",
        "are re-weighted by the rolled-up weight. Indicators marked *sensitive* count children and are",
        "suppressed below a small-number threshold in published outputs.",
        "",
        "Ids with `{placeholders}` are templates filled by the step that publishes them with the",
        "parameters it ran with (docs/steps.md): `{distance}` is the distance in whole km (`5km`) or",
        "else in metres (`2500m`), `{service}` the step's service name, `{facility_name}` its",
        "facility noun. Values such as `{poverty_threshold}` are those of the run; a run's",
        "`dim_indicator` holds the filled-in text and the parameters in `params`.",
        "",
    ]
    catalog = {k: v.render({"raster_text": "", "layer_text": ""}) for k, v in _load().items()}
    for family in FAMILIES:
        if not any(ind.family == family for ind in catalog.values()):
            continue
        lines += [
            f"## {_FAMILY_TITLES[family]}",
            "",
            "| id | name | unit | formula | roll-up | parameters | sensitive |",
            "|---|---|---|---|---|---|---|",
        ]
        for ind in catalog.values():
            if ind.family != family:
                continue
            params = ", ".join(f"`{k}` = {v}" for k, v in sorted(ind.params.items())) or "—"
            rollup = _ROLLUP_WORDS[ind.aggregation]
            if ind.aggregation == "weighted_mean":
                rollup += f" (weight `{ind.weight}`)"
            lines.append(
                f"| `{ind.id}` | {ind.name} | {ind.unit} | {ind.description} | {rollup} | {params} | {'yes' if ind.sensitive else 'no'} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(catalog_markdown(), end="")
