"""Privacy: small-count suppression cannot be undone, pseudonyms hide ids, personal columns stay out."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import star_fact
from geopipe.errors import ConfigError, GeopipeError, GeopipeWarning
from geopipe.indicators.compute import compute_indicators
from geopipe.indicators.rollup import rollup
from geopipe.io.points import read_points
from geopipe.quality.indicators import check_indicators
from geopipe.quality.privacy import drop_personal, pseudonymise, suppress_small_counts

SENSITIVE = ["population_u18", "population_u5"]


@pytest.fixture(scope="module")
def rwanda(rwanda_admin) -> gpd.GeoDataFrame:
    return rwanda_admin


def _fact(
    admin: pd.DataFrame, u18: np.ndarray, u5: np.ndarray, schools: np.ndarray
) -> pd.DataFrame:
    finest = admin[admin["admin_level"] == admin["admin_level"].max()].reset_index(drop=True)
    units = pd.DataFrame(
        {
            "ucode": finest["ucode"],
            "admin_level": finest["admin_level"],
            "population_u18": u18,
            "population_u5": u5,
            "schools_total": schools,
            "schools_connected": np.minimum(schools, 1),
        }
    )
    fact = compute_indicators(
        units,
        ["population_u18", "population_u5", "schools_per_10k_children", "schools_connected_share"],
        date="2020-01-01",
    ).fact
    return rollup(fact, admin, to_level=int(admin["admin_level"].min()))


def _recoverable(published: pd.DataFrame, original: pd.DataFrame, admin: pd.DataFrame) -> list[str]:
    """Brute force, independent of the implementation: every suppressed value that can be
    determined exactly from the published values through the equations parent = Σ children.

    For each (indicator, date) the equations are stacked into a matrix over the hidden values
    (published ones moved to the right-hand side); hidden value x_i is determined iff the unit
    vector e_i lies in the row space (rank test)."""
    leaks = []
    parent_of = dict(zip(admin["ucode"], admin["parent_ucode"], strict=True))
    for (ind, date), group in published.groupby(["indicator_id", "date"]):
        if ind not in SENSITIVE:
            continue
        hidden = group.loc[group["suppressed"], "ucode"].tolist()
        if not hidden:
            continue
        col = {u: i for i, u in enumerate(hidden)}
        present = set(group["ucode"])
        families: dict[str, list[str]] = {}
        for u in group["ucode"]:
            p = parent_of.get(u)
            if p is not None and p in present:
                families.setdefault(p, []).append(u)
        rows = []
        for parent, children in families.items():
            row = np.zeros(len(hidden))
            for u, sign in [(parent, 1.0)] + [(c, -1.0) for c in children]:
                if u in col:
                    row[col[u]] += sign
            if row.any():
                rows.append(row)
        if not rows:
            continue
        a = np.array(rows)
        rank = np.linalg.matrix_rank(a)
        for u, i in col.items():
            e = np.zeros(len(hidden))
            e[i] = 1.0
            if np.linalg.matrix_rank(np.vstack([a, e])) == rank:
                leaks.append(f"{ind} {u}")
        # the simple attack of the issue text: parent − Σ published children, one hidden child
        values = original[(original["indicator_id"] == ind) & (original["date"] == date)].set_index(
            "ucode"
        )["value"]
        pub = group.set_index("ucode")
        for parent, children in families.items():
            hidden_children = [c for c in children if pub.at[c, "suppressed"]]
            if len(hidden_children) == 1 and not pub.at[parent, "suppressed"]:
                guess = pub.at[parent, "value"] - sum(
                    pub.at[c, "value"] for c in children if c not in hidden_children
                )
                if np.isclose(guess, values[hidden_children[0]]):
                    leaks.append(f"{ind} {hidden_children[0]} (parent − siblings)")
    return leaks


def test_suppression_on_rwanda_cannot_be_reconstructed(rwanda: gpd.GeoDataFrame) -> None:
    rng = np.random.default_rng(11)
    n = int((rwanda["admin_level"] == 2).sum())
    u18 = rng.integers(0, 40, n).astype(float)
    u5 = rng.integers(0, 12, n).astype(float)
    schools = rng.integers(0, 6, n).astype(float)
    fact = _fact(rwanda, u18, u5, schools)
    out = suppress_small_counts(fact, rwanda, k=5)
    assert out.attrs["geopipe"]["suppression"]["primary"] > 0
    assert out.attrs["geopipe"]["suppression"]["complementary"] > 0
    # primary rule: every sensitive value in (0, k) is hidden (a true zero identifies no one);
    # non-sensitive sums are untouched
    small = fact["indicator_id"].isin(SENSITIVE) & (fact["value"] > 0) & (fact["value"] < 5)
    assert out.loc[small, "suppressed"].all()
    schools_rows = fact["indicator_id"] == "schools_total"
    assert not out.loc[schools_rows, "suppressed"].any()
    assert out.loc[out["suppressed"], "value"].isna().all()
    assert _recoverable(out, fact, rwanda) == []
    # ratios using a hidden count are hidden too (ratio × denominator would reveal it)
    hidden = set(out.loc[out["suppressed"] & (out["indicator_id"] == "population_u18"), "ucode"])
    ratio = out[out["indicator_id"] == "schools_per_10k_children"].set_index("ucode")["suppressed"]
    assert ratio[list(hidden)].all()
    # the fact passes the leak check; the input is not modified
    assert [
        r.level
        for r in check_indicators(out)
        if r.check_id == "indicators.suppressed_value_published"
    ] == ["pass"]
    assert not fact["suppressed"].any()


def _tree_admin(shape: list[int]) -> pd.DataFrame:
    rows = [("R", None)]
    for i, n_children in enumerate(shape):
        rows.append((f"P{i}", "R"))
        rows += [(f"P{i}C{j}", f"P{i}") for j in range(n_children)]
    return pd.DataFrame(rows, columns=["ucode", "parent_ucode"])


def _leaf_fact(shape: list[int], values: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A three-level tree (R, P<i>, P<i>C<j>) with leaf values and their exact sums above."""
    admin = _tree_admin(shape)
    leaves = admin[admin["ucode"].str.contains("C")]
    leaf = pd.Series(values, index=leaves["ucode"].to_numpy(), dtype=float)
    mids = leaf.groupby(leaves.set_index("ucode")["parent_ucode"]).sum()
    allv = pd.concat([pd.Series({"R": leaf.sum()}), mids, leaf])
    fact = pd.DataFrame(
        {
            "ucode": allv.index,
            "indicator_id": "population_u5",
            "date": "2020-01-01",
            "value": allv.to_numpy(),
            "suppressed": False,
        }
    )
    return admin, fact


