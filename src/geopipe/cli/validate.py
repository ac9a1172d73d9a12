"""``geopipe validate CONFIG``: check a pipeline config without computing or writing anything."""

from __future__ import annotations

import argparse
import sys
from typing import Any

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
        problems = _check(cfg)
    except GeopipeError as exc:
        return _common.report_error(exc, verbose=args.verbose)  # never mentions outputs
    for line in problems:
        print(line)
    failed = [p for p in problems if p.startswith("FAIL")]
    if failed:
        print(f"{args.config}: {len(failed)} input check(s) would stop the run", file=sys.stderr)
        return 1
    print(
        f"ok: {args.config} (run '{cfg.name}', {len(cfg.input_files())} input files, "
        f"output {cfg.output})"
    )
    return 0


def _check(cfg: Any) -> list[str]:
    """Everything checkable without computing: the output folder, credentials, and every
    source the steps read (opened, CRS, columns, overlap with the boundaries)."""
    from geopipe.errors import ConfigError, problem
    from geopipe.pipeline.context import read_source
    from geopipe.pipeline.state import check_output_folder
    from geopipe.quality.report import check_inputs

    check_output_folder(cfg.output, history=cfg.history)
    env = cfg.environment_problems()
    if env:
        raise ConfigError(problem(f"'{cfg.config_path}'", "; ".join(env), "set the variables"))
    out = []
    for iso, one in [(c, cfg.for_country(c)) for c in cfg.countries] or [("", cfg)]:
        admin = read_source(one.sources[one.units.admin])
        results, _ = check_inputs(one, admin, steps=one.needed_steps(None))
        out += [
            f"{'FAIL' if r.level == 'fail' else 'warn'} {r.check_id} on {iso + ':' if iso else ''}"
            f"{r.source}: {r.message}"
            for r in results
            if r.level != "pass"
        ]
    return out
