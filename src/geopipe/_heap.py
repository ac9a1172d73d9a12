"""Large NumPy temporaries from a heap that keeps what is freed, for the time of a run or task.

glibc serves every allocation over its mmap threshold (at most 32 MiB) with a fresh ``mmap``
and unmaps it on ``free``; the kernel then zeroes every page of the next one as it is first
touched. The pixel steps make many temporaries of 10⁶–10⁸ elements, so on a 10⁸-pixel country
a third of the CPU time went to the kernel zeroing pages (``perf``: ``clear_page_erms``).
:func:`reuse_heap` tells glibc (``mallopt``) to take large blocks from the heap instead and to
keep up to :data:`KEEP_BYTES` of freed memory at its top, and puts the defaults back afterwards,
handing what is free back to the OS (``malloc_trim``). See docs/engines.md, "Freed memory is
kept for reuse during a run".

Not glibc (macOS, Windows, musl), or the process was started with malloc tuned (any
``MALLOC_*_`` environment variable, or ``glibc.malloc`` tunables), or ``GEOPIPE_HEAP=system``:
nothing is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "KEEP_BYTES",
    "is_tuned",
    "release_heap",
    "releasing_heap",
    "reuse_heap",
    "reuse_heap_for_good",
    "reusing_heap",
]

#: freed memory kept at the top of the heap during a run (glibc's ``M_TRIM_THRESHOLD``)
KEEP_BYTES = 2**31 - 1
# mallopt parameters and glibc's defaults (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_TUNED_BY_USER = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")

#: the process was started with malloc tuned by its environment: leave it. Read once, when
#: geopipe is imported: distributed's nanny writes its workers' ``MALLOC_*_`` variables into
#: the environment of the process that starts them, which says nothing about this process
_TUNED_AT_START = any(name in os.environ for name in _TUNED_BY_USER) or (
    "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
)
_lock = threading.Lock()
_state: dict[str, Any] = {"depth": 0, "tuned": False, "libc": None}


def _libc() -> Any:
    if not sys.platform.startswith("linux") or os.environ.get("GEOPIPE_HEAP") == "system":
        return None
    if _TUNED_AT_START:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has a no-op mallopt)
        return libc
    except (OSError, AttributeError):
        return None


def _enter() -> bool:
    with _lock:
        _state["depth"] += 1
        if _state["depth"] == 1:
            libc = _libc()
            _state["libc"] = libc
            _state["tuned"] = bool(
                libc
                and libc.mallopt(_M_MMAP_MAX, 0)
                and libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)
            )
        return bool(_state["tuned"])


def _exit() -> None:
    with _lock:
        _state["depth"] -= 1
        if _state["depth"] == 0 and _state["tuned"]:
            libc = _state["libc"]
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
            libc.malloc_trim(0)
            _state["tuned"] = False


@contextlib.contextmanager
def reuse_heap() -> Iterator[bool]:
    """Within the block, large allocations come from the heap and freed memory is kept for the
    next one; yields whether malloc is tuned. Nested blocks share the outermost one's setting.

    Examples
    --------
    >>> import numpy as np
    >>> with reuse_heap():
    ...     total = sum(float(np.ones(10**7).sum()) for _ in range(3))
    >>> total
    30000000.0
    """
    tuned = _enter()
    try:
        yield tuned
    finally:
        _exit()


def reuse_heap_for_good() -> bool:
    """Tune malloc for the rest of this process's life: the worker processes geopipe starts
    (its process pool), whose memory is the run's anyway. Returns whether malloc is tuned.

    Examples
    --------
    >>> import concurrent.futures as cf  # doctest: +SKIP
    >>> cf.ProcessPoolExecutor(2, initializer=reuse_heap_for_good)  # doctest: +SKIP
    """
    return _enter()


def is_tuned() -> bool:
    """Whether malloc is tuned in this process now (tests and worker checks).

    Examples
    --------
    >>> with reuse_heap() as tuned:
    ...     is_tuned() == tuned
    True
    """
    return bool(_state["tuned"])


def release_heap() -> bool:
    """Hand the free memory of a tuned heap back to the OS now (``malloc_trim``), keeping the
    tuning: called between the countries of a run, so that what one country freed does not
    stay resident while the next one is computed and the peak memory of a run does not grow
    with its number of countries. Returns whether anything was handed back (``False`` when
    malloc is not tuned: glibc's defaults already hand memory back).

    Examples
    --------
    >>> with reuse_heap():
    ...     _ = release_heap()
    """
    with _lock:
        if not _state["tuned"]:
            return False
        return bool(_state["libc"].malloc_trim(0))


def releasing_heap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, then :func:`release_heap` once it has returned (its locals are gone by then):
    the task of one country of a multi-country run.

    Examples
    --------
    >>> releasing_heap(lambda: 2 + 2)()
    4
    """

    @functools.wraps(fn)
    def releasing(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            release_heap()

    return releasing


def reusing_heap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run inside :func:`reuse_heap` (the run and the engines' tasks).

    Examples
    --------
    >>> reusing_heap(lambda: 2 + 2)()
    4
    """

    @functools.wraps(fn)
    def reusing(*args: Any, **kwargs: Any) -> Any:
        with reuse_heap():
            return fn(*args, **kwargs)

    return reusing
