"""Attacks on the published tables: no hidden value comes back from the equations they give.

The attacker here is independent of geopipe's suppression code. It reads only what a run publishes:
``fact_indicator`` (value null where suppressed), ``dim_admin`` (who is whose parent),
``dim_indicator`` (how each indicator rolls up) and the wide grid table (null where hidden). It is
made stronger than a real reader in one way: it knows which nulls are "no data" rather than
suppressed (so a hidden no-data value hides nothing).

From those tables it writes every linear equation they imply:

* a sum: ``value(parent) - Σ value(children) = 0`` (admin levels, and H3 fragments under their unit);
* a weighted mean ``M`` with weight ``W``: ``M(p)·W(p) - Σ M(c)·W(c) = 0``, each product a
  constant when both factors are published, ``M·[W]`` when only the weight is hidden, ``W·[M]``
  when only the mean is, and a fresh unknown ``[P]`` when both are (a linearisation: whatever the
  linear system determines, the real one does too);
* a ratio ``R = N / D × scale`` published while ``N`` or ``D`` is hidden: ``R·D - scale·N = 0``.

An unknown is determined iff its unit vector lies in the row space of the system (its leverage in
the SVD is 1); its value then is the least-squares solution. The tests show that nothing hidden is
determined on the Rwanda sample (two thresholds) and on hypothesis-generated hierarchies with small
children, and that the same attack recovers hidden values exactly when the weighted-mean rules are
switched off (the leak of issue 11).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

import geopipe as gp
import geopipe.quality._suppression as engine
from conftest import star_fact
from geopipe.indicators.catalog import get_indicators
from geopipe.quality.privacy import suppress_cells

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pipelines" / "sample.yaml"


# --- the attacker -----------------------------------------------------------------------------


def published_terms(
    fact: pd.DataFrame,
    raw_fact: pd.DataFrame,
    admin: pd.DataFrame,
    cells: pd.DataFrame | None = None,
    raw_cells: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per published term: unit, parent, indicator_id, value (null if hidden), hidden,
    and ``true`` (the unsuppressed value, used only to score the attack, never to solve)."""
    parent_of = admin.set_index("ucode")["parent_ucode"]
    raw = raw_fact.set_index(["ucode", "indicator_id"])["value"]
    true = raw.reindex(pd.MultiIndex.from_frame(fact[["ucode", "indicator_id"]])).to_numpy()
    parts = [
        pd.DataFrame(
            {
                "unit": fact["ucode"].to_numpy(),
                "parent": fact["ucode"].map(parent_of).to_numpy(),
                "indicator_id": fact["indicator_id"].to_numpy(),
                "value": fact["value"].to_numpy(dtype=float),
                "hidden": fact["suppressed"].to_numpy(dtype=bool) & ~np.isnan(true),
                "true": true,
            }
        )
    ]
    if cells is not None:
        cols = [c for c in cells.columns if c in set(fact["indicator_id"])]
        unit = (cells["cell_id"].astype(str) + "@" + cells["ucode"].astype(str)).to_numpy()
        pub = cells[cols].to_numpy(dtype=float)
        tru = raw_cells[cols].to_numpy(dtype=float)
        parts.append(
            pd.DataFrame(
                {
                    "unit": np.repeat(unit, len(cols)),
                    "parent": np.repeat(cells["ucode"].to_numpy(), len(cols)),
                    "indicator_id": np.tile(cols, len(cells)),
                    "value": pub.ravel(),
                    "hidden": (np.isnan(pub) & ~np.isnan(tru)).ravel(),
                    "true": tru.ravel(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def attack(terms: pd.DataFrame, dim_indicator: pd.DataFrame) -> pd.DataFrame:
    """Every unknown of the system with ``determined`` and the attacker's ``estimate``."""
    cat = dim_indicator.set_index("indicator_id")
    value = dict(zip(zip(terms["indicator_id"], terms["unit"]), terms["value"], strict=True))
    hidden = dict(zip(zip(terms["indicator_id"], terms["unit"]), terms["hidden"], strict=True))
    children: dict[tuple[str, str], list[str]] = {}
    for ind, unit, parent in zip(
        terms["indicator_id"], terms["unit"], terms["parent"], strict=True
    ):
        if isinstance(parent, str) and (ind, parent) in value:
            children.setdefault((ind, parent), []).append(unit)
    units_of: dict[str, list[str]] = terms.groupby("indicator_id")["unit"].agg(list).to_dict()

    def sum_term(ind: str, unit: str) -> tuple[dict, float]:
        if hidden.get((ind, unit), False):
            return {("x", ind, unit): 1.0}, 0.0
        v = value.get((ind, unit), np.nan)
        return {}, 0.0 if np.isnan(v) else v

    def mean_term(ind: str, weight: str, unit: str) -> tuple[dict, float]:
        m_h, w_h = hidden[(ind, unit)], hidden.get((weight, unit), False)
        m, w = value[(ind, unit)], value.get((weight, unit), np.nan)
        if (not m_h and np.isnan(m)) or (not w_h and not w > 0):
            return {}, 0.0  # no data, or no weight: the unit is not part of the mean
        if not m_h and not w_h:
            return {}, m * w
        if not m_h:
            return {("x", weight, unit): m}, 0.0
        if not w_h:
            return {("m", ind, unit): w}, 0.0
        return {("p", ind, unit): 1.0}, 0.0

    equations: list[tuple[dict, float]] = []

    def add(terms_: list[tuple[float, tuple[dict, float]]]) -> None:
        row: dict = {}
        rhs = 0.0
        for sign, (coef, const) in terms_:
            for var, c in coef.items():
                row[var] = row.get(var, 0.0) + sign * c
            rhs -= sign * const
        row = {var: c for var, c in row.items() if c != 0.0}
        if row:
            equations.append((row, rhs))

    for (ind, parent), kids in children.items():
        agg = cat.at[ind, "aggregation"]
        if agg == "sum":
            add([(1.0, sum_term(ind, parent))] + [(-1.0, sum_term(ind, c)) for c in kids])
        elif agg == "weighted_mean":
            w = cat.at[ind, "weight"]
            add([(1.0, mean_term(ind, w, parent))] + [(-1.0, mean_term(ind, w, c)) for c in kids])
    for ind in cat.index[cat["aggregation"] == "ratio"]:
        num, den, scale = cat.at[ind, "numerator"], cat.at[ind, "denominator"], cat.at[ind, "scale"]
        for unit in units_of.get(ind, []):
            r = value[(ind, unit)]
            if hidden[(ind, unit)] or np.isnan(r):
                continue
            if hidden.get((num, unit), False) or hidden.get((den, unit), False):
                d, n = sum_term(den, unit), sum_term(num, unit)
                add([(r, d), (-float(scale), n)])
    return _solve(equations)


def _solve(equations: list[tuple[dict, float]]) -> pd.DataFrame:
    variables = sorted({v for row, _ in equations for v in row})
    if not variables:
        return pd.DataFrame(columns=["kind", "indicator_id", "unit", "determined", "estimate"])
    col = {v: i for i, v in enumerate(variables)}
    r_idx, c_idx, data, rhs = [], [], [], []
    for i, (row, b) in enumerate(equations):
        scale = max(abs(c) for c in row.values())
        for var, c in row.items():
            r_idx.append(i)
            c_idx.append(col[var])
            data.append(c / scale)
        rhs.append(b / scale)
    a = sp.csr_matrix((data, (r_idx, c_idx)), shape=(len(equations), len(variables)))
    rhs_arr = np.asarray(rhs)
    n_comp, label = connected_components(sp.csr_matrix(a.T @ a), directed=False)
    determined = np.zeros(len(variables), dtype=bool)
    estimate = np.full(len(variables), np.nan)
    for comp in range(n_comp):
        cols = np.flatnonzero(label == comp)
        rows = np.unique(a[:, cols].nonzero()[0])
        block = a[rows][:, cols].toarray()
        _, s, vt = np.linalg.svd(block, full_matrices=False)
        rank = int((s > 1e-10 * s.max()).sum()) if s.size else 0
        leverage = (vt[:rank] ** 2).sum(axis=0)
        determined[cols] = leverage > 1 - 1e-9
        estimate[cols] = np.linalg.lstsq(block, rhs_arr[rows], rcond=None)[0]
    kinds, inds, units = zip(*variables, strict=True)
    return pd.DataFrame(
        {
            "kind": kinds,
            "indicator_id": inds,
            "unit": units,
            "determined": determined,
            "estimate": estimate,
        }
    )


def _catalog() -> dict:
    """The built-in catalog and the sample run's own (parameterised ids such as
    ``children_beyond_5km_health``)."""
    return {**get_indicators(), **gp.load_config(CONFIG).catalog()}


def recovered(result: pd.DataFrame, terms: pd.DataFrame, k: float) -> pd.DataFrame:
    """Determined hidden sensitive counts in (0, k) whose estimate is their true value."""
    sensitive = {i for i, ind in _catalog().items() if ind.sensitive}
    true = terms.set_index(["indicator_id", "unit"])["true"]
    hit = result[(result["kind"] == "x") & result["determined"]].copy()
    hit["true"] = true.reindex(pd.MultiIndex.from_frame(hit[["indicator_id", "unit"]])).to_numpy()
    small = hit["indicator_id"].isin(sensitive) & (hit["true"] > 0) & (hit["true"] < k)
    exact = np.isclose(hit["estimate"], hit["true"], rtol=1e-6, atol=1e-6)
    return hit[small & exact]


# --- the Rwanda sample ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_raw(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The sample run's tables before suppression (the run with suppression switched off)."""
    import geopipe.quality.privacy as privacy

    cfg = gp.load_config(CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(privacy, "suppress_small_counts", lambda fact, *a, **k: fact)
        mp.setattr(privacy, "suppress_cells", lambda cells, *a, **k: (cells, {}))
        tables = gp.run_pipeline(cfg, output=tmp_path_factory.mktemp("raw") / "sample").tables
    assert not tables["fact_indicator"]["suppressed"].any()
    return tables


def _suppress_sample(raw: dict[str, pd.DataFrame], k: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    catalog = gp.load_config(CONFIG).catalog()  # the run's catalog (parameterised ids)
    fact = gp.suppress_small_counts(raw["fact_indicator"], raw["dim_admin"], k=k, catalog=catalog)
    cells, _ = suppress_cells(raw["h3_r7"], fact, k=k, catalog=catalog)
    return fact, cells


def _sample_terms(raw: dict[str, pd.DataFrame], fact: pd.DataFrame, cells: pd.DataFrame):
    return published_terms(
        fact, raw["fact_indicator"], raw["dim_admin"], cells=cells, raw_cells=raw["h3_r7"]
    )


@pytest.mark.parametrize("k", [5, 5000])
def test_sample_attack_recovers_nothing(sample_raw, k: float) -> None:
    fact, cells = _suppress_sample(sample_raw, k)
    terms = _sample_terms(sample_raw, fact, cells)
    assert terms["hidden"].sum() > 100  # the attack has something to attack
    if k == 5000:
        assert fact["suppressed"].any()  # district values are hidden too at this threshold
    result = attack(terms, sample_raw["dim_indicator"])
    assert len(result) > 100 and (result["kind"] == "p").any()
    assert recovered(result, terms, k).empty
    # stronger: no hidden value at all (sum, mean or mean x weight) is determined
    assert not result["determined"].any(), result[result["determined"]].head()
    _no_small_value_published(fact, cells, k)
    _mean_hidden_with_weight(fact, cells)


def test_sample_attack_finds_the_leak_when_means_are_not_protected(
    sample_raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same attack against a deliberately weakened suppression (means published where their
    weight is hidden, as before issue 11) recovers hidden H3 fragment counts below k exactly."""
    monkeypatch.setattr(engine, "_hide_means", lambda ctx, hidden, k: (hidden, {}))
    fact, cells = _suppress_sample(sample_raw, 5)
    terms = _sample_terms(sample_raw, fact, cells)
    leaks = recovered(attack(terms, sample_raw["dim_indicator"]), terms, 5)
    assert len(leaks) >= 5, leaks
    assert set(leaks["indicator_id"]) >= {"children_with_wealth_data"}


def _no_small_value_published(fact: pd.DataFrame, cells: pd.DataFrame, k: float) -> None:
    sensitive = [i for i, ind in _catalog().items() if ind.sensitive]
    f = fact[fact["indicator_id"].isin(sensitive)]
    assert not ((f["value"] > 0) & (f["value"] < k)).any()
    assert f.loc[f["suppressed"], "value"].isna().all()
    c = cells[[s for s in sensitive if s in cells.columns]].to_numpy(dtype=float)
    assert not ((c > 0) & (c < k)).any()


def _mean_hidden_with_weight(fact: pd.DataFrame, cells: pd.DataFrame | None) -> None:
    wide = fact.pivot_table(index="ucode", columns="indicator_id", values="suppressed")
    for ind in _catalog().values():
        if ind.aggregation != "weighted_mean" or ind.id not in wide.columns:
            continue
        assert wide.loc[wide[ind.weight].astype(bool), ind.id].astype(bool).all(), ind.id
        if cells is not None and ind.id in cells.columns:
            assert cells.loc[cells[ind.weight].isna(), ind.id].isna().all(), ind.id


# --- generated hierarchies --------------------------------------------------------------------

IDS = [
    "population_u18",
    "children_in_poverty",
    "child_poverty_rate",
    "children_with_wealth_data",
    "wealth_index_mean",
]


def _hierarchy(shape: list[list[int]], values: list[tuple[int, int, int, float]]):
    """Country -> provinces -> districts (admin) and fragments under the districts; fragment
    values (u18, with wealth data, in poverty, wealth index) given, every level computed here."""
    admin = [("X_V1", 0, None)]
    frags = []
    for p, districts in enumerate(shape):
        pcode = f"X_{p:04d}_V1"
        admin.append((pcode, 1, "X_V1"))
        for d, n_frag in enumerate(districts):
            dcode = f"X_{p:04d}_{d:04d}_V1"
            admin.append((dcode, 2, pcode))
            frags += [(f"c{p}{d}{f}", dcode) for f in range(n_frag)]
    admin_df = pd.DataFrame(admin, columns=["ucode", "admin_level", "parent_ucode"])
    u18, extra, poor_share, wealth = (np.array(v, dtype=float) for v in zip(*values, strict=True))
    with_data = np.maximum(u18 - extra, 0)
    cells = pd.DataFrame(
        {
            "cell_id": [c for c, _ in frags],
            "ucode": [u for _, u in frags],
            "population_u18": u18,
            "children_with_wealth_data": with_data,
            "children_in_poverty": np.floor(with_data * poor_share),
            "wealth_index_mean": np.where(with_data > 0, wealth, np.nan),
        }
    )
    vw = cells["wealth_index_mean"].fillna(0) * cells["children_with_wealth_data"]
    district = (
        cells.assign(_vw=vw)
        .groupby("ucode", sort=True)[
            ["population_u18", "children_with_wealth_data", "children_in_poverty", "_vw"]
        ]
        .sum()
        .reset_index()
    )
    w = district["children_with_wealth_data"]
    district["wealth_index_mean"] = np.where(w > 0, district["_vw"] / w.where(w > 0), np.nan)
    district["admin_level"] = 2
    fact = gp.compute_indicators(district.drop(columns="_vw"), IDS, date="2020-01-01").fact
    fact = gp.rollup(fact, admin_df)
    wide = gp.compute_indicators(cells, IDS, date="2020-01-01", key="cell_id").wide
    return admin_df, fact, wide


FRAGMENT = st.tuples(
    st.integers(0, 12),
    st.integers(0, 4),
    st.floats(0, 1),
    st.floats(-1.5, 1.5).map(lambda x: round(x, 2)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=3), min_size=1, max_size=3),
    data=st.data(),
    k=st.integers(2, 12),
)
def test_generated_hierarchies_attack_recovers_nothing(
    shape: list[list[int]], data: st.DataObject, k: int
) -> None:
    n = sum(sum(d) for d in shape)
    values = data.draw(st.lists(FRAGMENT, min_size=n, max_size=n))
    admin, raw_fact, raw_cells = _hierarchy(shape, values)
    catalog = get_indicators(IDS)
    fact = gp.suppress_small_counts(raw_fact, admin, k=k, catalog=catalog)
    cells, report = suppress_cells(raw_cells, fact, k=k, catalog=catalog)
    assert report["unresolved"] == 0
    terms = published_terms(fact, raw_fact, admin, cells=cells, raw_cells=raw_cells)
    result = attack(terms, gp.indicator_catalog())
    assert recovered(result, terms, k).empty
    assert not result["determined"].any(), result[result["determined"]]
    _no_small_value_published(fact, cells, k)
    _mean_hidden_with_weight(fact, cells)


def test_generated_hierarchy_leaks_when_means_are_not_protected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One district, three fragments with children covered by wealth data 3, 10 and 20: 3 is hidden,
    10 is hidden as its complement; with the means published, W1 + W2 = 13 and
    0.5·W1 - 0.2·W2 = P(district) - 0.1·20 give both back."""
    values = [(3, 0, 0.0, 0.5), (10, 0, 0.0, -0.2), (20, 0, 0.0, 0.1), (40, 0, 0.0, 0.3)]
    admin, raw_fact, raw_cells = _hierarchy([[3, 1]], values)
    catalog = get_indicators(IDS)

    def published(weak: bool) -> pd.DataFrame:
        with monkeypatch.context() as m:
            if weak:
                m.setattr(engine, "_hide_means", lambda ctx, hidden, k: (hidden, {}))
            fact = gp.suppress_small_counts(raw_fact, admin, k=5, catalog=catalog)
            cells, _ = suppress_cells(raw_cells, fact, k=5, catalog=catalog)
        terms = published_terms(fact, raw_fact, admin, cells=cells, raw_cells=raw_cells)
        return recovered(attack(terms, gp.indicator_catalog()), terms, 5)

    leaks = published(weak=True)
    assert set(leaks["unit"]) == {"c000@X_0000_0000_V1"}
    assert list(leaks["indicator_id"]) == ["children_with_wealth_data"]
    assert np.isclose(leaks["estimate"].iloc[0], 3.0)
    assert published(weak=False).empty


def test_a_mean_hidden_on_input_is_completed() -> None:
    """A mean already suppressed on input (its weight published) would be given back by the
    parent's mean x weight; another mean is hidden, that of the child with the smallest weight."""
    weight, mean = [600.0, 100.0, 200.0, 300.0], [0.0, 2.0, 4.0, 6.0]
    mean[0] = (2 * 100 + 4 * 200 + 6 * 300) / 600
    admin, raw = star_fact({"population_total": weight, "distance_to_health_km_mean": mean})
    given = raw.assign(suppressed=(raw["ucode"] == "C") & (raw["value"] == 6.0))
    catalog = _catalog()  # the sample's catalog: distance_to_health_km_mean is a rendered template
    dim = gp.pipeline.run._dim_indicator(catalog, set(catalog))
    out = gp.suppress_small_counts(given, admin, k=5, catalog=catalog)
    assert out.attrs["geopipe"]["suppression"]["means_complementary"] == 1
    hidden = out.loc[out["suppressed"], ["indicator_id", "ucode"]].values.tolist()
    assert hidden == [["distance_to_health_km_mean", "A"], ["distance_to_health_km_mean", "C"]]
    result = attack(published_terms(out, raw, admin), dim)
    assert len(result) == 2 and not result["determined"].any()
    # without the completion the attacker solves the hidden mean x weight of C
    weak = given.assign(value=given["value"].where(~given["suppressed"]))
    result = attack(published_terms(weak, raw, admin), dim)
    assert result["determined"].all() and np.isclose(result["estimate"].iloc[0], 6.0)


def test_a_fragment_that_cannot_be_protected_is_reported() -> None:
    """A unit with one fragment whose value differs from the unit's by rounding (5.0001 vs 4.9999):
    the fragment is hidden, its unit is published already, and nothing else can be hidden."""
    fact = pd.DataFrame(
        {
            "ucode": ["D"],
            "indicator_id": ["population_u5"],
            "date": "2020-01-01",
            "value": [5.0001],
            "suppressed": False,
        }
    )
    cells = pd.DataFrame(
        {"cell_id": ["a"], "ucode": ["D"], "date": "2020-01-01", "population_u5": [4.9999]}
    )
    out, report = suppress_cells(cells, fact, k=5)
    assert out["population_u5"].isna().all() and report["unresolved"] == 1
    # with a zero-valued sibling, that sibling is hidden as the last resort
    cells = pd.DataFrame(
        {"cell_id": ["a", "b"], "ucode": "D", "date": "2020-01-01", "population_u5": [4.9999, 0.0]}
    )
    out, report = suppress_cells(cells, fact, k=5)
    assert out["population_u5"].isna().all() and report["unresolved"] == 0


# --- a whole run folder -----------------------------------------------------------------------


def _sensitive_values(table: pd.DataFrame) -> np.ndarray:
    """Every value of a sensitive indicator in a published table, wide or long."""
    sensitive = [i for i, ind in get_indicators().items() if ind.sensitive]
    id_col = next((c for c in ("indicator_id", "indicator_shortcode") if c in table.columns), None)
    if id_col is not None and "value" in table.columns:
        rows = table[table[id_col].isin(sensitive)]
        return pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
    cols = [c for c in table.columns if c in sensitive]
    return table[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float).ravel()


def _published_tables(path: Path) -> list[pd.DataFrame]:
    """Every table in a published file, without geometry."""
    import duckdb
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        table = pq.read_table(path)
        drop = [c for c in ("geometry", "bbox") if c in table.column_names]
        return [table.drop_columns(drop).to_pandas()]
    if path.suffix == ".csv":
        return [pd.read_csv(path)]
    if path.suffix != ".duckdb":
        return []
    out = []
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.sql("select table_name from information_schema.tables").fetchall()
        for (name,) in names:
            cols = con.sql(f'describe "{name}"').fetchall()
            keep = ", ".join(f'"{c[0]}"' for c in cols if "GEOMETRY" not in str(c[1]))
            out.append(con.sql(f'select {keep} from "{name}"').df())
    return out


def test_sample_run_folder_publishes_no_small_count_and_resists_the_attack(
    sample_raw, tmp_path_factory
) -> None:
    """The sample run as written (k = 5): every table of every published file — Parquet, the
    GeoSight CSV, every table and view of the DuckDB warehouse — holds no sensitive value in
    (0, 5), and the attack on the files read back determines nothing. (Dot-folders are run state,
    not tables for BI; issue 11 moves them out of the run folder.)"""
    import pyarrow.parquet as pq

    out = gp.run_pipeline(CONFIG, output=tmp_path_factory.mktemp("pub") / "sample").output
    checked = 0
    for path in sorted(p for p in out.iterdir() if p.is_file()):
        for table in _published_tables(path):
            values = _sensitive_values(table)
            checked += values.size
            assert not ((values > 0) & (values < 5)).any(), path.name
    assert checked > 50_000
    fact = pd.read_parquet(out / "fact_indicator.parquet")
    cells = pq.read_table(out / "h3_r7.parquet").drop_columns(["geometry"]).to_pandas()
    terms = published_terms(
        fact,
        sample_raw["fact_indicator"],
        pd.read_parquet(out / "dim_admin.parquet", columns=["ucode", "parent_ucode"]),
        cells=cells,
        raw_cells=sample_raw["h3_r7"],
    )
    result = attack(terms, pd.read_parquet(out / "dim_indicator.parquet"))
    assert (result["kind"] == "p").any() and not result["determined"].any()
