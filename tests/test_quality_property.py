"""Property test: random and degenerate geometries through read_admin -> check_admin -> H3 grid /
point counts / zonal raster -> compute_indicators -> rollup. Nothing may fail with anything but a
GeopipeError, and totals are conserved where defined (each against an independent reference)."""

from __future__ import annotations

import warnings
from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geopipe.errors import EmptyInputError, GeopipeError, GeopipeWarning
from geopipe.grids.h3 import h3_grid
from geopipe.indicators.compute import compute_indicators
from geopipe.indicators.rollup import rollup
from geopipe.io.admin import read_admin
from geopipe.quality.boundaries import check_admin
from geopipe.zonal.points import count_points
from geopipe.zonal.raster import zonal_raster

REGION = (29.0, -3.0, 31.0, -1.0)  # 4 slots of 1° x 1°: units never overlap, so sums must add up
SLOTS = [(29.0, -3.0), (30.0, -3.0), (29.0, -2.0), (30.0, -2.0)]
EQUAL_AREA = "EPSG:6933"


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> str:
    import rasterio
    from rasterio.transform import from_bounds

    data = np.random.default_rng(3).gamma(2.0, 40.0, size=(40, 40)).astype("float32")
    path = tmp_path_factory.mktemp("prop") / "pop.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=40,
        width=40,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_bounds(*REGION, 40, 40),
        nodata=-1.0,
    ) as ds:
        ds.write(data, 1)
    return str(path)


def _shape(
    kind: str, slot: tuple[float, float], a: float, b: float, c: float, d: float
) -> shapely.Geometry:
    x0, y0 = slot
    lo_x, hi_x = sorted((x0 + a * 0.98 + 0.01, x0 + c * 0.98 + 0.01))
    lo_y, hi_y = sorted((y0 + b * 0.98 + 0.01, y0 + d * 0.98 + 0.01))
    if kind == "box":
        return shapely.box(lo_x, lo_y, max(hi_x, lo_x + 1e-3), max(hi_y, lo_y + 1e-3))
    if kind == "empty":
        return shapely.Polygon()
    if kind == "zero_area":
        return shapely.Polygon([(lo_x, lo_y), (hi_x, hi_y), (lo_x, lo_y), (lo_x, lo_y)])
    if kind == "bowtie":
        return shapely.Polygon(
            [(lo_x, lo_y), (hi_x, hi_y + 1e-3), (hi_x, lo_y), (lo_x, hi_y + 1e-3), (lo_x, lo_y)]
        )
    if kind == "huge":
        return shapely.box(lo_x * 1e6, lo_y * 1e6, hi_x * 1e6 + 1, hi_y * 1e6 + 1)
    if kind == "sliver":
        return shapely.box(lo_x, lo_y, lo_x + 1e-9, hi_y + 1e-3)
    raise AssertionError(kind)


def test_read_admin_repairs_a_zero_area_polygon_first() -> None:
    frame = gpd.GeoDataFrame(
        {"name": ["Flat", "Bowtie"], "id": ["F", "B"]},
        geometry=[
            shapely.Polygon([(29, -2), (29.5, -1.5), (29, -2), (29, -2)]),
            shapely.Polygon([(30, -3), (31, -1), (31, -3), (30, -1), (30, -3)]),
        ],
        crs=4326,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        admin = read_admin(frame, level=1, iso3="XXA", mapping={"name": "name", "id": "id"})
    assert admin["name"].tolist() == ["Bowtie"]  # the flat one is rejected, the bowtie repaired


unit = st.tuples(
    st.sampled_from(["box", "box", "empty", "zero_area", "bowtie", "huge", "sliver"]),
    *(st.floats(0, 1, allow_nan=False) for _ in range(4)),
)


# a point given as (unit number, fx, fy): the point at fractions (fx, fy) of that unit's bounding
# box; 0, 0.5 and 1 often, so points land on vertices and edges as well as inside
_frac = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1, allow_nan=False))
inside_point = st.tuples(st.integers(0, 3), _frac, _frac)
# two ordinary units and a sliver: every check below is reached by this example
_ALWAYS = {
    "units": [("box", 0.1, 0.2, 0.8, 0.9), ("sliver", 0.3, 0.3, 0.6, 0.6), ("box", 0, 0, 1, 1)],
    "inside": [(0, 0.5, 0.5), (0, 0.0, 0.0), (0, 1.0, 0.5), (2, 0.25, 0.75), (1, 0.5, 0.5)],
    "pts": [(28.6, -0.6), (30.5, -1.5)],
}


def _points_in_units(level1: gpd.GeoDataFrame, inside: list, pts: list) -> gpd.GeoDataFrame:
    b = shapely.bounds(level1.geometry.to_numpy())
    xy = [
        (
            b[i % len(b), 0] + fx * (b[i % len(b), 2] - b[i % len(b), 0]),
            b[i % len(b), 1] + fy * (b[i % len(b), 3] - b[i % len(b), 1]),
        )
        for i, fx, fy in inside
    ] + list(pts)
    return gpd.GeoDataFrame(
        geometry=gpd.points_from_xy([p[0] for p in xy], [p[1] for p in xy]), crs=4326
    )