@st.composite
def _trees(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=5))
    values = draw(st.lists(st.integers(0, 30), min_size=sum(shape), max_size=sum(shape)))
    return shape, values


# P0 = 1 + 1 is hidden (primary) -> the country's family exposes P0 -> P1 is hidden -> P1's
# own family (P1 = 10 + 20) now gives P1 away unless one of its districts is hidden too: a
# second pass. A single pass of complementary suppression leaks P1 here, on every run.
CASCADE = ([2, 2], [1, 1, 10, 20])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(tree=CASCADE, k=5)
@example(tree=([1, 3, 2], [2, 0, 9, 14, 3, 30]), k=5)
@given(tree=_trees(), k=st.integers(1, 10))
def test_suppression_property(tree: tuple[list[int], list[int]], k: int) -> None:
    admin, fact = _leaf_fact(*tree)
    out = suppress_small_counts(fact, admin, k=k)
    assert out.loc[(fact["value"] > 0) & (fact["value"] < k), "suppressed"].all()
    assert _recoverable(out, fact, admin) == []
    assert out["suppressed"].sum() == 0 or out.loc[out["suppressed"], "value"].isna().all()


def test_suppression_cascades_over_levels() -> None:
    """The fixed hierarchy above, answer by hand: the hidden set of each pass."""
    admin, fact = _leaf_fact(*CASCADE)
    out = suppress_small_counts(fact, admin, k=5).set_index("ucode")
    # primary: P0C0, P0C1 (1 each) and P0 (2); pass 1: P1 (R = P0 + P1); pass 2: P1C0, the
    # smaller district of P1 (P1 = P1C0 + P1C1); R and P1C1 stay published
    assert sorted(out.index[out["suppressed"]]) == ["P0", "P0C0", "P0C1", "P1", "P1C0"]
    assert out.loc["R", "value"] == 32 and out.loc["P1C1", "value"] == 20
    rep = out.attrs["geopipe"]["suppression"]
    assert (rep["primary"], rep["complementary"]) == (3, 2)


