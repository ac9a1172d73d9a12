"""Synthetic countries in the Rwanda sample's layout, for the end-to-end and scaling benchmarks.

:func:`make_country` writes one country (admin levels 0–2, three population rasters, a walking
friction raster, health facilities, schools, Meta-RWI-style and Ookla-style tiles) into
``folder/ISO3/``; :func:`pipeline_config` returns a geopipe pipeline dict with the same steps,
units, indicators and quality settings as ``pipelines/sample.yaml`` for one country or for many
side by side (``countries: [...]`` with ``{iso3}`` path templates). Countries with different
``index`` values do not overlap, so many of them can share one run.

Everything is random but reproducible from ``rng``; generation is streamed in strips of raster
rows, so its memory does not grow with ``n_pixels`` (a 10,000 × 10,000 country peaks well under
1 GB and takes tens of seconds, dominated by compressing the three population rasters).

The layout (file names are fixed; the benchmarks and ``pipeline_config`` rely on them):

==================================  =========================================================
``adm0.geojson``                    the country (COD-AB columns: ``ADM0_PCODE``, ``ADM0_EN``,
                                    ``ISO3``)
``adm1.geojson``                    ~``n_adm1`` provinces, each the dissolve of its districts
``adm2.geojson``                    ``n_adm2`` districts: Voronoi cells of random seeds clipped
                                    to the country, with ``ADM1_PCODE`` naming the province
``population.tif``                  people per pixel, float32, ``n_pixels`` square, 3″ pixels
``population_u18.tif``              (WorldPop's "100 m" grid), nodata −99999 outside the
``population_u5.tif``               country, tiled 512 × 512, ZSTD
``friction_walking_1km.tif``        minutes per metre (MAP convention) on a 30″ grid, nodata
                                    −9999 where the cell centre is outside the country
``health_facilities.csv``           ``facility_id, facility_name, lat, lon``
``schools.csv``                     Giga-style: ``school_id_giga, school_name,
                                    education_level, connectivity (Yes/No), lat, lon``
``relative_wealth_index.csv``       Meta RWI style: ``quadkey, latitude, longitude, rwi,
                                    error`` (zoom 14, most populated tiles)
``ookla_fixed.parquet``             Ookla style: ``quadkey, tile (WKT), avg_d_kbps,
                                    avg_u_kbps, avg_lat_ms, tests, devices`` (zoom 14,
                                    populated tiles only; some with 0 tests)
==================================  =========================================================
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
import yaml
from rasterio.features import geometry_mask
from rasterio.transform import from_origin
from rasterio.windows import Window
from scipy.ndimage import map_coordinates

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = ROOT / "pipelines" / "sample.yaml"

PIXEL_DEG = 1 / 1200  # 3 arc-seconds: WorldPop's "100 m" grid (92.8 m at the equator)
FRICTION_DEG = 1 / 120  # 30 arc-seconds: MAP's "1 km" friction grid
POP_NODATA = -99999.0
FRICTION_NODATA = -9999.0
GAP_DEG = 0.5  # between neighbouring countries
LON_ORIGIN = -20.0  # about the west edge of country 0; countries are centred on the equator
# Grids start off round numbers: with a west edge of exactly -20, some 3" pixel centres fall
# exactly on zoom-14 tile edges (multiples of 360 / 2**14), where "the tile holding the centre"
# is a tie that tools break differently. 0.000137° (15 m) keeps every centre off them.
GRID_OFFSET = 0.000137
TILE_ZOOM = 14
_COARSE = 128  # resolution of the smooth population / terrain fields
_BLOCK = 512

FILES = {
    "adm0": "adm0.geojson",
    "adm1": "adm1.geojson",
    "adm2": "adm2.geojson",
    "population_total": "population.tif",
    "population_u18": "population_u18.tif",
    "population_u5": "population_u5.tif",
    "friction": "friction_walking_1km.tif",
    "health_facilities": "health_facilities.csv",
    "schools": "schools.csv",
    "rwi": "relative_wealth_index.csv",
    "speed": "ookla_fixed.parquet",
}


def country_extent(
    index: int, n_pixels: int, pixel_deg: float = PIXEL_DEG
) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of country ``index``'s population grid, in degrees.

    Countries are ``n_pixels`` pixels square, centred on the equator, placed west to east with a
    gap of at least ``GAP_DEG`` (whole friction cells apart); the friction grid starts at the same
    west edge, so both grids align.

    Examples
    --------
    >>> w, s, e, n = country_extent(1, 1200)
    >>> round(e - w, 6), round(n + s, 6)
    (1.0, 0.0)
    """
    width = n_pixels * pixel_deg
    step = math.ceil((width + GAP_DEG) / FRICTION_DEG) * FRICTION_DEG
    west = LON_ORIGIN + index * step + GRID_OFFSET
    half = math.ceil(n_pixels / 2) * pixel_deg
    return west, half - width, west + width, half


