"""``geopipe validate CONFIG``: check a pipeline config without computing or writing anything."""

from __future__ import annotations

import argparse

from . import _common


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``validate``."""
    parser = _common.add_command(
        sub,
        "validate",
        help="check a pipeline config without running it",
        description=(
            "Read a pipeline config and report every problem at once (keys, dates, input files).\n"
            "Nothing is computed or written. Exit 0 when the config is valid, 2 when it is not."
        ),
        example="geopipe validate pipelines/sample.yaml",
    )
    _common.add_config(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``validate``; returns the exit code."""
    from geopipe.config import load_config
    from geopipe.errors import GeopipeError

    try:
        cfg = load_config(args.config)
    except GeopipeError as exc:
        return _common.report_error(exc, verbose=args.verbose)  # never mentions outputs
    print(
        f"ok: {args.config} (run '{cfg.name}', {len(cfg.input_files())} input files, "
        f"output {cfg.output})"
    )
    return 0
