"""Options and error reporting shared by every ``geopipe`` command (argparse only: imports fast)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geopipe.errors import GeopipeError, exit_code

#: printed after a failed run only (commands that never write say nothing about outputs)
RUN_HINT = "the previous outputs were left untouched"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and examples."""


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    example: str,
    aliases: tuple[str, ...] = (),
    hidden: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand parser with the shared options and an ``Example:`` section in ``--help``."""
    kwargs = {} if hidden else {"help": help}
    parser = sub.add_parser(
        name,
        aliases=list(aliases),
        description=description,
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.strip().splitlines()),
        formatter_class=_Formatter,
        **kwargs,
    )
    add_verbose(parser, default=argparse.SUPPRESS)
    return parser


def add_verbose(parser: argparse.ArgumentParser, *, default: object = False) -> None:
    """``-v/--verbose``: show the traceback of errors (accepted before or after the command)."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="show tracebacks of errors"
    )


def existing_file(value: str) -> Path:
    """argparse ``type=``: a path that exists (a usage error, exit 2, otherwise)."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"'{value}' does not exist")
    return path


def add_config(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The pipeline YAML argument (positional) or ``--config`` (optional)."""
    if required:
        parser.add_argument(
            "config", type=existing_file, help="pipeline YAML, e.g. pipelines/sample.yaml"
        )
    else:
        parser.add_argument(
            "--config", type=existing_file, help="also list this pipeline config's indicators"
        )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--log-format`` (how a command talks while it works)."""
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars and no summary"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per event on stderr (for schedulers), ending with run_end",
    )


def add_files(parser: argparse.ArgumentParser) -> None:
    """One or more input files (positional)."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to read")


def report_error(exc: GeopipeError, *, verbose: bool, hint: str | None = None) -> int:
    """Print ``geopipe: error: ...`` and a hint on stderr; return the exit code for ``exc``."""
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"geopipe: error: {exc}", file=sys.stderr)
    parts = [] if verbose else ["rerun with --verbose for the traceback"]
    if hint:
        parts.append(hint)
    if parts:
        print(f"hint: {'; '.join(parts)}.", file=sys.stderr)
    return exit_code(exc)