def test_pseudonymise(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import hashlib
    import hmac

    key = "test-key-0123456789abcdef"
    monkeypatch.setenv("GEOPIPE_PSEUDONYM_KEY", key)
    frame = pd.DataFrame(
        {
            "respondent_id": ["R-001", "R-002", "R-001", None],
            "phone": ["+250 1", "+250 2", "+250 3", None],
            "respondent_name": ["Aline", "Jean", "Aline", "Marie"],
            "value": [1, 2, 3, 4],
        }
    )
    out = drop_personal(pseudonymise(frame, ["respondent_id"]), ["Phone", "respondent_name"])
    assert frame["respondent_id"].iloc[0] == "R-001", "input unchanged"
    expected = hmac.new(
        key.encode(), b"R-001", hashlib.sha256
    ).hexdigest()  # reference: the stdlib directly
    assert out["respondent_id"].iloc[0] == expected == out["respondent_id"].iloc[2]
    assert out["respondent_id"].iloc[1] != expected and out["respondent_id"].iloc[3] is None
    assert list(out.columns) == ["respondent_id", "value"]
    path = tmp_path / "out.parquet"
    out.to_parquet(path)
    raw = path.read_bytes()
    table = pq.read_table(path).to_pandas()
    for secret in ["R-001", "R-002", "Aline", "Jean", "+250", key]:
        assert secret.encode() not in raw, secret
        assert (
            not table.astype(str)
            .apply(lambda c, s=secret: c.str.contains(s, regex=False))
            .any()
            .any()
        )
    assert {"phone", "respondent_name"}.isdisjoint(table.columns)


def test_pseudonymise_needs_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOPIPE_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="GEOPIPE_PSEUDONYM_KEY"):
        pseudonymise(pd.DataFrame({"id": ["a"]}), "id")
    monkeypatch.setenv("MY_KEY", "short")
    with pytest.raises(GeopipeError, match="MY_KEY"):
        pseudonymise(pd.DataFrame({"id": ["a"]}), "id", key_env="MY_KEY")


