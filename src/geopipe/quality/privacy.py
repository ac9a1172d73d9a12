"""Protecting children's data: small-count suppression, keyed pseudonyms, personal columns.

Suppression rules (docs/quality.md explains them with an example):

1. *Primary*: a value of a ``sensitive`` catalog indicator below ``k`` (default 5, zero included)
   is suppressed: ``value`` null, ``suppressed`` true.
2. *Complementary*: each parent unit and its children form an equation (parent = Σ children,
   which :func:`geopipe.indicators.rollup.rollup` guarantees). An equation with exactly one hidden
   term gives that term away, whether it is a child (parent − siblings) or the parent (Σ children).
   For every such family the smallest published child (or, for an only child, the parent) is
   suppressed too, and this repeats over all levels until no family has exactly one hidden term.
3. *Ratios*: a ratio whose numerator or denominator is suppressed is suppressed (ratio ×
   denominator would give the numerator back).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError, MissingColumnError, problem
from .indicators import catalog_entries

__all__ = ["drop_personal", "pseudonymise", "suppress_small_counts"]


def suppress_small_counts(
    fact: pd.DataFrame, admin: pd.DataFrame, *, k: float = 5, catalog: Any = None
) -> pd.DataFrame:
    """Suppress small counts of sensitive indicators, with complementary suppression.

    Parameters
    ----------
    fact
        ``fact_indicator`` rows of every level (after :func:`~geopipe.indicators.rollup.rollup`).
    admin
        ``dim_admin`` (``ucode``, ``parent_ucode``): who is whose parent.
    k
        Threshold: sensitive values below ``k`` are suppressed.
    catalog
        ``dim_indicator`` (default: the packaged catalog); its ``sensitive`` column decides.

    Returns
    -------
    pandas.DataFrame
        A copy of ``fact`` with ``value`` null and ``suppressed`` true where hidden;
        ``attrs["geopipe"]["suppression"]`` counts primary, complementary and ratio suppressions.

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
    for col in ("ucode", "indicator_id", "value"):
        if col not in fact.columns:
            raise MissingColumnError(
                problem(
                    "fact", f"has no {col!r} column", "pass the fact_indicator table", where=where
                )
            )
    for col in ("ucode", "parent_ucode"):
        if col not in admin.columns:
            raise MissingColumnError(
                problem(
                    "admin",
                    f"has no {col!r} column",
                    "pass the dim_admin table from gp.read_admin",
                    where=where,
                )
            )
    if not np.isfinite(k) or k <= 0:
        raise InputError(
            problem("k", f"was {k!r}", "use a positive threshold such as 5 or 10", where=where)
        )
    cat = catalog_entries(catalog)
    out = fact.copy()
    out = out.reset_index(drop=True)
    value = pd.to_numeric(out["value"], errors="coerce").to_numpy(dtype="float64")
    hidden = (
        out["suppressed"].fillna(False).to_numpy(dtype=bool)
        if "suppressed" in out.columns
        else np.zeros(len(out), dtype=bool)
    )
    ind = out["indicator_id"].astype(str).to_numpy()
    sensitive = np.isin(ind, [i for i, e in cat.items() if e["sensitive"]])
    primary = (
        sensitive & ~hidden & np.isfinite(value) & (value > 0) & (value < k)
    )  # a true zero identifies no one
    hidden = hidden | primary
    sums = np.isin(ind, [i for i, e in cat.items() if e["aggregation"] == "sum" and e["sensitive"]])
    before = int(hidden.sum())
    hidden = _complementary(out, value, hidden, sums, admin)
    complementary = int(hidden.sum()) - before
    before = int(hidden.sum())
    hidden = _ratios(out, hidden, cat)
    ratios = int(hidden.sum()) - before
    out["value"] = np.where(hidden, np.nan, value)
    out["suppressed"] = hidden
    out.attrs["geopipe"] = {
        **dict(fact.attrs.get("geopipe", {})),
        "suppression": {
            "k": k,
            "primary": int(primary.sum()),
            "complementary": complementary,
            "ratios": ratios,
            "total": int(hidden.sum()),
        },
    }
    return out


