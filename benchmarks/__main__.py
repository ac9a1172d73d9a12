"""Run every benchmark: ``python -m benchmarks`` (what ``make bench`` calls).

Each ``benchmarks/bench_*.py`` module provides ``main()``; they run one after the other in name
order, each printing its own table. ``python -m benchmarks io points`` runs only the named ones.
A benchmark that fails is reported and the others still run; the exit code is 1 if any failed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path


def discover() -> list[str]:
    """Names of the benchmark modules (``bench_io`` ...), sorted."""
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    """Run the selected (default: all) benchmarks; return the process exit code."""
    wanted = argv if argv is not None else sys.argv[1:]
    names = discover()
    if wanted:
        unknown = [w for w in wanted if f"bench_{w}" not in names and w not in names]
        if unknown:
            print(f"unknown benchmarks {unknown}; available: {[n[6:] for n in names]}")
            return 2
        names = [n for n in names if n in wanted or n[6:] in wanted]
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception:  # one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - t0:.0f} s ===", flush=True)
    if failed:
        print(f"\nfailed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
