"""Step types: the units of work a pipeline is made of.

Each step type is a frozen dataclass whose fields are its parameters and the names of the sources
it reads; it declares the columns (indicators) it produces and wraps one function of
:mod:`geopipe.zonal`. Build them in Python or name them in YAML (``kind: raster_stats``):

>>> from geopipe import steps
>>> steps.DistanceCoverage(facilities="health_facilities", distance_km=5, service="health",
...                        facility_name="health facility").columns()[0]
'population_within_5km_health'

Types: :class:`RasterStats`, :class:`AgeShares`, :class:`PointCount`, :class:`DistanceCoverage`,
:class:`ValueLayer`, :class:`ChildPoverty`, :class:`Connectivity`, :class:`ArealInterpolate`,
:class:`LineLength`, :class:`TravelTimeCoverage`. Write your own by subclassing :class:`Step` (docs/steps.md).
"""

from __future__ import annotations

from .base import STEP_TYPES, Step, StepData, source, step_from_dict, step_type
from .coverage import DistanceCoverage, distance_label
from .layers import ChildPoverty, Connectivity, ValueLayer
from .measures import (
    AgeShares,
    ArealInterpolate,
    LineLength,
    PointCount,
    RasterStats,
    TableValues,
    measure,
)
from .traveltime import TravelTimeCoverage, minutes_label

__all__ = [
    "STEP_TYPES",
    "AgeShares",
    "ArealInterpolate",
    "ChildPoverty",
    "Connectivity",
    "DistanceCoverage",
    "LineLength",
    "PointCount",
    "RasterStats",
    "Step",
    "StepData",
    "TableValues",
    "TravelTimeCoverage",
    "ValueLayer",
    "distance_label",
    "measure",
    "minutes_label",
    "source",
    "step_from_dict",
    "step_type",
]
