"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPEATS = int(os.environ.get("GEOPIPE_BENCH_REPEATS", "3"))


def median_time(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls of ``fn`` and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def alternating_times(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Wall times of each of ``fns`` over ``repeats`` rounds, and each one's last result.

    Every round runs all of them once, in an order that rotates and reverses from round to round,
    so each tool runs first, last and in between as often as the others: a slow moment of a shared
    machine then hits them alike, and a tool never always runs right after the same other one. A
    tool's previous result is freed (and garbage collected) before its next call is timed, so no
    call pays for freeing another's million geometries.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    results: dict[str, Any] = {}
    for r in range(repeats):
        k = r % len(names)
        seq = names[k:] + names[:k]
        for name in seq if r % 2 == 0 else seq[::-1]:
            results.pop(name, None)  # free the last result outside the timed window
            gc.collect()
            t0 = time.perf_counter()
            results[name] = fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times, results


def save_result(key: str, value: Any) -> Path:
    """Store ``value`` under ``key`` in benchmarks/results/latest.json, keeping the other keys
    (each benchmark writes its own); written to a temporary file and renamed into place."""
    path = Path(__file__).resolve().parent / "results" / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
