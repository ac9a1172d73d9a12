"""Travel time to the nearest facility over a friction surface (least-cost accumulation).

Friction follows the Malaria Atlas Project convention: minutes needed to cross one metre of the
cell (Weiss et al. 2018, Nature 553; 2020, Nature Medicine 26). Travel time is accumulated from
the facilities over the 8-neighbour graph of the friction grid, every move costed with its true
metric length (per row on a geographic grid); the method and its error bound are in
docs/traveltime.md and in :mod:`geopipe.zonal._leastcost`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine

from geopipe.errors import GeopipeWarning, InputError, OutputError, RasterError, problem

__all__ = ["GridRaster", "TravelTimeRaster", "travel_time"]

WHERE = "travel_time"
FRICTION_UNITS = ("min_per_m", "kmh")
NODATA_OUT = -9999.0


@dataclass(frozen=True, eq=False)
class GridRaster:
    """An in-memory single-band raster: ``values`` (2-D float, NaN = no data) on a north-up grid.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> r = GridRaster(np.ones((2, 3)), Affine(0.1, 0, 30, 0, -0.1, -1), "EPSG:4326")
    >>> r.shape
    (2, 3)
    """

    values: np.ndarray
    transform: Affine
    crs: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the grid."""
        return tuple(self.values.shape)  # type: ignore[return-value]

    def value_at(self, x: np.ndarray, y: np.ndarray, crs: Any = "EPSG:4326") -> np.ndarray:
        """Value of the cell containing each point (``x``/``y`` in ``crs``); NaN outside the grid.

        Examples
        --------
        >>> import numpy as np
        >>> from affine import Affine
        >>> r = GridRaster(np.arange(6.0).reshape(2, 3), Affine(1, 0, 0, 0, -1, 2), "EPSG:4326")
        >>> r.value_at(np.array([2.5, 9.0]), np.array([0.5, 0.5])).tolist()
        [5.0, nan]
        """
        from pyproj import CRS, Transformer

        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if not CRS.from_user_input(crs).equals(CRS.from_user_input(self.crs)):
            x, y = Transformer.from_crs(crs, self.crs, always_xy=True).transform(x, y)
        row, col = _cell_of(self.transform, np.asarray(x), np.asarray(y))
        h, w = self.shape
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        out = np.full(len(x), np.nan)
        out[inside] = self.values[row[inside], col[inside]]
        return out

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write a float32 GeoTIFF (non-finite values -> nodata -9999), atomically.

        Examples
        --------
        >>> tt.write("out/traveltime_health.tif")  # doctest: +SKIP
        """
        import rasterio

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        data = np.where(np.isfinite(self.values), self.values, NODATA_OUT).astype(np.float32)
        profile = {
            "driver": "GTiff",
            "height": data.shape[0],
            "width": data.shape[1],
            "count": 1,
            "dtype": "float32",
            "crs": self.crs,
            "transform": self.transform,
            "nodata": NODATA_OUT,
            "compress": "deflate",
        }
        try:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data, 1)
            os.replace(tmp, path)
        except (OSError, rasterio.errors.RasterioError) as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError(
                problem(f"raster '{path}'", f"could not be written ({exc})", "check the folder")
            ) from exc
        return path


@dataclass(frozen=True, eq=False)
class TravelTimeRaster(GridRaster):
    """Minutes to the nearest facility on the friction grid.

    ``values``: NaN on barrier cells (nodata, water, masked), ``inf`` on passable cells that no
    facility reaches (cut off by barriers, or beyond ``max_minutes``). ``facilities`` reports every
    input facility (``status``: ``"used"``, ``"outside_grid"``, ``"on_barrier"``, ``"no_geometry"``;
    ``row``/``col`` of its cell). ``info``: ``error_bound`` (uniform-friction ratio of the
    8-neighbour path to the straight geodesic), ``engine`` used, ``mcp_eps`` (None when MCP was
    not needed), ``rounds``, ``converged``, timings.

    Examples
    --------
    >>> tt = gp.travel_time("friction.tif", clinics, max_minutes=240)  # doctest: +SKIP
    >>> tt.facilities["status"].value_counts()  # doctest: +SKIP
    """

    facilities: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)


def _cell_of(t: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cell holding each point, as GDAL and ``rasterio.transform.rowcol`` decide it (the
    inverse geotransform, floored): a point on a cell edge goes to the cell east / south of it."""
    fcol, frow = ~t * (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    col, row = np.floor(fcol), np.floor(frow)
    bad = ~(np.isfinite(col) & np.isfinite(row))
    col[bad], row[bad] = -1, -1
    return row.astype(np.int64), col.astype(np.int64)


def _read_grid(friction: Any) -> tuple[np.ndarray, Affine, str]:
    """(float array with NaN for nodata, transform, crs) from a path, GridRaster or tuple."""
    if isinstance(friction, GridRaster):
        return np.asarray(friction.values, dtype=float), friction.transform, friction.crs
    if isinstance(friction, tuple) and len(friction) == 3:
        arr, transform, crs = friction
        arr = np.asarray(arr)
        if arr.ndim != 2 or not isinstance(transform, Affine) or crs is None:
            raise InputError(
                problem(
                    "`friction`",
                    "is a tuple but not (2-D array, Affine transform, CRS)",
                    "pass (array, transform, crs) or a raster path",
                    where=WHERE,
                )
            )
        return arr.astype(np.float32, copy=False), transform, str(crs)
    if isinstance(friction, str | os.PathLike):
        from geopipe.io.raster import open_raster

        with open_raster(friction) as ds:
            if ds.crs is None:
                raise RasterError(problem(f"raster '{friction}'", "has no CRS", "set one"))
            arr = ds.read(1, masked=True)
            epsg = ds.crs.to_epsg()
            crs = f"EPSG:{epsg}" if epsg else ds.crs.to_wkt()
            return arr.astype(np.float32).filled(np.nan), ds.transform, crs
    raise InputError(
        problem(
            "`friction`",
            f"is a {type(friction).__name__}",
            "pass a raster path, a GridRaster or (array, transform, crs)",
            where=WHERE,
        )
    )


def _minutes_per_metre(arr: np.ndarray, unit: str, fill_nodata: float | None) -> np.ndarray:
    """Friction in min/m with ``inf`` on impassable cells; checks values."""
    if unit not in FRICTION_UNITS:
        raise InputError(
            problem("`friction_unit`", f"was {unit!r}", f"use one of {FRICTION_UNITS}", where=WHERE)
        )
    f = np.array(arr, dtype=np.float32)
    nodata = ~np.isfinite(f)
    if fill_nodata is not None:
        f[nodata] = fill_nodata
        nodata[:] = False
    if unit == "kmh":
        with np.errstate(divide="ignore"):
            f = np.where(f > 0, np.float32(0.06) / f, np.float32(np.inf))  # km/h -> min/m
        f[nodata] = np.inf
        bad = ~nodata & (np.asarray(arr) < 0)
    else:
        bad = ~nodata & (f <= 0)
        f[nodata] = np.inf
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            problem(
                "`friction`",
                f"has {int(bad.sum())} cells <= 0 in {unit} (first at row {r}, col {c})",
                "friction must be > 0 minutes per metre (a speed must be >= 0 km/h); "
                "mark impassable cells as nodata",
                where=WHERE,
            )
        )
    return f


