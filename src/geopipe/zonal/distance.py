"""Geodesic distance to the nearest facility, and population within a distance of one.

Method (see docs/aggregation.md): longitude/latitude are mapped to unit vectors on a sphere
(x, y, z); a :class:`scipy.spatial.cKDTree` over the facilities finds nearest neighbours by chord
length, which orders points exactly as great-circle distance does. The final distance is the
ellipsoidal (WGS 84) geodesic from :class:`pyproj.Geod` for the matched pairs. Because the
ellipsoid's local scale differs from the sphere's by at most a known factor
(``_K_LO <= geodesic / spherical <= _K_HI``), every facility that could be geodesically nearer
than the spherical nearest one is also looked at, so the result is the exact WGS 84 nearest
distance, not an approximation. No all-pairs matrix is ever built.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geopipe._threads import in_worker
from geopipe.errors import GeometryError, InputError, MissingColumnError, problem
from geopipe.zonal.points import _check_frame, _check_name, _to_crs_of

__all__ = ["nearest_distance", "nearest_feature_distance", "population_within"]

_R = 6_371_008.8  # sphere radius used for the spherical search (m)
# bounds of the WGS 84 ellipsoid's radii of curvature (meridional at the equator, polar) over _R
_K_LO = 6_335_000.0 / _R
_K_HI = 6_400_000.0 / _R

RasterLike = Any  # a path (str / Path) or an open rasterio dataset


# --------------------------------------------------------------------------- geodesy
def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    cos_la = np.cos(la)
    return np.column_stack((cos_la * np.cos(lo), cos_la * np.sin(lo), np.sin(la)))


def _chord_to_metres(chord: np.ndarray) -> np.ndarray:
    return 2.0 * _R * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def _metres_to_chord(metres: float) -> float:
    return float(2.0 * np.sin(min(metres / _R, np.pi) / 2.0))


def _geodesic(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    from pyproj import Geod

    if len(lon1) == 0:
        return np.zeros(0)
    _, _, dist = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=float)


def nearest_geodesic(
    lon: np.ndarray,
    lat: np.ndarray,
    fac_lon: np.ndarray,
    fac_lat: np.ndarray,
    max_distance: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact WGS 84 geodesic distance (m) and index of the nearest facility for each origin.

    Origins with no facility within ``max_distance`` get ``nan`` and index ``-1``.

    Examples
    --------
    >>> d, i = nearest_geodesic(np.array([0.0]), np.array([0.0]),
    ...                         np.array([1.0, 0.0]), np.array([0.0, 0.5]))
    >>> int(i[0]), round(float(d[0]))
    (1, 55287)
    """
    from scipy.spatial import cKDTree

    n, m = len(lon), len(fac_lon)
    dist = np.full(n, np.nan)
    best = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return dist, best
    tree = cKDTree(_unit_vectors(fac_lon, fac_lat))
    xyz = _unit_vectors(lon, lat)
    bound = np.inf if max_distance is None else _metres_to_chord(max_distance / _K_LO) * 1.000001
    k = min(2, m)
    chord, idx = tree.query(xyz, k=k, distance_upper_bound=bound, workers=_tree_threads())
    chord, idx = chord.reshape(n, k), idx.reshape(n, k)
    found = np.flatnonzero(np.isfinite(chord[:, 0]))
    best[found] = idx[found, 0]
    dist[found] = _geodesic(lon[found], lat[found], fac_lon[best[found]], fac_lat[best[found]])
    # rows still to check, with their retrieved neighbours (columns `done` .. k-1 not yet seen)
    todo, chord, idx, done = found, chord[found], idx[found], 1
    while len(todo):
        for j in range(done, k):
            # a facility can only be geodesically nearer if its spherical distance is within reach
            reach = 2.0 * np.sin(np.minimum(dist[todo] / _K_LO / _R, np.pi) / 2.0) * 1.000001
            cand = np.flatnonzero(np.isfinite(chord[:, j]) & (chord[:, j] <= reach))
            if len(cand):
                rows, fi = todo[cand], idx[cand, j]
                d = _geodesic(lon[rows], lat[rows], fac_lon[fi], fac_lat[fi])
                better = d < dist[rows]
                dist[rows[better]], best[rows[better]] = d[better], fi[better]
        if k >= m:
            break
        reach = 2.0 * np.sin(np.minimum(dist[todo] / _K_LO / _R, np.pi) / 2.0) * 1.000001
        still = np.isfinite(chord[:, k - 1]) & (chord[:, k - 1] <= reach)
        todo = todo[still]
        if not len(todo):
            break
        done, k = k, min(2 * k, m)
        chord, idx = tree.query(xyz[todo], k=k, distance_upper_bound=bound, workers=_tree_threads())
        chord, idx = chord.reshape(len(todo), k), idx.reshape(len(todo), k)
    if max_distance is not None:
        far = dist > max_distance
        dist[far], best[far] = np.nan, -1
    return dist, best


