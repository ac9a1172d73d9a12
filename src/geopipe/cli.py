"""Command line: ``geopipe run CONFIG``, ``geopipe validate CONFIG``, ``geopipe list-indicators``.

Errors geopipe raises on purpose print as one line plus a hint, exit code 2, no traceback (add
``--verbose`` for it). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import GeopipeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geopipe",
        description="Geospatial indicator pipelines: boundaries, rasters and facilities -> indicator tables.",
    )
    parser.add_argument("--version", action="version", version=f"geopipe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline config and write its run folder")
    run.add_argument("config", help="pipeline YAML, e.g. pipelines/sample.yaml")
    run.add_argument("--output", help="output folder (default: the config's `output`)")
    run.add_argument("--force", action="store_true", help="rebuild even when inputs are unchanged")
    validate = sub.add_parser("validate", help="check a pipeline config without running it")
    validate.add_argument("config")
    listing = sub.add_parser("list-indicators", help="print the indicator catalog")
    listing.add_argument("--family", help="only this family")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geopipe`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except GeopipeError as exc:
        if args.verbose:
            raise
        print(f"geopipe: error: {exc}", file=sys.stderr)
        print(
            "hint: rerun with --verbose for the traceback; the previous outputs were left untouched.",
            file=sys.stderr,
        )
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from .pipeline import run_pipeline

        result = run_pipeline(args.config, output=args.output, force=args.force)
        if result.up_to_date:
            print(
                f"up to date: {result.output} (inputs and parameters unchanged; --force rebuilds)"
            )
            return 0
        print(f"wrote {result.output}/")
        for name, rec in result.manifest["outputs"].items():
            rows = f"{rec['rows']:>9,} rows" if rec.get("rows") is not None else ""
            print(f"  {name:<24}{rows}")
        print(f"  {'manifest.json':<24} inputs (sha256), parameters, versions, quality, timings")
        quality = result.manifest.get("quality", {})
        checks = quality.get("checks", [])
        warned = sum(1 for c in checks if c.get("level") == "warn")
        print(f"data quality: {len(checks)} checks, {warned} warnings (see quality_report.md)")
        return 0
    if args.command == "validate":
        from .config import load_config

        cfg = load_config(args.config)
        print(
            f"ok: {args.config} (run '{cfg.name}', {len(cfg.input_files())} input files, output {cfg.output})"
        )
        return 0
    from .indicators.catalog import indicator_catalog

    table = indicator_catalog(args.family)
    for row in table.itertuples(index=False):
        print(f"{row.indicator_id:<36} {row.family:<17} {row.aggregation:<14} {row.unit}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