def _barrier_mask(barriers: Any, shape, transform: Affine, crs: str) -> np.ndarray | None:
    if barriers is None:
        return None
    if isinstance(barriers, np.ndarray):
        if barriers.shape != tuple(shape):
            raise InputError(
                problem(
                    "`barriers`",
                    f"has shape {barriers.shape}, the friction grid {tuple(shape)}",
                    "pass a boolean mask on the friction grid or polygons",
                    where=WHERE,
                )
            )
        return barriers.astype(bool)
    if isinstance(barriers, gpd.GeoDataFrame | gpd.GeoSeries):
        from rasterio.features import geometry_mask

        geoms = barriers.to_crs(crs).geometry if barriers.crs else barriers.geometry
        geoms = [g for g in geoms if g is not None and not g.is_empty]
        if not geoms:
            return None
        return ~geometry_mask(geoms, out_shape=tuple(shape), transform=transform)
    raise InputError(
        problem(
            "`barriers`",
            f"is a {type(barriers).__name__}",
            "pass polygons (GeoDataFrame, e.g. water bodies) or a boolean mask array",
            where=WHERE,
        )
    )


def _facility_cells(facilities: gpd.GeoDataFrame, f: np.ndarray, transform: Affine, crs: str):
    """Per facility: row, col, status; the distinct seed cells."""
    from geopipe.zonal.points import _check_frame

    _check_frame(facilities, "facilities", WHERE)
    geo = facilities.geometry.to_crs(crs)
    geoms = np.asarray(geo.array, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pts = shapely.point_on_surface(np.where(missing, shapely.Point(0, 0), geoms))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    row, col = _cell_of(transform, x, y)
    h, w = f.shape
    inside = ~missing & (row >= 0) & (row < h) & (col >= 0) & (col < w)
    passable = np.zeros(len(row), dtype=bool)
    passable[inside] = np.isfinite(f[row[inside], col[inside]])
    status = np.select(
        [missing, ~inside, ~passable], ["no_geometry", "outside_grid", "on_barrier"], "used"
    )
    report = pd.DataFrame(
        {"row": np.where(inside, row, -1), "col": np.where(inside, col, -1), "status": status},
        index=facilities.index,
    )
    used = status == "used"
    seeds = np.unique(np.column_stack((row[used], col[used])), axis=0)
    return report, seeds


def travel_time(
    friction: Any,
    facilities: gpd.GeoDataFrame,
    *,
    max_minutes: float | None = None,
    friction_unit: str = "min_per_m",
    barriers: Any = None,
    fill_nodata: float | None = None,
    max_rounds: int = 200,
    engine: str = "auto",
) -> TravelTimeRaster:
    """Minutes to the nearest facility over a friction surface, on the friction grid.

    Least-cost accumulation over the 8-neighbour graph of the grid: a move between two cell
    centres costs its metric length (WGS 84 geodesic per row on geographic grids, pixel size on
    projected ones) times the mean friction of the two cells. An exact row-by-row relaxation of
    these costs (seeded, when it needs it, by ``skimage.graph.MCP_Geometric`` on a slightly
    over-costed graph) brings every cell to its shortest-path value (docs/traveltime.md). Travel
    starts at the centre of each facility's cell.

    Parameters
    ----------
    friction
        Raster path, :class:`GridRaster` or ``(array, transform, crs)``; band 1.
    facilities
        Point GeoDataFrame (any CRS). Facilities outside the grid, on barrier cells or without
        geometry do not seed and are listed in the result's ``facilities`` report (a warning
        gives their count); several facilities in one cell seed it once.
    max_minutes
        Cells farther than this get ``inf`` (not reached).
    friction_unit
        ``"min_per_m"`` (MAP convention, default) or ``"kmh"`` (a speed; 0 km/h = impassable).
    barriers
        Extra impassable cells: polygons (e.g. water bodies; cells whose centre is inside) or a
        boolean mask on the friction grid. Nodata cells are impassable too, unless ``fill_nodata``.
    fill_nodata
        Friction (in ``friction_unit``) to use on nodata cells instead of making them barriers.
    max_rounds
        Cap on the exact relaxation rounds, per phase (``info["converged"]`` says whether it
        finished; a warning gives the remaining error bound otherwise).
    engine
        ``"auto"`` (default): exact relaxation from the facilities; only if it has not converged
        after ``max_rounds``, ``MCP_Geometric`` supplies an upper bound (within
        ``info["mcp_eps"]``) and relaxation continues. ``"mcp"``: start from ``MCP_Geometric``.
        Both give the same values; "auto" is faster (docs/traveltime.md, Performance).

    Returns
    -------
    TravelTimeRaster
        Minutes (float64); NaN on barriers, ``inf`` where not reached; ``facilities`` report and
        ``info`` diagnostics; ``.write(path)`` saves a GeoTIFF.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np
    >>> from affine import Affine
    >>> from shapely import Point
    >>> grid = (np.full((3, 3), 0.012), Affine(0.01, 0, 30, 0, -0.01, 0.015), "EPSG:4326")
    >>> clinic = gpd.GeoDataFrame(geometry=[Point(30.015, 0.0)], crs=4326)
    >>> tt = travel_time(grid, clinic)
    >>> round(float(tt.values[1, 2]), 2)  # one cell east: 1113 m at 5 km/h
    13.36
    """
    arr, transform, crs = _read_grid(friction)
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise RasterError(
            problem(
                "`friction`",
                "is not on a north-up grid",
                "warp it to a north-up grid first (gdalwarp)",
                where=WHERE,
            )
        )
    if max_minutes is not None and not (np.isfinite(max_minutes) and max_minutes >= 0):
        raise InputError(
            problem("`max_minutes`", f"was {max_minutes!r}", "pass minutes >= 0", where=WHERE)
        )
    f = _minutes_per_metre(arr, friction_unit, fill_nodata)
    mask = _barrier_mask(barriers, f.shape, transform, crs)
    if mask is not None:
        f[mask] = np.inf
    report, seeds = _facility_cells(facilities, f, transform, crs)
    skipped = report["status"] != "used"
    if skipped.any():
        counts = report.loc[skipped, "status"].value_counts().to_dict()
        warnings.warn(
            f"travel_time: {int(skipped.sum())} facilities do not seed the accumulation {counts}; "
            "see the result's `facilities` report",
            GeopipeWarning,
            stacklevel=2,
        )
    if len(seeds) == 0:
        raise InputError(
            problem(
                "`facilities`",
                "has no facility on a passable cell of the friction grid",
                "check the CRS and extent of both layers (see the warning above)",
                where=WHERE,
            )
        )
    from geopipe.zonal._leastcost import ENGINES, accumulate, move_lengths

    if engine not in ENGINES:
        raise InputError(
            problem("`engine`", f"was {engine!r}", f"use one of {ENGINES}", where=WHERE)
        )

    lengths = move_lengths(transform, crs, f.shape[0])
    minutes, info = accumulate(f, lengths, seeds, max_rounds=max_rounds, engine=engine)
    minutes[~np.isfinite(f)] = np.nan
    if max_minutes is not None:
        minutes[minutes > max_minutes] = np.inf
    info["error_bound"] = lengths.uniform_bound()
    if not info["converged"]:
        warnings.warn(
            f"travel_time: the exact relaxation stopped after {max_rounds} rounds; values are "
            f"upper bounds (within {info['mcp_eps']:.2e} relative); raise `max_rounds`",
            GeopipeWarning,
            stacklevel=2,
        )
    return TravelTimeRaster(minutes, transform, crs, facilities=report, info=info)
