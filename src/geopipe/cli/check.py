"""``geopipe check FILE...``: conformance checks, one line per problem.

Checks are registered in :data:`CHECKS` as ``name -> (applies(path), run(path) -> problems)``;
``geopipe check`` runs every check that applies to a file (``--only NAME`` picks some). To add
one (e.g. ``bi_table``), add an entry here: nothing else changes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from . import _common


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".geoparquet", ".parq")


def _geoparquet(path: Path) -> list[str]:
    from geopipe.io.geoparquet import check_geoparquet

    return check_geoparquet(path)


#: name -> (does it apply to this file?, problems found)
def _is_bi(path: Path) -> bool:
    """BI tables: files under a run's ``bi/`` folder and history partitions (``iso3=...``)."""
    parts = set(Path(path).resolve().parts)
    return _is_parquet(path) and ("bi" in parts or any(p.startswith("iso3=") for p in parts))


def _bi_table(path: Path) -> list[str]:
    from geopipe.io.bi import check_bi_table

    return check_bi_table(path)


CHECKS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], list[str]]]] = {
    "geoparquet": (lambda p: _is_parquet(p) and not _is_bi(p), _geoparquet),
    "bi_table": (_is_bi, _bi_table),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``check``."""
    parser = _common.add_command(
        sub,
        "check",
        help="check files against GeoParquet 1.1, one line per problem",
        description=(
            "Check files for conformance and print one line per problem, as FILE: CHECK: PROBLEM.\n"
            f"Checks: {', '.join(CHECKS)}. Exit 0 when every file passes, 1 when a check finds\n"
            "a problem, 3 when a file is missing or no check applies to it."
        ),
        example="geopipe check out/sample/*.parquet",
    )
    _common.add_files(parser)
    parser.add_argument(
        "--only", action="append", choices=sorted(CHECKS), metavar="CHECK", help="run only CHECK"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``check``; returns the exit code."""
    from geopipe.errors import InputError, MissingFileError, problem

    names = args.only or list(CHECKS)
    code = 0
    for path in args.files:
        if not path.is_file():
            err = MissingFileError(problem(f"'{path}'", "does not exist", "check the path"))
            code = max(code, _common.report_error(err, verbose=args.verbose))
            continue
        applicable = [n for n in names if CHECKS[n][0](path)]
        if not applicable:
            err = InputError(
                problem(
                    f"'{path}'", f"is not a file the checks {names} read", "pass a .parquet file"
                )
            )
            code = max(code, _common.report_error(err, verbose=args.verbose))
            continue
        problems = [(n, msg) for n in applicable for msg in CHECKS[n][1](path)]
        for name, msg in problems:
            print(f"{path}: {name}: {msg}")
        if problems:
            code = max(code, 1)
        else:
            print(f"{path}: ok ({', '.join(applicable)})")
    return code
