"""Protecting children's data: small-count suppression, keyed pseudonyms, personal columns.

Suppression (docs/quality.md explains it with examples):

1. *Primary*: a value of a ``sensitive`` catalog indicator above zero and below ``k`` (default 5)
   is suppressed: ``value`` null, ``suppressed`` true. A true zero is published: it says that no
   child is there, which identifies no one.
2. *Complementary*: each parent and its children form an equation (parent = Σ children, which
   :func:`geopipe.indicators.rollup.rollup` guarantees). An equation with exactly one hidden term
   gives that term away, so more terms are hidden until every equation has none or at least two.
3. *Weighted means*: a mean is hidden wherever its weight is; and since a parent's mean times its
   weight is Σ mean x weight over its children, those equations are completed the same way, by
   hiding more means.
4. *Ratios*: a ratio whose numerator or denominator is suppressed is suppressed (ratio ×
   denominator would give the numerator back).

Grid fragments (:func:`suppress_cells`) are the children of their finest admin unit.
"""

from __future__ import annotations

import hashlib
import hmac
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError, MissingColumnError, problem
from ._suppression import LongRows, code_units, suppress_rows
from .indicators import catalog_entries

if TYPE_CHECKING:
    import geopandas as gpd

    from ..indicators.catalog import Indicator

__all__ = ["drop_personal", "pseudonymise", "suppress_cells", "suppress_small_counts"]