# WGS 84 ellipsoid: semi-major axis (m), first eccentricity squared
_A = 6_378_137.0
_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)


def _tree_threads() -> int:
    """Threads of a k-d tree query: every core in the main process, one in an engine's worker
    process (:func:`geopipe._threads.in_worker`)."""
    return 1 if in_worker() else -1


#: the largest radius of curvature of the WGS 84 ellipsoid (meridional and prime vertical, at
#: the poles), m: no arc of angle x is longer than _R_MAX * x
_R_MAX = 6_399_593.63
#: beyond this distance (m) :func:`nearest_geodesic_fast` hands a pixel to the exact search
FAST_EXACT_BELOW = 50_000.0


def _lat_terms(lat: np.ndarray) -> tuple[np.ndarray, ...]:
    """What the earth-centred position and the arc of an origin need from its latitude alone:
    sin, cos, ``N cos φ``, ``z`` and the two curvature factors of :func:`_arc_from_chord`
    (``W³ / a(1 - e²)`` meridional, ``W / a`` prime vertical, ``W = √(1 - e² sin² φ)``)."""
    la = np.radians(lat)
    sin_la, cos_la = np.sin(la), np.cos(la)
    w = np.sqrt(1.0 - _E2 * sin_la * sin_la)
    n = _A / w
    return sin_la, cos_la, n * cos_la, n * (1 - _E2) * sin_la, w**3 / (_A * (1 - _E2)), w / _A


def _lon_terms(lon: np.ndarray) -> tuple[np.ndarray, ...]:
    lo = np.radians(lon)
    return np.sin(lo), np.cos(lo)


