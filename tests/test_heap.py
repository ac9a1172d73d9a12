"""geopipe._heap: large temporaries from a heap that keeps freed memory, during runs and tasks."""

from __future__ import annotations

import os
import platform

import pytest

from geopipe import _heap
from geopipe._heap import is_tuned, reuse_heap, reusing_heap

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc is tuned on glibc only",
)


PROBE = """
import ctypes, sys
import numpy as np
from geopipe._heap import is_tuned, reuse_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mapped(n_bytes=80_000_000):
    before = libc.mallinfo2().hblkhd
    block = np.ones(n_bytes // 8)
    out = libc.mallinfo2().hblkhd - before >= n_bytes
    del block
    return out

seen = [mapped()]
with reuse_heap() as tuned:
    seen += [tuned, is_tuned(), mapped()]
    with reuse_heap() as inner:
        seen.append(inner)
    seen += [is_tuned(), mapped()]
seen.append(is_tuned())
print(seen)
"""


def _clean_env() -> dict[str, str]:
    """This environment without malloc tuning (a Dask nanny may have left its workers' in it)."""
    tuning = ("MALLOC_", "GLIBC_TUNABLES", "GEOPIPE_HEAP")
    return {k: v for k, v in os.environ.items() if not k.startswith(tuning)}


def test_large_arrays_come_from_the_heap_inside_a_run():
    # a fresh interpreter: once a process has run tuned, its heap may hold large free blocks that
    # glibc reuses before it would map new ones
    import ast
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=_clean_env()
    ).stdout
    seen = ast.literal_eval(out)
    mapped_before, tuned, is_tuned_inside, mapped_inside, inner, still, mapped_after, after = seen
    assert mapped_before  # glibc's default: an 80 MB block is a fresh mapping
    assert tuned and is_tuned_inside and not mapped_inside  # inside: from the heap
    assert inner and still and not mapped_after  # nested blocks share the outer setting
    assert not after  # the defaults are back when the outer block ends


def test_the_user_can_keep_the_system_allocator(monkeypatch):
    monkeypatch.setattr(_heap, "_TUNED_AT_START", True)  # started with MALLOC_*_ set
    with reuse_heap() as tuned:
        assert not tuned
    monkeypatch.setattr(_heap, "_TUNED_AT_START", False)
    monkeypatch.setenv("GEOPIPE_HEAP", "system")
    with reuse_heap() as tuned:
        assert not tuned and not is_tuned()


def test_runs_and_pool_workers_are_tuned(monkeypatch):
    for key in set(os.environ) - set(_clean_env()):
        monkeypatch.delenv(key)
    from geopipe.pipeline.engines import Engine, close_clients, map_tasks

    assert reusing_heap(is_tuned)()
    close_clients()  # a pool of its own, started from this (clean) environment
    try:
        assert map_tasks(Engine("processes", workers=1), is_tuned, [(), ()]) == [True, True]
    finally:
        close_clients()
    assert _heap._state["depth"] == 0


RELEASE_PROBE = """
import numpy as np
from geopipe._heap import release_heap, reuse_heap

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

seen = [release_heap()]  # not tuned: nothing to do
with reuse_heap():
    block = np.ones(300 * 2**20 // 8)  # 300 MB, touched
    del block
    kept = rss_mb()
    released = release_heap()
    seen += [released, kept - rss_mb()]
    again = np.ones(300 * 2**20 // 8)  # the heap is still tuned: no fresh mapping needed
    seen.append(float(again.sum()) == again.size)
print(seen)
"""


def test_freed_memory_is_handed_back_between_countries():
    import ast
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", RELEASE_PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    ).stdout
    untuned, released, dropped_mb, reused = ast.literal_eval(out)
    assert untuned is False
    assert released and dropped_mb > 250  # the 300 MB freed inside the run left the process
    assert reused


def test_a_country_task_releases_the_heap_when_it_returns(monkeypatch):
    from geopipe.pipeline import countries

    calls = []
    monkeypatch.setattr(_heap, "release_heap", lambda: calls.append("released") or True)
    wrapped = _heap.releasing_heap(lambda x: calls.append(x) or x)
    assert wrapped("computed") == "computed"
    assert calls == ["computed", "released"]
    assert countries._compute_country.__wrapped__.__name__ == "_compute_country"
