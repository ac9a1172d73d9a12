"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
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
