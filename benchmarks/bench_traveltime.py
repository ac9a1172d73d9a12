"""Benchmark: travel time over a 10,000 x 10,000 friction grid from 500 facilities.

Run ``.venv/bin/python -m benchmarks traveltime`` (or ``make bench``). The data are generated in
memory with a fixed seed (no file): a geographic grid of 0.0025 deg cells (~280 m) spanning 25 deg
of latitude around the equator, friction in min/m from a smooth log-normal field (0.004-0.06
min/m, i.e. ~1-15 km/h), ~0.5 % water cells (impassable) and 500 facilities on passable cells.
Friction is float32 (400 MB); each tool's own arrays come on top (MCP holds ~30 bytes per cell).

Tools, on the same data in the same process:

* geopipe ``gp.travel_time`` with ``engine="auto"`` (exact row relaxation from the facilities,
  MCP only if needed) and ``engine="mcp"`` (MCP_Geometric upper bound, then the relaxation), both
  with per-row geodesic move lengths (``GEOPIPE_BENCH_TT_ENGINES=auto`` runs one);
* OnStove's approach: one plain ``skimage.graph.MCP_Geometric`` call on the friction (pixel-unit
  moves, 1 and sqrt(2)), times one nominal cell size in metres.

The table prints the median time of ``GEOPIPE_BENCH_TT_REPEATS`` runs (default 1: one run takes
minutes), the ratio to the peer, and how far the peer's minutes are from geopipe's exact ones.
``GEOPIPE_BENCH_TT_N`` changes the grid side (default 10000).
"""

from __future__ import annotations

import gc
import os
import resource
import warnings

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

from benchmarks._common import median_time

N = int(os.environ.get("GEOPIPE_BENCH_TT_N", "10000"))
REPEATS = int(os.environ.get("GEOPIPE_BENCH_TT_REPEATS", "1"))
N_FACILITIES = 500
CELL = 0.0025
ENGINES = tuple(os.environ.get("GEOPIPE_BENCH_TT_ENGINES", "auto,mcp").split(","))


def make_data(n: int = N) -> tuple[np.ndarray, Affine, gpd.GeoDataFrame, np.ndarray]:
    """Friction (float32, NaN = water), transform, facilities and their (row, col) cells."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(15)
    coarse = rng.normal(size=(64, 64))
    log_f = zoom(coarse.astype(np.float32), n / 64, order=1)[:n, :n]
    friction = np.exp(np.float32(np.log(0.015)) + np.float32(0.7) * log_f).clip(0.004, 0.06)
    del log_f
    lakes = zoom(rng.normal(size=(48, 48)).astype(np.float32), n / 48, order=1)[:n, :n]
    friction[lakes > 1.75] = np.nan
    del lakes
    gc.collect()
    transform = Affine(CELL, 0.0, 10.0, 0.0, -CELL, CELL * n / 2)
    cells = np.empty((0, 2), dtype=np.int64)
    while len(cells) < N_FACILITIES:
        cand = rng.integers(0, n, (N_FACILITIES, 2))
        cand = cand[np.isfinite(friction[cand[:, 0], cand[:, 1]])]
        cells = np.unique(np.vstack([cells, cand]), axis=0)[:N_FACILITIES]
    x = transform.c + CELL * (cells[:, 1] + 0.5)
    y = transform.f - CELL * (cells[:, 0] + 0.5)
    facilities = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=4326)
    return friction.astype(np.float32, copy=False), transform, facilities, cells


def _geopipe(friction, transform, facilities, engine):
    import geopipe as gp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gp.travel_time((friction, transform, "EPSG:4326"), facilities, engine=engine)


def _onstove(friction, transform, cells):
    """OnStove's way: MCP_Geometric on the friction, pixel units x one nominal cell size."""
    from pyproj import Geod
    from skimage.graph import MCP_Geometric

    lat_mid = transform.f + transform.e * friction.shape[0] / 2
    _, _, cell_m = Geod(ellps="WGS84").inv(0.0, lat_mid, transform.a, lat_mid)
    costs = np.where(np.isfinite(friction), friction, -1.0)
    mcp = MCP_Geometric(costs)
    del costs
    cum, _ = mcp.find_costs([[int(r), int(c)] for r, c in cells])
    del mcp
    return cum * cell_m


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    friction, transform, facilities, cells = make_data()
    print(
        f"friction grid {friction.shape[0]:,} x {friction.shape[1]:,} float32, "
        f"{int(np.isnan(friction).sum()):,} water cells, {len(facilities)} facilities",
        flush=True,
    )
    rows, exact = [], None
    for engine in ENGINES:
        secs, tt = median_time(
            lambda e=engine: _geopipe(friction, transform, facilities, e), REPEATS
        )
        info = tt.info
        eps = "-" if info["mcp_eps"] is None else f"{info['mcp_eps']:.1e}"
        print(
            f"geopipe engine={engine!r}: {secs:.1f} s (MCP stage {info['seconds_mcp']:.1f} s, exact "
            f"stage {info['seconds_exact']:.1f} s, {info['rounds']} rounds, converged="
            f"{info['converged']}, MCP bound eps {eps}); peak RSS so far {_peak_gb():.1f} GB",
            flush=True,
        )
        if exact is None:
            exact = tt.values
        else:
            same = np.isfinite(exact)
            diff = np.max(np.abs(tt.values[same] - exact[same]) / np.maximum(exact[same], 1e-9))
            print(f"  max relative difference to engine={ENGINES[0]!r}: {diff:.1e}", flush=True)
        rows.append((f"geopipe travel_time engine={engine!r}", secs))
        del tt
        gc.collect()
    t_peer, peer = median_time(lambda: _onstove(friction, transform, cells), REPEATS)
    both = np.isfinite(exact) & np.isfinite(peer) & (exact > 0)
    rel = np.abs(peer[both] - exact[both]) / exact[both]
    rows.append(("OnStove-style MCP_Geometric (pixels)", t_peer))
    print(f"\n{'tool':<42}{'seconds':>10}{'ratio':>8}")
    for name, secs in rows:
        print(f"{name:<42}{secs:>10.1f}{secs / t_peer:>8.2f}")
    print(
        f"peer vs geopipe minutes: median |rel diff| {np.median(rel):.2%}, "
        f"max {rel.max():.2%} (the peer uses one cell size for the whole grid); "
        f"peak RSS {_peak_gb():.1f} GB"
    )


if __name__ == "__main__":
    main()
