"""The result of a data-quality check, and the helpers every ``check_*`` function shares.

A check never prints and never raises for bad *data*: it returns :class:`CheckResult` objects at
level ``pass``, ``warn`` or ``fail``. The caller decides what to do (report, quarantine, stop the
run with :func:`geopipe.quality.report.raise_on_fail`). Bad *arguments* (a column that does not
exist, an unknown level) raise :class:`~geopipe.errors.InputError` as everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import InputError, problem

__all__ = ["LEVELS", "CheckResult", "Level", "make_result"]

Level = Literal["pass", "warn", "fail"]
LEVELS: tuple[str, ...] = ("pass", "warn", "fail")
MAX_EXAMPLES = 10


@dataclass(frozen=True)
class CheckResult:
    """One check on one source.

    Attributes
    ----------
    check_id
        Stable dotted id, e.g. ``"points.outside_boundaries"`` (listed in docs/quality.md).
    level
        ``"pass"``, ``"warn"`` or ``"fail"``.
    source
        The input the check looked at (file name or table name).
    rows_affected
        How many rows / units / pixels fail the check (0 when it passes).
    message
        One sentence for people: what was found and what to do.
    examples
        Up to 10 ids of offending rows (point ids, ucodes, ...).
    details
        JSON-able numbers behind the message (areas, shares, thresholds).

    Examples
    --------
    >>> r = CheckResult("points.duplicate_id", "warn", "schools.csv", 2, "2 rows share an id",
    ...                 ["S1"], {"ids": 1})
    >>> r.to_dict()["examples"]
    ['S1']
    """

    check_id: str
    level: Level
    source: str
    rows_affected: int = 0
    message: str = ""
    examples: Sequence[str] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InputError(
                problem("level", f"was {self.level!r}", f"use one of {LEVELS}", where="CheckResult")
            )
        object.__setattr__(
            self, "examples", tuple(str(e) for e in list(self.examples)[:MAX_EXAMPLES])
        )
        object.__setattr__(self, "rows_affected", int(self.rows_affected))
        object.__setattr__(self, "details", dict(self.details))

    @property
    def passed(self) -> bool:
        """True when the level is ``pass``."""
        return self.level == "pass"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (numpy scalars and non-finite floats converted)."""
        return {
            "check_id": self.check_id,
            "level": self.level,
            "source": self.source,
            "rows_affected": self.rows_affected,
            "message": self.message,
            "examples": list(self.examples),
            "details": jsonable(self.details),
        }


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def check_levels(levels: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """Validate a ``{check_id: level}`` override mapping."""
    levels = dict(levels or {})
    bad = {k: v for k, v in levels.items() if v not in ("warn", "fail")}
    if bad:
        raise InputError(
            problem("levels", f"has {bad}", "use 'warn' or 'fail' as values", where=where)
        )
    return levels


def make_result(
    check_id: str,
    source: str,
    affected: int,
    *,
    default: Level,
    levels: Mapping[str, str],
    bad: str,
    ok: str,
    examples: Iterable[Any] = (),
    details: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Build a result: ``pass`` with message ``ok`` when nothing is affected, else the configured
    level (``levels[check_id]`` or ``default``) with message ``bad``."""
    if affected <= 0:
        return CheckResult(check_id, "pass", source, 0, ok, (), details or {})
    level = levels.get(check_id, default)
    return CheckResult(check_id, level, source, affected, bad, list(examples), details or {})  # type: ignore[arg-type]


#: every check id the ``check_*`` functions report (what ``quality.levels`` may name)
KNOWN_CHECK_IDS = (
    "admin.antimeridian", "admin.child_outside_parent", "admin.coordinates_out_of_bounds",
    "admin.crs", "admin.duplicate_ucode", "admin.empty_geometry", "admin.gap",
    "admin.invalid_geometry", "admin.missing_parent", "admin.overlap", "admin.z_coordinates",
    "indicators.change", "indicators.negative_count", "indicators.numerator_gt_denominator",
    "indicators.share_out_of_range", "indicators.suppressed_value_published",
    "points.coordinates_not_numeric", "points.coordinates_out_of_range", "points.crs",
    "points.duplicate", "points.duplicate_coordinates", "points.duplicate_id",
    "points.low_precision", "points.not_a_point", "points.null_coordinates",
    "points.outside_boundaries", "points.rejected_by_reader", "points.swapped_lat_lon",
    "points.value_domain", "points.zero_coordinates", "raster.coverage", "raster.crs",
    "raster.negative_values", "raster.nodata", "raster.overlap",
)  # fmt: skip


def known_check_ids() -> tuple[str, ...]:
    """Every check id a ``quality.levels`` override may name.

    Examples
    --------
    >>> "admin.gap" in known_check_ids()
    True
    """
    return KNOWN_CHECK_IDS