def test_personal_columns_never_reach_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path, testdata
) -> None:
    """A school table with names and phones: after read_points(drop_columns=) / drop_personal and
    pseudonymise, the GeoParquet written holds no personal column and no original id."""
    from geopipe.io.geoparquet import write_geoparquet

    monkeypatch.setenv("GEOPIPE_PSEUDONYM_KEY", "another-test-key-0123456789")
    csv = tmp_path / "schools.csv"
    csv.write_text(
        "school_id,head_teacher,phone,lat,lon\nSCH-1,Aline U.,+250788000001,-1.95123,30.06123\n"
        "SCH-2,Jean K.,+250788000002,-2.59123,29.74123\n",
        encoding="utf-8",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        points = read_points(csv, id_col="school_id", drop_columns=["phone"])
    safe = pseudonymise(drop_personal(points, ["head_teacher"]), ["point_id", "school_id"])
    out = tmp_path / "schools.parquet"
    write_geoparquet(safe, out)
    table = pq.read_table(out).to_pandas()
    assert {"phone", "head_teacher"}.isdisjoint(table.columns)
    raw = out.read_bytes()
    for secret in ["SCH-1", "SCH-2", "+250788", "Aline", "Jean K"]:
        assert secret.encode() not in raw
    assert len(table) == 2


def test_reference_detects_leaks_without_complementary_suppression(
    rwanda: gpd.GeoDataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brute-force reference is not vacuous: with primary suppression only, it finds leaks."""
    import geopipe.quality._suppression as engine
    import geopipe.quality.privacy as privacy

    monkeypatch.setattr(engine, "_complete", lambda ppos, *, unknown, **_: (unknown, 0))
    rng = np.random.default_rng(11)
    n = int((rwanda["admin_level"] == 2).sum())
    fact = _fact(
        rwanda,
        rng.integers(0, 40, n).astype(float),
        rng.integers(0, 12, n).astype(float),
        rng.integers(0, 6, n).astype(float),
    )
    out = privacy.suppress_small_counts(fact, rwanda, k=5)
    assert any("parent − siblings" in leak for leak in _recoverable(out, fact, rwanda))


def test_pseudonym_depends_on_the_value_not_its_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    """101 stored as int, float, nullable Int64, numpy scalar or text "101" gives one pseudonym
    (the HMAC of "101", computed here with the stdlib); other texts and numbers stay distinct."""
    import hashlib
    import hmac

    key = "dtype-test-key-0123456789abcdef"
    monkeypatch.setenv("GEOPIPE_PSEUDONYM_KEY", key)

    def ref(text: str) -> str:
        return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()

    frames = {
        "int64": pd.DataFrame({"id": np.array([101, 7], dtype="int64")}),
        "uint8": pd.DataFrame({"id": np.array([101, 7], dtype="uint8")}),
        "float": pd.DataFrame({"id": [101.0, 7.0]}),
        "Int64 with NA": pd.DataFrame({"id": pd.array([101, None, 7], dtype="Int64")}),
        "text": pd.DataFrame({"id": ["101", "7"]}),
        "object mix": pd.DataFrame({"id": [np.int64(101), 7.0]}, dtype=object),
    }
    for name, frame in frames.items():
        out = pseudonymise(frame, "id")["id"].dropna().tolist()
        assert out == [ref("101"), ref("7")], name
    # a float column with a null (how pandas reads an int id column with gaps) still gives "101"
    assert pseudonymise(pd.DataFrame({"id": [101, None]}), "id")["id"].iloc[0] == ref("101")
    mixed = pd.DataFrame({"id": [101.5, 2.0**62, -0.0]})
    assert pseudonymise(mixed, "id")["id"].tolist() == [ref("101.5"), ref(str(2**62)), ref("0")]
    texts = pd.DataFrame({"id": ["0101", "101.0", " 101", True]}, dtype=object)
    out = pseudonymise(texts, "id")["id"].tolist()
    assert out == [ref("0101"), ref("101.0"), ref(" 101"), ref("True")]
    assert ref("101") not in out


def test_a_run_catalog_is_used_and_the_global_one_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """User-defined indicators (a sensitive sum and a mean weighted by it) follow the same rules,
    and with catalog= passed the built-in catalog is never read."""
    import geopipe.indicators.catalog as catalog_module
    from geopipe.indicators.catalog import Indicator
    from geopipe.quality.privacy import suppress_cells

    def no_global(*args, **kwargs):
        raise AssertionError("the built-in catalog was read although catalog= was passed")

    monkeypatch.setattr(catalog_module, "get_indicators", no_global)
    catalog = {
        "girls_u18": Indicator(
            id="girls_u18",
            name="Girls under 18",
            unit="people",
            family="population",
            aggregation="sum",
            description="user-defined",
            sensitive=True,
        ),
        "girls_score_mean": Indicator(
            id="girls_score_mean",
            name="Mean score of girls",
            unit="score",
            family="population",
            aggregation="weighted_mean",
            weight="girls_u18",
            description="user-defined",
        ),
    }
    girls = [33.0, 3.0, 10.0, 20.0]
    score = [(0.5 * 3 + 0.2 * 10 + 0.1 * 20) / 33, 0.5, 0.2, 0.1]
    admin, fact = star_fact({"girls_u18": girls, "girls_score_mean": score})
    out = suppress_small_counts(fact, admin, k=5, catalog=catalog)
    hidden = out.set_index(["indicator_id", "ucode"])["suppressed"]
    # A (3) is primary, B (10) its complement; the means of A and B go with their weights
    assert hidden["girls_u18"].to_dict() == {"P": False, "A": True, "B": True, "C": False}
    assert hidden["girls_score_mean"].to_dict() == {"P": False, "A": True, "B": True, "C": False}
    assert out.attrs["geopipe"]["suppression"]["means_weight_hidden"] == 2
    cells = pd.DataFrame(
        {
            "cell_id": ["a1", "a2"],
            "ucode": "C",
            "date": "2020-01-01",
            "girls_u18": [19.0, 1.0],
            "girls_score_mean": [0.1, 0.1],
        }
    )
    done, report = suppress_cells(cells, out, k=5, catalog=catalog)
    assert done[["girls_u18", "girls_score_mean"]].isna().all().all()  # 1 hidden, 19 its complement
    assert report["values_hidden"] == 4 and report["unresolved"] == 0


def test_suppress_cells_bad_input() -> None:
    from geopipe.errors import InputError, MissingColumnError
    from geopipe.quality.privacy import suppress_cells

    fact = pd.DataFrame({"ucode": ["D"], "indicator_id": ["population_u5"], "value": [9.0]})
    with pytest.raises(MissingColumnError, match="cell_id"):
        suppress_cells(pd.DataFrame({"ucode": ["D"], "population_u5": [1.0]}), fact)
    cells = pd.DataFrame({"cell_id": ["a"], "ucode": ["D"], "population_u5": [9.0]})
    with pytest.raises(InputError, match="k was"):
        suppress_cells(cells, fact, k=0)
    with pytest.raises(InputError, match="k was"):
        suppress_small_counts(fact, pd.DataFrame({"ucode": ["D"], "parent_ucode": [None]}), k=True)
