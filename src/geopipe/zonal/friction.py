"""Friction surfaces (minutes per metre, MAP convention) from a road line layer.

Each cell takes the speed of the fastest road touching it (OSM ``highway`` class -> km/h from a
speed table), other cells the off-road speed; friction = 60 / (1000 x km/h) minutes per metre.
Default speeds: the ``speeds.highway`` table of the OSRM car profile (Project-OSRM/osrm-backend,
``profiles/car.lua``); off-road 5 km/h, the walking speed of OSRM's foot profile and of the MAP
walking-only surface (0.012 min/m). See docs/traveltime.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np

from geopipe.errors import GeopipeWarning, InputError, MissingColumnError, problem
from geopipe.zonal.traveltime import GridRaster, _read_grid

__all__ = ["DEFAULT_SPEEDS_KMH", "friction_surface"]

WHERE = "friction_surface"

#: km/h per OSM ``highway`` class: OSRM car profile defaults (profiles/car.lua, speeds.highway).
DEFAULT_SPEEDS_KMH: Mapping[str, float] = {
    "motorway": 90.0,
    "motorway_link": 45.0,
    "trunk": 85.0,
    "trunk_link": 40.0,
    "primary": 65.0,
    "primary_link": 30.0,
    "secondary": 55.0,
    "secondary_link": 25.0,
    "tertiary": 40.0,
    "tertiary_link": 20.0,
    "unclassified": 25.0,
    "residential": 25.0,
    "living_street": 10.0,
    "service": 15.0,
}


def _grid_of(like: Any) -> tuple[tuple[int, int], Any, str]:
    """(shape, transform, crs) of a raster path, a GridRaster or an (array, transform, crs)."""
    if isinstance(like, tuple) and len(like) == 3 and isinstance(like[0], tuple):
        shape, transform, crs = like
        return tuple(shape), transform, str(crs)
    arr, transform, crs = _read_grid(like)
    return arr.shape, transform, crs


def friction_surface(
    roads: gpd.GeoDataFrame,
    *,
    like: Any,
    speeds: Mapping[str, float] = DEFAULT_SPEEDS_KMH,
    offroad_kmh: float = 5.0,
    highway: str = "highway",
    barriers: gpd.GeoDataFrame | None = None,
) -> GridRaster:
    """Friction (minutes per metre) on a target grid from road lines and an off-road speed.

    Parameters
    ----------
    roads
        Line GeoDataFrame (any CRS) with an OSM-style road class column.
    like
        The target grid: a raster path, a :class:`GridRaster`, ``(array, transform, crs)`` or
        ``((height, width), transform, crs)``.
    speeds
        km/h per road class. Classes not in the table (``track``, ``path``, ...) are left to the
        off-road speed and counted in a warning. Default :data:`DEFAULT_SPEEDS_KMH`.
    offroad_kmh
        Speed where there is no road (walking: 5 km/h).
    highway
        Name of the road class column.
    barriers
        Polygons (e.g. water) whose cells become impassable (NaN; cells whose centre is inside).

    Returns
    -------
    GridRaster
        Friction in min/m (float32), NaN on barriers; pass it to :func:`gp.travel_time`.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np
    >>> from affine import Affine
    >>> from shapely import LineString
    >>> roads = gpd.GeoDataFrame({"highway": ["primary"]},
    ...                          geometry=[LineString([(30, 0.005), (30.05, 0.005)])], crs=4326)
    >>> grid = ((2, 5), Affine(0.01, 0, 30, 0, -0.01, 0.01), "EPSG:4326")
    >>> fr = friction_surface(roads, like=grid)
    >>> [round(float(v), 5) for v in fr.values[:, 0]]  # 65 km/h on the road, 5 km/h off it
    [0.00092, 0.012]
    """
    from rasterio.features import geometry_mask, rasterize

    if not isinstance(roads, gpd.GeoDataFrame) or roads.crs is None:
        raise InputError(
            problem("`roads`", "is not a GeoDataFrame with a CRS", "pass road lines", where=WHERE)
        )
    if highway not in roads.columns:
        raise MissingColumnError(
            problem(
                f"column {highway!r}",
                "is not in `roads`",
                f"pass highway='<class column>' (columns: {list(roads.columns)[:8]})",
                where=WHERE,
            )
        )
    bad = {k: v for k, v in speeds.items() if not (np.isfinite(v) and v > 0)}
    if bad or not (np.isfinite(offroad_kmh) and offroad_kmh > 0):
        raise InputError(
            problem(
                "`speeds` / `offroad_kmh`",
                f"has speeds that are not > 0 km/h ({bad or offroad_kmh})",
                "give every class a positive speed (use `barriers` for impassable areas)",
                where=WHERE,
            )
        )
    shape, transform, crs = _grid_of(like)
    lines = roads.to_crs(crs)
    cls = lines[highway].astype("string")
    kmh = cls.map(dict(speeds)).astype(float).to_numpy()
    unknown = cls[np.isnan(kmh)].value_counts(dropna=False)
    if len(unknown):
        warnings.warn(
            f"friction_surface: {int(unknown.sum())} roads of classes not in `speeds` use the "
            f"off-road speed: {unknown.head(10).to_dict()}",
            GeopipeWarning,
            stacklevel=2,
        )
    ok = ~np.isnan(kmh) & ~(lines.geometry.is_empty | lines.geometry.isna()).to_numpy()
    speed = np.full(shape, float(offroad_kmh), dtype=np.float32)
    if ok.any():
        order = np.argsort(kmh[ok], kind="stable")  # burnt in order: the fastest road wins
        geoms = lines.geometry.to_numpy()[ok][order]
        burnt = rasterize(
            zip(geoms, kmh[ok][order], strict=True),
            out_shape=shape,
            transform=transform,
            fill=0.0,
            all_touched=True,
            dtype="float32",
        )
        speed = np.maximum(speed, burnt)
    friction = (np.float32(0.06) / speed).astype(np.float32)
    if barriers is not None and len(barriers):
        water = ~geometry_mask(barriers.to_crs(crs).geometry, out_shape=shape, transform=transform)
        friction[water] = np.nan
    return GridRaster(friction, transform, crs)