def _country_polygon(extent: tuple[float, float, float, float], rng: np.random.Generator):
    """A star-shaped blob filling most of the extent (not a rectangle: nodata around it)."""
    w, s, e, n = extent
    cx, cy, r = (w + e) / 2, (s + n) / 2, (e - w) / 2 * 0.99
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    f = 0.88 + 0.08 * np.sin(3 * theta + p1) + 0.04 * np.sin(7 * theta + p2)
    return shapely.Polygon(np.c_[cx + r * f * np.cos(theta), cy + r * f * np.sin(theta)])


def _points_inside(poly, n: int, rng: np.random.Generator, density=None, extent=None):
    """``n`` random points inside ``poly`` (uniform, or by a coarse ``density`` field)."""
    w, s, e, nn = extent if extent is not None else poly.bounds
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        m = 2 * (n - got) + 16
        if density is None:
            x, y = rng.uniform(w, e, m), rng.uniform(s, nn, m)
        else:
            p = density.ravel() / density.sum()
            cell = rng.choice(p.size, size=m, p=p)
            r, c = np.divmod(cell, density.shape[1])
            dx, dy = (e - w) / density.shape[1], (nn - s) / density.shape[0]
            x = w + (c + rng.random(m)) * dx
            y = nn - (r + rng.random(m)) * dy
        keep = shapely.contains_xy(poly, x, y)
        out.append(np.c_[x[keep], y[keep]])
        got += int(keep.sum())
    return np.concatenate(out)[:n]


def _smooth_fields(extent, poly, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Coarse (``_COARSE`` square) population density (people per pixel) and terrain factor."""
    w, s, e, n = extent
    yy, xx = np.mgrid[0:_COARSE, 0:_COARSE] + 0.5
    xx, yy = w + xx / _COARSE * (e - w), n - yy / _COARSE * (n - s)
    cities = _points_inside(poly, 40, rng)
    amp = rng.lognormal(2.0, 1.0, len(cities))
    sigma = rng.uniform(0.01, 0.05, len(cities)) * (e - w)
    d2 = (xx[..., None] - cities[:, 0]) ** 2 + (yy[..., None] - cities[:, 1]) ** 2
    density = 0.3 + (amp * np.exp(-d2 / (2 * sigma**2))).sum(axis=-1)
    density *= 1.5 / density.mean()  # about 1.5 people per pixel (~175 per km2) on average
    hills = _points_inside(poly, 12, rng)
    h2 = (xx[..., None] - hills[:, 0]) ** 2 + (yy[..., None] - hills[:, 1]) ** 2
    bump = np.exp(-h2 / (2 * (0.08 * (e - w)) ** 2)).sum(axis=-1)
    terrain = 0.8 + 1.7 * bump / bump.max()  # 0.8 .. 2.5, like the sample's friction
    return density, terrain


def _sample_field(field: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Bilinear values of a coarse field at fractions ``fy`` (from the north) x ``fx`` (from
    the west) of the country's extent."""
    fr = fy * field.shape[0] - 0.5
    fc = fx * field.shape[1] - 0.5
    rr, cc = np.meshgrid(fr, fc, indexing="ij")
    return map_coordinates(field, [rr, cc], order=1, mode="nearest").astype(np.float32)


def _raster_profile(width: int, height: int, transform, nodata: float) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": _BLOCK,
        "blockysize": _BLOCK,
        "compress": "zstd",
    }


