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
    # indicators
    "indicator_catalog": ".indicators.catalog",
    "compute_indicators": ".indicators.compute",
    "rollup": ".indicators.rollup",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover - for IDEs and type checkers only
    from .errors import GeopipeError, GeopipeWarning
    from .indicators.catalog import indicator_catalog
    from .indicators.compute import compute_indicators
    from .indicators.rollup import rollup
    from .io.admin import read_admin
    from .io.points import read_points


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'geopipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
