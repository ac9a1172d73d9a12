"""geopipe — geospatial indicator pipelines for child-rights and humanitarian work.

One flat namespace over small modules::

    import geopipe as gp
    admin = gp.read_admin({1: "adm1.geojson", 2: "adm2.geojson"})
    health = gp.read_points("health.csv")

Public names are imported lazily on first use, so ``import geopipe`` stays fast and pulls in no
optional dependency (a test checks this in a fresh interpreter).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_EXPORTS: dict[str, str] = {
    # errors
    "GeopipeError": ".errors",
    "GeopipeWarning": ".errors",
    # readers
    "read_admin": ".io.admin",
    "read_points": ".io.points",
    "read_tiles": ".io.tiles",
    "read_geoparquet": ".io.geoparquet",
    "raster_info": ".io.raster",
    "build_vrt": ".io.raster",
    # units
    "h3_grid": ".grids.h3",
    "h3_cells": ".grids.h3",
    "raster_to_h3": ".zonal.raster_h3",
    "square_grid": ".grids.square",
    # aggregation
    "zonal_raster": ".zonal.raster",
    "pixel_weights": ".zonal.raster",
    "count_points": ".zonal.points",
    "nearest_distance": ".zonal.distance",
    "population_within": ".zonal.distance",
    "areal_interpolate": ".zonal.areal",
    "line_length": ".zonal.lines",
    "travel_time": ".zonal.traveltime",
    "TravelTimeRaster": ".zonal.traveltime",
    "friction_surface": ".zonal.friction",
    "travel_time_coverage": ".zonal.traveltime_coverage",
    # load
    "write_geoparquet": ".io.geoparquet",
    "write_parquet": ".io.geoparquet",
    "check_geoparquet": ".io.geoparquet",
    "inspect_file": ".io.inspect",
    "write_duckdb": ".io.warehouse",
    "load_spatial": ".io.warehouse",
    "write_geosight": ".io.geosight",
    "write_partitioned": ".io.partitioned",
    "write_bi_table": ".io.bi",
    "write_bi_tables": ".io.bi",
    "check_bi_table": ".io.bi",
    "RunManifest": ".manifest",
    # quality and privacy
    "check_admin": ".quality.boundaries",
    "check_hierarchy": ".quality.hierarchy",
    "check_field_inputs": ".quality.field",
    "check_points": ".quality.points",
    "check_raster": ".quality.rasters",
    "check_outside_units": ".quality.rasters",
    "check_indicators": ".quality.indicators",
    "quality_report": ".quality.report",
    "suppress_small_counts": ".quality.privacy",
    "suppress_cells": ".quality.privacy",
    "pseudonymise": ".quality.privacy",
    "zonal_layer": ".zonal.layers",
    # pipeline
    "load_config": ".config",
    "run_pipeline": ".pipeline",
    "Pipeline": ".pipeline",
    "Source": ".pipeline",
    "Units": ".pipeline",
    "RasterData": ".io.raster",
    "load_raster": ".io.raster",
    "show_progress": ".cli._display",
    "write_report_html": ".report",
    # indicators
    "indicator_catalog": ".indicators.catalog",
    "compute_indicators": ".indicators.compute",
    "rollup": ".indicators.rollup",
}

# submodules exposed as gp.<name> (step types, HTTP clients), imported on first use
_SUBMODULES: dict[str, str] = {
    "steps": ".steps",
    "georepo": ".remote.georepo",
    "dhis2": ".remote.dhis2",
    "geosight": ".remote.geosight",
}

__all__ = ["__version__", *sorted(_EXPORTS), *sorted(_SUBMODULES)]

if TYPE_CHECKING:  # pragma: no cover - for IDEs and type checkers only
    from . import steps
    from .cli._display import show_progress
    from .config import load_config
    from .errors import GeopipeError, GeopipeWarning
    from .grids.h3 import h3_cells, h3_grid
    from .grids.square import square_grid
    from .indicators.catalog import indicator_catalog
    from .indicators.compute import compute_indicators
    from .indicators.rollup import rollup
    from .io.admin import read_admin
    from .io.bi import check_bi_table, write_bi_table, write_bi_tables
    from .io.geoparquet import check_geoparquet, read_geoparquet, write_geoparquet, write_parquet
    from .io.geosight import write_geosight
    from .io.inspect import inspect_file
    from .io.partitioned import write_partitioned
    from .io.points import read_points
    from .io.raster import RasterData, build_vrt, load_raster, raster_info
    from .io.tiles import read_tiles
    from .io.warehouse import load_spatial, write_duckdb
    from .manifest import RunManifest
    from .pipeline import Pipeline, Source, Units, run_pipeline
    from .quality.boundaries import check_admin
    from .quality.field import check_field_inputs
    from .quality.hierarchy import check_hierarchy
    from .quality.indicators import check_indicators
    from .quality.points import check_points
    from .quality.privacy import pseudonymise, suppress_cells, suppress_small_counts
    from .quality.rasters import check_raster
    from .quality.report import quality_report
    from .remote import dhis2, georepo, geosight
    from .report import write_report_html
    from .zonal.areal import areal_interpolate
    from .zonal.distance import nearest_distance, population_within
    from .zonal.friction import friction_surface
    from .zonal.layers import zonal_layer
    from .zonal.lines import line_length
    from .zonal.points import count_points
    from .zonal.raster import pixel_weights, zonal_raster
    from .zonal.raster_h3 import raster_to_h3
    from .zonal.traveltime import TravelTimeRaster, travel_time
    from .zonal.traveltime_coverage import travel_time_coverage


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name], __name__)
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'geopipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
