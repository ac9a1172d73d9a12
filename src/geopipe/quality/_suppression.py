"""The suppression engine behind :mod:`geopipe.quality.privacy`, on plain arrays.

Every published row is one term of linear equations that the tables give away:

* a **sum** indicator: ``value(parent) = Σ value(children)``;
* a **weighted mean** ``M`` with weight ``W``: ``P(parent) = Σ P(children)`` with
  ``P = M x W`` (the roll-up's own rule), so where ``M`` and ``W`` are published, ``P`` is known;
* a **ratio** ``R = N / D x scale``: where ``R`` and one part are published, the other follows.

The engine hides terms until no hidden value is determined by those equations: primary
suppression, complementary suppression of the sums, every mean whose weight is hidden, complementary
suppression of the ``P`` equations (by hiding more means), and every ratio with a hidden part. The
equations of one quantity form a tree (units and their parents); in a tree, hidden terms can be
determined only if some equation has exactly one hidden term, so the engine hides terms until
each equation has none or at least two. Hiding a mean wherever its weight is hidden makes ``P`` of
that unit an unknown of its own, so the ``P`` equations and the weight's equations share no unknown
and each tree can be completed on its own.

A published value that cannot hide anything is never chosen as a complement: a no-data value
(null, not suppressed: it adds nothing to its parent), a zero (other tables often show it: a unit
without population has no children) and, for means, a unit with zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LongRows", "code_units", "suppress_rows"]


@dataclass(frozen=True)
class LongRows:
    """Rows to suppress, one per (unit, indicator, date), as integer codes; arrays of one length.

    ``unit`` codes sort like the unit ids (ties between equal values are broken by code) and
    ``parent`` is the code of the unit one step up (-1 at the top); ``indicator`` indexes
    ``indicators`` and ``date`` codes the date. ``hidden`` marks the rows already suppressed on
    input (their value may be null); ``fixed`` rows are published already and may not change (the
    admin rows when grid fragments are suppressed under them). :func:`code_units` makes the codes.
    """

    unit: np.ndarray
    parent: np.ndarray
    indicator: np.ndarray
    indicators: list[str]
    date: np.ndarray
    value: np.ndarray
    hidden: np.ndarray
    fixed: np.ndarray


def code_units(units: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of unit ids and of their parents (-1 for none), in the order of the ids."""
    codes, _ = pd.factorize(np.concatenate([units, parents]).astype(object), sort=True)
    return codes[: len(units)].astype(np.int64), codes[len(units) :].astype(np.int64)


def suppress_rows(
    rows: LongRows, cat: dict[str, dict[str, Any]], k: float
) -> tuple[np.ndarray, dict[str, int]]:
    """The hidden mask of ``rows`` and the number of rows each rule hid."""
    hidden = rows.hidden.astype(bool).copy()
    if len(hidden) == 0:
        return hidden, {}
    ctx = _Context(rows, cat)
    stats: dict[str, int] = {}
    for step in (_primary, _complete_sums, _hide_means, _hide_ratios):
        hidden, counts = step(ctx, hidden, k)
        stats.update(counts)
    stats["unresolved"] = stats.pop("unresolved_sums", 0) + stats.pop("unresolved_means", 0)
    return hidden, stats


class _Context:
    """What every step reads: values, keys, each row's parent row and aggregation."""

    def __init__(self, rows: LongRows, cat: dict[str, dict[str, Any]]) -> None:
        self.cat = cat
        self.value = rows.value.astype("float64")
        self.fixed = rows.fixed.astype(bool)
        self.nodata = np.isnan(self.value) & ~rows.hidden.astype(bool)  # published null: no data
        self.keys = _Keys(rows)
        labels = self.keys.ind_labels
        self.agg = np.array([cat.get(i, {}).get("aggregation") for i in labels], dtype=object)[
            self.keys.ind
        ]
        self.sensitive = np.array([bool(cat.get(i, {}).get("sensitive")) for i in labels])[
            self.keys.ind
        ]
        self.ppos = self.keys.parent_positions()

    def partner(self, rows: np.ndarray, field: str) -> np.ndarray:
        """Row of the ``field`` indicator (weight, numerator, ...) of each row's unit, -1 if none."""
        labels = self.keys.ind_labels
        return self.keys.same_unit(rows, [self.cat.get(i, {}).get(field) for i in labels])


