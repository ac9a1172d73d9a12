"""``geopipe indicators``: the indicator catalog (``list-indicators`` is a hidden alias)."""

from __future__ import annotations

import argparse

from . import _common


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``indicators`` (and the old name ``list-indicators``)."""
    for name, hidden in (("indicators", False), ("list-indicators", True)):
        parser = _common.add_command(
            sub,
            name,
            help="print the indicator catalog",
            description=(
                "Print the indicator catalog: id, family, how it rolls up, unit.\n"
                "With --config, only the indicators that pipeline publishes."
            ),
            example=(
                "geopipe indicators --family child_poverty\n"
                "geopipe indicators --config pipelines/sample.yaml"
            ),
            hidden=hidden,
        )
        parser.add_argument(
            "--family",
            help="only this family (child_poverty, connectivity, service_coverage, population)",
        )
        _common.add_config(parser, required=False)
        parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``indicators``; returns the exit code."""
    from geopipe.indicators.catalog import indicator_catalog

    if args.config is not None:  # the pipeline's own catalog: what its run publishes
        from geopipe.config import load_config
        from geopipe.pipeline.run import _dim_indicator

        catalog = load_config(args.config).catalog()
        table = _dim_indicator(catalog, set(catalog))
        if args.family:
            table = table[table["family"] == args.family]
    else:
        table = indicator_catalog(args.family)
    for row in table.itertuples(index=False):
        print(f"{row.indicator_id:<36} {row.family:<17} {row.aggregation:<14} {row.unit}")
    return 0
