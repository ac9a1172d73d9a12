"""Benchmark: H3 coverage and raster -> H3 against the peer tools.

Run ``.venv/bin/python -m benchmarks.bench_h3`` (or ``make bench``). Uses the data of
``bench_zonal`` (generated once into ``benchmarks/.data/zonal/``): 2,000 Voronoi polygons over
600 x 600 km (reprojected to EPSG:4326 here) and the 6,000 x 6,000 100 m raster (UTM 36S).

Cases (same inputs, same process; median of ``REPEATS`` runs, slow peers fewer times):

* H3 coverage at resolution 7 (``contain="overlap"``): ``geopipe h3_cells`` vs h3ronpy
  ``wkb_to_cells`` (Covers) and a loop over h3-py ``h3shape_to_cells_experimental``; the full
  ``h3_grid`` (hexagons + split into fragments at the polygon edges) is timed for information.
* raster -> H3 by pixel centre, resolution 7: ``geopipe raster_to_h3`` vs h3ronpy
  ``coordinates_to_cells`` on every valid pixel centre + a grouped sum (the fastest plain way).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Transformer

from benchmarks._common import REPEATS, median_time
from benchmarks.bench_zonal import make_polygons, make_rasters

RES = 7


def _h3ronpy_cover(geoms: np.ndarray) -> np.ndarray:
    import h3ronpy
    from h3ronpy.vector import wkb_to_cells

    cells = wkb_to_cells(
        shapely.to_wkb(geoms), RES, containment_mode=h3ronpy.ContainmentMode.Covers, flatten=True
    )
    return np.unique(np.asarray(cells, dtype=np.uint64))


def _h3py_loop(geoms: np.ndarray) -> set[str]:
    import h3

    cells: set[str] = set()
    for g in geoms:
        shape = h3.geo_to_h3shape(g.__geo_interface__)
        cells.update(h3.h3shape_to_cells_experimental(shape, RES, contain="overlap"))
    return cells


def _centre_sampling(path) -> pd.Series:
    """The peer: every valid pixel centre through h3ronpy, then a grouped sum."""
    from h3ronpy.vector import coordinates_to_cells

    with rasterio.open(path) as ds:
        arr, t = ds.read(1), ds.transform
        rr, cc = np.nonzero(arr != ds.nodata)
        x, y = t.c + (cc + 0.5) * t.a, t.f + (rr + 0.5) * t.e
        x, y = Transformer.from_crs(ds.crs, 4326, always_xy=True).transform(x, y)
    cells = np.asarray(coordinates_to_cells(y, x, RES), dtype=np.uint64)
    return pd.Series(arr[rr, cc].astype(np.float64)).groupby(cells).sum()


def main() -> None:
    """Run the H3 cases and print a table of medians and ratios."""
    from geopipe.grids.h3 import h3_cells, h3_grid
    from geopipe.zonal.raster_h3 import raster_to_h3

    t0 = time.perf_counter()
    polys = make_polygons().to_crs(4326)
    rasters = make_rasters()
    geoms = np.asarray(polys.geometry.values)
    print(
        f"bench_h3: {len(polys):,} polygons, H3 res {RES}; raster 6,000^2 (100 m); "
        f"median of {REPEATS} (data ready in {time.perf_counter() - t0:.1f} s)"
    )
    rows: list[tuple[str, str, float, float, str]] = []
    t_gp, ours = median_time(lambda: h3_cells(polys, RES))
    rows.append(("cover", "geopipe h3_cells", t_gp, 1.0, f"{len(ours):,} cells"))
    t, ref = median_time(lambda: _h3ronpy_cover(geoms))
    rows.append(
        (
            "cover",
            "h3ronpy wkb_to_cells",
            t,
            t / t_gp,
            "same cells" if len(ref) == len(ours) else f"{len(ref):,} cells",
        )
    )
    t, loop = median_time(lambda: _h3py_loop(geoms), max(1, REPEATS - 2))
    same = len(loop ^ set(ours))
    rows.append(("cover", "h3-py loop (overlap)", t, t / t_gp, f"{same} cells differ"))
    t, grid = median_time(lambda: h3_grid(polys, RES), max(1, REPEATS - 2))
    rows.append(("cover", "geopipe h3_grid (split, info)", t, t / t_gp, f"{len(grid):,} fragments"))

    path = rasters["r6000"]
    t_gp, ours_r = median_time(lambda: raster_to_h3(path, RES), max(1, REPEATS - 1))
    rows.append(("raster->h3", "geopipe raster_to_h3", t_gp, 1.0, "reference"))
    t, peer = median_time(lambda: _centre_sampling(path), max(1, REPEATS - 2))
    got = ours_r.set_index("cell_id")["sum"].to_numpy()
    exact = len(peer) == len(got) and np.allclose(np.sort(peer.to_numpy()), np.sort(got))
    rows.append(
        (
            "raster->h3",
            "h3ronpy centre sampling",
            t,
            t / t_gp,
            "same sums" if exact else "DIFFERENT",
        )
    )
    print(f"{'case':<12} {'tool':<32} {'median s':>9} {'x geopipe':>10}  note")
    for case, tool, tm, ratio, note in rows:
        print(f"{case:<12} {tool:<32} {tm:9.2f} {ratio:10.2f}  {note}")


if __name__ == "__main__":
    main()