def _group_keys(frame: pd.DataFrame) -> pd.Series:
    key = frame["indicator_id"].astype(str)
    if "date" in frame.columns:
        key = key + "|" + frame["date"].astype(str)
    return key


def _complementary(
    fact: pd.DataFrame, value: np.ndarray, hidden: np.ndarray, sums: np.ndarray, admin: pd.DataFrame
) -> np.ndarray:
    """Hide more terms until no (parent = Σ children) equation has exactly one hidden term."""
    rows = np.flatnonzero(sums)
    if not len(rows):
        return hidden
    sub = fact.iloc[rows]
    group = _group_keys(sub).to_numpy()
    ucode = sub["ucode"].astype(str).to_numpy()
    parent_of = pd.Series(
        admin["parent_ucode"].to_numpy(), index=admin["ucode"].astype(str).to_numpy()
    )
    parent_of = parent_of[~parent_of.index.duplicated()]
    parent = pd.Series(ucode).map(parent_of).to_numpy(dtype=object)
    pos = pd.Series(np.arange(len(sub)), index=pd.Index(group + "#" + ucode))
    pos = pos[~pos.index.duplicated()]
    has = pd.notna(parent)
    pkey = np.where(has, group + "#" + np.where(has, parent, "").astype(str), "")
    ppos = pos.reindex(pkey).to_numpy()
    child = np.flatnonzero(~np.isnan(ppos))
    fam = ppos[child].astype(np.int64)  # family id = position of the parent in `sub`
    h = hidden[rows].copy()
    v = value[rows]
    # published children ordered by (no data last, value, ucode): the first per family is the one to hide
    order = np.lexsort((ucode[child], np.nan_to_num(v[child], nan=np.inf), np.isnan(v[child]), fam))
    child_sorted, fam_sorted = child[order], fam[order]
    while True:
        n_hidden = np.bincount(fam, weights=h[child], minlength=len(sub)) + h
        n_children = np.bincount(fam, minlength=len(sub))
        exposed = (n_children > 0) & (n_hidden == 1)
        if not exposed.any():
            break
        cand = exposed[fam_sorted] & ~h[child_sorted]
        firsts = pd.Series(child_sorted[cand]).groupby(fam_sorted[cand], sort=False).first()
        h[firsts.to_numpy()] = True
        no_child_left = exposed.copy()
        no_child_left[firsts.index.to_numpy()] = False
        h[np.flatnonzero(no_child_left)] = True  # an only child is hidden: hide its parent
    out = hidden.copy()
    out[rows] = h
    return out


def _ratios(fact: pd.DataFrame, hidden: np.ndarray, cat: dict[str, dict[str, Any]]) -> np.ndarray:
    key = (
        fact["ucode"].astype(str)
        + "|"
        + (fact["date"].astype(str) if "date" in fact.columns else "")
    )
    ind = fact["indicator_id"].astype(str)
    hidden_keys = set((ind[hidden] + "@" + key[hidden]).tolist())
    out = hidden.copy()
    for ind_id, entry in cat.items():
        if entry["aggregation"] != "ratio":
            continue
        sel = (ind == ind_id).to_numpy()
        if not sel.any():
            continue
        parts = [entry["numerator"], entry["denominator"]]
        hit = np.zeros(int(sel.sum()), dtype=bool)
        for part in parts:
            hit |= (part + "@" + key[sel]).isin(hidden_keys).to_numpy()
        idx = np.flatnonzero(sel)
        out[idx[hit]] = True
    return out


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
    """Replace identifiers with keyed pseudonyms: HMAC-SHA256 (hex) of the value's text.

    The same value and key always give the same pseudonym (so joins across tables still work);
    without the key the original cannot be recovered or confirmed by hashing guesses. The key is
    read from the environment variable ``key_env`` and never stored. Nulls stay null.

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
        values = out[col].astype(object)
        present = values.notna()
        text = values[present].map(str)
        uniques = pd.unique(text.to_numpy())
        digest = {
            u: hmac.new(secret, u.encode("utf-8"), hashlib.sha256).hexdigest() for u in uniques
        }
        new = pd.Series([None] * len(out), index=out.index, dtype=object)
        new[present] = text.map(digest)
        out[col] = new
    return out


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
