"""The status quo: the plain script an analyst writes today for the sample's indicator set.

geopandas (``sjoin``, ``overlay``) + exactextract + rasterio + scipy + pyproj + h3-py (4.x) +
scikit-image; no geopipe. For the finest admin level (districts) and for the H3 cells split at
district borders it computes every indicator of ``pipelines/sample.yaml``'s ``indicators:`` list,
rolls the districts' sums up to the provinces and the country, and recomputes ratios and means
from the rolled-up sums, as the indicator catalog defines them. One table per level
(``adm2.parquet``, ``adm1.parquet``, ``adm0.parquet``, ``h3_r7.parquet``) goes to ``--output``.

One method for every size (the Rwanda sample or a 10⁸-pixel country):

* every per-pixel quantity is put on the population grid, strip by strip of raster rows: the
  wealth and speed tiles with ``rasterio.features.rasterize`` (a pixel takes the tile holding its
  centre), the geodesic distance from each pixel centre to the nearest health facility (a
  ``scipy.spatial.cKDTree`` on unit-sphere coordinates finds four candidates, ``pyproj.Geod``
  measures them),
  and the walking time of the friction cell holding the pixel centre;
* travel time: ``skimage.graph.MCP_Geometric`` over the friction raster (minutes per metre) from
  the facilities' cells, moves priced in metres with one cell height and width (those of the
  grid's middle row), the way OnStove does it;
* the products (population x indicator per pixel) are written as bands of one temporary GeoTIFF,
  and a single ``exactextract`` call sums every band over each polygon, coverage-weighted;
* points are counted with ``sjoin(predicate="within")``; speed tests are split between units by
  the share of each tile's area inside them (``overlay`` in an equal-area CRS).

Inputs come from a small JSON file (``--inputs``; see ``SAMPLE`` below for the keys); without it
the script reads the Rwanda sample. Run:
``python benchmarks/peer_status_quo.py [--inputs inputs.json] [--output DIR]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import exactextract
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyproj
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window
from scipy.spatial import cKDTree
from skimage.graph import MCP_Geometric

_DATA = Path(__file__).resolve().parents[1] / "data" / "sample"
# The input description: file paths and the few column names that differ between datasets.
SAMPLE: dict[str, Any] = {
    "admin": {  # finest level last; "parent": column naming the parent's "id", or null for
        # "the unit of the level above that the unit overlaps most"
        "0": {"path": str(_DATA / "rwa_adm0.geojson"), "name": "shapeName"},
        "1": {"path": str(_DATA / "rwa_adm1.geojson"), "name": "shapeName", "parent": None},
        "2": {"path": str(_DATA / "rwa_adm2.geojson"), "name": "shapeName", "parent": None},
    },
    "population_total": str(_DATA / "rwa_population_2020_modelled_232m.tif"),
    "population_u18": str(_DATA / "rwa_population_u18_2020_modelled_232m.tif"),
    "population_u5": str(_DATA / "rwa_population_u5_2020_modelled_232m.tif"),
    "friction": str(_DATA / "rwa_friction_walking_modelled_1km.tif"),  # minutes per metre
    "health_facilities": {
        "path": str(_DATA / "rwa_who_public_health_facilities.csv"),
        "lon": "Long",
        "lat": "Lat",
    },
    "schools": {"path": str(_DATA / "rwa_schools_modelled.csv"), "lon": "lon", "lat": "lat"},
    "rwi": {"path": str(_DATA / "RWA_relative_wealth_index.csv")},
    "speed": {"path": str(_DATA / "rwa_ookla_fixed_2020q1_modelled.parquet")},
    "h3_resolution": 7,
}
# the sample's step parameters
CONNECTED = ("Yes", "1", "true")
POVERTY_THRESHOLD = 0.0
BROADBAND_MBPS, MIN_TESTS, KBPS_TO_MBPS = 10.0, 1, 0.001
DISTANCE_KM, MINUTES = 5.0, 60.0
EQUAL_AREA = "EPSG:6933"
STRIP_ROWS = 512
NEAREST_K = 4  # candidates of the nearest-facility search
GEOD = pyproj.Geod(ellps="WGS84")

# per-pixel bands (population x quantity) summed by exactextract
BANDS = [
    "population_total",
    "population_u18",
    "population_u5",
    "children_in_poverty",
    "children_with_wealth_data",
    "u18_x_rwi",
    "population_with_speed_data",
    "pop_x_mbps",
    "population_broadband",
    "children_without_connectivity",
    "population_within_5km_health",
    "children_beyond_5km_health",
    "pop_x_km",
    "population_within_60min_health",
    "population_with_travel_time_health",
    "children_beyond_60min_health",
    "pop_x_min",
]
COUNTS = ["health_facilities", "schools_total", "schools_connected", "speed_tests", "tests_x_mbps"]
# published indicator = numerator / denominator (x scale), from sums at each level
RATIOS = {
    "child_poverty_rate": ("children_in_poverty", "population_u18", 1),
    "wealth_index_mean": ("u18_x_rwi", "children_with_wealth_data", 1),
    "download_mbps_mean": ("pop_x_mbps", "population_with_speed_data", 1),
    "download_mbps_tests_mean": ("tests_x_mbps", "speed_tests", 1),
    "share_population_broadband": ("population_broadband", "population_total", 1),
    "schools_connected_share": ("schools_connected", "schools_total", 1),
    "share_population_within_5km_health": ("population_within_5km_health", "population_total", 1),
    "distance_to_health_km_mean": ("pop_x_km", "population_total", 1),
    "share_population_within_60min_health": (
        "population_within_60min_health",
        "population_total",
        1,
    ),
    "travel_time_to_health_min_mean": ("pop_x_min", "population_with_travel_time_health", 1),
    "schools_per_10k_children": ("schools_total", "population_u18", 10_000),
}
INDICATORS = [  # pipelines/sample.yaml's indicators: list
    "population_total",
    "population_u18",
    "population_u5",
    "children_in_poverty",
    "child_poverty_rate",
    "wealth_index_mean",
    "download_mbps_mean",
    "download_mbps_tests_mean",
    "share_population_broadband",
    "schools_total",
    "schools_connected",
    "schools_connected_share",
    "children_without_connectivity",
    "health_facilities",
    "share_population_within_5km_health",
    "children_beyond_5km_health",
    "distance_to_health_km_mean",
    "share_population_within_60min_health",
    "children_beyond_60min_health",
    "travel_time_to_health_min_mean",
    "schools_per_10k_children",
]


def quadkey_tiles(quadkeys: pd.Series) -> gpd.GeoSeries:
    """Web-mercator tile polygons (lon/lat) of Bing quadkeys."""
    qk = quadkeys.astype(str)
    zoom = qk.str.len().max()
    qk = qk.str.zfill(zoom)  # pandas reads quadkeys as numbers: restore leading zeros
    digits = np.array([list(q) for q in qk], dtype=int)
    bits = 2 ** np.arange(zoom - 1, -1, -1)
    x, y, n = (digits & 1) @ bits, (digits >> 1) @ bits, 2.0**zoom

    def lat(row: np.ndarray) -> np.ndarray:
        return np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * row / n))))

    boxes = shapely.box(x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))
    return gpd.GeoSeries(boxes, crs=4326)


def read_points(spec: dict[str, Any]) -> gpd.GeoDataFrame:
    df = pd.read_csv(spec["path"])
    return gpd.GeoDataFrame(
        df, geometry=gpd.points_from_xy(df[spec["lon"]], df[spec["lat"]]), crs=4326
    )


def read_admin(spec: dict[str, dict[str, Any]]) -> dict[int, gpd.GeoDataFrame]:
    """Each level with ``name`` and ``parent`` (the parent's name); the finest is the last."""
    levels: dict[int, gpd.GeoDataFrame] = {}
    for lv in sorted(spec, key=int):
        s = spec[lv]
        raw = gpd.read_file(s["path"]).to_crs(4326)
        t = gpd.GeoDataFrame({"name": raw[s["name"]].astype(str)}, geometry=raw.geometry, crs=4326)
        if s.get("id"):
            t["id"] = raw[s["id"]].astype(str)
        if int(lv) > 0:
            above, col = levels[int(lv) - 1], s.get("parent")
            if col:  # the file names its parent's code
                t["parent"] = raw[col].astype(str).map(dict(zip(above["id"], above["name"])))
            else:  # the parent it overlaps most, by area
                pieces = gpd.overlay(
                    t.reset_index(names="child").to_crs(EQUAL_AREA),
                    above.reset_index(names="up")[["up", "geometry"]].to_crs(EQUAL_AREA),
                    how="intersection",
                    keep_geom_type=True,
                )
                pieces["area"] = pieces.area
                best = pieces.sort_values("area").groupby("child")["up"].last()
                t["parent"] = above["name"].to_numpy()[best.reindex(t.index).to_numpy()]
        levels[int(lv)] = t
    return levels


def h3_fragments(districts: gpd.GeoDataFrame, res: int) -> gpd.GeoDataFrame:
    """H3 cells touching the districts, split at the district borders."""
    cells: set[str] = set()
    for geom in districts.geometry:  # "overlap": every cell touching a district
        cells |= set(h3.h3shape_to_cells_experimental(h3.geo_to_h3shape(geom), res, "overlap"))
    ids = sorted(cells)
    hexes = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    hexes = gpd.GeoDataFrame({"cell_id": ids}, geometry=hexes, crs=4326)
    frags = gpd.overlay(hexes, districts[["name", "geometry"]], how="intersection")
    return frags.rename(columns={"name": "district"})


def travel_time(path: str, facilities: gpd.GeoDataFrame) -> tuple[np.ndarray, Any]:
    """Minutes to the nearest facility on the friction grid (inf: unreached, NaN: barrier)."""
    with rasterio.open(path) as src:
        fr = src.read(1, masked=True).astype(float).filled(np.nan)
        tf = src.transform
    barrier = ~np.isfinite(fr) | (fr <= 0)
    rows, cols = rasterio.transform.rowcol(tf, facilities.geometry.x, facilities.geometry.y)
    rows, cols = np.asarray(rows), np.asarray(cols)
    ok = (rows >= 0) & (rows < fr.shape[0]) & (cols >= 0) & (cols < fr.shape[1])
    rows, cols = rows[ok], cols[ok]
    keep = ~barrier[rows, cols]
    starts = sorted(set(zip(rows[keep].tolist(), cols[keep].tolist())))
    # one cell height and width in metres, at the grid's middle row (OnStove: one cell size)
    mid = tf.f + tf.e * (fr.shape[0] / 2)
    _, _, dx = GEOD.inv(tf.c, mid, tf.c + tf.a, mid)
    _, _, dy = GEOD.inv(tf.c, mid - tf.e / 2, tf.c, mid + tf.e / 2)
    cost = np.where(barrier, np.inf, fr)
    minutes, _ = MCP_Geometric(cost, sampling=(abs(dy), abs(dx))).find_costs(starts)
    minutes[barrier] = np.nan
    return minutes, tf


def _unit_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.c_[np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]


def burn(tiles: gpd.GeoDataFrame, col: str, shape: tuple[int, int], tf: Any) -> np.ndarray:
    """``col`` of the tile holding each pixel centre of a window (NaN where none does)."""
    w, n = tf * (0, 0)
    e, s = tf * (shape[1], shape[0])
    sub = tiles.cx[w:e, s:n]
    if sub.empty:
        return np.full(shape, np.nan)
    pairs = zip(sub.geometry, sub[col].astype(float))
    return rasterize(pairs, shape, transform=tf, fill=np.nan, dtype="float64")


def nearest_km(tree: cKDTree, hx: np.ndarray, hy: np.ndarray, lon, lat) -> np.ndarray:
    """WGS 84 geodesic km from each point to the nearest facility.

    The ``NEAREST_K`` nearest by chord on the unit sphere are candidates; the ellipsoid changes
    distances by under 1 %, so a further candidate is measured only where its chord is within
    1 % of the nearest one's.
    """
    k = min(NEAREST_K, len(hx))
    chord, near = tree.query(_unit_xyz(lon, lat), k=k, workers=-1)
    chord, near = chord.reshape(len(lon), k), near.reshape(len(lon), k)
    _, _, d = GEOD.inv(lon, lat, hx[near[:, 0]], hy[near[:, 0]])
    for j in range(1, k):
        tie = chord[:, j] <= chord[:, 0] * 1.01
        if tie.any():
            _, _, dj = GEOD.inv(lon[tie], lat[tie], hx[near[tie, j]], hy[near[tie, j]])
            d[tie] = np.minimum(d[tie], dj)
    return d / 1000.0


def strip_bands(pop, u18, tf, rwi, speed, tt, ttf, tree, hx, hy) -> list[Any]:
    """The ``BANDS`` products of one window of the population grid (float32)."""
    shape = pop.shape
    cols, rows = np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5)
    lon, lat = tf * (cols, rows)
    w_rwi, mbps = burn(rwi, "rwi", shape, tf), burn(speed, "mbps", shape, tf)
    km = np.zeros(shape)
    people = (pop > 0) | (u18 > 0)
    if people.any():
        km[people] = nearest_km(tree, hx, hy, lon[people], lat[people])
    # travel time of the friction cell holding each pixel centre
    tr = np.floor((lat - ttf.f) / ttf.e).astype(np.int64)
    tc = np.floor((lon - ttf.c) / ttf.a).astype(np.int64)
    inside = (tr >= 0) & (tr < tt.shape[0]) & (tc >= 0) & (tc < tt.shape[1])
    mins = np.full(shape, np.nan)
    mins[inside] = tt[tr[inside], tc[inside]]
    has_rwi, has_speed, has_tt = np.isfinite(w_rwi), np.isfinite(mbps), np.isfinite(mins)
    broadband = has_speed & (np.nan_to_num(mbps) >= BROADBAND_MBPS)
    near5 = km <= DISTANCE_KM
    within = has_tt & (np.where(has_tt, mins, np.inf) <= MINUTES)
    bands = [
        pop,
        u18,
        None,  # population_u5, filled by the caller
        u18 * (has_rwi & (np.nan_to_num(w_rwi) < POVERTY_THRESHOLD)),
        u18 * has_rwi,
        u18 * np.nan_to_num(w_rwi),
        pop * has_speed,
        pop * np.nan_to_num(mbps),
        pop * broadband,
        u18 * ~broadband,
        pop * near5,
        u18 * ~near5,
        pop * km,
        pop * within,
        pop * has_tt,
        u18 * ~within,
        pop * np.where(has_tt, mins, 0.0),
    ]
    return bands


