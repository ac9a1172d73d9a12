"""File-level helpers shared by the readers: existence checks and vector reading with clear errors."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import FormatError, GeometryError, GeopipeWarning, MissingFileError, problem

PathLike = str | os.PathLike[str]

VECTOR_SUFFIXES = {
    ".geojson",
    ".json",
    ".topojson",
    ".gpkg",
    ".shp",
    ".parquet",
    ".geoparquet",
    ".fgb",
    ".gml",
    ".kml",
    ".zip",
}


def existing_path(path: PathLike, *, what: str, where: str) -> Path:
    """Return ``path`` as a Path, or raise MissingFileError naming it."""
    p = Path(path)
    if not p.exists():
        hint = f"check the path (relative paths are resolved from the current folder: {Path.cwd()})"
        raise MissingFileError(problem(f"{what} file '{p}'", "does not exist", hint, where=where))
    if p.is_dir() and p.suffix.lower() not in {".gdb"}:
        raise FormatError(
            problem(f"{what} path '{p}'", "is a folder, not a file", "name the file", where=where)
        )
    if p.is_file() and p.stat().st_size == 0:
        raise FormatError(
            problem(
                f"{what} file '{p}'",
                "is empty (0 bytes)",
                "re-export or re-download it",
                where=where,
            )
        )
    return p


def list_layers(path: Path) -> list[str]:
    """Layer names of a multi-layer vector source (GeoPackage, FileGDB); [] when not applicable."""
    import pyogrio

    try:
        return [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception:
        return []


def read_vector(
    path: Path, *, layer: str | int | None = None, what: str, where: str
) -> gpd.GeoDataFrame:
    """Read a vector file (anything GDAL reads, plus GeoParquet) into a GeoDataFrame.

    Failures from the underlying libraries are turned into :class:`FormatError` naming the file.
    TopoJSON without a CRS is taken as EPSG:4326 (the TopoJSON default for lon/lat data).
    """
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".geoparquet"}:
            gdf = gpd.read_parquet(path)
        else:
            kwargs: dict[str, Any] = {"engine": "pyogrio"}
            if layer is not None:
                kwargs["layer"] = layer
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                gdf = gpd.read_file(path, **kwargs)
    except (MissingFileError, FormatError):
        raise
    except Exception as exc:
        raise FormatError(
            problem(
                f"{what} file '{path}'",
                f"could not be read as a vector layer ({type(exc).__name__}: {exc})",
                "check that the file is complete (not truncated) and in a format GDAL reads "
                "(GeoJSON, TopoJSON, GeoPackage, Shapefile with .shx/.dbf/.prj, GeoParquet)",
                where=where,
            )
        ) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise GeometryError(
            problem(
                f"{what} file '{path}'",
                "has no geometry column",
                "use a spatial format",
                where=where,
            )
        )
    if len(gdf) == 0:
        raise FormatError(
            problem(
                f"{what} file '{path}'",
                "has no features (empty layer)",
                "check the layer name and the export",
                where=where,
            )
        )
    if gdf.crs is None and suffix == ".topojson":
        gdf = gdf.set_crs(4326)
    return gdf


def read_json(path: Path, *, what: str, where: str) -> Any:
    """Parse a JSON file, turning a decode error into FormatError (e.g. a truncated download)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(
            problem(
                f"{what} file '{path}'",
                f"is not valid JSON ({exc})",
                "re-export it; a truncated download looks like this",
                where=where,
            )
        ) from exc


def to_wgs84(gdf: gpd.GeoDataFrame, *, crs: Any, path: str, where: str) -> gpd.GeoDataFrame:
    """Set a missing CRS from ``crs`` (or fail) and reproject to EPSG:4326."""
    if gdf.crs is None:
        if crs is None:
            raise GeometryError(
                problem(
                    f"'{path}'",
                    "has no CRS (e.g. a Shapefile without .prj)",
                    "pass crs='EPSG:xxxx' with the CRS the coordinates are in",
                    where=where,
                )
            )
        gdf = gdf.set_crs(crs)
    if gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    return gdf


def repair_polygons(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop Z, make invalid geometries valid, keep only their polygonal part.

    Returns the repaired array and how many geometries were changed by ``make_valid``.
    Empty results stay empty (the caller decides how to report them).
    """
    geoms = shapely.force_2d(geoms)
    invalid = ~shapely.is_valid(geoms) & ~shapely.is_empty(geoms) & ~pd.isna(geoms)
    n_invalid = int(invalid.sum())
    if n_invalid:
        fixed = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = _polygonal_part(fixed)
    types = shapely.get_type_id(geoms)
    collections = types == 7  # GeometryCollection from the source
    if collections.any():
        geoms = geoms.copy()
        geoms[collections] = _polygonal_part(geoms[collections])
    return geoms, n_invalid


def _polygonal_part(geoms: np.ndarray) -> np.ndarray:
    """For each geometry keep only polygons (a make_valid result may carry stray lines/points)."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = np.isin(shapely.get_type_id(parts), (3, 6))
    out = np.empty(len(geoms), dtype=object)
    out[:] = shapely.Polygon()
    if keep.any():
        # `out=` keeps the empty polygon where a geometry has no polygonal part
        out = shapely.multipolygons(parts[keep], indices=index[keep], out=out)
    single = shapely.get_num_geometries(out) == 1
    out[single] = shapely.get_geometry(out[single], 0)
    return out


def warn(msg: str) -> None:
    warnings.warn(msg, GeopipeWarning, stacklevel=3)