def _write_population(out: Path, extent, poly, density, n_pixels, pixel_deg, rng) -> None:
    """The three population rasters, written strip by strip (memory-bounded)."""
    w, _, _, n = extent
    transform = from_origin(w, n, pixel_deg, pixel_deg)
    prof = _raster_profile(n_pixels, n_pixels, transform, POP_NODATA)
    names = ("population_total", "population_u18", "population_u5")
    dsts = [rasterio.open(out / FILES[k], "w", **prof) for k in names]
    try:
        cols = np.arange(n_pixels)
        dmed = float(np.median(density))
        for r0 in range(0, n_pixels, _BLOCK):
            h = min(_BLOCK, n_pixels - r0)
            win = Window(0, r0, n_pixels, h)
            fy = (np.arange(r0, r0 + h) + 0.5) / n_pixels
            dens = _sample_field(density, fy, (cols + 0.5) / n_pixels)
            noise = rng.standard_normal((h, n_pixels), dtype=np.float32)
            pop = dens * np.exp(np.float32(0.6) * noise - np.float32(0.18))
            young = dmed / (dens + dmed)  # rural areas are younger
            u18 = pop * (np.float32(0.43) + np.float32(0.07) * young)
            u5 = pop * (np.float32(0.12) + np.float32(0.03) * young)
            outside = geometry_mask(
                [poly], (h, n_pixels), rasterio.windows.transform(win, transform)
            )
            for dst, a in zip(dsts, (pop, u18, u5)):
                a = a.astype(np.float32)
                a[outside] = POP_NODATA
                dst.write(a, 1, window=win)
    finally:
        for dst in dsts:
            dst.close()


def _write_friction(out: Path, extent, poly, terrain, n_pixels, pixel_deg) -> None:
    w, _, e, n = extent
    size = math.ceil(n_pixels * pixel_deg / FRICTION_DEG - 1e-9)
    transform = from_origin(w, n, FRICTION_DEG, FRICTION_DEG)
    frac = (np.arange(size) + 0.5) * FRICTION_DEG / (e - w)  # may reach past the population grid
    t = _sample_field(terrain, frac, frac)
    fr = (np.float32(0.012) * t).astype(np.float32)
    fr[geometry_mask([poly], (size, size), transform)] = FRICTION_NODATA
    with rasterio.open(
        out / FILES["friction"], "w", **_raster_profile(size, size, transform, FRICTION_NODATA)
    ) as dst:
        dst.write(fr, 1)


def _tile_bounds(x: np.ndarray, y: np.ndarray, z: int) -> tuple[np.ndarray, ...]:
    n = 2.0**z

    def lat(row: np.ndarray) -> np.ndarray:
        return np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def _quadkeys(x: np.ndarray, y: np.ndarray, z: int) -> np.ndarray:
    shifts = np.arange(z - 1, -1, -1)
    digits = ((x[:, None] >> shifts) & 1) + 2 * ((y[:, None] >> shifts) & 1)
    raw = np.ascontiguousarray((digits + 48).astype(np.uint8)).view(f"S{z}").ravel()
    return raw.astype(str)


def _tiles(extent, poly, density, rng, z: int = TILE_ZOOM):
    """Web-mercator tiles of zoom ``z`` whose centre is inside the country, with density."""
    w, s, e, n = extent
    nz = 2**z
    x0, x1 = int((w + 180) / 360 * nz), int((e + 180) / 360 * nz)

    def row(lat: float) -> int:
        r = math.radians(lat)
        return int((1 - math.asinh(math.tan(r)) / math.pi) / 2 * nz)

    xs, ys = np.meshgrid(np.arange(x0, x1 + 1), np.arange(row(n), row(s) + 1))
    xs, ys = xs.ravel().astype(np.int64), ys.ravel().astype(np.int64)
    tw, ts, te, tn = _tile_bounds(xs, ys, z)
    cx, cy = (tw + te) / 2, (ts + tn) / 2
    inside = shapely.contains_xy(poly, cx, cy)
    xs, ys, cx, cy = xs[inside], ys[inside], cx[inside], cy[inside]
    r = np.clip(((n - cy) / (n - s) * density.shape[0]).astype(int), 0, density.shape[0] - 1)
    c = np.clip(((cx - w) / (e - w) * density.shape[1]).astype(int), 0, density.shape[1] - 1)
    return xs, ys, cx, cy, density[r, c]


