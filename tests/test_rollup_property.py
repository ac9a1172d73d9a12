"""Roll-up invariants on random admin trees (hypothesis), and the age-share path for child counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import geopipe as gp


@st.composite
def trees(draw):
    """A random 3-level hierarchy with random measures on the finest units."""
    n1 = draw(st.integers(1, 4))
    admin = [{"ucode": "ZZZ_V1", "admin_level": 0, "parent_ucode": None}]
    finest = []
    for i in range(1, n1 + 1):
        p1 = f"ZZZ_{i:04d}_V1"
        admin.append({"ucode": p1, "admin_level": 1, "parent_ucode": "ZZZ_V1"})
        for j in range(1, draw(st.integers(1, 5)) + 1):
            u = f"ZZZ_{i:04d}_{j:04d}_V1"
            admin.append({"ucode": u, "admin_level": 2, "parent_ucode": p1})
            finest.append(u)
    n = len(finest)
    counts = st.lists(st.integers(0, 10_000), min_size=n, max_size=n)
    pop = np.array(draw(counts), dtype=float)
    u18 = np.floor(pop * np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))))
    poor = np.floor(u18 * np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))))
    wealth = np.array(draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
    schools = np.array(draw(counts), dtype=float) % 50
    connected = np.floor(
        schools * np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    )
    units = pd.DataFrame(
        {
            "ucode": finest,
            "admin_level": 2,
            "population_total": pop,
            "population_u18": u18,
            "children_in_poverty": poor,
            "children_with_wealth_data": u18,
            "wealth_index_mean": wealth,
            "schools_total": schools,
            "schools_connected": connected,
        }
    )
    return pd.DataFrame(admin), units


def _fixed_tree() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two provinces of two districts, every measure non-zero: every check is reached."""
    admin = pd.DataFrame(
        {
            "ucode": ["ZZZ_V1", "ZZZ_0001_V1", "ZZZ_0002_V1"]
            + [f"ZZZ_000{i}_000{j}_V1" for i in (1, 2) for j in (1, 2)],
            "admin_level": [0, 1, 1, 2, 2, 2, 2],
            "parent_ucode": [None, "ZZZ_V1", "ZZZ_V1"]
            + [f"ZZZ_000{i}_V1" for i in (1, 2) for _ in (1, 2)],
        }
    )
    units = pd.DataFrame(
        {
            "ucode": admin["ucode"].iloc[3:].to_numpy(),
            "admin_level": 2,
            "population_total": [1000.0, 4000.0, 250.0, 9000.0],
            "population_u18": [400.0, 1500.0, 100.0, 3000.0],
            "children_in_poverty": [100.0, 300.0, 90.0, 200.0],
            "children_with_wealth_data": [400.0, 1500.0, 100.0, 3000.0],
            "wealth_index_mean": [-1.0, 0.5, -0.2, 1.5],
            "schools_total": [3.0, 4.0, 1.0, 12.0],
            "schools_connected": [1.0, 4.0, 0.0, 6.0],
        }
    )
    return admin, units


@settings(max_examples=30, deadline=None)
@example(_fixed_tree())
@given(trees())
def test_rollup_invariants(tree):
    admin, units = tree
    ids = [
        "population_total",
        "child_poverty_rate",
        "wealth_index_mean",
        "schools_connected_share",
        "schools_per_10k_children",
    ]
    fact = gp.compute_indicators(units, ids, date="2024-01-01").fact
    rolled = gp.rollup(fact, admin)
    wide = rolled.pivot_table(index="ucode", columns="indicator_id", values="value", dropna=False)
    parent = admin.set_index("ucode")["parent_ucode"]
    for level in (1, 0):
        for p in admin.loc[admin.admin_level == level, "ucode"]:
            kids = admin.loc[admin.parent_ucode == p, "ucode"]
            k = wide.loc[kids]
            for s in (
                "population_total",
                "population_u18",
                "children_in_poverty",
                "schools_total",
                "schools_connected",
                "children_with_wealth_data",
            ):
                assert wide.loc[p, s] == pytest.approx(k[s].sum(), rel=1e-12, abs=1e-9)
            # ratios: sum(numerator) / sum(denominator), never the mean of the children's ratios
            den = k["population_u18"].sum()
            expected = k["children_in_poverty"].sum() / den if den > 0 else np.nan
            assert wide.loc[p, "child_poverty_rate"] == pytest.approx(
                expected, rel=1e-12, nan_ok=True
            )
            den = k["schools_total"].sum()
            expected = k["schools_connected"].sum() / den if den > 0 else np.nan
            assert wide.loc[p, "schools_connected_share"] == pytest.approx(
                expected, rel=1e-12, nan_ok=True
            )
            # a scaled ratio: schools_total / population_u18 x 10,000 (catalog scale)
            den = k["population_u18"].sum()
            expected = k["schools_total"].sum() / den * 10_000 if den > 0 else np.nan
            assert wide.loc[p, "schools_per_10k_children"] == pytest.approx(
                expected, rel=1e-12, nan_ok=True
            )
            # weighted means: re-weighted by the rolled-up weight
            w = k["children_with_wealth_data"].fillna(0)
            ok = k["wealth_index_mean"].notna() & (w > 0)
            expected = (
                (k.loc[ok, "wealth_index_mean"] * w[ok]).sum() / w[ok].sum() if ok.any() else np.nan
            )
            assert wide.loc[p, "wealth_index_mean"] == pytest.approx(
                expected, rel=1e-9, abs=1e-12, nan_ok=True
            )
    # the country equals a direct computation on all the finest units
    assert wide.loc["ZZZ_V1", "population_total"] == pytest.approx(
        units["population_total"].sum(), rel=1e-12, abs=1e-9
    )
    assert pd.isna(parent.loc["ZZZ_V1"])


def test_child_counts_from_an_age_share_table(sample_dir):
    """Only a total-population raster: under-18 and under-5 come from a per-district share table."""
    p = gp.Pipeline(
        name="ages",
        date="2020-01-01",
        sources={
            "admin": gp.Source(
                "admin", {lv: sample_dir / f"rwa_adm{lv}.geojson" for lv in (0, 1, 2)}
            ),
            "population_total": gp.Source(
                "raster", sample_dir / "rwa_population_2020_modelled_232m.tif"
            ),
            "ages": gp.Source("table", sample_dir / "rwa_age_shares_adm2_modelled.csv"),
        },
        steps=[
            gp.steps.RasterStats(raster="population_total"),
            gp.steps.AgeShares(table="ages"),
        ],
    )
    units = gp.pipeline.measure_units(p)
    districts = units.drop(columns=["population_total", "population_u18", "population_u5"])
    result = gp.compute_indicators(
        units, ["population_u18", "population_u5"], date="2020-01-01", catalog=p.catalog()
    )
    assert result.skipped == {}
    shares = pd.read_csv(sample_dir / "rwa_age_shares_adm2_modelled.csv").set_index("shapeID")
    wide = result.wide.set_index("source_id")
    np.testing.assert_allclose(
        wide["population_u18"],
        wide["population_total"] * shares.loc[wide.index, "share_u18"],
        rtol=1e-12,
    )
    # the modelled shares were made from the modelled age rasters: the two routes agree to rounding
    direct = gp.zonal_raster(
        districts, {"u18": sample_dir / "rwa_population_u18_2020_modelled_232m.tif"}
    )
    np.testing.assert_allclose(result.wide["population_u18"], direct["u18_sum"], rtol=2e-3)