def suppress_small_counts(
    fact: pd.DataFrame,
    admin: pd.DataFrame,
    *,
    k: float = 5,
    catalog: Mapping[str, Indicator] | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Suppress small counts of sensitive indicators so that no published equation gives them back.

    Parameters
    ----------
    fact
        ``fact_indicator`` rows of every level (after :func:`~geopipe.indicators.rollup.rollup`).
    admin
        ``dim_admin`` (``ucode``, ``parent_ucode``): who is whose parent.
    k
        Threshold: sensitive values above zero and below ``k`` are suppressed.
    catalog
        ``{id: Indicator}`` of the run (default: the built-in catalog), or ``dim_indicator``;
        its ``sensitive``, ``aggregation``, ``weight``, ``numerator`` and ``denominator`` decide.

    Returns
    -------
    pandas.DataFrame
        A copy of ``fact`` with ``value`` null and ``suppressed`` true where hidden;
        ``attrs["geopipe"]["suppression"]`` counts the rows each rule hid (``primary``,
        ``complementary``, ``means_weight_hidden``, ``means_complementary``, ``ratios``), the
        ``total``, and ``unresolved``: equations left with one hidden term because nothing else in
        them could be hidden (0 for a fact from :func:`~geopipe.indicators.rollup.rollup`).

    Examples
    --------
    >>> import pandas as pd
    >>> admin = pd.DataFrame({"ucode": ["P", "A", "B", "C"], "parent_ucode": [None, "P", "P", "P"]})
    >>> fact = pd.DataFrame({"ucode": ["P", "A", "B", "C"], "indicator_id": "population_u5",
    ...                      "date": "2020-01-01", "value": [60.0, 3.0, 20.0, 37.0], "suppressed": False})
    >>> suppress_small_counts(fact, admin)["suppressed"].tolist()
    [False, True, True, False]
    """
    where = "suppress_small_counts"
    _need_columns(
        fact, "fact", ("ucode", "indicator_id", "value"), "pass the fact_indicator table", where
    )
    _need_columns(
        admin,
        "admin",
        ("ucode", "parent_ucode"),
        "pass the dim_admin table from gp.read_admin",
        where,
    )
    _check_k(k, where)
    cat = catalog_entries(catalog)
    out = fact.reset_index(drop=True)
    parent_of = _parent_map(admin["ucode"], admin["parent_ucode"])
    ucode = out["ucode"].astype(str).to_numpy(dtype=object)
    ind_codes, indicators = pd.factorize(out["indicator_id"].astype(str))
    unit, parent = code_units(ucode, pd.Series(ucode).map(parent_of).to_numpy(dtype=object))
    rows = LongRows(
        unit=unit,
        parent=parent,
        indicator=ind_codes,
        indicators=list(indicators),
        date=pd.factorize(_dates(out))[0],
        value=pd.to_numeric(out["value"], errors="coerce").to_numpy(dtype="float64"),
        hidden=_suppressed(out),
        fixed=np.zeros(len(out), dtype=bool),
    )
    hidden, stats = suppress_rows(rows, cat, float(k))
    out = out.copy()
    out["value"] = np.where(hidden, np.nan, rows.value)
    out["suppressed"] = hidden
    out.attrs["geopipe"] = {
        **dict(fact.attrs.get("geopipe", {})),
        "suppression": {"k": k, **stats, "total": int(hidden.sum())},
    }
    return out


def suppress_cells(
    cells: gpd.GeoDataFrame | pd.DataFrame,
    fact: pd.DataFrame,
    *,
    k: float = 5,
    catalog: Mapping[str, Indicator] | pd.DataFrame | None = None,
) -> tuple[gpd.GeoDataFrame | pd.DataFrame, dict[str, Any]]:
    """Small-count suppression for grid fragments, consistent with the published admin values.

    Each fragment (``cell_id``, ``ucode``) is a child of its finest admin unit ``ucode``, whose
    values in ``fact`` are already published (run :func:`suppress_small_counts` first; they are not
    changed here). The rules are those of :func:`suppress_small_counts`: sensitive counts in
    (0, ``k``) are hidden, then more fragments until no unit minus its published fragments reveals a
    hidden one, the means whose weight is hidden and more means until no unit's mean x weight
    reveals a hidden fragment's, and ratios built on a hidden count. Hidden values become null.

    Parameters
    ----------
    cells
        Wide grid table: ``cell_id``, ``ucode``, optional ``date``, one column per indicator.
    fact
        The suppressed ``fact_indicator`` (``ucode, indicator_id, date, value, suppressed``).
    k
        Threshold, the same as for the admin units.
    catalog
        ``{id: Indicator}`` of the run (default: the built-in catalog), or ``dim_indicator``.

    Returns
    -------
    (table, report)
        A copy of ``cells`` with hidden values null, and counts for the manifest: ``k``,
        ``cells_hidden`` (fragments with a hidden value), ``values_hidden``, the count of each rule
        and ``unresolved`` (families where nothing more could be hidden because the only other
        term is a published admin value; 0 when fragments add up to their unit).

    Examples
    --------
    >>> import pandas as pd
    >>> cells = pd.DataFrame({"cell_id": ["a", "b", "c"], "ucode": "D", "date": "2020-01-01",
    ...                       "population_u5": [2.0, 30.0, 40.0]})
    >>> fact = pd.DataFrame({"ucode": ["D"], "indicator_id": ["population_u5"],
    ...                      "date": ["2020-01-01"], "value": [72.0], "suppressed": [False]})
    >>> out, report = suppress_cells(cells, fact)
    >>> out["population_u5"].isna().tolist(), report["values_hidden"]
    ([True, True, False], 2)
    """
    where = "suppress_cells"
    _need_columns(
        cells, "cells", ("cell_id", "ucode"), "pass the grid table (gp.h3_grid(...))", where
    )
    _need_columns(
        fact,
        "fact",
        ("ucode", "indicator_id", "value"),
        "pass the suppressed fact_indicator",
        where,
    )
    _check_k(k, where)
    cat = catalog_entries(catalog)
    cols = [c for c in cells.columns if c in cat]
    if not cols or cells.empty:
        return cells.copy(), {"k": k, "cells_hidden": 0, "values_hidden": 0}
    n, m = len(cells), len(cols)
    district = cells["ucode"].astype(str).to_numpy(dtype=object)
    dates = (
        cells["date"].astype(str).to_numpy(dtype=object)
        if "date" in cells.columns
        else np.full(n, "", dtype=object)
    )
    parents = fact[fact["ucode"].astype(str).isin(set(district)) & fact["indicator_id"].isin(cols)]
    if "date" in cells.columns and "date" in parents.columns:
        parents = parents[parents["date"].astype(str).isin(set(dates))]
    p_dates = (
        _dates(parents) if "date" in cells.columns else np.full(len(parents), "", dtype=object)
    )
    # codes: fragments 0..n-1 in (cell_id, ucode) order, then the admin units in ucode order
    frag = np.empty(n, dtype=np.int64)
    frag[np.lexsort((district, cells["cell_id"].astype(str).to_numpy(dtype=object)))] = np.arange(n)
    cell_admin, fact_admin = code_units(
        district, parents["ucode"].astype(str).to_numpy(dtype=object)
    )
    date_codes, _ = pd.factorize(np.concatenate([dates, p_dates]))
    values = np.array(cells[cols].to_numpy(dtype="float64"), copy=True)
    rows = LongRows(
        unit=np.concatenate([np.repeat(frag, m), n + fact_admin]),
        parent=np.concatenate([np.repeat(n + cell_admin, m), np.full(len(parents), -1)]),
        indicator=np.concatenate(
            [np.tile(np.arange(m), n), pd.Index(cols).get_indexer(parents["indicator_id"])]
        ),
        indicators=cols,
        date=np.concatenate([np.repeat(date_codes[:n], m), date_codes[n:]]),
        value=np.concatenate(
            [values.ravel(), pd.to_numeric(parents["value"], errors="coerce").to_numpy(float)]
        ),
        hidden=np.concatenate([np.zeros(n * m, dtype=bool), _suppressed(parents)]),
        fixed=np.concatenate([np.zeros(n * m, dtype=bool), np.ones(len(parents), dtype=bool)]),
    )
    hidden, stats = suppress_rows(rows, cat, float(k))
    mask = hidden[: n * m].reshape(n, m)
    out = cells.copy()
    values[mask] = np.nan
    out[cols] = values
    return out, {
        "k": k,
        "cells_hidden": int(mask.any(axis=1).sum()),
        "values_hidden": int(mask.sum()),
        **stats,
    }


def _need_columns(
    frame: pd.DataFrame, name: str, cols: Iterable[str], fix: str, where: str
) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise MissingColumnError(problem(name, f"has no column(s) {missing}", fix, where=where))


def _check_k(k: float, where: str) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not np.isfinite(k) or k <= 0:
        raise InputError(
            problem("k", f"was {k!r}", "use a positive threshold such as 5 or 10", where=where)
        )


def _parent_map(ucode: pd.Series, parent: pd.Series) -> pd.Series:
    text = np.where(parent.notna().to_numpy(), parent.astype(str).to_numpy(), None)
    out = pd.Series(text, index=ucode.astype(str).to_numpy(), dtype=object)
    return out[~out.index.duplicated()]


def _dates(frame: pd.DataFrame) -> np.ndarray:
    if "date" not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame["date"].astype(str).to_numpy(dtype=object)


def _suppressed(frame: pd.DataFrame) -> np.ndarray:
    if "suppressed" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame["suppressed"].fillna(False).to_numpy(dtype=bool)


def _key(key_env: str) -> bytes:
    secret = os.environ.get(key_env)
    if not secret:
        raise ConfigError(
            problem(
                f"environment variable {key_env}",
                "is not set (it holds the pseudonymisation key)",
                f"set it to a long random secret kept outside the project, e.g. `export {key_env}=$(openssl rand -hex 32)`; "
                "the same key gives the same pseudonyms in every run",
                where="pseudonymise",
            )
        )
    if len(secret) < 16:
        raise ConfigError(
            problem(
                f"environment variable {key_env}",
                f"holds a key of {len(secret)} characters",
                "use at least 16 random characters (32 hex bytes recommended)",
                where="pseudonymise",
            )
        )
    return secret.encode("utf-8")


def pseudonymise(
    frame: pd.DataFrame, columns: str | Iterable[str], *, key_env: str = "GEOPIPE_PSEUDONYM_KEY"
) -> pd.DataFrame:
    """Replace identifiers with keyed pseudonyms: HMAC-SHA256 (hex) of the value's canonical text.

    The same value and key always give the same pseudonym (so joins across tables and runs still
    work); without the key the original cannot be recovered or confirmed by hashing guesses. The
    key is read from the environment variable ``key_env`` and never stored. Nulls stay null.

    The pseudonym depends on the value, not on how a file stored it. The canonical text is:
    a whole number without decimal point or type (``101``, ``101.0``, ``numpy.int64(101)``,
    ``Int64`` and the text ``"101"`` all give the pseudonym of ``"101"``); another number its
    shortest decimal form (``101.5``); text as it is, with case, spaces and leading zeros
    (``"0101"`` and ``"101.0"`` are other ids than ``"101"``); booleans ``"True"`` / ``"False"``.

    Parameters
    ----------
    frame
        Any table; not modified.
    columns
        Column(s) to pseudonymise (respondent ids, school ids, ...).
    key_env
        Name of the environment variable holding the key.

    Examples
    --------
    >>> import os, pandas as pd
    >>> os.environ["GEOPIPE_PSEUDONYM_KEY"] = "a-long-example-key-0123456789"
    >>> out = pseudonymise(pd.DataFrame({"point_id": ["S1", None]}), "point_id")
    >>> len(out["point_id"].iloc[0]), out["point_id"].iloc[1] is None
    (64, True)
    """
    cols = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"columns {missing}",
                "are not in the table",
                f"use columns from {list(map(str, frame.columns))}",
                where="pseudonymise",
            )
        )
    secret = _key(key_env)
    out = frame.copy()
    for col in cols:
        present = out[col].notna()
        text = _canonical_text(out[col][present])
        uniques = pd.unique(text.to_numpy())
        digest = {
            u: hmac.new(secret, u.encode("utf-8"), hashlib.sha256).hexdigest() for u in uniques
        }
        new = pd.Series([None] * len(out), index=out.index, dtype=object)
        new[present] = text.map(digest)
        out[col] = new
    return out


def _canonical_text(values: pd.Series) -> pd.Series:
    """The text a pseudonym is made of (see :func:`pseudonymise`); ``values`` holds no null."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values.map({True: "True", False: "False"}).astype(object)
    if pd.api.types.is_integer_dtype(dtype):
        return values.astype(
            "int64" if pd.api.types.is_signed_integer_dtype(dtype) else "uint64"
        ).astype(str)
    if pd.api.types.is_float_dtype(dtype):
        number = values.to_numpy(dtype="float64")
        whole = np.isfinite(number) & (number == np.trunc(number)) & (np.abs(number) < 2.0**63)
        text = values.astype(str).to_numpy(dtype=object)
        text[whole] = number[whole].astype(np.int64).astype(str)
        big = np.isfinite(number) & (number == np.trunc(number)) & ~whole
        text[big] = [str(int(v)) for v in number[big]]
        return pd.Series(text, index=values.index, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        return values.astype(object)
    return values.map(_canonical_one).astype(object)


def _canonical_one(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if np.isfinite(number) and number == int(number):
            return str(int(number))
        return repr(number)
    return str(value)


def drop_personal(frame: pd.DataFrame, personal_columns: str | Iterable[str]) -> pd.DataFrame:
    """Return ``frame`` without the personal columns (names, phone numbers, ...), matched case-insensitively.

    Columns listed but absent are ignored (a source may simply not have them).

    Examples
    --------
    >>> import pandas as pd
    >>> drop_personal(pd.DataFrame({"id": [1], "Phone": ["+250..."]}), ["phone"]).columns.tolist()
    ['id']
    """
    wanted = (
        {personal_columns.lower()}
        if isinstance(personal_columns, str)
        else {str(c).lower() for c in personal_columns}
    )
    drop = [c for c in frame.columns if str(c).lower() in wanted]
    out = frame.drop(columns=drop)
    return out
