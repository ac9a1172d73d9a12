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

from ..errors import ConfigError, InputError, problem

__all__ = ["CHECK_IDS", "LEVELS", "CheckResult", "Level", "make_result", "validate_check_levels"]

Level = Literal["pass", "warn", "fail"]
LEVELS: tuple[str, ...] = ("pass", "warn", "fail")
MAX_EXAMPLES = 10

# Every check id any geopipe check can produce (docs/quality.md describes each); a test keeps this
# list and the ids in the source equal. ``quality.levels`` keys are validated against it.
CHECK_IDS: tuple[str, ...] = (
    # check_admin
    "admin.z_coordinates",
    "admin.invalid_geometry",
    "admin.empty_geometry",
    "admin.duplicate_ucode",
    "admin.crs",
    "admin.coordinates_out_of_bounds",
    "admin.antimeridian",
    "admin.missing_parent",
    "admin.child_outside_parent",
    "admin.overlap",
    "admin.gap",
    # check_hierarchy
    "admin.nearest_parent",
    "admin.outside_country",
    "admin.parent_code_mismatch",
    # check_points
    "points.crs",
    "points.null_coordinates",
    "points.zero_coordinates",
    "points.duplicate_id",
    "points.duplicate_coordinates",
    "points.swapped_lat_lon",
    "points.outside_boundaries",
    "points.low_precision",
    "points.value_domain",
    "points.rejected_by_reader",
    # quarantine reasons of rows read_points left out
    "points.coordinates_not_numeric",
    "points.coordinates_out_of_range",
    "points.not_a_point",
    # check_raster, check_outside_units
    "raster.crs",
    "raster.nodata",
    "raster.negative_values",
    "raster.overlap",
    "raster.coverage",
    "raster.outside_units",
    # check_indicators
    "indicators.share_out_of_range",
    "indicators.negative_count",
    "indicators.numerator_gt_denominator",
    "indicators.suppressed_value_published",
    "indicators.change",
)


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


def validate_check_levels(
    levels: Mapping[str, Any] | None, *, path: str = "quality.levels"
) -> dict[str, str]:
    """Validate a ``{check_id: level}`` mapping from a config: known ids, ``warn`` / ``fail`` values.

    Every bad key and value is listed in one :class:`~geopipe.errors.ConfigError`, each unknown id
    with the closest known ids ("did you mean"), so a typo such as ``admin.gapp`` can no longer
    silently switch a gate off.

    Parameters
    ----------
    levels
        The mapping as read from YAML (``None`` means no overrides).
    path
        YAML path of the mapping, used in the message.

    Returns
    -------
    dict
        The mapping with string keys and values.

    Raises
    ------
    ConfigError
        The mapping is not a mapping, or has unknown check ids or levels other than warn / fail.

    Examples
    --------
    >>> validate_check_levels({"admin.gap": "fail"})
    {'admin.gap': 'fail'}
    >>> validate_check_levels({"admin.gapp": "fail"})
    Traceback (most recent call last):
    ...
    geopipe.errors.ConfigError: quality.levels has unknown check id 'admin.gapp' (did you mean 'admin.gap'?); fix: use ids from docs/quality.md: ...
    """
    import difflib

    if levels is None:
        return {}
    if not isinstance(levels, Mapping):
        raise ConfigError(
            problem(
                path,
                f"is a {type(levels).__name__}",
                "write a mapping of check id to warn / fail, e.g. {admin.gap: fail}",
            )
        )
    issues: list[str] = []
    for key, value in levels.items():
        if str(key) not in CHECK_IDS:
            close = difflib.get_close_matches(str(key), CHECK_IDS, n=3, cutoff=0.8)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            issues.append(f"unknown check id {str(key)!r}{hint}")
        if value not in ("warn", "fail"):
            issues.append(f"{path}.{key} is {value!r}, not 'warn' or 'fail'")
    if issues:
        raise ConfigError(
            problem(
                path,
                "has " + "; ".join(issues),
                "use ids from docs/quality.md: " + ", ".join(CHECK_IDS) + "; levels warn or fail",
            )
        )
    return {str(k): str(v) for k, v in levels.items()}


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


#: what ``quality.levels`` may name (one list: :data:`CHECK_IDS`)
KNOWN_CHECK_IDS = CHECK_IDS


def known_check_ids() -> tuple[str, ...]:
    """Every check id a ``quality.levels`` override may name.

    Examples
    --------
    >>> "admin.gap" in known_check_ids()
    True
    """
    return KNOWN_CHECK_IDS