def _write_rwi(out: Path, extent, poly, density, rng) -> None:
    xs, ys, cx, cy, dens = _tiles(extent, poly, density, rng)
    keep = rng.random(len(xs)) < 0.85
    xs, ys, cx, cy, dens = xs[keep], ys[keep], cx[keep], cy[keep], dens[keep]
    logd = np.log(dens)
    rwi = (logd - logd.mean()) / (logd.std() + 1e-9) * 0.7 + rng.normal(0, 0.35, len(xs))
    pd.DataFrame(
        {
            "quadkey": _quadkeys(xs, ys, TILE_ZOOM),
            "latitude": np.round(cy, 7),
            "longitude": np.round(cx, 7),
            "rwi": np.round(rwi, 3),
            "error": np.round(rng.uniform(0.2, 0.5, len(xs)), 3),
        }
    ).to_csv(out / FILES["rwi"], index=False)


def _write_speed(out: Path, extent, poly, density, rng) -> None:
    xs, ys, _, _, dens = _tiles(extent, poly, density, rng)
    keep = dens > np.quantile(dens, 0.6) if len(dens) else dens > 0
    xs, ys, dens = xs[keep], ys[keep], dens[keep]
    w, s, e, n = _tile_bounds(xs, ys, TILE_ZOOM)
    wkt = shapely.to_wkt(shapely.box(w, s, e, n), rounding_precision=-1)
    kbps = rng.lognormal(np.log(4000 + 800 * dens), 0.8).astype(np.int64)
    tests = rng.poisson(1 + dens / 2)
    pd.DataFrame(
        {
            "quadkey": _quadkeys(xs, ys, TILE_ZOOM),
            "tile": wkt,
            "avg_d_kbps": kbps,
            "avg_u_kbps": (kbps * rng.uniform(0.3, 0.9, len(xs))).astype(np.int64),
            "avg_lat_ms": rng.integers(8, 120, len(xs)),
            "tests": tests,
            "devices": np.maximum(1, tests // 2),
        }
    ).to_parquet(out / FILES["speed"], index=False)


def _write_admin(out: Path, iso3: str, poly, n_adm1: int, n_adm2: int, rng) -> None:
    seeds = _points_inside(poly, n_adm2, rng)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=shapely.box(*poly.bounds).buffer(1.0), ordered=True
    )
    districts = shapely.intersection(shapely.get_parts(cells), poly)
    n_adm1 = min(n_adm1, n_adm2)
    hubs = seeds[rng.choice(n_adm2, n_adm1, replace=False)]
    d2 = ((seeds[:, None, :] - hubs[None, :, :]) ** 2).sum(axis=-1)
    province = d2.argmin(axis=1)
    p1 = np.array([f"{iso3}{j + 1:02d}" for j in range(n_adm1)])
    adm2 = gpd.GeoDataFrame(
        {
            "ADM2_PCODE": [f"{p1[j]}{i + 1:03d}" for i, j in enumerate(province)],
            "ADM2_EN": [f"{iso3} district {i + 1:03d}" for i in range(n_adm2)],
            "ADM1_PCODE": p1[province],
            "ADM1_EN": [f"{iso3} province {j + 1:02d}" for j in province],
            "ADM0_PCODE": iso3,
            "ADM0_EN": f"Synthetic {iso3}",
            "ISO3": iso3,
        },
        geometry=districts,
        crs=4326,
    )
    adm1 = adm2.dissolve(by="ADM1_PCODE", as_index=False, sort=True)
    adm1 = adm1[["ADM1_PCODE", "ADM1_EN", "ADM0_PCODE", "ADM0_EN", "ISO3", "geometry"]]
    adm0 = gpd.GeoDataFrame(
        {"ADM0_PCODE": [iso3], "ADM0_EN": [f"Synthetic {iso3}"], "ISO3": [iso3]},
        geometry=[poly],
        crs=4326,
    )
    for name, frame in (("adm0", adm0), ("adm1", adm1), ("adm2", adm2)):
        frame.to_file(out / FILES[name], driver="GeoJSON")


