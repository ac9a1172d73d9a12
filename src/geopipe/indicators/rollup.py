"""Roll indicator values up the admin hierarchy so that every level is consistent with the finest.

Rules (from the catalog's ``aggregation``):

* ``sum``: the parent's value is the sum of its children's.
* ``ratio``: recomputed from the rolled-up numerator and denominator — never a mean of ratios.
* ``weighted_mean``: ``sum(value x weight) / sum(weight)`` over the children, with the rolled-up
  weight indicator.

The finest level in the fact table is authoritative: parent values are sums of their children,
whatever the source's own parent polygons would give (see docs/indicators.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import InputError, MissingColumnError, problem
from .catalog import Indicator, get_indicators
from .compute import FACT_COLUMNS

__all__ = ["combine_units", "rollup"]

WHERE = "rollup"


def rollup(
    fact: pd.DataFrame,
    admin: pd.DataFrame,
    *,
    to_level: int = 0,
    catalog: Mapping[str, Indicator] | None = None,
) -> pd.DataFrame:
    """Add the rows of every admin level above the finest one, up to ``to_level``.

    Parameters
    ----------
    fact
        Long ``fact_indicator`` rows of the finest units (several rows for one ucode — e.g. cell
        fragments already labelled with their admin ucode — are first combined into one).
    admin
        The ``dim_admin`` table (``ucode``, ``admin_level``, ``parent_ucode``).
    to_level
        Highest level to produce (0 = country).
    catalog
        Indicator definitions (default: the built-in catalog), e.g. a pipeline's catalog.

    Returns
    -------
    pandas.DataFrame
        The input rows (combined per ucode) plus one row per (ancestor unit, indicator, date).

    Examples
    --------
    >>> import pandas as pd, geopipe as gp
    >>> admin = pd.DataFrame({"ucode": ["X_V1", "X_0001_V1", "X_0002_V1"], "admin_level": [0, 1, 1],
    ...                       "parent_ucode": [None, "X_V1", "X_V1"]})
    >>> units = pd.DataFrame({"ucode": ["X_0001_V1", "X_0002_V1"], "admin_level": [1, 1],
    ...                       "schools_total": [3, 1], "schools_connected": [3, 0]})
    >>> fact = gp.compute_indicators(units, ["schools_connected_share"], date="2024-01-01").fact
    >>> up = gp.rollup(fact, admin)
    >>> float(up.query("ucode == 'X_V1' and indicator_id == 'schools_connected_share'").value.iloc[0])
    0.75
    """
    missing = [c for c in ("ucode", "indicator_id", "date", "value") if c not in fact.columns]
    if missing:
        raise MissingColumnError(
            problem(
                "fact",
                f"has no column(s) {missing}",
                f"pass fact_indicator rows with {FACT_COLUMNS}",
                where=WHERE,
            )
        )
    for col in ("ucode", "admin_level", "parent_ucode"):
        if col not in admin.columns:
            raise MissingColumnError(
                problem(
                    "admin",
                    f"has no {col!r} column",
                    "pass the dim_admin table from gp.read_admin",
                    where=WHERE,
                )
            )
    ids = sorted(fact["indicator_id"].unique())
    if catalog is None:
        catalog = get_indicators(ids)
    else:
        unknown = [i for i in ids if i not in catalog]
        if unknown:
            raise InputError(
                problem(
                    "fact",
                    f"has indicators {unknown} that are not in `catalog`",
                    "pass the catalog they were computed with",
                    where=WHERE,
                )
            )
        catalog = {i: catalog[i] for i in ids}
    _check_dependencies(catalog)

    level_of = pd.Series(admin["admin_level"].to_numpy(), index=admin["ucode"].to_numpy())
    parent_of = pd.Series(admin["parent_ucode"].to_numpy(), index=admin["ucode"].to_numpy())
    unknown = ~fact["ucode"].isin(level_of.index)
    if unknown.any():
        raise InputError(
            problem(
                "fact",
                f"has {fact.loc[unknown, 'ucode'].nunique()} ucodes not in admin (e.g. {fact.loc[unknown, 'ucode'].iloc[0]!r})",
                "pass the admin table the units came from",
                where=WHERE,
            )
        )

    current = combine_units(fact, catalog)
    current["admin_level"] = current["ucode"].map(level_of).astype("int64")
    levels = sorted(current["admin_level"].unique())
    if len(levels) != 1:
        raise InputError(
            problem(
                "fact",
                f"mixes admin levels {levels}",
                "pass the rows of the finest level only",
                where=WHERE,
            )
        )
    out = [current]
    level = int(levels[0])
    while level > to_level:
        parents = current["ucode"].map(parent_of)
        orphan = parents.isna()
        if orphan.any():
            names = sorted(current.loc[orphan, "ucode"].unique())[:5]
            raise InputError(
                problem(
                    "admin",
                    f"has level-{level} units without a parent ({names})",
                    "fix parent_ucode (gp.read_admin infers it by area overlap when the parent level is read)",
                    where=WHERE,
                )
            )
        current = combine_units(
            current.assign(_parent=parents.to_numpy()), catalog, target="_parent"
        )
        level -= 1
        current["admin_level"] = level
        out.append(current)
    result = pd.concat(out, ignore_index=True)
    result = result.sort_values(
        ["admin_level", "ucode", "indicator_id", "date"], kind="stable"
    ).reset_index(drop=True)
    return result[[c for c in FACT_COLUMNS if c in result.columns]]


def combine_units(
    fact: pd.DataFrame, catalog: dict[str, Indicator] | None = None, *, target: str = "ucode"
) -> pd.DataFrame:
    """Combine all rows that share (``target``, indicator_id, date) by the catalog's aggregation rules.

    This is one step of :func:`rollup` (children carry their parent's ucode in ``target``); alone,
    with ``target="ucode"``, it collapses cell fragments labelled with the same admin ucode.
    A weighted mean is paired with its weight row of the same (ucode, date) — the k-th row of one
    with the k-th row of the other when a ucode has several fragment rows.
    """
    catalog = catalog or get_indicators(sorted(fact["indicator_id"].unique()))
    keys = [target, "date"]
    pieces = []
    sums = [i for i, ind in catalog.items() if ind.aggregation == "sum"]
    part = fact[fact["indicator_id"].isin(sums)]
    summed = (
        part.groupby([*keys, "indicator_id"], sort=False, dropna=False)["value"]
        .sum(min_count=1)  # NaN when every value is NaN: no data is not zero
        .reset_index()
    )
    pieces.append(summed)
    by_id = {i: g.set_index(keys)["value"] for i, g in summed.groupby("indicator_id", sort=False)}

    for ind in catalog.values():
        if ind.aggregation == "ratio":
            num, den = by_id.get(ind.numerator), by_id.get(ind.denominator)  # type: ignore[arg-type]
            if num is None or den is None:
                continue
            num, den = num.align(den, join="outer")
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.where(den > 0, num / den * ind.scale, np.nan)
            pieces.append(
                pd.DataFrame(
                    {**_keys_frame(num.index, keys), "indicator_id": ind.id, "value": value}
                )
            )
        elif ind.aggregation == "weighted_mean":
            rows = fact[fact["indicator_id"] == ind.id]
            weights = fact[fact["indicator_id"] == ind.weight]
            if rows.empty or weights.empty:
                continue
            merged = _attach_weight(rows, weights)
            has = merged["value"].notna() & merged["weight"].notna() & (merged["weight"] > 0)
            merged["vw"] = np.where(has, merged["value"] * merged["weight"], 0.0)
            merged["w"] = np.where(has, merged["weight"], 0.0)
            g = merged.groupby(keys, sort=False, dropna=False)[["vw", "w"]].sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.where(g["w"] > 0, g["vw"] / g["w"], np.nan)
            pieces.append(
                pd.DataFrame({**_keys_frame(g.index, keys), "indicator_id": ind.id, "value": value})
            )
    out = pd.concat(pieces, ignore_index=True).rename(columns={target: "ucode"})
    out["unit"] = out["indicator_id"].map({i: ind.unit for i, ind in catalog.items()})
    out["suppressed"] = False
    return out


def _attach_weight(rows: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Pair each row of a weighted mean with the weight row of the same unit (and fragment)."""
    own = ["ucode", "date"]
    rows = rows.assign(_n=rows.groupby(own, sort=False).cumcount())
    weights = weights.assign(_n=weights.groupby(own, sort=False).cumcount())
    return rows.merge(
        weights[[*own, "_n", "value"]].rename(columns={"value": "weight"}),
        on=[*own, "_n"],
        how="left",
    )


def _keys_frame(index: pd.Index, keys: list[str]) -> dict[str, np.ndarray]:
    frame = index.to_frame(index=False)
    return {k: frame[k].to_numpy() for k in keys}


def _check_dependencies(catalog: dict[str, Indicator]) -> None:
    missing = sorted({d for ind in catalog.values() for d in ind.depends_on} - set(catalog))
    if missing:
        users = sorted(i for i, ind in catalog.items() if set(ind.depends_on) & set(missing))
        raise InputError(
            problem(
                "fact",
                f"lacks {missing}, needed to roll up {users}",
                "compute the indicators with gp.compute_indicators (it adds the dependencies)",
                where=WHERE,
            )
        )
