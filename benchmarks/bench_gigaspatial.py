"""Benchmark: geopipe against gigaspatial's zonal view generators, where both compute the same thing.

Run ``python -m benchmarks gigaspatial`` (part of ``make bench``). gigaspatial (PyPI
``giga-spatial``, UNICEF Giga) pins packages that would change geopipe's environment (it needs
``python-dateutil<3`` through ``botocore``), so it usually lives in its own venv; its half of each
case runs in a subprocess with that Python (``benchmarks/_giga_side.py``), found as:

1. ``GEOPIPE_GIGASPATIAL_PYTHON`` (path of a Python that can ``import gigaspatial``);
2. this Python, when gigaspatial is importable here;
3. ``venv-giga/bin/python`` beside the checkout.

None of them: the benchmark prints why and returns. Everything is read from local files (the Rwanda
sample, the synthetic data of ``bench_zonal``): gigaspatial's loaders are given local paths and
nothing is downloaded.

Each case runs geopipe's function, then gigaspatial's generator, on the same inputs, back to
back; ``REPEATS`` runs each (fewer for gigaspatial's slowest cases), medians, and the ratio
gigaspatial / geopipe. The values are then CHECKED: per zone and in total, within a tolerance
stated per case (``shared_cases``, ``rwanda_cases``) with the reason a difference can exist (pixel centres against exact coverage,
haversine against geodesic ...); independent references (exactextract, a label raster counted with
``np.bincount``, a brute-force geodesic nearest search) show which side a difference comes from.
Results go to ``benchmarks/results/latest.json`` under ``"gigaspatial"``. The benchmark fails
(raises) when a value is outside its tolerance.

``GEOPIPE_BENCH_GIGA_SYNTHETIC=0`` skips the synthetic cases; ``GEOPIPE_BENCH_GIGA_H3_RES``
(default 6) is the H3 resolution of the synthetic H3 case (gigaspatial samples one hexagon at a
time: resolution 7 is 7x the hexagons).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from benchmarks._common import REPEATS, median_time

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "data" / "sample"
SIDE = HERE / "_giga_side.py"
RESULTS = HERE / "results" / "latest.json"
POP = SAMPLE / "rwa_population_2020_modelled_232m.tif"
SYNTHETIC = os.environ.get("GEOPIPE_BENCH_GIGA_SYNTHETIC", "1") != "0"
SYN_H3_RES = int(os.environ.get("GEOPIPE_BENCH_GIGA_H3_RES", "6"))
SYN_POINTS = 1_000_000
SYN_NEAREST = (100_000, 2_000)  # points, facilities
BRUTE_SAMPLE = 2_000  # points checked by brute force in the synthetic nearest case


# --------------------------------------------------------------------------------------------
# finding gigaspatial
# --------------------------------------------------------------------------------------------


def _imports_gigaspatial(python: str) -> bool:
    try:
        res = subprocess.run(
            [python, "-c", "import gigaspatial.generators.zonal"],
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def find_giga_python(env: dict[str, str] | None = None) -> tuple[str | None, str]:
    """A Python that imports gigaspatial, and how it was found (or why there is none)."""
    env = dict(os.environ) if env is None else env
    chosen = env.get("GEOPIPE_GIGASPATIAL_PYTHON")
    if chosen:
        if _imports_gigaspatial(chosen):
            return chosen, f"GEOPIPE_GIGASPATIAL_PYTHON={chosen}"
        return None, f"GEOPIPE_GIGASPATIAL_PYTHON={chosen} cannot import gigaspatial"
    if importlib.util.find_spec("gigaspatial") is not None and _imports_gigaspatial(sys.executable):
        return sys.executable, "this Python"
    beside = ROOT.parent / "venv-giga" / "bin" / "python"
    if beside.exists() and _imports_gigaspatial(str(beside)):
        return str(beside), "venv-giga beside the checkout"
    return None, (
        "gigaspatial is not importable here, GEOPIPE_GIGASPATIAL_PYTHON is not set and there is "
        "no venv-giga beside the checkout (python3 -m venv ../venv-giga && "
        "../venv-giga/bin/pip install giga-spatial fiona)"
    )


def run_giga(python: str, job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one case of ``_giga_side.py`` with ``python``; its JSON result."""
    name = f"{job['dataset']}_{job['case']}_{job.get('tag', '')}"
    job_path, out_path, log_path = (
        workdir / f"{name}.{s}" for s in ("job.json", "out.json", "log")
    )
    job_path.write_text(json.dumps(job))
    with open(log_path, "w") as log:
        res = subprocess.run(
            [python, str(SIDE), str(job_path), str(out_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if res.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"gigaspatial case {name} failed (exit {res.returncode}):\n{tail}")
    return json.loads(out_path.read_text())


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------


def align(ours: pd.Series, theirs: pd.Series, *, fill: float | None = 0.0) -> pd.DataFrame:
    """Both results side by side on the union of their ids (``ours``, ``theirs`` columns).

    A zone one side leaves out or reports as NaN (gigaspatial's sum over no pixel) is ``fill``;
    ``fill=None`` keeps NaN and restricts to the ids both sides report.
    """
    ours = pd.Series(ours, dtype=float).rename("ours")
    theirs = pd.Series(theirs, dtype=float).rename("theirs")
    for s, side in ((ours, "ours"), (theirs, "theirs")):
        if s.index.has_duplicates:
            dup = s.index[s.index.duplicated()][:3].tolist()
            raise ValueError(f"{side}: duplicate zone ids {dup}")
    if fill is None:
        return pd.concat([ours, theirs], axis=1, join="inner")
    return pd.concat([ours, theirs], axis=1, join="outer").fillna(fill)


def diff_stats(both: pd.DataFrame, floor: float = 1.0) -> dict[str, Any]:
    """Largest per-zone relative difference, total difference and the zones that differ.

    Relative to ``max(|theirs|, floor)`` per zone so that zones near zero do not dominate;
    a zone "differs" above 1e-6 (float32 rasters sum to ~1e-7 in another order).
    """
    a, b = both["ours"].to_numpy(float), both["theirs"].to_numpy(float)
    rel = np.abs(a - b) / np.maximum(np.abs(b), floor)
    worst = int(np.argmax(rel)) if len(rel) else -1
    tot_b = float(b.sum())
    return {
        "zones": len(both),
        "max_rel": float(rel.max()) if len(rel) else 0.0,
        "worst_zone": str(both.index[worst]) if worst >= 0 else None,
        "total_ours": float(a.sum()),
        "total_theirs": tot_b,
        "total_rel": abs(float(a.sum()) - tot_b) / max(abs(tot_b), floor),
        "median_rel": float(np.median(rel)) if len(rel) else 0.0,
        "p99_rel": float(np.quantile(rel, 0.99)) if len(rel) else 0.0,
        "zones_differing": int((rel > 1e-6).sum()),
        "floor": floor,
    }


def within(stats: dict[str, Any], max_rel: float, total_rel: float) -> bool:
    """True when both the per-zone and the total differences are within their tolerances."""
    return stats["max_rel"] <= max_rel and stats["total_rel"] <= total_rel


# --------------------------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------------------------


def centre_sums(zones: gpd.GeoDataFrame, raster: Path, ids: Sequence[str]) -> pd.Series:
    """Raster sum per zone over the pixels whose centre is inside (label raster + bincount)."""
    import rasterio
    from rasterio.features import rasterize

    with rasterio.open(raster) as ds:
        geoms = zones.to_crs(ds.crs).geometry.to_numpy()
        labels = rasterize(
            zip(geoms, range(1, len(geoms) + 1)),
            out_shape=ds.shape,
            transform=ds.transform,
            fill=0,
            dtype="int32",
            all_touched=False,
        )
        data = ds.read(1, masked=True)
    ok = ~np.ma.getmaskarray(data) & (labels > 0)
    sums = np.bincount(labels[ok], weights=data.data[ok].astype(float), minlength=len(geoms) + 1)
    return pd.Series(sums[1:], index=list(ids))


def exact_sums(zones: gpd.GeoDataFrame, raster: Path, ids: Sequence[str]) -> pd.Series:
    """Exact coverage-weighted raster sum per zone (exactextract)."""
    from exactextract import exact_extract

    out = exact_extract(str(raster), zones, "sum", output="pandas")["sum"].to_numpy()
    return pd.Series(out, index=list(ids))


def brute_nearest_m(
    points: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *, which: bool = False
) -> Any:
    """Distance from each point to its nearest facility on the WGS 84 ellipsoid, all pairs.

    With ``which``, also the row position of that facility: ``(distances, positions)``.
    """
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    fx, fy = facilities.geometry.x.to_numpy(), facilities.geometry.y.to_numpy()
    px, py = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    best = np.full(len(px), np.inf)
    pos = np.full(len(px), -1, dtype=np.int64)
    for lo in range(0, len(px), 500):  # 500 x n_facilities pairs at a time
        x, y = px[lo : lo + 500], py[lo : lo + 500]
        xx, yy = np.repeat(x, len(fx)), np.repeat(y, len(fx))
        _, _, d = geod.inv(xx, yy, np.tile(fx, len(x)), np.tile(fy, len(x)))
        d = d.reshape(len(x), len(fx))
        pos[lo : lo + 500] = d.argmin(axis=1)
        best[lo : lo + 500] = d.min(axis=1)
    return (best, pos) if which else best


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def giga_admin_table(units: gpd.GeoDataFrame, level: int, iso3: str) -> gpd.GeoDataFrame:
    """geopipe admin units in the column names gigaspatial's DataStore loader reads.

    ``AdminBoundaries.from_data_store`` renames ``admin{level}_id_giga`` -> ``boundary_id``
    (the generator's ``zone_id``), ``name``, ``iso_3166_1_alpha_3``; the ucode is the id (and
    the name when there is no ``name`` column).
    """
    ids = units["ucode"].astype(str).to_numpy()
    return gpd.GeoDataFrame(
        {
            f"admin{level}_id_giga": ids,
            "name": units["name"].astype(str).to_numpy() if "name" in units else ids,
            "iso_3166_1_alpha_3": iso3,
        },
        geometry=units.geometry.to_numpy(),
        crs=units.crs,
    )


@dataclass
class Inputs:
    """One data set's inputs, in memory for geopipe and as files for gigaspatial."""

    name: str
    units: gpd.GeoDataFrame
    files: dict[str, str] = field(default_factory=dict)
    frames: dict[str, Any] = field(default_factory=dict)


def _write_files(inp: Inputs, frames: dict[str, Any], raster: Path, workdir: Path) -> None:
    """gigaspatial's inputs as GeoParquet files (it runs in another process)."""
    for key, frame in frames.items():
        path = workdir / f"{inp.name}_{key}.parquet"
        frame.to_parquet(path)
        inp.files[key] = str(path)
    inp.files["raster"] = str(raster)


def rwanda_inputs(workdir: Path) -> Inputs:
    """The Rwanda sample: districts (level 2), facilities, schools, Ookla tiles, population."""
    import geopipe as gp

    admin = gp.read_admin({lv: SAMPLE / f"rwa_adm{lv}.geojson" for lv in (0, 1, 2)})
    units = admin[admin["admin_level"] == 2].reset_index(drop=True)
    health = gp.read_points(SAMPLE / "rwa_who_public_health_facilities.csv")
    schools = gp.read_points(SAMPLE / "rwa_schools_modelled.csv")
    schools["pid"] = schools["point_id"].astype(str).to_numpy()
    tiles = gp.read_tiles(SAMPLE / "rwa_ookla_fixed_2020q1_modelled.parquet")
    inp = Inputs("rwanda", units)
    inp.frames = {"admin": admin, "health": health, "schools": schools, "tiles": tiles}
    files = {
        "zones": giga_admin_table(units, 2, "RWA"),
        "boundary": admin[admin["admin_level"] == 0][["geometry"]],
        "health": health[["geometry"]].reset_index(drop=True),
        "schools": schools[["pid", "geometry"]],
        "tiles": tiles[["tests", "geometry"]],
    }
    _write_files(inp, files, POP, workdir)
    return inp


def synthetic_inputs(workdir: Path) -> Inputs:
    """bench_zonal's 6,000^2 raster and 2,000 polygons; 1 M points; nearest-search points."""
    from benchmarks import bench_zonal as bz

    polys = bz.make_polygons()
    raster = bz.DATA / "r6000.tif"
    if not raster.exists():
        bz._write_raster(raster, 6_000, 1)
    rng = np.random.default_rng(14)
    x0, y0, x1, y1 = polys.total_bounds
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(
            rng.uniform(x0, x1, SYN_POINTS), rng.uniform(y0, y1, SYN_POINTS)
        ),
        crs=polys.crs,
    )
    n_pts, n_fac = SYN_NEAREST
    near_pts = pts.iloc[:n_pts].to_crs(4326).reset_index(drop=True)
    near_pts["pid"] = [f"p{i}" for i in range(n_pts)]
    fac = pts.iloc[n_pts : n_pts + n_fac].to_crs(4326).reset_index(drop=True)
    inp = Inputs("synthetic", polys)
    inp.frames = {"points": pts, "near_points": near_pts, "facilities": fac}
    files = {
        "zones": polys,
        "boundary": polys[["geometry"]],
        "points": pts,
        "near_points": near_pts,
        "facilities": fac,
    }
    _write_files(inp, files, raster, workdir)
    return inp


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One shared quantity: geopipe's call, gigaspatial's job, tolerances and why."""

    dataset: str
    measure: str
    ours: Callable[[Inputs], pd.Series]
    job: Callable[[Inputs], dict[str, Any]]
    max_rel: float
    total_rel: float
    why: str
    fill: float | None = 0.0
    floor: float = 1.0  # per-zone differences relative to max(|gigaspatial|, floor)
    on_theirs: bool = False  # compare on gigaspatial's zones only (its H3 cover)
    slow: bool = False
    # (inputs, geopipe's result, gigaspatial's result, gigaspatial's raw output) -> checks
    references: Callable[[Inputs, pd.Series, pd.Series, dict], list[dict]] | None = None


def _ids(inp: Inputs) -> list[str]:
    return inp.units["ucode"].astype(str).tolist()


def _zones_job(inp: Inputs, case: str, **more: Any) -> dict[str, Any]:
    if inp.name == "rwanda":
        base = {"zones_kind": "admin", "iso3": "RWA", "admin_level": 2}
    else:
        base = {"zones_kind": "geometry", "zone_id": "ucode"}
    return {"case": case, "zones": inp.files["zones"], **base, **more}


def _h3_job(inp: Inputs, resolution: int) -> dict[str, Any]:
    return {
        "case": "h3_raster_sum",
        "boundary": inp.files["boundary"],
        "resolution": resolution,
        "raster": inp.files["raster"],
    }


def ours_raster_sum(inp: Inputs) -> pd.Series:
    import geopipe as gp

    out = gp.zonal_raster(inp.units, inp.files["raster"], stats=("sum",))
    return pd.Series(out["sum"].to_numpy(), index=_ids(inp))


def ours_count(key: str) -> Callable[[Inputs], pd.Series]:
    def run(inp: Inputs) -> pd.Series:
        import geopipe as gp

        out = gp.count_points(inp.units, inp.frames[key])
        return pd.Series(out["n_points"].to_numpy(), index=_ids(inp))

    return run


def ours_tests(inp: Inputs) -> pd.Series:
    import geopipe as gp

    out = gp.areal_interpolate(inp.frames["tiles"], inp.units, extensive=["tests"])
    return pd.Series(out["tests"].to_numpy(), index=_ids(inp))


def ours_h3(resolution: int) -> Callable[[Inputs], pd.Series]:
    def run(inp: Inputs) -> pd.Series:
        import geopipe as gp

        out = gp.raster_to_h3(inp.files["raster"], resolution, prefix="v")
        return pd.Series(out["v_sum"].to_numpy(), index=out["cell_id"].astype(str).to_numpy())

    return run


def _boundary(inp: Inputs) -> gpd.GeoDataFrame:
    """The area both H3 covers are of: the country (Rwanda) or the union of the polygons."""
    if inp.name == "rwanda":
        admin = inp.frames["admin"]
        geom = admin[admin["admin_level"] == 0].to_crs(4326).union_all()
    else:
        geom = inp.units.to_crs(4326).union_all()
    return gpd.GeoDataFrame({"ucode": ["ALL"]}, geometry=[geom], crs=4326)


def ours_h3_exact(resolution: int) -> Callable[[Inputs], pd.Series]:
    """What geopipe's H3 units do: the cover (``h3_grid``, whole cells) and ``zonal_raster``."""

    def run(inp: Inputs) -> pd.Series:
        import geopipe as gp

        cells = gp.h3_grid(_boundary(inp), resolution, split=False)
        out = gp.zonal_raster(cells, inp.files["raster"], stats=("sum",))
        return pd.Series(out["sum"].to_numpy(), index=out["cell_id"].astype(str).to_numpy())

    return run


def ours_nearest(points: str, facilities: str, ids: str) -> Callable[[Inputs], pd.Series]:
    def run(inp: Inputs) -> pd.Series:
        import geopipe as gp

        pts = inp.frames[points]
        out = gp.nearest_distance(pts, inp.frames[facilities])
        return pd.Series(out["distance_m"].to_numpy(), index=pts[ids].astype(str).to_numpy())

    return run


def refs_raster(inp: Inputs, ours: pd.Series, theirs: pd.Series, raw: dict) -> list[dict]:
    """geopipe against exactextract; gigaspatial's centre sums against a label raster."""
    raster = Path(inp.files["raster"])
    ee = exact_sums(inp.units, raster, _ids(inp))
    cs = centre_sums(inp.units, raster, _ids(inp))
    return [
        _ref("geopipe vs exactextract", align(ours, ee), 1e-6),
        _ref("gigaspatial vs centre label raster", align(cs, theirs), 1e-5),
        _ref("centre label raster vs exactextract", align(cs, ee), None),
    ]


def refs_fractional(inp: Inputs, ours: pd.Series, theirs: pd.Series, raw: dict) -> list[dict]:
    ee = exact_sums(inp.units, Path(inp.files["raster"]), _ids(inp))
    return [_ref("gigaspatial fractional vs exactextract", align(ee, theirs), 1e-3)]


def refs_h3(inp: Inputs, ours: pd.Series, theirs: pd.Series, raw: dict) -> list[dict]:
    """The two H3 covers (``contain="overlap"``) as cell sets, which must be equal, and their
    times: geopipe's ``h3_cells`` and gigaspatial's ``H3ViewGenerator`` construction."""
    import geopipe as gp

    res = RWA_H3 if inp.name == "rwanda" else SYN_H3_RES
    boundary = _boundary(inp)
    t_cover, cells = median_time(lambda: gp.h3_cells(boundary, res))
    cover, giga = set(cells), set(theirs.index)
    return [
        {
            "reference": "H3 cover (overlap): geopipe h3_cells vs gigaspatial H3ViewGenerator",
            "geopipe_cells": len(cover),
            "gigaspatial_cells": len(giga),
            "only_geopipe": len(cover - giga),
            "only_gigaspatial": len(giga - cover),
            "geopipe_s": t_cover,
            "gigaspatial_s": statistics.median(raw["cover_times"]),
            "ok": cover == giga,
        }
    ]


def refs_nearest(points: str, facilities: str, sample: int | None) -> Callable:
    def run(inp: Inputs, ours: pd.Series, theirs: pd.Series, raw: dict) -> list[dict]:
        pts = inp.frames[points]
        rows = np.arange(len(pts))
        if sample is not None and len(pts) > sample:
            rows = np.linspace(0, len(pts) - 1, sample).astype(int)
        pts = pts.iloc[rows]
        ids = pts["pid"].astype(str).to_numpy()
        dist, pos = brute_nearest_m(pts, inp.frames[facilities], which=True)
        ref = pd.Series(dist, index=ids)
        giga = _ref("gigaspatial vs brute-force WGS 84 geodesic", align(theirs[ids], ref), None)
        # the facility gigaspatial picked (nearest in degrees) is not the geodesic nearest
        giga["points_other_facility"] = int((np.asarray(raw["nearest"])[rows] != pos).sum())
        giga["points_checked"] = len(rows)
        return [_ref("geopipe vs brute-force WGS 84 geodesic", align(ours[ids], ref), 1e-6), giga]

    return run


def _ref(name: str, both: pd.DataFrame, tol: float | None) -> dict[str, Any]:
    st = diff_stats(both)
    ok = None if tol is None else st["max_rel"] <= tol and st["total_rel"] <= tol
    return {"reference": name, "tolerance": tol, **st, "ok": ok}


RWA_H3 = 7

CENTRES = (
    "gigaspatial sums the pixels whose centre is inside a zone (rasterio.mask); geopipe weights "
    "each pixel by the exact share of its area inside (exactextract's method): they differ by "
    "the boundary pixels"
)


def shared_cases(dataset: str, h3_res: int, counts: dict[str, str], nearest: dict) -> list[Case]:
    """The cases both data sets have: raster sum per zone, point counts, H3 sums, nearest."""
    raster_job = lambda inp: _zones_job(inp, "raster_sum", raster=inp.files["raster"])  # noqa: E731
    out = [
        Case(
            dataset,
            "raster sum per zone: map_rasters(sum) vs zonal_raster",
            ours_raster_sum,
            raster_job,
            max_rel=0.02,
            total_rel=0.002,
            why=CENTRES,
            references=refs_raster,
        )
    ]
    for key, what in counts.items():
        out.append(
            Case(
                dataset,
                f"{what} per zone: map_points(within) vs count_points",
                ours_count(key),
                lambda inp, key=key: _zones_job(inp, "point_count", points=inp.files[key], tag=key),
                max_rel=0.0,
                total_rel=0.0,
                why="none unless a point lies exactly on a border (sjoin within drops it, "
                "geopipe gives it to the first unit)",
            )
        )
    h3_job = lambda inp: _h3_job(inp, h3_res)  # noqa: E731
    h3_slow = dataset == "synthetic"  # both H3 cases: one gigaspatial run (same job, same repeats)
    out += [
        Case(
            dataset,
            f"raster sum per H3 r{h3_res} cell: H3ViewGenerator.map_rasters vs raster_to_h3",
            ours_h3(h3_res),
            h3_job,
            max_rel=0.05,
            total_rel=1e-3,
            on_theirs=True,
            slow=h3_slow,
            why="both by pixel centre; gigaspatial tests centres against the hexagon drawn with "
            "straight edges (in the raster's CRS), geopipe asks H3 which cell holds the centre; "
            "compared on gigaspatial's cover (geopipe sums every pixel of the raster)",
            references=refs_h3,
        ),
        Case(
            dataset,
            f"raster sum per H3 r{h3_res} cell: H3ViewGenerator.map_rasters vs h3_grid + "
            "zonal_raster",
            ours_h3_exact(h3_res),
            h3_job,
            max_rel=0.6,
            total_rel=1e-3,
            floor=100.0,
            on_theirs=True,
            slow=h3_slow,
            why=CENTRES + "; a hexagon has few pixels (r7 on the 232 m sample: ~100, ~30 on its "
            "edge), so cells differ by a few % (more on the outer edge; relative to "
            "max(value, 100))",
        ),
        Case(
            dataset,
            f"distance to the nearest facility ({nearest['what']}): map_nearest_points vs "
            "nearest_distance",
            ours_nearest(nearest["points"], nearest["facilities"], "pid"),
            lambda inp: {
                "case": "nearest",
                "points": inp.files[nearest["points"]],
                "facilities": inp.files[nearest["facilities"]],
                "point_id": "pid",
            },
            max_rel=0.01,
            total_rel=0.005,
            fill=None,
            why="gigaspatial: nearest in degrees (cKDTree on lat/lon), haversine on a 6,371 km "
            "sphere; geopipe: geodesic on WGS 84",
            references=refs_nearest(nearest["points"], nearest["facilities"], nearest["sample"]),
        ),
    ]
    return out


def rwanda_cases() -> list[Case]:
    """The shared cases on the sample, and the two area-share cases only it has."""
    out = shared_cases(
        "rwanda",
        RWA_H3,
        {"health": "health facilities", "schools": "schools"},
        {
            "what": "schools to health facilities",
            "points": "schools",
            "facilities": "health",
            "sample": None,
        },
    )
    out.insert(
        1,
        Case(
            "rwanda",
            "population per district: pixel polygons map_polygons(fractional) vs zonal_raster",
            ours_raster_sum,
            lambda inp: _zones_job(inp, "raster_fractional", raster=inp.files["raster"]),
            max_rel=1e-3,
            total_rel=1e-4,
            why="both exact area shares; gigaspatial measures the shares in UTM, exactextract "
            "in the raster's lon/lat grid",
            slow=True,
            references=refs_fractional,
        ),
    )
    out.append(
        Case(
            "rwanda",
            "Ookla tests per district by area share: map_polygons(fractional) vs areal_interpolate",
            ours_tests,
            lambda inp: _zones_job(
                inp, "polygon_fractional", polygons=inp.files["tiles"], value="tests"
            ),
            max_rel=1e-4,
            total_rel=1e-5,
            why="areas in UTM (gigaspatial) vs EPSG:6933 equal-area (geopipe); the shares agree "
            "to the projections' scale change across a tile",
        )
    )
    return out


def synthetic_cases() -> list[Case]:
    """The shared cases on bench_zonal's raster and polygons (no area-share case: 36 M pixel
    polygons would not fit in memory)."""
    n_pts, n_fac = SYN_NEAREST
    return shared_cases(
        "synthetic",
        SYN_H3_RES,
        {"points": f"{SYN_POINTS:,} points"},
        {
            "what": f"{n_pts:,} points, {n_fac:,} facilities",
            "points": "near_points",
            "facilities": "facilities",
            "sample": BRUTE_SAMPLE,
        },
    )


def run_case(
    case: Case, inp: Inputs, python: str, workdir: Path, done: dict[str, dict] | None = None
) -> dict[str, Any]:
    """geopipe, then gigaspatial, on one case; timings, the check and the references.

    ``done`` holds gigaspatial's results by job: a second geopipe method for the same quantity
    is compared with the gigaspatial run already made (its timings are then reused).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.ours(inp)  # warm-up: geopipe imports lazily; gigaspatial's imports are not timed
        t_ours, ours = median_time(lambda: case.ours(inp))
    reps = max(1, REPEATS - 2) if case.slow else REPEATS
    job = {"dataset": inp.name, "repeats": reps, **case.job(inp)}
    key = json.dumps(job, sort_keys=True)
    done = {} if done is None else done
    if key not in done:
        done[key] = run_giga(python, job, workdir)
    giga = done[key]
    t_giga = statistics.median(giga["times"])
    theirs = pd.Series(giga["values"], index=giga["ids"], dtype=float)
    extra: dict[str, Any] = {}
    if case.on_theirs:
        beyond = ours.index.difference(theirs.index)
        extra = {"only_geopipe_zones": len(beyond), "only_geopipe_total": float(ours[beyond].sum())}
        ours = ours.reindex(theirs.index, fill_value=0.0)
    both = align(ours, theirs, fill=case.fill)
    st = {**diff_stats(both, case.floor), **extra}
    refs = case.references(inp, ours, theirs, giga) if case.references else []
    row = {
        "dataset": inp.name,
        "measure": case.measure,
        "geopipe_s": t_ours,
        "gigaspatial_s": t_giga,
        "gigaspatial_runs_s": giga["times"],
        "gigaspatial_import_s": giga["import_s"],
        "ratio_gigaspatial_over_geopipe": t_giga / t_ours if t_ours else None,
        "tolerance": {"max_rel": case.max_rel, "total_rel": case.total_rel},
        "why": case.why,
        **st,
        "ok": within(st, case.max_rel, case.total_rel),
        "references": refs,
        "gigaspatial_version": giga.get("gigaspatial_version"),
    }
    if "cover_times" in giga:
        row["gigaspatial_cover_s"] = statistics.median(giga["cover_times"])
    return row


def write_result(key: str, value: Any, path: Path = RESULTS) -> None:
    """Read-modify-write ``path`` (JSON object): set ``key``, keep the other benchmarks' keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'dataset':<10} {'geopipe s':>9} {'giga s':>8} {'giga/gp':>8} {'max rel':>9} "
        f"{'total rel':>9}  ok  measure"
    )
    for r in rows:
        print(
            f"{r['dataset']:<10} {r['geopipe_s']:9.3f} {r['gigaspatial_s']:8.3f} "
            f"{r['ratio_gigaspatial_over_geopipe']:8.2f} {r['max_rel']:9.2e} "
            f"{r['total_rel']:9.2e}  {'yes' if r['ok'] else 'NO '} {r['measure']}"
        )
        for ref in r["references"]:
            if "max_rel" in ref:
                flag = {True: "ok", False: "FAILED", None: "measured"}[ref["ok"]]
                other = ""
                if "points_other_facility" in ref:
                    other = (
                        f", another facility than the nearest for "
                        f"{ref['points_other_facility']} of {ref['points_checked']} points"
                    )
                print(
                    f"{'':<10}   ref: {ref['reference']}: max rel {ref['max_rel']:.2e}, "
                    f"total rel {ref['total_rel']:.2e} ({flag}){other}"
                )
            else:
                print(
                    f"{'':<10}   ref: {ref['reference']}: {ref['geopipe_cells']} vs "
                    f"{ref['gigaspatial_cells']} cells, {ref['only_geopipe']} only geopipe, "
                    f"{ref['only_gigaspatial']} only gigaspatial "
                    f"({'ok' if ref['ok'] else 'FAILED'}); {ref['geopipe_s']:.3f} s vs "
                    f"{ref['gigaspatial_s']:.3f} s"
                )


