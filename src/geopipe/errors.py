"""Errors and warnings raised by geopipe.

Every error derives from :class:`GeopipeError` *and* from the built-in exception that fits, so a
caller can catch either ``GeopipeError`` (everything geopipe raises on purpose) or the built-in
(``ValueError``, ``FileNotFoundError``, ...).

Messages follow one rule: name the file / argument / column, say what is wrong, say what fixes it.
Use :func:`problem` to build them so the three parts always appear.

Examples
--------
>>> from geopipe.errors import InputError, problem
>>> try:
...     raise InputError(problem("level", "was 7", "use one of 0, 1, 2", where="read_admin"))
... except ValueError as exc:
...     print(exc)
read_admin: level was 7; fix: use one of 0, 1, 2
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataQualityError",
    "DependencyError",
    "EmptyInputError",
    "FormatError",
    "GeometryError",
    "GeopipeError",
    "GeopipeWarning",
    "InputError",
    "MissingColumnError",
    "MissingFileError",
    "OutputError",
    "PartialRunError",
    "RasterError",
    "RemoteAuthError",
    "RemoteError",
    "exit_code",
    "problem",
]


def problem(subject: str, issue: str, fix: str, *, where: str | None = None) -> str:
    """Format an error message as ``[where: ]subject issue; fix: fix``.

    Parameters
    ----------
    subject
        The file, argument, column or row the message is about.
    issue
        What is wrong with it (starts lower-case, e.g. ``"has no CRS"``).
    fix
        What the user can do about it.
    where
        Optional context such as the function name or pipeline step.

    Examples
    --------
    >>> problem("'schools.csv'", "has no longitude column", "pass lon='x'")
    "'schools.csv' has no longitude column; fix: pass lon='x'"
    """
    msg = f"{subject} {issue}; fix: {fix}"
    return f"{where}: {msg}" if where else msg


class GeopipeError(Exception):
    """Root of every error geopipe raises on purpose."""


class InputError(GeopipeError, ValueError):
    """An argument or an input dataset has a value geopipe cannot use."""


class EmptyInputError(InputError):
    """An input layer contributes nothing: no valid pixel over the units, no overlap with any unit,
    every row rejected, every point outside the boundaries. The message names the file and the
    likely cause (swapped lat/lon columns, decimal commas, the wrong raster or CRS)."""


class MissingFileError(GeopipeError, FileNotFoundError):
    """An input file or folder does not exist."""


class FormatError(GeopipeError, ValueError):
    """A file exists but cannot be read as the expected format (truncated, wrong type, empty)."""


class MissingColumnError(InputError, KeyError):
    """A required column is absent and could not be inferred."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class GeometryError(InputError):
    """Geometries are invalid beyond repair, empty, of the wrong type, or have no CRS."""


class RasterError(GeopipeError, ValueError):
    """A raster cannot be used: no CRS, no overlap with the units, unreadable band, ..."""


class ConfigError(GeopipeError, ValueError):
    """A pipeline configuration (YAML or dict) is invalid."""


class DataQualityError(GeopipeError, ValueError):
    """A data-quality check at level ``fail`` did not pass."""


class OutputError(GeopipeError, OSError):
    """An output could not be written; the previous output is left untouched."""


class DependencyError(GeopipeError, ImportError):
    """An optional dependency needed for this call is not installed."""


class RemoteError(GeopipeError, OSError):
    """A GeoRepo / DHIS2 / GeoSight server refused a request, could not be reached, or answered
    with something geopipe cannot use (after the retries)."""


class RemoteAuthError(RemoteError, PermissionError):
    """A server refused the credentials (401 / 403); the message names the environment variables."""


class PartialRunError(GeopipeError, RuntimeError):
    """Some countries or partitions of a run failed; the others were written (exit code 5)."""


class GeopipeWarning(UserWarning):
    """Something was repaired, dropped or assumed; the message says what and how many."""


#: exit codes of the ``geopipe`` command, by error class (first match wins; see docs/cli.md)
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (DataQualityError, 1),
    (PartialRunError, 5),
    (OutputError, 4),
    (RemoteError, 3),  # a source server refused or failed (after the retries)
    (ConfigError, 2),
    (DependencyError, 2),
    (MissingFileError, 3),
    (FormatError, 3),
    (RasterError, 3),
    (InputError, 3),  # also MissingColumnError, GeometryError
    (GeopipeError, 2),
)
#: exit code of an error geopipe did not raise on purpose (a bug: the traceback is printed)
EXIT_INTERNAL = 70


def exit_code(exc: BaseException) -> int:
    """The ``geopipe`` command's exit code for an exception.

    0 is success; 1 a data-quality gate failed; 2 a usage or config error; 3 an input error
    (missing, unreadable or unusable file); 4 an output error; 5 some countries or partitions
    failed; 70 anything else (a bug).

    Examples
    --------
    >>> exit_code(MissingFileError("raster 'pop.tif' does not exist"))
    3
    >>> exit_code(DataQualityError("1 check failed")), exit_code(KeyError("x"))
    (1, 70)
    """
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_INTERNAL
