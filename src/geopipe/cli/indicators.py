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

    table = indicator_catalog(args.family)
    if args.config is not None:
        from geopipe.config import load_config

        cfg = load_config(args.config)
        wanted = list(getattr(cfg, "indicators", None) or [])
        if wanted:
            unknown = [i for i in wanted if i not in set(table["indicator_id"])]
            table = table.set_index("indicator_id").reindex(wanted).reset_index()
            table = table.dropna(subset=["family"]) if args.family else table
            for col in ("family", "aggregation", "unit"):
                table[col] = table[col].fillna("(not in the catalog)" if col == "family" else "")
            if unknown and not args.family:
                print(f"# {args.config}: {len(unknown)} indicators not in the catalog")
        else:
            print(f"# {args.config} lists no indicators: every one whose inputs are configured")
    for row in table.itertuples(index=False):
        print(f"{row.indicator_id:<36} {row.family:<17} {row.aggregation:<14} {row.unit}")
    return 0
