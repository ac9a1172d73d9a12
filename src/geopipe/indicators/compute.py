"""Indicator values from a unit table that carries the aggregated measures."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import GeopipeWarning, InputError, MissingColumnError, problem
from .catalog import Indicator, get_indicators

__all__ = ["FACT_COLUMNS", "IndicatorResult", "compute_indicators"]

WHERE = "compute_indicators"
FACT_COLUMNS = ["ucode", "admin_level", "indicator_id", "date", "value", "unit", "suppressed"]


class IndicatorResult(NamedTuple):
    """What :func:`compute_indicators` returns: ``fact, wide, skipped = gp.compute_indicators(...)``."""

    fact: pd.DataFrame
    """Long ``fact_indicator`` rows: ucode, admin_level, indicator_id, date, value, unit, suppressed."""
    wide: pd.DataFrame
    """The input units with one column per computed indicator (a GeoDataFrame when the input is)."""
    skipped: dict[str, str]
    """Indicator id -> why it was not computed (missing input columns)."""


def compute_indicators(
    units: pd.DataFrame,
    ids: list[str] | tuple[str, ...] | None = None,
    *,
    date: str | dt.date | None = None,
    key: str | None = None,
    catalog: Mapping[str, Indicator] | None = None,
    long: bool = True,
) -> IndicatorResult:
    """Compute catalog indicators on any unit table (admin units, H3 cells, fragments).

    A ``sum`` indicator is read from the column of the same name (``population_total``,
    ``health_facilities``, ...), or derived from a total and a share column when the catalog says so
    (``population_u18 = population_total x share_u18``). Ratios and weighted means are computed from
    the sums they reference, which are added to the output too so that they can be rolled up.
    Indicators whose inputs are missing are skipped with a :class:`GeopipeWarning` and listed in
    ``result.skipped``; ids asked for explicitly that cannot be computed are skipped the same way.

    Parameters
    ----------
    units
        Table with a key column (``ucode`` by default, else ``cell_id``) and measure columns.
    ids
        Indicator ids to compute (default: every catalog indicator whose inputs are present).
    date
        Reference date of the inputs (``YYYY-MM-DD``), stored on every value (default: today).
    key
        Column identifying a unit (default ``ucode``, or ``cell_id`` when there is no ``ucode``).
    catalog
        The indicator definitions to use (``{id: Indicator}``, e.g. a pipeline's
        :meth:`~geopipe.Pipeline.catalog`); default: the built-in catalog.
    long
        ``False``: leave ``fact`` empty (its columns, no rows) when only ``wide`` is wanted, e.g.
        for a grid of 10⁵ fragments, where the long table would be 10⁶ rows built for nothing.

    Examples
    --------
    >>> import pandas as pd, geopipe as gp
    >>> units = pd.DataFrame({"ucode": ["A_V1", "B_V1"], "schools_total": [4, 0],
    ...                       "schools_connected": [1, 0]})
    >>> fact, wide, skipped = gp.compute_indicators(units, ["schools_connected_share"], date="2024-01-01")
    >>> wide["schools_connected_share"].tolist()
    [0.25, nan]
    """
    key = key or (
        "ucode" if "ucode" in units.columns else "cell_id" if "cell_id" in units.columns else None
    )
    if key is None or key not in units.columns:
        raise MissingColumnError(
            problem(
                "units",
                f"have no key column (columns: {list(map(str, units.columns))})",
                "add 'ucode' or 'cell_id', or pass key=",
                where=WHERE,
            )
        )
    if units[key].duplicated().any():
        raise InputError(
            problem(
                f"units[{key!r}]",
                "has duplicate values",
                "aggregate fragments first (gp.rollup) or pass a unique key",
                where=WHERE,
            )
        )
    day = _as_date(date)
    wanted = _select(catalog, ids)
    needed = _with_dependencies(wanted, catalog)
    values: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for ind in needed.values():  # catalog order puts sums before the ratios that use them
        got = _compute_one(ind, units, values)
        if isinstance(got, str):
            skipped[ind.id] = got
        else:
            values[ind.id] = got
    asked = [i for i in skipped if i in wanted]
    if ids is not None and asked:  # with ids=None, skipping what has no input is expected
        msg = "; ".join(f"{i}: {skipped[i]}" for i in asked)
        warnings.warn(
            f"{WHERE}: skipped {len(asked)} indicators whose inputs are missing — {msg}",
            GeopipeWarning,
            stacklevel=2,
        )

    wide = units.copy()
    for ind_id, arr in values.items():
        wide[ind_id] = arr
    fact = _to_fact(units, key, values if long else {}, needed, day)
    return IndicatorResult(
        fact=fact, wide=wide, skipped={k: v for k, v in skipped.items() if k in wanted}
    )


def _select(catalog: Mapping[str, Indicator] | None, ids: Any) -> dict[str, Indicator]:
    return get_indicators(ids, catalog)


def _with_dependencies(
    wanted: dict[str, Indicator], catalog: Mapping[str, Indicator] | None = None
) -> dict[str, Indicator]:
    deps = {d for ind in wanted.values() for d in ind.depends_on}
    chosen = _select(catalog, [*wanted, *sorted(deps - set(wanted))])
    # sums first: ratios and weighted means are computed from them
    return dict(sorted(chosen.items(), key=lambda kv: kv[1].aggregation != "sum"))


def _compute_one(
    ind: Indicator, units: pd.DataFrame, done: dict[str, np.ndarray]
) -> np.ndarray | str:
    if ind.aggregation == "sum":
        col = ind.source_column
        if col in units.columns:
            return _numeric(units[col], col)
        if ind.derive:
            base, share = ind.derive["from"], ind.derive["share"]
            base_values = done.get(base)
            if base_values is None and base in units.columns:
                base_values = _numeric(units[base], base)
            if base_values is not None and share in units.columns:
                return base_values * _numeric(units[share], share)
            return f"needs column {col!r}, or {base!r} and {share!r}"
        return f"needs column {col!r}"
    if ind.aggregation == "ratio":
        missing = [r for r in (ind.numerator, ind.denominator) if r not in done]
        if missing:
            return f"needs {missing}"
        num, den = done[ind.numerator], done[ind.denominator]  # type: ignore[index]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / den * ind.scale, np.nan)
    # weighted_mean: the mean is a column; the weight must be computable so that it rolls up
    col = ind.source_column
    if col not in units.columns:
        return f"needs column {col!r}"
    if ind.weight not in done:
        return f"needs its weight {ind.weight!r}"
    return _numeric(units[col], col)


def _numeric(series: pd.Series, col: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        raise InputError(
            problem(
                f"column {col!r}",
                f"has {int(bad.sum())} non-numeric values (e.g. {series[bad].iloc[0]!r})",
                "clean the measure",
                where=WHERE,
            )
        )
    return values.to_numpy(dtype="float64")


def _as_date(date: str | dt.date | None) -> dt.date:
    if date is None:
        return dt.date.today()
    try:
        return pd.Timestamp(date).date()
    except (ValueError, TypeError) as exc:
        raise InputError(
            problem("date", f"was {date!r}", "use an ISO date like '2024-01-31'", where=WHERE)
        ) from exc


def _to_fact(
    units: pd.DataFrame,
    key: str,
    values: dict[str, np.ndarray],
    catalog: dict[str, Indicator],
    day: dt.date,
) -> pd.DataFrame:
    if not values:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _fact_dtypes().items()})
    ids = list(values)
    n = len(units)
    levels = units["admin_level"].to_numpy() if "admin_level" in units.columns else np.full(n, -1)
    fact = pd.DataFrame(
        {
            "ucode": np.tile(units[key].astype(str).to_numpy(), len(ids)),
            "admin_level": np.tile(np.asarray(levels, dtype="int64"), len(ids)),
            "indicator_id": np.repeat(ids, n),
            "date": [day] * (n * len(ids)),
            "value": np.concatenate([values[i] for i in ids]),
            "unit": np.repeat([catalog[i].unit for i in ids], n),
            "suppressed": np.zeros(n * len(ids), dtype=bool),
        }
    )
    return fact.astype(_fact_dtypes())


def _fact_dtypes() -> dict[str, Any]:
    return {
        "ucode": "str",
        "admin_level": "int64",
        "indicator_id": "str",
        "date": "object",
        "value": "float64",
        "unit": "str",
        "suppressed": "bool",
    }
