"""Deterministic generator of the *modelled* Rwanda sample layers (see SOURCES.md).

Open data at the detail the sample pipeline needs does not exist for Rwanda in this repository
(no 100 m population raster, no age rasters, no licensed school census, no Ookla tiles). This script
makes stand-ins from the real layers next to it, with a fixed seed, so every run produces the same
bytes:

* ``rwa_population_2020_modelled_232m.tif`` — people per ~232 m pixel. Each real WorldPop 20 km cell
  (``rwa_afripop2020_20km_mean.tif``, people per km²) is redistributed over its 80 × 80 fine pixels
  inside Rwanda in proportion to a settlement intensity (Gaussian kernels around the real WHO health
  facilities, hospitals weighing more, plus smooth noise). The people of a 20 km cell inside
  Rwanda are conserved exactly: fine sum = density × (km² of the cell inside Rwanda).
* ``rwa_population_u18_2020_modelled_232m.tif`` and ``..._u5_...`` — children, from the population
  times an age share that falls with density (national shares ≈ 0.47 and ≈ 0.14).
* ``rwa_age_shares_adm2_modelled.csv`` — the same shares per district, for pipelines that only have
  a total-population raster.
* ``rwa_schools_modelled.csv`` — Giga-style school table: points drawn from the child population,
  an education level and a connectivity status that is likelier in dense places.
* ``rwa_ookla_fixed_2020q1_modelled.parquet`` — Ookla-style zoom-14 tiles (quadkey, tile WKT,
  avg_d_kbps, avg_u_kbps, avg_lat_ms, tests, devices) where people live.
* ``rwa_friction_walking_modelled_1km.tif`` — a walking friction surface in the Malaria Atlas
  Project convention (minutes per metre) on a 30″ grid: 5 km/h (0.012 min/m) slowed by a smooth
  "terrain" factor (0.8-2.5) from its own fixed seed; nodata outside Rwanda. Written last, from its
  own random generator, so adding it changed no other file.

Run: ``python data/sample/make_modelled.py`` (from the repo root, with the project's venv).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import rasterio
from rasterio.features import geometry_mask
from rasterio.transform import Affine

HERE = Path(__file__).resolve().parent
SEED = 20200101
FACTOR = 80  # fine pixels per 20 km cell side: 0.1667° / 80 ≈ 0.00208° ≈ 232 m
NODATA = -99999.0
EARTH_R = 6_371_008.8


def main() -> None:
    rng = np.random.default_rng(SEED)
    adm0 = gpd.read_file(HERE / "rwa_adm0.geojson")
    adm2 = gpd.read_file(HERE / "rwa_adm2.geojson")
    who = pd.read_csv(HERE / "rwa_who_public_health_facilities.csv")

    with rasterio.open(HERE / "rwa_afripop2020_20km_mean.tif") as src:
        coarse = src.read(1, masked=True).astype("float64")
        ct = src.transform
    density = coarse.filled(np.nan)
    density[~np.isfinite(density)] = np.nanmedian(density)  # a lake cell inside the frame

    h, w = density.shape[0] * FACTOR, density.shape[1] * FACTOR
    ft = Affine(ct.a / FACTOR, 0.0, ct.c, 0.0, ct.e / FACTOR, ct.f)
    inside = ~geometry_mask(adm0.geometry, out_shape=(h, w), transform=ft, all_touched=False)

    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    lon = ft.c + cols * ft.a
    lat = ft.f + rows * ft.e
    pixel_km2 = (
        np.radians(abs(ft.a))
        * EARTH_R**2
        * np.abs(np.sin(np.radians(lat + ft.e / 2)) - np.sin(np.radians(lat - ft.e / 2)))
    ) / 1e6

    intensity = _settlement_intensity(lon, lat, who, rng)
    # conserve each coarse cell: people = density (per km²) × km² of the cell inside Rwanda
    cell = (rows.astype(int) // FACTOR) * density.shape[1] + (cols.astype(int) // FACTOR)
    weight = np.where(inside, intensity, 0.0)
    area_in = np.bincount(
        cell.ravel(), weights=np.where(inside, pixel_km2, 0.0).ravel(), minlength=density.size
    )
    w_sum = np.bincount(cell.ravel(), weights=weight.ravel(), minlength=density.size)
    people = density.ravel() * area_in
    scale = np.divide(people, w_sum, out=np.zeros_like(people), where=w_sum > 0)
    pop = weight * scale[cell]

    urban = np.clip(np.log10(np.maximum(pop / pixel_km2, 1.0)) / 4.0, 0.0, 1.0)
    share_u18 = 0.50 - 0.10 * urban
    share_u5 = 0.150 - 0.035 * urban
    u18 = pop * share_u18
    u5 = pop * share_u5

    profile = {
        **_tiff_profile(w, h, ft, NODATA),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "zlevel": 9,
    }
    for name, arr in (("population", pop), ("population_u18", u18), ("population_u5", u5)):
        out = np.where(inside, arr, NODATA).astype("float32")
        with rasterio.open(HERE / f"rwa_{name}_2020_modelled_232m.tif", "w", **profile) as dst:
            dst.write(out, 1)
            dst.update_tags(
                source="modelled by data/sample/make_modelled.py from WorldPop 2020 20 km",
                units="people per pixel",
            )

    _age_share_table(adm2, inside, pop, u18, u5, ft)
    _schools(u18, inside, ft, pop / pixel_km2, rng)
    _ookla_tiles(lon, lat, pop, inside, rng)
    _friction_walking(adm0)
    print(
        f"population {pop[inside].sum():,.0f}; under-18 {u18[inside].sum():,.0f}; under-5 {u5[inside].sum():,.0f}"
    )


def _settlement_intensity(
    lon: np.ndarray, lat: np.ndarray, who: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    """Base level + Gaussian kernels around real health facilities + smooth multiplicative noise."""
    km_per_deg = 111.32
    intensity = np.full(lon.shape, 0.25)
    big = who["Facility type"].str.contains("Hospital", na=False).to_numpy()
    for fx, fy, is_big in zip(who["Long"].to_numpy(), who["Lat"].to_numpy(), big, strict=True):
        sigma = 2.5 if is_big else 1.2  # km
        amp = 4.0 if is_big else 1.0
        # only touch a window of ±4 sigma around the facility
        half = 4 * sigma / km_per_deg
        r0 = max(int((fy + half - lat[0, 0]) / (lat[1, 0] - lat[0, 0])), 0)
        r1 = min(int((fy - half - lat[0, 0]) / (lat[1, 0] - lat[0, 0])) + 1, lat.shape[0])
        c0 = max(int((fx - half - lon[0, 0]) / (lon[0, 1] - lon[0, 0])), 0)
        c1 = min(int((fx + half - lon[0, 0]) / (lon[0, 1] - lon[0, 0])) + 1, lon.shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        dx = (lon[r0:r1, c0:c1] - fx) * km_per_deg * np.cos(np.radians(fy))
        dy = (lat[r0:r1, c0:c1] - fy) * km_per_deg
        intensity[r0:r1, c0:c1] += amp * np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    # Kigali's core
    dx = (lon - 30.06) * km_per_deg
    dy = (lat + 1.95) * km_per_deg
    intensity += 25.0 * np.exp(-(dx**2 + dy**2) / (2 * 4.0**2))
    noise = rng.normal(size=(lon.shape[0] // 16 + 1, lon.shape[1] // 16 + 1))
    noise = np.kron(noise, np.ones((16, 16)))[: lon.shape[0], : lon.shape[1]]
    return intensity * np.exp(0.35 * noise)


def _age_share_table(
    adm2: gpd.GeoDataFrame,
    inside: np.ndarray,
    pop: np.ndarray,
    u18: np.ndarray,
    u5: np.ndarray,
    ft: Affine,
) -> None:
    from rasterio.features import rasterize

    labels = rasterize(
        ((g, i + 1) for i, g in enumerate(adm2.geometry)),
        out_shape=inside.shape,
        transform=ft,
        fill=0,
        dtype="int32",
    )
    labels = np.where(inside, labels, 0).ravel()
    n = len(adm2) + 1
    tot = np.bincount(labels, weights=pop.ravel(), minlength=n)[1:]
    s18 = np.bincount(labels, weights=u18.ravel(), minlength=n)[1:] / tot
    s5 = np.bincount(labels, weights=u5.ravel(), minlength=n)[1:] / tot
    table = pd.DataFrame(
        {
            "shapeID": adm2["shapeID"],
            "shapeName": adm2["shapeName"],
            "share_u18": s18.round(4),
            "share_u5": s5.round(4),
        }
    )
    table.to_csv(HERE / "rwa_age_shares_adm2_modelled.csv", index=False)


def _schools(
    u18: np.ndarray, inside: np.ndarray, ft: Affine, density: np.ndarray, rng: np.random.Generator
) -> None:
    children = np.where(inside, u18, 0.0).ravel()
    n = int(round(children.sum() / 1900))  # roughly one school per 1,900 children
    pick = rng.choice(children.size, size=n, replace=True, p=children / children.sum())
    r, c = np.divmod(pick, u18.shape[1])
    lon = ft.c + (c + rng.uniform(size=n)) * ft.a
    lat = ft.f + (r + rng.uniform(size=n)) * ft.e
    dens = density.ravel()[pick]
    p_conn = 1 / (1 + np.exp(-(np.log10(np.maximum(dens, 1)) - 2.6) * 2.2))
    connected = rng.uniform(size=n) < p_conn
    level = rng.choice(["Primary", "Secondary", "Pre-Primary"], size=n, p=[0.62, 0.30, 0.08])
    ids = [f"MOD-RWA-{i:05d}" for i in range(1, n + 1)]
    table = pd.DataFrame(
        {
            "school_id_giga": ids,
            "school_name": [f"Modelled school {i:05d}" for i in range(1, n + 1)],
            "education_level": level,
            "connectivity": np.where(connected, "Yes", "No"),
            "lat": lat.round(6),
            "lon": lon.round(6),
        }
    )
    table.to_csv(HERE / "rwa_schools_modelled.csv", index=False)


def _quadkeys(x: np.ndarray, y: np.ndarray, zoom: int) -> list[str]:
    digits = np.zeros((len(x), zoom), dtype=np.int64)
    for i in range(zoom):
        bit = zoom - i - 1
        digits[:, i] = ((x >> bit) & 1) + 2 * ((y >> bit) & 1)
    return ["".join(map(str, row)) for row in digits]


def _ookla_tiles(
    lon: np.ndarray, lat: np.ndarray, pop: np.ndarray, inside: np.ndarray, rng: np.random.Generator
) -> None:
    zoom = 14
    n = 2**zoom
    tx = np.floor((lon + 180.0) / 360.0 * n).astype(np.int64)
    lat_r = np.radians(lat)
    ty = np.floor((1.0 - np.log(np.tan(lat_r) + 1 / np.cos(lat_r)) / np.pi) / 2.0 * n).astype(
        np.int64
    )
    key = (tx * n + ty)[inside]
    people = pd.Series(pop[inside]).groupby(key).sum()
    people = people[people > 300]
    tiles_x, tiles_y = np.divmod(people.index.to_numpy(), n)
    rel = np.log10(people.to_numpy())
    tests = rng.poisson(np.maximum(people.to_numpy() / 400, 0.3)) + 1
    down = np.exp(rng.normal(np.log(2500 + 9000 * (rel - 2.4).clip(0)), 0.6))
    west = tiles_x / n * 360 - 180
    east = (tiles_x + 1) / n * 360 - 180
    north = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * tiles_y / n))))
    south = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (tiles_y + 1) / n))))
    wkt = [
        f"POLYGON(({w} {s}, {e} {s}, {e} {nn}, {w} {nn}, {w} {s}))"
        for w, s, e, nn in zip(west, south, east, north, strict=True)
    ]
    table = pa.table(
        {
            "quadkey": _quadkeys(tiles_x, tiles_y, zoom),
            "tile": wkt,
            "avg_d_kbps": down.round().astype(np.int64),
            "avg_u_kbps": (down * rng.uniform(0.3, 0.9, size=len(down))).round().astype(np.int64),
            "avg_lat_ms": rng.integers(8, 90, size=len(down)),
            "tests": tests.astype(np.int64),
            "devices": np.maximum(
                1, (tests * rng.uniform(0.3, 0.9, size=len(tests))).round()
            ).astype(np.int64),
        }
    )
    table = table.sort_by("quadkey")
    pq.write_table(table, HERE / "rwa_ookla_fixed_2020q1_modelled.parquet", compression="zstd")


def _tiff_profile(w: int, h: int, transform: Affine, nodata: float) -> dict:
    """Creation options shared by the modelled float32 GeoTIFFs."""
    return {
        "driver": "GTiff",
        "dtype": "float32",
        "width": w,
        "height": h,
        "count": 1,
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 3,
    }


def _friction_walking(adm0: gpd.GeoDataFrame) -> None:
    """Modelled walking friction (min/m) on a 30-arc-second grid over Rwanda; own seed."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(SEED + 15)
    step = 1.0 / 120.0  # 30 arc-seconds, the MAP grid
    xmin, ymin, xmax, ymax = adm0.total_bounds
    x0, y1 = np.floor(xmin / step) * step, np.ceil(ymax / step) * step
    w = int(np.ceil((xmax - x0) / step))
    h = int(np.ceil((y1 - ymin) / step))
    transform = Affine(step, 0.0, x0, 0.0, -step, y1)
    terrain = zoom(rng.normal(size=(12, 14)), (h / 12, w / 14), order=3)[:h, :w]
    friction = 0.012 * np.clip(np.exp(0.35 * terrain), 0.8, 2.5)
    inside = ~geometry_mask(adm0.geometry, out_shape=(h, w), transform=transform, all_touched=True)
    out = np.where(inside, friction, -9999.0).astype("float32")
    profile = _tiff_profile(w, h, transform, -9999.0)
    with rasterio.open(HERE / "rwa_friction_walking_modelled_1km.tif", "w", **profile) as dst:
        dst.write(out, 1)
        dst.update_tags(
            source="modelled by data/sample/make_modelled.py (not MAP data)",
            units="minutes per metre (walking)",
        )


if __name__ == "__main__":
    main()