def _xyz(la: tuple[np.ndarray, ...], lo: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.column_stack((la[2] * lo[1], la[2] * lo[0], la[3]))


def _ecef(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Earth-centred coordinates (m) of lon/lat points on the WGS 84 ellipsoid."""
    return _xyz(_lat_terms(lat), _lon_terms(lon))


def _arc_from_chord(
    v: np.ndarray, la: tuple[np.ndarray, ...], lo: tuple[np.ndarray, ...]
) -> np.ndarray:
    """Geodesic length (m) of short lines from their chord ``v`` (ECEF, end - origin).

    The arc of the normal section at the origin in the chord's direction, whose radius of
    curvature comes from Euler's formula with the meridional (M) and prime-vertical (N) radii
    at the origin's latitude (``la``, ``lo``: the origin's :func:`_lat_terms` and
    :func:`_lon_terms`), as the series ``s = c (1 + c²/24ρ² + 3c⁴/640ρ⁴)``. Against pyproj's
    geodesics: under 1e-5 m below 50 km (``tests/test_distance.py``).
    """
    sin_la, cos_la, _, _, k_m, k_n = la
    sin_lo, cos_lo = lo
    vx, vy, vz = v[:, 0], v[:, 1], v[:, 2]
    east = vy * cos_lo - vx * sin_lo
    north = cos_la * vz - sin_la * (vx * cos_lo + vy * sin_lo)
    east *= east
    north *= north
    flat2 = east + north
    curvature = (north * k_m + east * k_n) / np.where(flat2 > 0, flat2, 1.0)
    c2 = np.einsum("ij,ij->i", v, v)
    q = c2 * curvature * curvature
    return np.sqrt(c2) * (1.0 + q * (1 / 24 + q * (3 / 640)))


#: side (pixels) of the blocks :func:`nearest_geodesic_fast` settles at once: blocks that do
#: not settle are split into halves of this side, down to 2 pixels, before pixels are queried
BLOCK = 8


def _settle_blocks(
    tree: Any, lon: np.ndarray, lat: np.ndarray, lattice: tuple[np.ndarray, ...], side: int
) -> tuple[np.ndarray, np.ndarray]:
    """The nearest facility (by chord) of the origins whose block of ``side`` x ``side`` pixels
    it settles, and which origins those are.

    A block's radius is bounded by the path along its meridian and parallel from its centre
    (mean lon/lat) to its farthest pixel, at the largest radius of curvature of the ellipsoid,
    so a chord from the centre to any of its pixels is never longer; where the second-nearest
    facility of the centre is farther than the nearest by more than twice that radius, the
    nearest is every pixel's nearest (triangle inequality).
    """
    rows, cols = lattice
    br, bc = rows // side, cols // side
    nbc = int(bc.max()) - int(bc.min()) + 1
    raw = (br - int(br.min())).astype(np.int64) * nbc + (bc - int(bc.min()))
    present = np.zeros(int(raw.max()) + 1, dtype=bool)
    present[raw] = True
    block = (np.cumsum(present) - 1)[raw]
    n = int(block.max()) + 1
    count = np.bincount(block, minlength=n)
    clon, clat = np.bincount(block, lon, n) / count, np.bincount(block, lat, n) / count
    dlon, dlat = np.zeros(n), np.zeros(n)
    np.maximum.at(dlon, block, np.abs(lon - clon[block]))
    np.maximum.at(dlat, block, np.abs(lat - clat[block]))
    low = np.radians(np.maximum(np.abs(clat) - dlat, 0.0))
    radius = _R_MAX * np.radians(dlat + np.cos(low) * dlon) * (1 + 1e-9) + 1e-6
    d, i = tree.query(_ecef(clon, clat), k=2, workers=_tree_threads())
    settled = ((d[:, 1] - d[:, 0]) > 2.0 * radius)[block]
    return i[block, 0], settled


def _nearest_by_block(
    tree: Any, lon: np.ndarray, lat: np.ndarray, xyz: np.ndarray, lattice: tuple[np.ndarray, ...]
) -> np.ndarray:
    """Index of the nearest facility (by chord) of each origin: blocks of :data:`BLOCK` pixels
    that :func:`_settle_blocks` settles take their centre's nearest; the others are split in
    four and tried again, down to blocks of 2 pixels; the pixels left are queried one by one."""
    idx, settled = _settle_blocks(tree, lon, lat, lattice, BLOCK)
    todo = np.flatnonzero(~settled)
    side = BLOCK // 2
    while side >= 2 and len(todo):
        got, settled = _settle_blocks(
            tree, lon[todo], lat[todo], (lattice[0][todo], lattice[1][todo]), side
        )
        idx[todo[settled]] = got[settled]
        todo = todo[~settled]
        side //= 2
    if len(todo):
        idx[todo] = tree.query(xyz[todo], k=1, workers=_tree_threads())[1]
    return idx


def _on_lattice(
    lon: np.ndarray,
    lat: np.ndarray,
    lattice: tuple[np.ndarray, np.ndarray],
    transform: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Row and column offsets of pixel centres and the latitude of each row and longitude of
    each column (NaN for rows and columns without an origin), or None when latitude does not
    depend on the row alone and longitude on the column alone (a raster in a projected CRS):
    then what depends on them is computed per origin.

    With ``transform`` (north-up, in lon/lat: the caller's promise that ``lon`` and ``lat`` are
    the centres of the lattice's pixels as :meth:`~geopipe.zonal.raster.PixelWeights.pixel_xy`
    computes them) the rows' and columns' coordinates come from it, by the same arithmetic,
    instead of being read off and checked against every origin.
    """
    rows, cols = lattice
    if len(rows) == 0:
        return None
    r0, c0 = int(rows.min()), int(cols.min())
    ri, ci = rows - r0, cols - c0
    if transform is not None and transform.b == 0 and transform.d == 0:
        t = transform
        # pixel_xy's a·(col+½) + b·(row+½) + c with b = 0 (and d = 0): the zero term leaves
        # the sum exact
        lat_of_row = t.e * (np.arange(r0, int(rows.max()) + 1) + 0.5) + t.f
        lon_of_col = t.a * (np.arange(c0, int(cols.max()) + 1) + 0.5) + t.c
        return ri, ci, lat_of_row, lon_of_col
    lat_of_row, lon_of_col = np.full(int(ri.max()) + 1, np.nan), np.full(int(ci.max()) + 1, np.nan)
    lat_of_row[ri], lon_of_col[ci] = lat, lon
    if np.array_equal(lat_of_row[ri], lat) and np.array_equal(lon_of_col[ci], lon):
        return ri, ci, lat_of_row, lon_of_col
    return None


def nearest_geodesic_fast(
    lon: np.ndarray,
    lat: np.ndarray,
    fac_lon: np.ndarray,
    fac_lat: np.ndarray,
    lattice: tuple[np.ndarray, np.ndarray] | None = None,
    transform: Any = None,
) -> np.ndarray:
    """WGS 84 geodesic distance (m) to the nearest facility, for millions of pixel centres.

    Nearest by the straight line through the Earth (a k-d tree over earth-centred coordinates
    on the ellipsoid), measured along the surface by :func:`_arc_from_chord`; origins whose
    nearest facility is :data:`FAST_EXACT_BELOW` or farther go through the exact search of
    :func:`nearest_geodesic`. Against that exact search: within 1e-5 m below 50 km (the
    nearest by chord and by geodesic can only be different facilities when their distances
    agree to that), identical beyond. Two to three times as fast: one tree query per origin and
    no iterative geodesic.

    With ``lattice`` (the raster row and column of each origin, for pixel centres) origins are
    grouped in blocks of :data:`BLOCK` x :data:`BLOCK` pixels; where the second-nearest facility
    of a block's centre is farther than the nearest by more than the block's diameter, that
    nearest facility is every pixel's nearest (triangle inequality) and no pixel of the block
    is queried; blocks that do not settle are split down to 2 x 2 pixels. The sines and cosines
    are then computed once per raster row and column, not per pixel. The result is the same as
    without ``lattice``. ``transform`` (the raster's, north-up in lon/lat, whose pixel centres
    the origins are: see :func:`_on_lattice`) spares checking that they lie on the lattice.

    Examples
    --------
    >>> d = nearest_geodesic_fast(np.array([0.0]), np.array([0.0]),
    ...                           np.array([1.0, 0.0]), np.array([0.0, 0.5]))
    >>> round(float(d[0]))
    55287
    """
    from scipy.spatial import cKDTree

    dist = np.full(len(lon), np.nan)
    if len(lon) == 0 or len(fac_lon) == 0:
        return dist
    fac = _ecef(fac_lon, fac_lat)
    tree = cKDTree(fac)
    grid = _on_lattice(lon, lat, lattice, transform) if lattice is not None else None
    if grid is not None:
        by_row, by_col = _lat_terms(grid[2]), _lon_terms(grid[3])
    step = 1_000_000  # origins at a time: bounds the temporaries to ~100 MB
    for start in range(0, len(lon), step):
        sl = slice(start, start + step)
        if grid is not None:
            ri, ci = grid[0][sl], grid[1][sl]
            la, lo = tuple(t[ri] for t in by_row), tuple(t[ci] for t in by_col)
        else:
            la, lo = _lat_terms(lat[sl]), _lon_terms(lon[sl])
        xyz = _xyz(la, lo)
        if lattice is not None and len(fac) > 1:
            idx = _nearest_by_block(tree, lon[sl], lat[sl], xyz, (lattice[0][sl], lattice[1][sl]))
        else:
            idx = tree.query(xyz, k=1, workers=_tree_threads())[1]
        xyz -= fac[idx]
        xyz *= -1.0
        dist[sl] = _arc_from_chord(xyz, la, lo)
    far = np.flatnonzero(dist >= FAST_EXACT_BELOW)
    if len(far):
        dist[far] = nearest_geodesic(lon[far], lat[far], fac_lon, fac_lat)[0]
    return dist


def nearest_feature_distance(
    lon: np.ndarray,
    lat: np.ndarray,
    features: gpd.GeoDataFrame,
    lattice: tuple[np.ndarray, np.ndarray] | None = None,
    transform: Any = None,
) -> np.ndarray:
    """Distance (m) from each lon/lat point to the nearest feature of any geometry type.

    Points use :func:`nearest_geodesic_fast` (WGS 84 geodesics, within 1e-6 m). Lines and polygons (power
    lines, roads, markets) are measured in a transverse Mercator projection whose central
    meridian runs through the points' median longitude (scale 1 there), where a projected
    distance differs from the geodesic one by the scale error ``k - 1 ≈ d² / 2R²`` at an
    east-west distance ``d`` from that meridian: under 0.02 % within 100 km, 0.11 % at 300 km,
    0.5 % at 640 km. Edges, straight in longitude/latitude, are densified to 0.002° before
    projecting. A point inside a polygon is at distance 0. ``lattice`` (raster row and column of
    each origin) lets point facilities settle blocks of pixels at once; ``transform`` see
    :func:`nearest_geodesic_fast`.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> line = gpd.GeoDataFrame(geometry=[LineString([(30.0, -2.0), (30.0, -1.0)])], crs=4326)
    >>> round(float(nearest_feature_distance(np.array([30.01]), np.array([-1.5]), line)[0]))
    1113
    """
    geoms = np.asarray(features.to_crs(4326).geometry.array, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(geoms) == 0:
        raise InputError(
            problem(
                "facilities",
                "have no geometry",
                "pass a layer with features",
                where="nearest_feature_distance",
            )
        )
    if (shapely.get_type_id(geoms) == shapely.GeometryType.POINT).all():
        fx, fy = shapely.get_x(geoms), shapely.get_y(geoms)
        return nearest_geodesic_fast(lon, lat, fx, fy, lattice=lattice, transform=transform)
    from pyproj import CRS, Transformer

    clon = float(np.nanmedian(lon))
    utm = CRS.from_proj4(f"+proj=tmerc +lon_0={clon:.6f} +lat_0=0 +k=1 +datum=WGS84 +units=m")
    to_utm = Transformer.from_crs(4326, utm, always_xy=True)
    x, y = to_utm.transform(lon, lat)
    # edges are straight in lon/lat (GeoJSON's rule): densify them before projecting
    dense = shapely.segmentize(geoms, 0.002)
    projected = gpd.GeoSeries(dense, crs=4326).to_crs(utm).to_numpy()
    tree = shapely.STRtree(projected)
    pts = shapely.points(np.asarray(x), np.asarray(y))
    (src, _), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    out = np.full(len(lon), np.nan)
    out[src] = dist
    return out


# --------------------------------------------------------------------------- inputs
def _points_lonlat(frame: gpd.GeoDataFrame, arg: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat of Point geometries (EPSG:4326); missing/empty geometries -> nan."""
    geo = frame.geometry.to_crs(4326) if not frame.crs.equals("EPSG:4326") else frame.geometry
    geoms = np.asarray(geo.array, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if (shapely.get_type_id(geoms[~missing]) != shapely.GeometryType.POINT).any():
        raise GeometryError(
            problem(f"`{arg}`", "has non-Point geometries", "pass Point geometries", where=where)
        )
    lon, lat = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
    lon[~missing], lat[~missing] = shapely.get_x(geoms[~missing]), shapely.get_y(geoms[~missing])
    return lon, lat


def _facilities_lonlat(facilities: gpd.GeoDataFrame, where: str) -> tuple[np.ndarray, np.ndarray]:
    _check_frame(facilities, "facilities", where)
    lon, lat = _points_lonlat(facilities, "facilities", where)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise InputError(
            problem("`facilities`", "has no usable point", "pass at least one Point", where=where)
        )
    return lon[ok], lat[ok]


def _open_raster(raster: RasterLike, where: str) -> tuple[Any, bool]:
    import rasterio

    if isinstance(raster, str | Path):
        if not Path(raster).exists():
            from geopipe.errors import MissingFileError

            raise MissingFileError(
                problem(f"raster {str(raster)!r}", "does not exist", "check the path", where=where)
            )
        return rasterio.open(raster), True
    if hasattr(raster, "read") and hasattr(raster, "transform"):
        return raster, False
    raise InputError(
        problem(
            "`raster`",
            f"is a {type(raster).__name__}",
            "pass a file path or an open rasterio dataset",
            where=where,
        )
    )


def _pixel_tables(units: gpd.GeoDataFrame, raster: RasterLike) -> Iterator[pd.DataFrame]:
    """Pixels of ``raster`` (band 1) inside the units, one table per memory-bounded batch of units.

    Columns: ``unit`` (row position in ``units``), ``row``, ``col``, ``coverage`` (share of the
    pixel's area inside the unit, 0-1], ``x``, ``y`` (pixel centre, lon/lat EPSG:4326) and
    ``value`` (nodata and NaN -> 0). Built on the shared :func:`~geopipe.zonal.raster.pixel_weights`;
    batches come from :func:`~geopipe.zonal.layers.unit_batches`.
    """
    from .layers import pixel_values, unit_batches
    from .raster import pixel_weights

    path = raster if isinstance(raster, str | os.PathLike) else raster.name
    for batch in unit_batches(units, path):
        pw = pixel_weights(units.iloc[batch], path)
        values, valid = pixel_values(pw, path)
        lon, lat = pw.pixel_lonlat()
        yield pd.DataFrame(
            {
                "unit": batch[pw.unit],
                "row": pw.row,
                "col": pw.col,
                "coverage": pw.coverage,
                "x": np.asarray(lon, dtype=float),
                "y": np.asarray(lat, dtype=float),
                "value": np.where(valid, values, 0.0),
            }
        )


def _pixel_distance(px: pd.DataFrame, flon: np.ndarray, flat_: np.ndarray, max_d: float | None):
    """Nearest-facility distance per pixel row, computed once per distinct pixel."""
    key = px["row"].to_numpy() * (px["col"].max() + 1 if len(px) else 1) + px["col"].to_numpy()
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    lon, lat = px["x"].to_numpy()[first], px["y"].to_numpy()[first]
    d = nearest_geodesic_fast(lon, lat, flon, flat_)
    if max_d is not None:
        d[d > max_d] = np.nan
    return d[inverse]


# --------------------------------------------------------------------------- public
def nearest_distance(
    units_or_points: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    raster: RasterLike | None = None,
    max_distance: float | None = None,
    name: str = "distance_m",
) -> gpd.GeoDataFrame:
    """Geodesic distance in metres to the nearest facility.

    For points: one distance per point. For polygons (units): the distance from each unit's
    representative point (``shapely.point_on_surface``) in ``name``; with ``raster`` (a
    population raster) also the population-weighted mean over the raster's pixels inside the unit
    in ``f"{name}_popweighted"`` (pixel weight = coverage fraction x population; distance from the
    pixel centre), i.e. the mean distance a person in the unit lives from a facility.

    Parameters
    ----------
    units_or_points
        Point or polygon GeoDataFrame.
    facilities
        Point GeoDataFrame of facilities (rows without geometry are ignored).
    raster
        Population raster (path or open rasterio dataset), only for polygons.
    max_distance
        Search radius in metres. Beyond it there is no match and the distance is ``nan``; a unit
        with any populated pixel beyond it gets ``nan`` as population-weighted mean.
    name
        Output column name.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of the input (same index and order) with the distance column(s), float metres.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> origins = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(0, 1)], crs=4326)
    >>> fac = gpd.GeoDataFrame(geometry=[Point(0, 0.5)], crs=4326)
    >>> nearest_distance(origins, fac)["distance_m"].round().tolist()
    [55287.0, 55287.0]
    """
    where = "nearest_distance"
    _check_frame(units_or_points, "units_or_points", where)
    _check_name(units_or_points, name, where)
    flon, flat_ = _facilities_lonlat(facilities, where)
    geoms = np.asarray(units_or_points.geometry.array, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    types = set(shapely.get_type_id(geoms[present]).tolist())
    point_t = {int(shapely.GeometryType.POINT)}
    poly_t = {int(shapely.GeometryType.POLYGON), int(shapely.GeometryType.MULTIPOLYGON)}
    out = units_or_points.copy()
    if types <= point_t:
        if raster is not None:
            raise InputError(
                problem(
                    "`raster`",
                    "was given for points",
                    "drop it (points need no weights)",
                    where=where,
                )
            )
        lon, lat = _points_lonlat(units_or_points, "units_or_points", where)
        ok = np.isfinite(lon) & np.isfinite(lat)
        d = np.full(len(lon), np.nan)
        d[ok], _ = nearest_geodesic(lon[ok], lat[ok], flon, flat_, max_distance)
        out[name] = d
        return out
    if not types <= poly_t:
        raise GeometryError(
            problem(
                "`units_or_points`",
                "mixes geometry types",
                "pass only Points or only (Multi)Polygons",
                where=where,
            )
        )
    reps = gpd.GeoSeries(shapely.point_on_surface(geoms), crs=units_or_points.crs).to_crs(4326)
    lon = np.asarray(reps.x, dtype=float)
    lat = np.asarray(reps.y, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    d = np.full(len(lon), np.nan)
    d[ok], _ = nearest_geodesic(lon[ok], lat[ok], flon, flat_, max_distance)
    out[name] = d
    if raster is not None:
        col = f"{name}_popweighted"
        _check_name(units_or_points, col, where)
        n = len(out)
        wsum, wd, unknown = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
        for px in _pixel_tables(units_or_points, raster):
            w = px["coverage"].to_numpy() * px["value"].to_numpy()
            dpx = _pixel_distance(px, flon, flat_, max_distance)
            unit = px["unit"].to_numpy()
            wsum += np.bincount(unit, w, minlength=n)
            unknown |= np.bincount(unit, (w > 0) & ~np.isfinite(dpx), minlength=n) > 0
            wd += np.bincount(unit, w * np.nan_to_num(dpx, nan=0.0), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where((wsum > 0) & ~unknown, wd / np.where(wsum > 0, wsum, 1.0), np.nan)
        out[col] = mean
    return out


def _children_share(children: Any, units: gpd.GeoDataFrame, where: str) -> np.ndarray:
    """Per-unit child share from a float, a column name of ``units`` or a Series by ucode."""
    if isinstance(children, int | float) and not isinstance(children, bool):
        share = np.full(len(units), float(children))
    elif isinstance(children, str):
        if children not in units.columns:
            raise MissingColumnError(
                problem(
                    f"column {children!r}",
                    "is not in `units`",
                    "pass a share column of units, a float, a raster path or a Series",
                    where=where,
                )
            )
        share = units[children].to_numpy(dtype=float)
    elif isinstance(children, pd.Series):
        if "ucode" not in units.columns:
            raise MissingColumnError(
                problem(
                    "column 'ucode'",
                    "is not in `units`",
                    "a Series of shares is matched on ucode; add it",
                    where=where,
                )
            )
        share = units["ucode"].map(children).to_numpy(dtype=float)
    else:
        raise InputError(
            problem(
                "`children`",
                f"is a {type(children).__name__}",
                "pass a raster, a float share, a column name or a Series indexed by ucode",
                where=where,
            )
        )
    bad = ~np.isfinite(share) | (share < 0) | (share > 1)
    if bad.any():
        raise InputError(
            problem(
                "`children` share",
                f"is missing or outside [0, 1] for {int(bad.sum())} units",
                "give a share between 0 and 1 for every unit",
                where=where,
            )
        )
    return share


def _within_sums(px: pd.DataFrame, dpx: np.ndarray, distance_m: float, n: int):
    w = px["coverage"].to_numpy() * px["value"].to_numpy()
    inside = np.isfinite(dpx) & (dpx <= distance_m)
    unit = px["unit"].to_numpy()
    total = np.bincount(unit, w, minlength=n)
    within = np.bincount(unit, np.where(inside, w, 0.0), minlength=n)
    beyond = np.bincount(unit, np.where(inside, 0.0, w), minlength=n)
    return total, within, beyond


def _batched_within(
    units: gpd.GeoDataFrame,
    raster: RasterLike,
    flon: np.ndarray,
    flat_: np.ndarray,
    distance_m: float,
):
    """(total, within, beyond) per unit, summed over memory-bounded batches of units."""
    n = len(units)
    sums = (np.zeros(n), np.zeros(n), np.zeros(n))
    for px in _pixel_tables(units, raster):
        part = _within_sums(px, _pixel_distance(px, flon, flat_, distance_m), distance_m, n)
        for acc, add in zip(sums, part, strict=True):
            acc += add
    return sums


def population_within(
    units: gpd.GeoDataFrame,
    raster: RasterLike,
    facilities: gpd.GeoDataFrame,
    distance_m: float = 5000,
    children: Any = None,
    *,
    prefix: str = "population",
    children_prefix: str = "children",
) -> gpd.GeoDataFrame:
    """Population within (and beyond) a geodesic distance of the nearest facility, per unit.

    Exact at pixel level: each pixel of ``raster`` contributes ``coverage x value`` to a unit
    (coverage = share of the pixel inside the unit); it counts as *within* when the geodesic
    distance from its centre to the nearest facility is ``<= distance_m``. Hence
    ``within + beyond == total`` per unit (to rounding).

    Parameters
    ----------
    units
        Polygon GeoDataFrame.
    raster
        Population count raster (path or open rasterio dataset; band 1).
    facilities
        Point GeoDataFrame.
    distance_m
        Distance threshold in metres (inclusive).
    children
        Optional child population: a raster (path / dataset) of child counts, or the child share
        of the population as a float, a column name of ``units`` or a Series indexed by ``ucode``.
    prefix, children_prefix
        Output columns are ``{prefix}_total``, ``{prefix}_within``, ``{prefix}_beyond`` (and the
        same with ``children_prefix``).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` with the new float columns.

    Examples
    --------
    >>> out = population_within(units, "pop.tif", clinics, distance_m=5000)  # doctest: +SKIP
    >>> share = out["population_within"] / out["population_total"]  # doctest: +SKIP
    """
    where = "population_within"
    _check_frame(units, "units", where)
    if not np.isfinite(distance_m) or distance_m < 0:
        raise InputError(
            problem(
                "`distance_m`", f"was {distance_m!r}", "pass a distance >= 0 in metres", where=where
            )
        )
    cols = [f"{prefix}_{s}" for s in ("total", "within", "beyond")]
    if children is not None:
        cols += [f"{children_prefix}_{s}" for s in ("total", "within", "beyond")]
    for c in cols:
        _check_name(units, c, where)
    flon, flat_ = _facilities_lonlat(_to_crs_of(facilities, units), where)
    sums = _batched_within(units, raster, flon, flat_, distance_m)
    out = units.copy()
    for c, v in zip(cols[:3], sums, strict=True):
        out[c] = v
    if children is not None:
        is_column = isinstance(children, str) and children in units.columns
        is_dataset = hasattr(children, "read") and hasattr(children, "transform")
        if (isinstance(children, str | Path) and not is_column) or is_dataset:
            csums = _batched_within(units, children, flon, flat_, distance_m)
        else:
            share = _children_share(children, units, where)
            csums = tuple(share * s for s in sums)
        for c, v in zip(cols[3:], csums, strict=True):
            out[c] = v
    return out
