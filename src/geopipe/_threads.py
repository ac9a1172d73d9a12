"""How many threads a library call may use: all cores in the main process, one in an engine's
worker process (the engine already runs one task per core; more threads there only contend)."""

from __future__ import annotations

import multiprocessing


def in_worker() -> bool:
    """Whether this process is a worker that an engine (a process pool, a Dask nanny) started.

    Examples
    --------
    >>> in_worker()
    False
    """
    return multiprocessing.parent_process() is not None