def _primary(ctx: _Context, hidden: np.ndarray, k: float) -> tuple[np.ndarray, dict[str, int]]:
    """A sensitive value in (0, k); a true zero identifies no one."""
    v = ctx.value
    primary = ctx.sensitive & ~hidden & ~ctx.fixed & np.isfinite(v) & (v > 0) & (v < k)
    return hidden | primary, {"primary": int(primary.sum())}


def _complete_sums(
    ctx: _Context, hidden: np.ndarray, k: float
) -> tuple[np.ndarray, dict[str, int]]:
    """Complementary suppression of the parent = Σ children equations of every sum."""
    v, is_sum, free = ctx.value, ctx.agg == "sum", ~ctx.fixed
    new, stuck = _complete(
        ctx.ppos,
        scope=is_sum,
        unknown=is_sum & hidden & ~ctx.nodata,
        candidate=is_sum & ~hidden & free & (v > 0),
        fallback=is_sum & ~hidden & free & (v == 0),
        parent_ok=is_sum & free & np.isfinite(v),
        cost=v,
        tiebreak=ctx.keys.unit_rank,
    )
    return hidden | new, {"complementary": int((new & ~hidden).sum()), "unresolved_sums": stuck}


def _hide_means(ctx: _Context, hidden: np.ndarray, k: float) -> tuple[np.ndarray, dict[str, int]]:
    """Hide a mean wherever its weight is hidden, then complete the P = mean x weight equations."""
    n, v = len(hidden), ctx.value
    means = np.flatnonzero(ctx.agg == "weighted_mean")
    wpos = ctx.partner(means, "weight")
    has_w = wpos >= 0
    m_rows, w_rows = means[has_w], wpos[has_w]
    weight_hidden = np.zeros(n, dtype=bool)
    weight_hidden[m_rows] = hidden[w_rows] & ~hidden[m_rows]
    hidden = hidden | weight_hidden

    w_value, pub_w, is_mean = np.full(n, np.nan), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    w_value[m_rows], pub_w[m_rows], is_mean[means] = v[w_rows], ~hidden[w_rows], True
    pub_m = ~hidden
    zero_weight = pub_w & ~(w_value > 0)  # P = 0 is known: the unit adds nothing to the mean
    known_p = (pub_m & pub_w) | ctx.nodata | zero_weight | (pub_m & (v == 0))
    unknown = is_mean & ~known_p
    new, stuck = _complete(
        ctx.ppos,
        scope=is_mean,
        unknown=unknown,
        candidate=is_mean & pub_m & pub_w & ~ctx.fixed & np.isfinite(v) & (w_value > 0),
        fallback=np.zeros(n, dtype=bool),
        parent_ok=is_mean & ~ctx.fixed & ~ctx.nodata & ~zero_weight,
        cost=np.nan_to_num(w_value, nan=np.inf),
        tiebreak=ctx.keys.unit_rank,
    )
    more = new & ~unknown & ~hidden
    return hidden | more, {
        "means_weight_hidden": int(weight_hidden.sum()),
        "means_complementary": int(more.sum()),
        "unresolved_means": stuck,
    }


def _hide_ratios(ctx: _Context, hidden: np.ndarray, k: float) -> tuple[np.ndarray, dict[str, int]]:
    """Hide a ratio wherever its numerator or denominator is hidden."""
    ratios = np.flatnonzero(ctx.agg == "ratio")
    ratio_hidden = np.zeros(len(hidden), dtype=bool)
    for part in ("numerator", "denominator"):
        pos = ctx.partner(ratios, part)
        ok = pos >= 0
        ratio_hidden[ratios[ok]] |= hidden[pos[ok]]
    ratio_hidden &= ~hidden
    return hidden | ratio_hidden, {"ratios": int(ratio_hidden.sum())}