def _run_pipeline(units: list, inside: list, pts: list, raster: str, reached: Counter) -> None:
    """One example through the whole chain; ``reached`` counts the checks it got to."""
    geoms = [_shape(kind, SLOTS[i], a, b, c, d) for i, (kind, a, b, c, d) in enumerate(units)]
    frame = gpd.GeoDataFrame(
        {
            "name": ["Country"] + [f"U{i}" for i in range(len(geoms))],
            "id": ["C"] + [f"U{i}" for i in range(len(geoms))],
            "level": [0] + [1] * len(geoms),
            "parent": [None] + ["C"] * len(geoms),
        },
        geometry=[shapely.box(*REGION), *geoms],
        crs=4326,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        try:
            admin = read_admin(
                frame,
                iso3="XXA",
                mapping={"name": "name", "id": "id", "level": "level", "parent_id": "parent"},
            )
            results = check_admin(admin)
        except GeopipeError:
            reached["refused with a GeopipeError"] += 1  # allowed: a clear error, no crash
            return
        # the gate: units whose coordinates are outside the CRS's bounds are quarantined, not used
        bad = {
            u
            for r in results
            if r.check_id == "admin.coordinates_out_of_bounds" and r.level == "fail"
            for u in r.examples
        }
        admin = admin[~admin["ucode"].isin(bad)].reset_index(drop=True)
        level1 = admin[admin["admin_level"] == 1].reset_index(drop=True)
        if level1.empty:
            reached["no usable unit"] += 1
            return
        assert level1.geometry.is_valid.all() and not level1.geometry.is_empty.any()

        # H3 fragments tile the units: area per unit conserved (reference: the unit's own area)
        try:
            grid = h3_grid(admin, 5)
        except GeopipeError:
            grid = None
        if grid is not None:
            unit_km2 = level1.set_index("ucode").geometry.to_crs(EQUAL_AREA).area / 1e6
            got = grid.groupby("ucode")["area_km2"].sum().reindex(unit_km2.index, fill_value=0.0)
            np.testing.assert_allclose(
                got.to_numpy(), unit_km2.to_numpy(), rtol=1e-4, atol=1e-6
            )  # vertices added on diagonal edges
            reached["h3 areas"] += 1

        # points: each point inside (or on the edge of) a unit is counted once (reference:
        # shapely on the union of the units)
        points = _points_in_units(level1, inside, pts)
        counted = count_points(level1, points, name="health_facilities", allow_none_inside=True)
        union = shapely.union_all(level1.geometry.to_numpy())
        expected = int(shapely.intersects(union, points.geometry.to_numpy()).sum())
        assert int(counted["health_facilities"].sum()) == expected
        reached["points counted"] += expected > 0
        on_edge = int(shapely.intersects(shapely.boundary(union), points.geometry.to_numpy()).sum())
        reached["points on an edge counted"] += on_edge > 0

        # zonal raster: disjoint units, so Σ unit sums = sum over their union (reference: exactextract)
        zs = zonal_raster(counted, raster, stats=("sum",), prefix="population_total")
        from exactextract import exact_extract

        ref = exact_extract(
            raster, gpd.GeoDataFrame(geometry=[union], crs=4326), "sum", output="pandas"
        )["sum"].iloc[0]
        np.testing.assert_allclose(zs["population_total_sum"].sum(), ref, rtol=1e-6, atol=1e-6)
        reached["raster sums"] += 1

        # indicators and rollup: the country's sum equals the units' sum
        zs = zs.rename(columns={"population_total_sum": "population_total"})
        fact = compute_indicators(
            zs, ["population_total", "health_facilities"], date="2020-01-01"
        ).fact
        up = rollup(fact, admin, to_level=0)
        for ind in ("population_total", "health_facilities"):
            top = up[(up["admin_level"] == 0) & (up["indicator_id"] == ind)]["value"]
            assert len(top) == 1
            np.testing.assert_allclose(
                top.iloc[0], np.nansum(zs[ind].to_numpy(dtype=float)), rtol=1e-9, atol=1e-9
            )
            # every unit keeps its own value at level 1
            mine = up[(up["admin_level"] == 1) & (up["indicator_id"] == ind)]
            assert set(mine["ucode"]) == set(level1["ucode"])
        reached["rollup"] += 1


def test_degenerate_geometries_never_crash(raster: str) -> None:
    """Derandomised (the same examples on every run) and counted: the property must reach each
    check in a minimum number of examples, or it proves nothing."""
    reached: Counter = Counter()

    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @example(**_ALWAYS)
    @given(
        units=st.lists(unit, min_size=1, max_size=4),
        inside=st.lists(inside_point, max_size=12),
        pts=st.lists(st.tuples(st.floats(28.5, 31.5), st.floats(-3.5, -0.5)), max_size=20),
    )
    def prop(units: list, inside: list, pts: list) -> None:
        _run_pipeline(units, inside, pts, raster, reached)

    prop()
    for check, minimum in [
        ("h3 areas", 8),
        ("points counted", 6),
        ("points on an edge counted", 4),
        ("raster sums", 8),
        ("rollup", 8),
    ]:
        assert reached[check] >= minimum, (check, dict(reached))


def test_zonal_raster_of_units_beyond_the_raster(raster: str) -> None:
    # issue 12: a raster that overlaps no unit is an input error, no longer a warning and zeros
    units = gpd.GeoDataFrame({"ucode": ["A"]}, geometry=[shapely.box(5, 45, 6, 46)], crs=4326)
    with pytest.raises(EmptyInputError, match="no unit overlaps it"):
        zonal_raster(units, raster, stats=("sum",))


def test_h3_grid_rejects_coordinates_outside_the_crs() -> None:
    admin = gpd.GeoDataFrame(
        {"ucode": ["A"], "admin_level": [1]},
        geometry=[shapely.box(29e6, -3e6, 30e6, -2e6)],
        crs=4326,
    )
    with pytest.raises(GeopipeError):
        h3_grid(admin, 5)
