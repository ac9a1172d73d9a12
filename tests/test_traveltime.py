"""Travel time over friction surfaces (issue 15), checked against independent references:
pyproj geodesics, scipy.sparse.csgraph.dijkstra over the same graph, exactextract sums."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

import geopipe as gp
from geopipe.errors import GeopipeWarning, InputError

ROOT = Path(__file__).resolve().parents[1]
KIGALI = ROOT / "tests" / "data" / "real" / "rwa" / "rwa_kigali_friction_walking_map_1km.tif"
HEALTH = ROOT / "tests" / "data" / "zonal" / "rwa_healthsites_2020.geojson"
GEOD = Geod(ellps="WGS84")


def _centres(t: Affine, shape):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return t.c + t.a * (cc + 0.5), t.f + t.e * (rr + 0.5), rr, cc


def _points(xs, ys, crs=4326):
    return gpd.GeoDataFrame(geometry=shapely.points(xs, ys), crs=crs)


def _dijkstra(f: np.ndarray, t: Affine, seeds: list[tuple[int, int]], geographic: bool = True):
    """Brute-force reference: every 8-neighbour edge built one by one, metric length from pyproj
    (geographic) or Euclid (projected), cost = length x mean friction; scipy's Dijkstra."""
    h, w = f.shape
    lon, lat, _, _ = _centres(t, f.shape)
    idx = np.arange(h * w).reshape(h, w)
    src, dst, wt = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ra, ca = np.divmod(idx.ravel(), w)
        rb, cb = ra + dr, ca + dc
        ok = (rb >= 0) & (rb < h) & (cb >= 0) & (cb < w)
        ra, ca, rb, cb = ra[ok], ca[ok], rb[ok], cb[ok]
        if geographic:
            _, _, length = GEOD.inv(lon[ra, ca], lat[ra, ca], lon[rb, cb], lat[rb, cb])
        else:
            length = np.hypot(lon[ra, ca] - lon[rb, cb], lat[ra, ca] - lat[rb, cb])
        cost = length * (f[ra, ca] + f[rb, cb]) / 2.0
        good = np.isfinite(cost)
        src.append(idx[ra, ca][good])
        dst.append(idx[rb, cb][good])
        wt.append(cost[good])
    graph = coo_matrix(
        (np.concatenate(wt), (np.concatenate(src), np.concatenate(dst))), shape=(h * w, h * w)
    ).tocsr()
    starts = sorted({int(idx[r, c]) for r, c in seeds})
    return dijkstra(graph, directed=False, indices=starts, min_only=True).reshape(h, w)


# --------------------------------------------------------------------------- uniform friction
def test_uniform_friction_equals_geodesic_times_friction_within_bound():
    """Geographic grid at 40 N (cells 0.01 deg, ~850 x 1110 m): T / friction lies between the
    geodesic and the stated 8-neighbour bound; exact along a meridian."""
    n, f0 = 121, float(np.float32(0.012))  # friction is held as float32
    t = Affine(0.01, 0, 10.0, 0, -0.01, 41.21)
    fac_lon, fac_lat = t.c + t.a * 60.5, t.f + t.e * 60.5
    tt = gp.travel_time((np.full((n, n), f0), t, "EPSG:4326"), _points([fac_lon], [fac_lat]))
    lon, lat, _, cc = _centres(t, (n, n))
    _, _, geo = GEOD.inv(
        np.full(lon.size, fac_lon), np.full(lon.size, fac_lat), lon.ravel(), lat.ravel()
    )
    geo = geo.reshape(n, n)
    off = geo > 0
    ratio = tt.values[off] / f0 / geo[off]
    bound = tt.info["error_bound"]
    # cells here are 0.767 as wide as tall: the widest angle between moves is 52.5 deg
    assert bound == pytest.approx(1 / np.cos(np.arctan(1110.9 / 852.6) / 2), rel=2e-3)
    assert ratio.min() >= 1 - 1e-9  # a lattice path is never shorter than the geodesic
    assert ratio.max() <= bound * (1 + 1e-4)
    assert ratio.max() > 1 + 0.8 * (bound - 1)  # the bound is reached, not loose
    meridian = ratio.reshape(-1)[(cc[off] == 60)]
    assert np.allclose(meridian, 1.0, atol=1e-9)
    assert tt.info["converged"]