def _write_points(out: Path, iso3: str, poly, density, extent, n_health, n_schools, rng) -> None:
    health = _points_inside(poly, n_health, rng, density, extent)
    pd.DataFrame(
        {
            "facility_id": [f"{iso3}-HF-{i + 1:05d}" for i in range(len(health))],
            "facility_name": [f"Synthetic facility {i + 1}" for i in range(len(health))],
            "lat": np.round(health[:, 1], 6),
            "lon": np.round(health[:, 0], 6),
        }
    ).to_csv(out / FILES["health_facilities"], index=False)
    schools = _points_inside(poly, n_schools, rng, density, extent)
    w, s, e, n = extent
    r = np.clip(((n - schools[:, 1]) / (n - s) * density.shape[0]).astype(int), 0, _COARSE - 1)
    c = np.clip(((schools[:, 0] - w) / (e - w) * density.shape[1]).astype(int), 0, _COARSE - 1)
    d = density[r, c]
    connected = rng.random(len(schools)) < d / (d + np.median(density) * 3)
    pd.DataFrame(
        {
            "school_id_giga": [f"{iso3}-SCH-{i + 1:05d}" for i in range(len(schools))],
            "school_name": [f"Synthetic school {i + 1}" for i in range(len(schools))],
            "education_level": rng.choice(["Primary", "Secondary"], len(schools), p=[0.7, 0.3]),
            "connectivity": np.where(connected, "Yes", "No"),
            "lat": np.round(schools[:, 1], 6),
            "lon": np.round(schools[:, 0], 6),
        }
    ).to_csv(out / FILES["schools"], index=False)


def make_country(
    folder: str | Path,
    iso3: str,
    index: int,
    n_pixels: int,
    rng: np.random.Generator,
    *,
    n_adm1: int = 20,
    n_adm2: int = 500,
    n_health: int = 20_000,
    n_schools: int = 20_000,
    pixel_deg: float = PIXEL_DEG,
) -> dict[str, Path]:
    """Write one synthetic country into ``folder/iso3/`` and return its files by source name.

    Parameters
    ----------
    folder
        Parent folder; the country goes into ``folder / iso3`` (created).
    iso3
        Three upper-case letters (e.g. ``"XAA"``), used in codes, names and the folder name.
    index
        Position west to east: countries with different indexes do not overlap
        (:func:`country_extent`).
    n_pixels
        Side of the square population grid in pixels (10,000 for the benchmark: 10⁸ pixels).
    rng
        The only source of randomness: the same generator state gives the same files.
    n_adm1, n_adm2, n_health, n_schools
        Provinces, districts, health facilities and schools.
    pixel_deg
        Population pixel size in degrees (default 3″, WorldPop's "100 m" grid).

    Returns
    -------
    dict
        ``{"adm0": Path, ..., "speed": Path}``, keys as in :data:`FILES` (the source names of
        ``pipelines/sample.yaml``, plus ``adm0``/``adm1``/``adm2``).

    Examples
    --------
    >>> files = make_country("out/synthetic", "XAA", 0, 400, np.random.default_rng(0),
    ...                      n_adm2=30, n_adm1=5, n_health=200, n_schools=200)  # doctest: +SKIP
    >>> sorted(files)[:3]  # doctest: +SKIP
    ['adm0', 'adm1', 'adm2']
    """
    if not (len(iso3) == 3 and iso3.isalpha() and iso3.isupper()):
        raise ValueError(f"iso3 must be three upper-case letters, got {iso3!r}")
    out = Path(folder) / iso3
    out.mkdir(parents=True, exist_ok=True)
    extent = country_extent(index, n_pixels, pixel_deg)
    poly = _country_polygon(extent, rng)
    density, terrain = _smooth_fields(extent, poly, rng)
    _write_admin(out, iso3, poly, n_adm1, n_adm2, rng)
    _write_population(out, extent, poly, density, n_pixels, pixel_deg, rng)
    _write_friction(out, extent, poly, terrain, n_pixels, pixel_deg)
    _write_points(out, iso3, poly, density, extent, n_health, n_schools, rng)
    _write_rwi(out, extent, poly, density, rng)
    _write_speed(out, extent, poly, density, rng)
    return {k: out / v for k, v in FILES.items()}