def write_bands(cfg: dict[str, Any], health: gpd.GeoDataFrame, out: Path) -> Path:
    """The per-pixel products of ``BANDS`` on the population grid, as one GeoTIFF."""
    rwi = pd.read_csv(cfg["rwi"]["path"])
    rwi = gpd.GeoDataFrame(rwi[["rwi"]], geometry=quadkey_tiles(rwi["quadkey"]))
    speed = pd.read_parquet(cfg["speed"]["path"])
    speed = speed[speed["tests"] >= MIN_TESTS]
    speed = gpd.GeoDataFrame(
        {"mbps": speed["avg_d_kbps"] * KBPS_TO_MBPS},
        geometry=gpd.GeoSeries.from_wkt(speed["tile"]),
        crs=4326,
    )
    tt, ttf = travel_time(cfg["friction"], health)
    hx, hy = health.geometry.x.to_numpy(), health.geometry.y.to_numpy()
    tree = cKDTree(_unit_xyz(hx, hy))
    path = out / "bands.tif"
    srcs = [rasterio.open(cfg[k]) for k in ("population_total", "population_u18", "population_u5")]
    first = srcs[0]
    prof = first.profile | {
        "count": len(BANDS),
        "dtype": "float32",
        "nodata": None,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": None,
        "BIGTIFF": "IF_SAFER",
    }
    try:
        with rasterio.open(path, "w", **prof) as dst:
            for r0 in range(0, first.height, STRIP_ROWS):
                win = Window(0, r0, first.width, min(STRIP_ROWS, first.height - r0))
                wtf = rasterio.windows.transform(win, first.transform)
                pop, u18, u5 = (
                    s.read(1, window=win, masked=True).astype(float).filled(0.0) for s in srcs
                )
                bands = strip_bands(pop, u18, wtf, rwi, speed, tt, ttf, tree, hx, hy)
                bands[2] = u5
                dst.write(np.stack(bands).astype(np.float32), window=win)
    finally:
        for s in srcs:
            s.close()
    return path


