"""The ``geopipe`` command: ``run``, ``validate``, ``indicators``, ``inspect``, ``check``.

One module per command (``geopipe/cli/<command>.py``), each with ``add_parser(sub)`` and
``main(args) -> int``; the options they share live in ``_common``. Commands import their heavy
dependencies only when they run, so ``geopipe --help`` stays fast.

Exit codes (see docs/cli.md and :func:`geopipe.errors.exit_code`): 0 done or up to date, 1 a
data-quality gate or a file check failed, 2 usage or config error, 3 input error, 4 output error,
5 some countries or partitions failed, 70 a bug (with its traceback), 130 interrupted,
141 stdout closed early (``| head``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from geopipe import __version__
from geopipe.errors import EXIT_INTERNAL, GeopipeError

from . import _common, check, indicators, inspect, run, validate

__all__ = ["main"]

#: the commands, in the order ``--help`` lists them
COMMANDS = (run, validate, indicators, inspect, check)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="geopipe",
        description=(
            "Geospatial indicator pipelines: boundaries, rasters and facilities -> "
            "indicator tables (GeoParquet, DuckDB)."
        ),
        epilog=(
            "examples:\n  geopipe run pipelines/sample.yaml\n"
            "  geopipe inspect out/sample/adm2.parquet\n"
            "exit codes: 0 ok, 1 quality gate failed, 2 usage/config, 3 input, 4 output, "
            "5 partial (see docs/cli.md)"
        ),
        formatter_class=_common._Formatter,
    )
    parser.add_argument("--version", action="version", version=f"geopipe {__version__}")
    _common.add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geopipe`` console script; returns the exit code.

    Parameters
    ----------
    argv
        The arguments after ``geopipe`` (default: ``sys.argv[1:]``).

    Examples
    --------
    >>> main(["indicators", "--family", "population"])  # doctest: +ELLIPSIS
    population_total ...
    0
    """
    args = build_parser().parse_args(argv)  # usage errors exit 2 here
    try:
        return args.func(args)
    except GeopipeError as exc:  # commands report their own; this is the fallback
        return _common.report_error(exc, verbose=args.verbose)
    except KeyboardInterrupt:
        print("geopipe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `geopipe inspect ... | head`: the reader left; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            "geopipe: internal error (a bug, not a problem with your data): please report the "
            "traceback above",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
