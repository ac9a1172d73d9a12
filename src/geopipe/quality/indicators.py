"""Checks on the ``fact_indicator`` table: value ranges, ratios, privacy and change alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, MissingColumnError, problem
from .checks import CheckResult, check_levels, make_result

__all__ = ["catalog_entries", "check_indicators"]

WHERE = "check_indicators"


def catalog_entries(catalog: Any = None) -> dict[str, dict[str, Any]]:
    """Catalog as ``{indicator_id: {aggregation, unit, numerator, denominator, weight, sensitive, scale}}``.

    ``catalog`` may be None (the packaged catalog), the ``dim_indicator`` DataFrame, or a mapping
    ``{id: Indicator}`` from :func:`geopipe.indicators.catalog.get_indicators`.
    """
    if catalog is None:
        from ..indicators.catalog import get_indicators

        catalog = get_indicators()
    if isinstance(catalog, pd.DataFrame):
        need = {"indicator_id", "aggregation"}
        if not need <= set(catalog.columns):
            raise MissingColumnError(
                problem(
                    "catalog",
                    f"lacks {sorted(need - set(catalog.columns))}",
                    "pass gp.indicator_catalog()",
                    where=WHERE,
                )
            )
        rows = catalog.to_dict(orient="records")
        return {
            str(r["indicator_id"]): {
                "aggregation": r["aggregation"],
                "unit": r.get("unit"),
                "numerator": _none(r.get("numerator")),
                "denominator": _none(r.get("denominator")),
                "weight": _none(r.get("weight")),
                "sensitive": bool(r.get("sensitive", False)),
                "scale": float(r.get("scale", 1.0) or 1.0),
            }
            for r in rows
        }
    if isinstance(catalog, Mapping):
        return {
            str(k): {
                "aggregation": v.aggregation,
                "unit": v.unit,
                "numerator": v.numerator,
                "denominator": v.denominator,
                "weight": v.weight,
                "sensitive": bool(v.sensitive),
                "scale": float(v.scale),
            }
            for k, v in catalog.items()
        }
    raise InputError(
        problem(
            "catalog",
            f"is a {type(catalog).__name__}",
            "pass gp.indicator_catalog() or None",
            where=WHERE,
        )
    )


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def check_indicators(
    fact: pd.DataFrame,
    *,
    catalog: Any = None,
    previous: pd.DataFrame | None = None,
    max_change: float = 0.25,
    source: str = "fact_indicator",
    levels: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Check indicator values: shares in [0, 1], no negative counts, numerator <= denominator,
    no value published where ``suppressed``, and changes against a previous run.

    Parameters
    ----------
    fact
        ``fact_indicator`` rows (``ucode, indicator_id, date, value``; ``suppressed`` optional).
    catalog
        ``dim_indicator`` (default: the packaged catalog).
    previous
        The previous run's ``fact_indicator``; the latest date of each is compared per
        (ucode, indicator_id).
    max_change
        Relative change (0.25 = 25 %) above which ``indicators.change`` flags a value.
    source
        Name used in the results.
    levels
        Override a check's level, e.g. ``{"indicators.change": "fail"}`` to stop the run.

    Returns
    -------
    list of CheckResult

    Examples
    --------
    >>> import pandas as pd
    >>> fact = pd.DataFrame({"ucode": ["A"], "indicator_id": ["child_poverty_rate"],
    ...                      "date": ["2024-01-01"], "value": [1.4]})
    >>> [r.level for r in check_indicators(fact) if r.check_id == "indicators.share_out_of_range"]
    ['fail']
    """
    missing = [c for c in ("ucode", "indicator_id", "value") if c not in fact.columns]
    if missing:
        raise MissingColumnError(
            problem(
                "fact", f"has no column(s) {missing}", "pass the fact_indicator table", where=WHERE
            )
        )
    if not max_change > 0:
        raise InputError(
            problem(
                "max_change", f"was {max_change}", "use a positive share, e.g. 0.25", where=WHERE
            )
        )
    lv = check_levels(levels, WHERE)
    cat = catalog_entries(catalog)
    value = pd.to_numeric(fact["value"], errors="coerce")
    ind = fact["indicator_id"].astype(str)
    key = fact["ucode"].astype(str) + " " + ind
    unit = ind.map({k: v["unit"] for k, v in cat.items()})
    agg = ind.map({k: v["aggregation"] for k, v in cat.items()})

    share_bad = (unit == "share") & value.notna() & ((value < -1e-12) | (value > 1 + 1e-9))
    neg = (agg == "sum") & value.notna() & (value < 0)
    out = [
        make_result(
            "indicators.share_out_of_range",
            source,
            int(share_bad.sum()),
            default="fail",
            levels=lv,
            bad=f"{int(share_bad.sum())} share values are outside [0, 1]; check the numerator and denominator inputs",
            ok="shares are within [0, 1]",
            examples=key[share_bad],
        ),
        make_result(
            "indicators.negative_count",
            source,
            int(neg.sum()),
            default="fail",
            levels=lv,
            bad=f"{int(neg.sum())} count values are negative; check the rasters' nodata and the inputs",
            ok="no negative counts",
            examples=key[neg],
        ),
        _numerator_check(fact, value, cat, source, lv),
    ]
    if "suppressed" in fact.columns:
        leak = fact["suppressed"].fillna(False).astype(bool) & value.notna()
        out.append(
            make_result(
                "indicators.suppressed_value_published",
                source,
                int(leak.sum()),
                default="fail",
                levels=lv,
                bad=f"{int(leak.sum())} rows are marked suppressed but still carry a value; run suppress_small_counts last",
                ok="suppressed rows carry no value",
                examples=key[leak],
            )
        )
    if previous is not None:
        out.append(_change_check(fact, previous, max_change, source, lv))
    return out