def main() -> None:
    """Run every case (Rwanda, then synthetic), print the table, write and check the results."""
    python, how = find_giga_python()
    if python is None:
        print(f"bench_gigaspatial: skipped: {how}")
        return
    print(
        f"bench_gigaspatial: gigaspatial from {how}; median of {REPEATS} "
        f"({max(1, REPEATS - 2)} for gigaspatial's slow cases)"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_giga_") as tmp:
        work = Path(tmp)
        sets = [(rwanda_inputs(work), rwanda_cases())]
        if SYNTHETIC:
            sets.append((synthetic_inputs(work), synthetic_cases()))
        done: dict[str, dict] = {}
        for inp, cases in sets:
            for case in cases:
                rows.append(run_case(case, inp, python, work, done))
                print(f"  done: {inp.name}: {case.measure}", flush=True)
    _print(rows)
    write_result("gigaspatial", {"repeats": REPEATS, "python": how, "cases": rows})
    bad = [r["measure"] for r in rows if not r["ok"]]
    bad += [
        f"{r['measure']}: {ref['reference']}"
        for r in rows
        for ref in r["references"]
        if ref.get("ok") is False
    ]
    if bad:
        raise AssertionError(f"values outside their tolerance: {bad}")


if __name__ == "__main__":
    main()