def test_uniform_friction_projected_grid():
    n, f0 = 61, float(np.float32(0.02))
    t = Affine(100.0, 0, 500_000.0, 0, -100.0, 9_800_000.0)
    x0, y0 = t.c + t.a * 30.5, t.f + t.e * 30.5
    tt = gp.travel_time((np.full((n, n), f0), t, "EPSG:32736"), _points([x0], [y0], crs=32736))
    x, y, _, _ = _centres(t, (n, n))
    dist = np.hypot(x - x0, y - y0)
    off = dist > 0
    ratio = tt.values[off] / f0 / dist[off]
    assert ratio.min() >= 1 - 1e-12
    assert ratio.max() <= 1 / np.cos(np.pi / 8) + 1e-12
    assert tt.info["error_bound"] == pytest.approx(1 / np.cos(np.pi / 8))


def test_speed_unit_equals_minutes_per_metre():
    t = Affine(0.01, 0, 30.0, 0, -0.01, -1.0)
    rng = np.random.default_rng(3)
    kmh = rng.uniform(2, 60, (20, 25))
    fac = _points([30.055, 30.2], [-1.055, -1.15])
    a = gp.travel_time((kmh, t, "EPSG:4326"), fac, friction_unit="kmh")
    b = gp.travel_time(((0.06 / kmh).astype(np.float32), t, "EPSG:4326"), fac)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
    capped = gp.travel_time((0.06 / kmh, t, "EPSG:4326"), fac, max_minutes=20)
    far = b.values > 20
    assert np.isinf(capped.values[far]).all()
    np.testing.assert_array_equal(capped.values[~far], b.values[~far])


# --------------------------------------------------------------------------- real friction
@pytest.mark.parametrize("engine", ["auto", "mcp"])
def test_kigali_friction_equals_dijkstra(engine):
    """Real MAP walking friction around Kigali (47 % nodata: lakes, outside the clip) with the
    real healthsites.io facilities: equal to an independent Dijkstra to 1e-6 relative."""
    import rasterio

    health = gpd.read_file(HEALTH)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tt = gp.travel_time(KIGALI, health, engine=engine)
    assert any(issubclass(w.category, GeopipeWarning) for w in caught)
    with rasterio.open(KIGALI) as ds:
        f = ds.read(1).astype(float)
        t = ds.transform
    f[f == -9999] = np.nan
    rep = tt.facilities
    assert len(rep) == len(health)  # every facility reported
    used = rep[rep["status"] == "used"]
    on_barrier = rep[rep["status"] == "on_barrier"]
    assert len(used) >= 10 and len(on_barrier) > 0
    assert np.isnan(f[on_barrier["row"], on_barrier["col"]]).all()
    ref = _dijkstra(f, t, list(zip(used["row"], used["col"], strict=True)))
    reached = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(tt.values), reached)
    assert np.isnan(tt.values[np.isnan(f)]).all()
    np.testing.assert_allclose(tt.values[reached], ref[reached], rtol=1e-6, atol=1e-9)
    assert tt.info["converged"]


def test_sample_friction_with_who_facilities(sample_dir):
    """The modelled sample surface: every WHO facility seeds, every cell inside Rwanda is reached."""
    import rasterio

    path = sample_dir / "rwa_friction_walking_modelled_1km.tif"
    with rasterio.open(path) as ds:
        assert "modelled" in ds.tags()["source"]
        valid = ds.read_masks(1) > 0
    clinics = gp.read_points(sample_dir / "rwa_who_public_health_facilities.csv")
    tt = gp.travel_time(path, clinics)
    assert (tt.facilities["status"] == "used").all()
    assert np.isfinite(tt.values[valid]).all() and np.isnan(tt.values[~valid]).all()
    assert 20 < np.median(tt.values[valid]) < 120  # minutes on foot, for a plausible stand-in