def pipeline_config(
    folder: str | Path,
    iso3: str | list[str],
    output: str | Path,
    *,
    name: str = "synthetic",
) -> dict[str, Any]:
    """A geopipe pipeline dict over countries written by :func:`make_country`.

    The steps, units, indicators, quality settings and date are those of
    ``pipelines/sample.yaml`` (read from it, so they stay the same); only the sources change.
    One ``iso3`` gives a single-country config with plain paths; a list gives
    ``countries: [...]`` and ``{iso3}`` path templates (one warehouse for all of them).

    Examples
    --------
    >>> cfg = pipeline_config("out/synthetic", ["XAA", "XAB"], "out/run")
    >>> cfg["countries"], cfg["sources"]["population_total"]["path"].endswith("{iso3}/population.tif")
    (['XAA', 'XAB'], True)
    """
    sample = yaml.safe_load(SAMPLE_CONFIG.read_text())
    many = not isinstance(iso3, str)
    base = Path(folder).resolve() / ("{iso3}" if many else iso3)
    cfg: dict[str, Any] = {
        "name": name,
        "description": "Synthetic countries (benchmarks/synthetic.py) with the sample's steps.",
        "date": sample["date"],
        "output": str(Path(output).resolve()),
    }
    if many:
        cfg["countries"] = list(iso3)
    sources = copy.deepcopy(sample["sources"])
    sources["admin"]["path"] = {lv: str(base / FILES[f"adm{lv}"]) for lv in (0, 1, 2)}
    sources["admin"]["iso3"] = "{iso3}" if many else iso3
    for key, src in sources.items():
        if key != "admin":
            src["path"] = str(base / FILES[key])
    cfg["sources"] = sources
    for key in ("units", "steps", "indicators", "quality"):
        cfg[key] = copy.deepcopy(sample[key])
    return cfg


def peer_inputs(folder: str | Path, iso3: str) -> dict[str, Any]:
    """The input description of ``benchmarks/peer_status_quo.py`` (``--inputs``) for a country.

    Examples
    --------
    >>> peer_inputs("out/synthetic", "XAA")["admin"]["2"]["parent"]
    'ADM1_PCODE'
    """
    base = Path(folder).resolve() / iso3
    admin = {
        str(lv): {
            "path": str(base / FILES[f"adm{lv}"]),
            "name": f"ADM{lv}_EN",
            "id": f"ADM{lv}_PCODE",
            **({"parent": f"ADM{lv - 1}_PCODE"} if lv else {}),
        }
        for lv in (0, 1, 2)
    }
    rasters = ("population_total", "population_u18", "population_u5", "friction")
    return {
        "admin": admin,
        **{k: str(base / FILES[k]) for k in rasters},
        "health_facilities": {
            "path": str(base / FILES["health_facilities"]),
            "lon": "lon",
            "lat": "lat",
        },
        "schools": {"path": str(base / FILES["schools"]), "lon": "lon", "lat": "lat"},
        "rwi": {"path": str(base / FILES["rwi"])},
        "speed": {"path": str(base / FILES["speed"])},
        "h3_resolution": 7,
    }


def write_config(cfg: dict[str, Any], path: str | Path) -> Path:
    """Write a pipeline dict as YAML (absolute paths inside, so it runs from anywhere).

    Examples
    --------
    >>> write_config(pipeline_config("out/synthetic", "XAA", "out/run"), "out/x.yaml")  # doctest: +SKIP
    PosixPath('out/x.yaml')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