def zonal_sums(bands: Path, polygons: gpd.GeoDataFrame) -> pd.DataFrame:
    """Coverage-weighted sum of every band over each polygon (one exactextract pass)."""
    with rasterio.open(bands) as src:
        res = exactextract.exact_extract(  # many small polygons: read each raster block once
            src,
            polygons.reset_index(drop=True),
            "sum",
            output="pandas",
            strategy="raster-sequential",
        )
    # exactextract names multi-band sums band_1_sum, ...; keep our order
    res.columns = BANDS
    return res


def count_within(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame) -> np.ndarray:
    hit = gpd.sjoin(
        points[["geometry"]], polygons[["geometry"]].reset_index(drop=True), predicate="within"
    )
    return np.bincount(hit["index_right"].to_numpy(), minlength=len(polygons)).astype(float)


def tests_split(
    tiles: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Σ tests x area share and Σ tests x area share x Mbit/s of the tiles, per polygon."""
    t = tiles.to_crs(EQUAL_AREA)
    t["tile_area"] = t.area
    p = polygons[["geometry"]].reset_index(drop=True).reset_index(names="unit").to_crs(EQUAL_AREA)
    pieces = gpd.overlay(t, p, how="intersection", keep_geom_type=True)
    w = pieces.area / pieces["tile_area"] * pieces["tests"]
    n = len(polygons)
    unit = pieces["unit"].to_numpy()
    return (
        np.bincount(unit, w, minlength=n),
        np.bincount(unit, w * pieces["mbps"], minlength=n),
    )


def sums_for(units: gpd.GeoDataFrame, bands: Path, health, schools, speed) -> pd.DataFrame:
    sums = zonal_sums(bands, units)
    sums["health_facilities"] = count_within(health, units)
    sums["schools_total"] = count_within(schools, units)
    connected = schools[schools["connectivity"].astype(str).isin(CONNECTED)]
    sums["schools_connected"] = count_within(connected, units)
    sums["speed_tests"], sums["tests_x_mbps"] = tests_split(speed, units)
    return sums


def publish(sums: pd.DataFrame) -> pd.DataFrame:
    """The indicators of ``INDICATORS`` from sums: ratios and means recomputed from the sums."""
    out = sums.copy()
    for name, (num, den, scale) in RATIOS.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(out[den] > 0, out[num] / out[den] * scale, np.nan)
    return out


def run(cfg: dict[str, Any], out: Path, timings: dict[str, float] | None = None) -> dict[str, int]:
    """Compute and write every level's table; ``timings`` (if given) gets seconds per stage."""
    timings = {} if timings is None else timings
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = now - clock[0]
        clock[0] = now

    out.mkdir(parents=True, exist_ok=True)
    admin = read_admin(cfg["admin"])
    finest = max(admin)
    districts = admin[finest]
    health = read_points(cfg["health_facilities"])
    schools = read_points(cfg["schools"])
    speed = pd.read_parquet(cfg["speed"]["path"])
    speed = speed[speed["tests"] >= MIN_TESTS]
    speed = gpd.GeoDataFrame(
        {"tests": speed["tests"].astype(float), "mbps": speed["avg_d_kbps"] * KBPS_TO_MBPS},
        geometry=gpd.GeoSeries.from_wkt(speed["tile"]),
        crs=4326,
    )
    keep = ["name", "parent"] if "parent" in districts else ["name"]
    lap("read")
    with tempfile.TemporaryDirectory(prefix="peer_bands_", dir=out) as tmp:
        bands = write_bands(cfg, health, Path(tmp))
        lap("pixel bands")
        level = pd.concat(
            [
                districts[keep].reset_index(drop=True),
                sums_for(districts, bands, health, schools, speed),
            ],
            axis=1,
        )
        lap("districts")
        res = cfg.get("h3_resolution", 7)
        frags = h3_fragments(districts, res)
        lap("h3 fragments")
        cells = pd.concat(
            [frags[["cell_id", "district"]], sums_for(frags, bands, health, schools, speed)], axis=1
        )
        lap("h3 sums")
    rows = {}
    cols = ["name", *INDICATORS]
    publish(cells)[["cell_id", "district", *INDICATORS]].to_parquet(out / f"h3_r{res}.parquet")
    rows[f"h3_r{res}"] = len(cells)
    sums_cols = BANDS + COUNTS
    for lv in range(finest, -1, -1):  # roll the sums up: parent = Σ children
        publish(level)[cols].to_parquet(out / f"adm{lv}.parquet")
        rows[f"adm{lv}"] = len(level)
        if lv == 0:
            break
        up = level.groupby("parent")[sums_cols].sum().reindex(admin[lv - 1]["name"], fill_value=0)
        up = up.reset_index(names="name")
        if "parent" in admin[lv - 1]:
            up["parent"] = admin[lv - 1]["parent"].to_numpy()
        level = up
    lap("roll-up and write")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, default=None, help="JSON input description")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    cfg = json.loads(args.inputs.read_text()) if args.inputs else SAMPLE
    out = args.output or Path(tempfile.mkdtemp(prefix="peer_status_quo_"))
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    rows = run(cfg, out, timings)
    print(f"peer wrote {out}: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
    print("peer stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print(f"peer wall time: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