class _Keys:
    """Integer keys of (indicator, date, unit) so that rows find their parent and their partners."""

    def __init__(self, rows: LongRows) -> None:
        self.ind, self.ind_labels = rows.indicator.astype(np.int64), list(rows.indicators)
        self.unit, self.parent = rows.unit.astype(np.int64), rows.parent.astype(np.int64)
        self.date = rows.date.astype(np.int64)
        n = len(rows.value)
        self.n_dates = int(self.date.max()) + 1 if n else 1
        self.n_units = max(int(self.unit.max()), int(self.parent.max()), 0) + 1 if n else 1
        self.unit_rank = self.unit.astype("float64")  # codes sort like unit ids: the tie-break
        key = self._key(self.ind, self.unit)
        space = (max(len(self.ind_labels), 1) * self.n_dates) * self.n_units
        self._table: np.ndarray | None = None
        if space <= 4 * n + 1_000_000:  # dense key space: a plain array is the fastest lookup
            self._table = np.full(space, -1, dtype=np.int64)
            self._table[key[::-1]] = np.arange(n - 1, -1, -1)  # the first row of a key wins
        else:
            keep = ~pd.Index(key).duplicated()
            self.index, self._pos = pd.Index(key[keep]), np.flatnonzero(keep)

    def _key(self, ind: np.ndarray, unit: np.ndarray) -> np.ndarray:
        key = (ind.astype(np.int64) * self.n_dates + self.date) * self.n_units + unit
        return np.where((ind < 0) | (unit < 0), -1, key)

    def _find(self, key: np.ndarray) -> np.ndarray:
        if self._table is not None:
            return np.where(key >= 0, self._table[np.maximum(key, 0)], -1)
        found = self.index.get_indexer(key)
        return np.where((found >= 0) & (key >= 0), self._pos[np.maximum(found, 0)], -1)

    def parent_positions(self) -> np.ndarray:
        """Row of the same indicator and date for each row's parent unit, -1 where none."""
        return self._find(self._key(self.ind, self.parent))

    def same_unit(self, rows: np.ndarray, partner_by_ind: list[str | None]) -> np.ndarray:
        """Row of the partner indicator (weight, numerator, ...) of the same unit and date."""
        code = {label: i for i, label in enumerate(self.ind_labels)}
        partner = np.array([code.get(p, -1) if p else -1 for p in partner_by_ind], dtype=np.int64)
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        ind = partner[self.ind[rows]]
        key = (ind * self.n_dates + self.date[rows]) * self.n_units + self.unit[rows]
        return self._find(np.where(ind < 0, -1, key))


def _complete(
    ppos: np.ndarray,
    *,
    scope: np.ndarray,
    unknown: np.ndarray,
    candidate: np.ndarray,
    fallback: np.ndarray,
    parent_ok: np.ndarray,
    cost: np.ndarray,
    tiebreak: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Hide terms until no family (a parent row and its child rows) has exactly one unknown term.

    Only rows in ``scope`` (one aggregation) take part. For each such family the cheapest
    ``candidate`` child is hidden; without one the parent (if
    ``parent_ok``), else the cheapest ``fallback`` child. Returns the new ``unknown`` mask and the
    number of families left with one unknown term (nothing could be hidden in them).
    """
    n = len(ppos)
    unknown = unknown.copy()
    child = np.flatnonzero((ppos >= 0) & scope)
    fam = ppos[child]
    n_children = np.bincount(fam, minlength=n)
    stuck = np.zeros(n, dtype=bool)
    while True:
        n_unknown = np.bincount(fam, weights=unknown[child], minlength=n) + unknown
        exposed = (n_children > 0) & (n_unknown == 1) & ~stuck
        if not exposed.any():
            break
        rest = exposed.copy()
        for pool in (candidate, None, fallback):
            if pool is None:  # no candidate child: hide the parent instead
                up = rest & parent_ok & ~unknown
                unknown |= up
                rest &= ~up
                continue
            ok = rest[fam] & pool[child] & ~unknown[child]
            kids, fams = child[ok], fam[ok]
            order = np.lexsort((tiebreak[kids], cost[kids], fams))  # cheapest first per family
            families, first = np.unique(fams[order], return_index=True)
            unknown[kids[order][first]] = True
            rest[families] = False
        stuck |= rest
    n_unknown = np.bincount(fam, weights=unknown[child], minlength=n) + unknown
    return unknown, int((stuck & (n_unknown == 1)).sum())
