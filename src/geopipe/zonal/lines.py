"""Length of lines (roads, power lines) inside each unit, in geodesic kilometres.

Lines are clipped to the units with one vectorised ``shapely.intersection`` over the candidate
pairs of an STRtree query; the clipped pieces are split into segments and every segment's WGS 84
geodesic length comes from one vectorised :meth:`pyproj.Geod.inv` call. A line running exactly
along a border shared by two units lies in both closures and counts for both.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geopipe.errors import GeometryError, problem
from geopipe.zonal.points import _check_frame, _check_name

__all__ = ["geodesic_length_m", "line_length"]

_LINE_TYPES = {
    int(shapely.GeometryType.LINESTRING),
    int(shapely.GeometryType.MULTILINESTRING),
    int(shapely.GeometryType.LINEARRING),
}


def geodesic_length_m(geoms: np.ndarray) -> np.ndarray:
    """WGS 84 geodesic length in metres of each (multi)line in lon/lat (non-lines count 0).

    Examples
    --------
    >>> from shapely import LineString
    >>> round(float(geodesic_length_m(np.array([LineString([(0, 0), (1, 0)])]))[0]))
    111319
    """
    from pyproj import Geod

    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    if not len(geoms):
        return out
    parts, owner = shapely.get_parts(geoms, return_index=True)
    # a second level flattens multi-parts nested in geometry collections
    parts, inner = shapely.get_parts(parts, return_index=True)
    owner = owner[inner]
    is_line = np.isin(shapely.get_type_id(parts), list(_LINE_TYPES))
    parts, owner = parts[is_line], owner[is_line]
    if not len(parts):
        return out
    xy, part = shapely.get_coordinates(parts, return_index=True)
    same = part[1:] == part[:-1]  # consecutive vertices of the same part form a segment
    if not same.any():
        return out
    a, b = xy[:-1][same], xy[1:][same]
    _, _, d = Geod(ellps="WGS84").inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    seg_owner = owner[part[:-1][same]]
    return np.bincount(seg_owner, np.asarray(d, dtype=float), minlength=len(geoms))


def line_length(
    units: gpd.GeoDataFrame, lines: gpd.GeoDataFrame, name: str = "length_km"
) -> gpd.GeoDataFrame:
    """Geodesic length (km) of the lines inside each unit.

    Parameters
    ----------
    units
        Polygon GeoDataFrame.
    lines
        (Multi)LineString GeoDataFrame; transformed to EPSG:4326 for the geodesic lengths.
    name
        Output column name.

    Returns
    -------
    geopandas.GeoDataFrame
        Copy of ``units`` (same index and order) with ``name`` (float km, 0 where no line).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box, LineString
    >>> units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> roads = gpd.GeoDataFrame(geometry=[LineString([(0.5, 0.5), (1.5, 0.5)])], crs=4326)
    >>> line_length(units, roads)["length_km"].round(3).tolist()
    [55.658, 55.658]
    """
    where = "line_length"
    _check_frame(units, "units", where)
    _check_frame(lines, "lines", where)
    _check_name(units, name, where)
    lgeo = np.asarray(lines.geometry.to_crs(4326).array, dtype=object)
    present = ~(shapely.is_missing(lgeo) | shapely.is_empty(lgeo))
    lgeo = lgeo[present]
    if not set(shapely.get_type_id(lgeo).tolist()) <= _LINE_TYPES:
        raise GeometryError(
            problem(
                "`lines`",
                "has non-line geometries",
                "pass (Multi)LineString geometries",
                where=where,
            )
        )
    ugeo = np.asarray(units.geometry.to_crs(4326).array, dtype=object)
    ugeo = shapely.make_valid(ugeo)
    tree = shapely.STRtree(ugeo)
    l_idx, u_idx = tree.query(lgeo, predicate="intersects")
    pieces = shapely.intersection(lgeo[l_idx], ugeo[u_idx])
    metres = geodesic_length_m(pieces)
    out = units.copy()
    out[name] = np.bincount(u_idx, metres, minlength=len(units)) / 1000.0
    return out
