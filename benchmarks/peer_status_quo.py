"""The status quo: the plain script an analyst writes today for the Rwanda sample's core indicators.

geopandas (``sjoin``, ``sjoin_nearest``, ``overlay``) + exactextract + h3-py (4.x) + numpy; no
geopipe. Per district (ADM2): populations, health facility and school counts, children in poverty
(Meta RWI < 0), population-weighted download speed (Ookla-style tiles), population within 5 km of
a health facility; and the H3 res-7 cells split at district borders with their population. Writes
``adm2.csv`` and ``h3_r7.parquet`` to ``--output`` (default: a new temp dir); prints its wall time.
Run: ``python benchmarks/peer_status_quo.py [--output DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import exactextract
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import rasterio
import shapely

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
POP, U18, U5 = (SAMPLE / f"rwa_population{s}_2020_modelled_232m.tif" for s in ("", "_u18", "_u5"))
METRIC = "EPSG:32735"  # UTM 35S for distances in metres
DISTANCE_M = 5000.0


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


def count_points(districts: gpd.GeoDataFrame, df: pd.DataFrame, lon: str, lat: str) -> pd.Series:
    """Points of a lon/lat table within each district."""
    pts = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df[lon], df[lat]), crs=4326)
    joined = gpd.sjoin(pts, districts, predicate="within")
    return joined.groupby("district").size().reindex(districts["district"], fill_value=0)


def tile_value(centres: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame, column: str) -> pd.Series:
    """``column`` of the tile containing each centre (NaN where none does)."""
    hit = gpd.sjoin(centres, tiles, predicate="within")
    return hit[column].groupby(level=0).first().reindex(centres.index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None)
    out = parser.parse_args().output or Path(tempfile.mkdtemp(prefix="peer_status_quo_"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    districts = gpd.read_file(SAMPLE / "rwa_adm2.geojson")[["shapeName", "geometry"]]
    districts = districts.rename(columns={"shapeName": "district"})
    res = districts[["district"]].copy()
    # populations: exact coverage-weighted sums
    for name, path in [("population_total", POP), ("population_u18", U18), ("population_u5", U5)]:
        res[name] = exactextract.exact_extract(str(path), districts, "sum", output="pandas")["sum"]

    # facilities and schools: sjoin within
    health = pd.read_csv(SAMPLE / "rwa_who_public_health_facilities.csv")
    schools = pd.read_csv(SAMPLE / "rwa_schools_modelled.csv")
    res["health_facilities"] = count_points(districts, health, "Long", "Lat").to_numpy()
    res["schools_total"] = count_points(districts, schools, "lon", "lat").to_numpy()
    connected = schools[schools["connectivity"] == "Yes"]
    res["schools_connected"] = count_points(districts, connected, "lon", "lat").to_numpy()

    # pixel table: one row per (district, pixel) with coverage, people and the pixel centre
    px = exactextract.exact_extract(
        str(POP), districts, ["cell_id", "coverage"], include_cols=["district"], output="pandas"
    ).explode(["cell_id", "coverage"], ignore_index=True)
    cell, cov = px["cell_id"].to_numpy(dtype=np.int64), px["coverage"].to_numpy(dtype=float)
    with rasterio.open(POP) as src, rasterio.open(U18) as src18:
        px["pop"] = src.read(1, masked=True).filled(0).ravel()[cell] * cov
        px["u18"] = src18.read(1, masked=True).filled(0).ravel()[cell] * cov
        x, y = src.transform * ((cell % src.width) + 0.5, (cell // src.width) + 0.5)
    centres = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)

    # the wealth (Meta RWI) and speed (Ookla-style, >= 1 test) tile holding each pixel centre
    rwi = pd.read_csv(SAMPLE / "RWA_relative_wealth_index.csv")
    rwi = gpd.GeoDataFrame(rwi[["rwi"]], geometry=quadkey_tiles(rwi["quadkey"]))
    px["rwi"] = tile_value(centres, rwi, "rwi")
    ookla = pd.read_parquet(SAMPLE / "rwa_ookla_fixed_2020q1_modelled.parquet")
    ookla = ookla[ookla["tests"] >= 1]
    ookla = gpd.GeoDataFrame(
        {"mbps": ookla["avg_d_kbps"] / 1000},
        geometry=gpd.GeoSeries.from_wkt(ookla["tile"]),
        crs=4326,
    )
    px["mbps"] = tile_value(centres, ookla, "mbps")

    # distance from each pixel centre to the nearest health facility, projected (metres)
    fac = gpd.GeoDataFrame(geometry=gpd.points_from_xy(health["Long"], health["Lat"]), crs=4326)
    near = gpd.sjoin_nearest(centres.to_crs(METRIC), fac.to_crs(METRIC), distance_col="dist_m")
    px["dist_m"] = near["dist_m"].groupby(level=0).first()  # ties: one row per pixel

    px["poor_u18"] = px["u18"].where(px["rwi"] < 0, 0.0)
    px["pop_speed"] = px["pop"].where(px["mbps"].notna(), 0.0)
    px["pop_x_mbps"] = (px["pop"] * px["mbps"]).fillna(0.0)
    px["pop_5km"] = px["pop"].where(px["dist_m"] <= DISTANCE_M, 0.0)
    g = px.groupby("district")[["poor_u18", "pop_speed", "pop_x_mbps", "pop_5km"]].sum()
    g = g.reindex(res["district"])
    res["children_in_poverty"] = g["poor_u18"].to_numpy()
    res["download_mbps_mean"] = (g["pop_x_mbps"] / g["pop_speed"]).to_numpy()
    res["population_within_5km_health"] = g["pop_5km"].to_numpy()
    res.to_csv(out / "adm2.csv", index=False)

    # H3 res 7: cells touching the districts, split at district borders, population per fragment
    cells: set[str] = set()
    for geom in districts.geometry:  # h3 4.x; "overlap" keeps every cell touching a district
        shape = h3.geo_to_h3shape(geom)
        cells |= set(h3.h3shape_to_cells_experimental(shape, 7, contain="overlap"))
    ids = sorted(cells)
    hexes = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    hexes = gpd.GeoDataFrame({"cell_id": ids}, geometry=hexes, crs=4326)
    frags = gpd.overlay(hexes, districts, how="intersection")
    sums = exactextract.exact_extract(str(POP), frags, "sum", output="pandas")
    frags["population_total"] = sums["sum"].to_numpy()
    frags.to_parquet(out / "h3_r7.parquet")

    wall = time.perf_counter() - t0
    print(f"peer wrote {out}: {len(res)} districts, {len(frags)} H3 r7 fragments")
    print(f"peer wall time: {wall:.2f} s")


if __name__ == "__main__":
    main()