def _numerator_check(
    fact: pd.DataFrame,
    value: pd.Series,
    cat: dict[str, dict[str, Any]],
    source: str,
    lv: dict[str, str],
) -> CheckResult:
    frame = fact.assign(_v=value)
    dates = ["date"] if "date" in fact.columns else []
    n_bad = 0
    examples: list[str] = []
    for ind_id, entry in cat.items():
        if entry["aggregation"] != "ratio" or entry["unit"] != "share":
            continue
        num = frame[frame["indicator_id"] == entry["numerator"]]
        den = frame[frame["indicator_id"] == entry["denominator"]]
        if num.empty or den.empty:
            continue
        both = num[["ucode", *dates, "_v"]].merge(
            den[["ucode", *dates, "_v"]], on=["ucode", *dates], suffixes=("_n", "_d")
        )
        bad = both["_v_n"] > both["_v_d"] * (1 + 1e-9) + 1e-9
        n_bad += int(bad.sum())
        examples += [f"{u} {ind_id}" for u in both.loc[bad, "ucode"].astype(str)]
    return make_result(
        "indicators.numerator_gt_denominator",
        source,
        n_bad,
        default="fail",
        levels=lv,
        bad=f"{n_bad} units have a share's numerator above its denominator (e.g. more connected schools than schools); "
        "check the inputs of both counts",
        ok="numerators do not exceed denominators",
        examples=examples,
    )


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    if "date" not in frame.columns or frame.empty:
        return frame
    dates = pd.to_datetime(frame["date"].astype(str), errors="coerce")
    return frame[dates == dates.max()]


def _change_check(
    fact: pd.DataFrame, previous: pd.DataFrame, max_change: float, source: str, lv: dict[str, str]
) -> CheckResult:
    missing = [c for c in ("ucode", "indicator_id", "value") if c not in previous.columns]
    if missing:
        raise MissingColumnError(
            problem(
                "previous",
                f"has no column(s) {missing}",
                "pass the previous run's fact_indicator table",
                where=WHERE,
            )
        )
    new = _latest(fact)[["ucode", "indicator_id", "value"]]
    old = _latest(previous)[["ucode", "indicator_id", "value"]]
    both = new.merge(
        old, on=["ucode", "indicator_id"], how="outer", suffixes=("", "_prev"), indicator=True
    )
    cur = pd.to_numeric(both["value"], errors="coerce")
    prev = pd.to_numeric(both["value_prev"], errors="coerce")
    compared = (both["_merge"] == "both") & cur.notna() & prev.notna()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(
            prev.abs() > 0, (cur - prev).abs() / prev.abs(), np.where(cur.abs() > 0, np.inf, 0.0)
        )
    rel = pd.Series(rel, index=both.index)
    moved = compared & (rel > max_change)
    order = rel[moved].sort_values(ascending=False).index
    examples = [
        f"{both.at[i, 'ucode']} {both.at[i, 'indicator_id']}: {prev[i]:.6g} -> {cur[i]:.6g}"
        for i in order[:10]
    ]
    new_only = int((both["_merge"] == "left_only").sum())
    gone = int((both["_merge"] == "right_only").sum())
    return make_result(
        "indicators.change",
        source,
        int(moved.sum()),
        default="warn",
        levels=lv,
        bad=f"{int(moved.sum())} values moved by more than {max_change:.0%} since the previous run; check the inputs "
        "(set levels={'indicators.change': 'fail'} to stop the run on this)",
        ok=f"no value moved by more than {max_change:.0%} since the previous run",
        examples=examples,
        details={
            "compared": int(compared.sum()),
            "max_change": max_change,
            "new_rows": new_only,
            "dropped_rows": gone,
            "largest_change": float(rel[compared].replace(np.inf, np.nan).max())
            if compared.any()
            else None,
        },
    )
