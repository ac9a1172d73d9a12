"""What a step is: a frozen, self-validating parameter object that declares what it reads and
produces, over a pure function of inputs that are already read.

A step type is a frozen dataclass subclassing :class:`Step`:

* fields declared with :func:`source` name the pipeline sources it reads (their *roles*);
  every other field is a parameter. Together they are the step's whole identity
  (:meth:`Step.params`): the cache key, ``dim_indicator.params`` and the run key are built
  from them, never from code paths;
* :meth:`Step.indicators` declares the columns it produces (as catalog entries: sums and
  weighted means, plus any ratio it owns), with ids and descriptions that state the parameters
  actually used;
* :meth:`Step.run` computes those columns for a table of units from a :class:`StepData`, which
  hands out what the run context already read (sources, rasters, pixel weights).

A step of your own is a subclass registered with :func:`step_type`; it then works in YAML too
(``- kind: night_lights_mean``) and gets caching, lineage, quality checks and suppression like the
built-in ones (see docs/steps.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from ..errors import ConfigError, problem
from ..indicators.catalog import Indicator

__all__ = [
    "STEP_TYPES",
    "Step",
    "StepData",
    "source",
    "step_from_dict",
    "step_type",
]

#: kind -> step class, filled by :func:`step_type`
STEP_TYPES: dict[str, type[Step]] = {}


def source(*kinds: str, optional: bool = False, default: Any = dataclasses.MISSING) -> Any:
    """A step field that names a pipeline source of one of ``kinds`` (``"raster"``, ``"points"`` ...).

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Demo:
    ...     raster: str = source("raster")
    >>> dataclasses.fields(Demo)[0].metadata["source"]
    ('raster',)
    """
    if optional and default is dataclasses.MISSING:
        default = None
    return dataclasses.field(default=default, metadata={"source": kinds})


class StepData(Protocol):
    """What a step receives from the run: read inputs and shared pixel tables (no file access)."""

    def source(self, name: str) -> Any:
        """The source ``name`` as read once by the run (GeoDataFrame, RasterData, DataFrame)."""

    def pixels(self, raster: str, *, edge: str = "fraction") -> Any:
        """Pixel table of the current units on the grid of raster source ``raster``."""

    def memo(self, key: tuple, compute: Callable[[], Any], *, scope: str = "batch") -> Any:
        """A value computed once and shared: by the steps of this batch of units (``"batch"``),
        by every unit set computed from the same pixels (``"pixels"``: only for values that
        depend on the pixels alone, such as a distance at every pair) or by the run (``"run"``)."""


@dataclasses.dataclass(frozen=True)
class Step:
    """Base of every step type. Subclasses are frozen dataclasses registered with :func:`step_type`.

    Examples
    --------
    >>> from geopipe.steps import RasterStats
    >>> step = RasterStats(raster="population", column="population_total")
    >>> step.sources(), step.columns()
    ({'raster': 'population'}, ['population_total'])
    """

    kind: ClassVar[str] = ""
    #: True when the step works on pixels of a raster (it then runs per memory-bounded batch)
    pixel: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _coerce(self)
        problems = _type_problems(self) or self.problems()
        if problems:
            raise ConfigError(
                problem(
                    f"step {self.kind!r}",
                    "has problems: " + "; ".join(problems),
                    "fix the parameters (docs/steps.md lists them)",
                )
            )

    # ---- declaration
    def problems(self) -> list[str]:
        """Parameter problems beyond types (overridden by step types); empty when valid."""
        return []

    def sources(self) -> dict[str, str]:
        """Role (field name) -> source name, for every source the step reads."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if "source" in f.metadata and getattr(self, f.name) is not None
        }

    def source_kinds(self) -> dict[str, tuple[str, ...]]:
        """Role -> the source kinds allowed for it."""
        return {
            f.name: f.metadata["source"] for f in dataclasses.fields(self) if "source" in f.metadata
        }

    def params(self) -> dict[str, Any]:
        """Every field as JSON values: the step's whole identity (like scikit-learn's get_params)."""
        return {"kind": self.kind, **{k: _jsonable(v) for k, v in _fields(self).items()}}

    def indicators(self) -> list[Indicator]:
        """Catalog entries of what the step publishes (sums, weighted means and owned ratios)."""
        raise NotImplementedError

    def columns(self) -> list[str]:
        """Columns :meth:`run` adds to the units (every non-ratio indicator)."""
        return [i.id for i in self.indicators() if i.aggregation != "ratio"]

    def needs_columns(self) -> list[str]:
        """Unit columns produced by other steps that :meth:`run` reads (e.g. a total)."""
        return []

    def additive(self) -> bool:
        """Whether units that grid fragments tile get :meth:`run`'s columns from the fragments'.

        True when every column is a sum over the unit's pixels (or pieces), which adds up over
        the fragments, or a weighted mean whose declared ``weight`` is exactly the sum it was
        divided by, so the unit's mean is the fragments' means weighted by it. The engine then
        computes such units from their fragments' columns (:func:`geopipe.pipeline.engines.run_batch`:
        the same numbers to float rounding) instead of a second pass over the pixels. Default
        ``False``: the units are computed through the fragments' pixels.
        """
        return False

    @property
    def name(self) -> str:
        """A stable, readable name: ``kind:first column`` (used by ``--only`` and in reports)."""
        cols = self.columns()
        return f"{self.kind}:{cols[0]}" if cols else self.kind

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        """Compute :meth:`columns` for ``units`` (a GeoDataFrame) from ``data``."""
        raise NotImplementedError

    def warm(self, data: StepData) -> None:
        """Compute now what :meth:`report` will need and does not depend on the results (e.g. a
        raster's total), keeping it with ``data.memo``. The engine calls it on a spare thread
        of the run's process while the partitions compute elsewhere. Default: nothing."""

    def report(
        self, units: Any, data: StepData, columns: Mapping[str, np.ndarray]
    ) -> dict[str, Any]:
        """Facts about the run of this step for the manifest (counts left out, coverage...)."""
        return {}