def test_write_roundtrip(tmp_path):
    import rasterio

    health = gpd.read_file(HEALTH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        tt = gp.travel_time(KIGALI, health, max_minutes=300)
    out = tt.write(tmp_path / "tt.tif")
    with rasterio.open(out) as ds:
        back = ds.read(1, masked=True)
        assert ds.transform == tt.transform and ds.crs.to_epsg() == 4326
    fin = np.isfinite(tt.values)
    np.testing.assert_array_equal(~back.mask, fin)
    np.testing.assert_allclose(back.data[fin], tt.values[fin], rtol=1e-6)


# --------------------------------------------------------------------------- barriers, errors
def test_barrier_polygons_cut_off_and_facilities_reported():
    t = Affine(0.01, 0, 30.0, 0, -0.01, 0.0)
    f = np.full((10, 10), 0.012)
    wall = gpd.GeoDataFrame(geometry=[shapely.box(30.05, -0.1, 30.06, 0.0)], crs=4326)
    fac = _points([30.015, 30.055, 31.0], [-0.015, -0.015, 0.5])
    with pytest.warns(GeopipeWarning, match="2 facilities"):
        tt = gp.travel_time((f, t, "EPSG:4326"), fac, barriers=wall)
    assert tt.facilities["status"].tolist() == ["used", "on_barrier", "outside_grid"]
    assert np.isnan(tt.values[:, 5]).all()
    assert np.isinf(tt.values[:, 6:]).all()
    assert np.isfinite(tt.values[:, :5]).all()


def test_bad_inputs():
    t = Affine(0.01, 0, 30.0, 0, -0.01, 0.0)
    fac = _points([30.015], [-0.015])
    with pytest.raises(InputError, match="cells <= 0"):
        gp.travel_time((np.zeros((3, 3)), t, "EPSG:4326"), fac)
    with pytest.raises(InputError, match="friction_unit"):
        gp.travel_time((np.ones((3, 3)), t, "EPSG:4326"), fac, friction_unit="mph")
    with (
        pytest.raises(InputError, match="no facility on a passable cell"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", GeopipeWarning)
        gp.travel_time((np.ones((3, 3)), t, "EPSG:4326"), _points([50.0], [5.0]))
    with pytest.raises(InputError, match="friction"):
        gp.travel_time([1, 2, 3], fac)


def test_maze_is_exact_and_the_mcp_bound_covers_a_round_cap():
    """A serpentine corridor (walls open at alternate ends): the shortest path reverses its
    north-south direction at every wall (32 rounds of row sweeps alone); the column sweeps, which
    join after ROW_ROUNDS, follow it in one. Capped at one round, "auto" merges the MCP bound and
    every value is within the stated ``mcp_eps`` of exact."""
    from geopipe.zonal._leastcost import ROW_ROUNDS

    h, w = 30, 121
    f = np.full((h, w), float(np.float32(0.012)))
    for k, c in enumerate(range(1, w - 1, 2)):
        f[:, c] = np.nan
        f[h - 1 if k % 2 == 0 else 0, c] = f[0, 0]  # gap at the bottom, then at the top, ...
    t = Affine(0.01, 0, 30.0, 0, -0.01, 0.0)
    fac = _points([30.005], [-0.005])
    ref = _dijkstra(f, t, [(0, 0)])
    reached = np.isfinite(ref)
    tt = gp.travel_time((f, t, "EPSG:4326"), fac)
    assert tt.info["engine"] == "auto" and tt.info["converged"]
    assert tt.info["rounds"] <= ROW_ROUNDS + 2
    np.testing.assert_array_equal(np.isfinite(tt.values), reached)
    np.testing.assert_allclose(tt.values[reached], ref[reached], rtol=1e-9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capped = gp.travel_time((f, t, "EPSG:4326"), fac, max_rounds=1)
    assert capped.info["engine"] == "auto+mcp"
    assert capped.info["converged"] or any("upper bounds" in str(m.message) for m in caught)
    far = reached & (ref > 0)
    ratio = capped.values[far] / ref[far]
    assert ratio.min() >= 1 - 1e-9 and ratio.max() <= 1 + capped.info["mcp_eps"] + 1e-9
    mcp = gp.travel_time((f, t, "EPSG:4326"), fac, engine="mcp")
    np.testing.assert_allclose(mcp.values[reached], ref[reached], rtol=1e-9)
    with pytest.raises(InputError, match="engine"):
        gp.travel_time((f, t, "EPSG:4326"), fac, engine="fast")


# --------------------------------------------------------------------------- properties
@st.composite
def _grids(draw):
    h = draw(st.integers(1, 14))
    w = draw(st.integers(1, 14))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.005, 0.5, (h, w)).astype(np.float32).astype(float)
    f[rng.random((h, w)) < draw(st.floats(0, 0.35))] = np.nan
    lat0 = draw(st.floats(-70, 70))
    t = Affine(0.05, 0, 10.0, 0, -0.05, lat0)
    cells = rng.integers(0, [h, w], (draw(st.integers(1, 4)), 2))
    extra = rng.integers(0, [h, w], 2)
    return f, t, cells, extra


def _fac(t, cells):
    return _points(t.c + t.a * (cells[:, 1] + 0.5), t.f + t.e * (cells[:, 0] + 0.5))


@settings(max_examples=150, deadline=None)
@given(_grids())
def test_adding_a_facility_never_increases_travel_time(grid):
    f, t, cells, extra = grid
    ok = np.isfinite(f[cells[:, 0], cells[:, 1]])
    if not ok.any():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        before = gp.travel_time((f, t, "EPSG:4326"), _fac(t, cells)).values
        after = gp.travel_time((f, t, "EPSG:4326"), _fac(t, np.vstack([cells, extra]))).values
    np.testing.assert_array_equal(np.isnan(before), np.isnan(after))
    fin = np.isfinite(before)
    assert (after[fin] <= before[fin] * (1 + 1e-12)).all()


@pytest.mark.parametrize("row_rounds", [None, 1])
@settings(max_examples=150, deadline=None)
@given(grid=_grids())
def test_random_grids_equal_dijkstra(row_rounds, grid):
    """Also with the column sweeps from the first round (row_rounds=1)."""
    from geopipe.zonal import _leastcost

    f, t, cells, _ = grid
    passable = np.isfinite(f[cells[:, 0], cells[:, 1]])
    if not passable.any():
        return
    default = _leastcost.ROW_ROUNDS
    _leastcost.ROW_ROUNDS = row_rounds or default
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeopipeWarning)
            tt = gp.travel_time((f, t, "EPSG:4326"), _fac(t, cells))
    finally:
        _leastcost.ROW_ROUNDS = default
    ref = _dijkstra(f, t, [tuple(c) for c in cells[passable]])
    reached = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(tt.values), reached)
    np.testing.assert_allclose(tt.values[reached], ref[reached], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- friction surface
def test_friction_surface_roads_and_travel_along_a_road():
    t = Affine(0.01, 0, 30.0, 0, -0.01, 0.015)
    like = ((3, 60), t, "EPSG:4326")
    roads = gpd.GeoDataFrame(
        {"highway": ["primary", "track"]},
        geometry=[
            shapely.LineString([(30.0, 0.0), (30.6, 0.0)]),
            shapely.LineString([(30.1, 0.012), (30.2, 0.012)]),
        ],
        crs=4326,
    )
    with pytest.warns(GeopipeWarning, match="not in `speeds`"):
        fr = gp.friction_surface(roads, like=like)
    np.testing.assert_allclose(fr.values[1], 0.06 / 65, rtol=1e-6)
    np.testing.assert_allclose(fr.values[[0, 2]], 0.06 / 5, rtol=1e-6)  # track: off-road
    tt = gp.travel_time(fr, _points([30.005], [0.0]))
    _, _, along = GEOD.inv(30.005, 0.0, 30.595, 0.0)
    assert tt.values[1, -1] == pytest.approx(along * 0.06 / 65, rel=1e-6)
    # the fastest road wins where two classes touch the same cell
    both = gpd.GeoDataFrame(
        {"highway": ["residential", "motorway"]},
        geometry=[shapely.LineString([(30.0, 0.0), (30.6, 0.0)])] * 2,
        crs=4326,
    )
    np.testing.assert_allclose(gp.friction_surface(both, like=like).values[1], 0.06 / 90, rtol=1e-6)


def test_friction_surface_water_and_fill_nodata():
    t = Affine(0.01, 0, 30.0, 0, -0.01, 0.0)
    like = ((5, 5), t, "EPSG:4326")
    lake = gpd.GeoDataFrame(geometry=[shapely.box(30.02, -0.05, 30.03, 0.0)], crs=4326)
    roads = gpd.GeoDataFrame({"highway": []}, geometry=[], crs=4326)
    fr = gp.friction_surface(roads, like=like, barriers=lake, offroad_kmh=4.0)
    assert np.isnan(fr.values[:, 2]).all()
    np.testing.assert_allclose(fr.values[:, [0, 1, 3, 4]], 0.015, rtol=1e-6)
    fac = _points([30.005], [-0.025])
    cut = gp.travel_time(fr, fac)
    assert np.isinf(cut.values[:, 3:]).all()
    swim = gp.travel_time(fr, fac, fill_nodata=0.05)  # cross the lake at 1.2 km/h
    assert np.isfinite(swim.values).all()
    with pytest.raises(InputError, match="positive speed"):
        gp.friction_surface(roads, like=like, speeds={"primary": 0})


# --------------------------------------------------------------------------- coverage
def test_coverage_conserves_population_and_matches_exactextract(tmp_path, sample_dir):
    """Districts x the sample 232 m population x Kigali travel time: within + beyond = total to
    1e-9; `within` equals exactextract's sum of (population where the time at the pixel centre is
    <= 60 min), computed independently."""
    import rasterio
    from exactextract import exact_extract
    from tests.conftest import write_raster

    pop = sample_dir / "rwa_population_2020_modelled_232m.tif"
    districts = gpd.read_file(HEALTH.parent / "rwa_adm2.geojson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        tt = gp.travel_time(KIGALI, gpd.read_file(HEALTH))
    out = gp.travel_time_coverage(districts, pop, tt, minutes=60, children=0.45)
    tot, wi, be = (out[f"population_{k}"] for k in ("total", "within_60min", "beyond_60min"))
    np.testing.assert_allclose(wi + be, tot, rtol=1e-9, atol=1e-9)
    assert (wi > 0).sum() >= 3 and (be > 0).all()
    np.testing.assert_allclose(out["children_within_60min"], 0.45 * wi, rtol=1e-12)
    # independent reference: mask the population raster by the time at each pixel centre
    with rasterio.open(pop) as ds:
        p = ds.read(1, masked=True).filled(0).astype("float64")
        pt, crs = ds.transform, ds.crs
    lon, lat, _, _ = _centres(pt, p.shape)
    rows, cols = rasterio.transform.rowcol(tt.transform, lon.ravel(), lat.ravel(), op=np.floor)
    rows = np.asarray(rows, dtype=np.int64).reshape(p.shape)
    cols = np.asarray(cols, dtype=np.int64).reshape(p.shape)
    h, w = tt.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    minutes = np.full(p.shape, np.nan)
    minutes[inside] = tt.values[rows[inside], cols[inside]]
    masked = np.where(np.isfinite(minutes) & (minutes <= 60), p, 0.0)
    ref_path = write_raster(tmp_path / "within.tif", masked, pt, crs=crs)
    ref = exact_extract(str(ref_path), districts, "sum", output="pandas")["sum"].to_numpy()
    np.testing.assert_allclose(wi.to_numpy(), ref, rtol=1e-6, atol=1e-6)
    # weighted mean over the pixels with a time, recomputed from the same arrays
    timed = np.where(np.isfinite(minutes), p, 0.0)
    tm = np.where(np.isfinite(minutes), p * np.nan_to_num(minutes, posinf=0), 0.0)
    a = exact_extract(
        str(write_raster(tmp_path / "w.tif", timed, pt, crs=crs)), districts, "sum", output="pandas"
    )["sum"]
    b = exact_extract(
        str(write_raster(tmp_path / "wm.tif", tm, pt, crs=crs)), districts, "sum", output="pandas"
    )["sum"]
    has = a.to_numpy() > 0
    np.testing.assert_allclose(
        out["population_traveltime_mean_min"].to_numpy()[has], (b / a).to_numpy()[has], rtol=1e-6
    )
    assert out["population_traveltime_mean_min"][~has].isna().all()


def test_coverage_on_h3_fragments_rolls_up_to_districts(sample_dir):
    """H3 fragments split at district edges: fragment sums add up to the district sums."""
    pop = sample_dir / "rwa_population_2020_modelled_232m.tif"
    districts = gpd.read_file(HEALTH.parent / "rwa_adm2.geojson").rename(
        columns={"shapeID": "ucode"}
    )
    kigali = districts[districts.intersects(shapely.box(29.9, -2.05, 30.25, -1.85))]
    frags = gp.h3_grid(kigali, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        tt = gp.travel_time(KIGALI, gpd.read_file(HEALTH))
    cols = ["population_total", "population_within_60min", "population_beyond_60min"]
    by_frag = gp.travel_time_coverage(frags, pop, tt).groupby("ucode")[cols].sum()
    by_unit = gp.travel_time_coverage(kigali, pop, tt).set_index("ucode")[cols]
    np.testing.assert_allclose(by_frag.loc[by_unit.index], by_unit, rtol=1e-6)


def test_coverage_sums_pure():
    from geopipe.zonal.traveltime_coverage import coverage_sums

    rng = np.random.default_rng(0)
    unit = rng.integers(0, 7, 5000)
    w = rng.uniform(0, 30, 5000)
    m = rng.uniform(0, 200, 5000)
    m[rng.random(5000) < 0.1] = np.inf
    m[rng.random(5000) < 0.05] = np.nan
    s = coverage_sums(unit, w, m, 8, 60.0)
    np.testing.assert_allclose(s["within"] + s["beyond"], s["total"], rtol=1e-12)
    for u in range(7):
        sel = unit == u
        assert s["within"][u] == pytest.approx(w[sel & (m <= 60)].sum(), rel=1e-12)
        fin = sel & np.isfinite(m)
        assert s["mean"][u] == pytest.approx((w[fin] * m[fin]).sum() / w[fin].sum(), rel=1e-12)
    assert s["total"][7] == 0 and np.isnan(s["mean"][7])


def test_facilities_snap_to_the_cell_gdal_gives_them_even_on_a_cell_edge():
    # sample clinics lie exactly on a friction-cell edge (lat -2.175 on a 1/120 deg grid);
    # floor((y - f) / e) put them one row north; GDAL's inverse geotransform does not
    import rasterio

    from geopipe.zonal.traveltime import _cell_of

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    clinics = gp.read_points(sample / "rwa_who_public_health_facilities.csv")
    with rasterio.open(sample / "rwa_friction_walking_modelled_1km.tif") as ds:
        x, y = clinics.geometry.x.to_numpy(), clinics.geometry.y.to_numpy()
        rows, cols = _cell_of(ds.transform, x, y)
        ref_rows, ref_cols = rasterio.transform.rowcol(ds.transform, x, y)
        frac = ((y - ds.transform.f) / ds.transform.e) % 1
        on_edge = np.isclose(frac, 0, atol=1e-9) | np.isclose(frac, 1, atol=1e-9)
    assert on_edge.sum() >= 2
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)