def step_type(cls: type[Step]) -> type[Step]:
    """Register a step class under its ``kind`` so YAML pipelines can name it.

    Examples
    --------
    >>> import dataclasses
    >>> from geopipe.steps import Step, step_type
    >>> @step_type
    ... @dataclasses.dataclass(frozen=True)
    ... class Nothing(Step):
    ...     kind = "nothing_demo"
    ...     def indicators(self):
    ...         return []
    >>> "nothing_demo" in STEP_TYPES
    True
    """
    if not cls.kind:
        raise ConfigError(problem(f"step class {cls.__name__}", "has no kind", "set kind = '...'"))
    STEP_TYPES[cls.kind] = cls
    return cls


def step_from_dict(spec: Mapping[str, Any], where: str = "steps") -> Step:
    """Build a step from its YAML form ``{kind: raster_stats, raster: population, ...}``.

    ``kind`` is a registered step kind, or ``package.module:Class`` for a step class of your own.

    Examples
    --------
    >>> step_from_dict({"kind": "raster_stats", "raster": "population"}).columns()
    ['population']
    """
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ConfigError(
            problem(
                where,
                "is not a mapping with a 'kind'",
                "write e.g. {kind: raster_stats, raster: population}",
            )
        )
    kind = str(spec["kind"])
    cls = STEP_TYPES.get(kind) or (_import_step(kind, where) if ":" in kind else None)
    if cls is None:
        close = difflib.get_close_matches(kind, STEP_TYPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            problem(
                f"{where}.kind",
                f"is {kind!r}, not a step type{hint}",
                f"use one of {sorted(STEP_TYPES)} or 'module:Class'",
            )
        )
    names = {f.name for f in dataclasses.fields(cls)}
    params = {k: v for k, v in spec.items() if k != "kind"}
    unknown = sorted(set(params) - names)
    if unknown:
        hints = [
            f"{u!r}"
            + (
                f" (did you mean {m[0]!r}?)"
                if (m := difflib.get_close_matches(u, names, n=1))
                else ""
            )
            for u in unknown
        ]
        raise ConfigError(
            problem(
                f"{where} ({kind})", f"has unknown keys {', '.join(hints)}", f"use {sorted(names)}"
            )
        )
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in params
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(problem(f"{where} ({kind})", f"needs {missing}", "add them"))
    try:
        return cls(**params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _import_step(path: str, where: str) -> type[Step]:
    import importlib

    module, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            problem(
                f"{where}.kind {path!r}", f"cannot be imported ({exc})", "check the module path"
            )
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise ConfigError(
            problem(
                f"{where}.kind {path!r}", "is not a geopipe Step class", "subclass gp.steps.Step"
            )
        )
    return cls


# ---------------------------------------------------------------- parameter types
def _fields(step: Any) -> dict[str, Any]:
    return {f.name: getattr(step, f.name) for f in dataclasses.fields(step)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _coerce(step: Any) -> None:
    """YAML lists become tuples and ints become floats where the field says so (frozen-safe)."""
    hints = typing.get_type_hints(type(step))
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        hint = hints.get(f.name)
        new = _coerce_value(value, hint)
        if new is not value:
            object.__setattr__(step, f.name, new)


def _coerce_value(value: Any, hint: Any) -> Any:
    options = _options(hint)
    if isinstance(value, list) and any(typing.get_origin(o) is tuple for o in options):
        return tuple(value)
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and float in options
        and int not in options
    ):
        return float(value)
    return value


def _options(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _type_problems(step: Any) -> list[str]:
    hints = typing.get_type_hints(type(step))
    out = []
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        hint = hints.get(f.name)
        if hint is not None and not _matches(value, hint):
            out.append(f"{f.name} = {value!r} is not {_describe(hint)}")
    return out


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(value, tuple) and all(_matches(v, args[0]) for v in value)
    if origin in (dict, Mapping):
        k, v = typing.get_args(hint)
        return isinstance(value, Mapping) and all(
            _matches(a, k) and _matches(b, v) for a, b in value.items()
        )
    if hint is float:
        return isinstance(value, float | int) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "empty"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if origin in (dict, Mapping):
        return "a mapping"
    return {float: "a number", int: "an integer", str: "text", bool: "true or false"}.get(
        hint, str(hint)
    )
