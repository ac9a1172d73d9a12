"""geopipe.events: emit / listen / progress / capture_warnings, the runner <-> front-end contract."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import warnings

import pytest

from geopipe import events
from geopipe.errors import GeopipeWarning


def test_emit_without_listener_is_a_no_op():
    assert not events.listening()
    events.emit("step_start", step="x", kind="stage")  # nothing to receive it, nothing raised


def test_event_shape_and_nested_listeners():
    outer, inner = [], []
    with events.listen(outer.append):
        events.emit("run_start", run="r", config="c.yaml")
        with events.listen(inner.append):
            events.emit("step_start", step="measures", kind="stage")
        events.emit("run_end", status="done", exit_code=0, output="o", seconds=1.0, error=None)
    assert [e["event"] for e in outer] == ["run_start", "step_start", "run_end"]
    assert [e["event"] for e in inner] == ["step_start"]
    assert inner[0] == {**inner[0], "step": "measures", "kind": "stage"}  # 'kind' may be a field
    stamp = dt.datetime.fromisoformat(outer[0]["time"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None and stamp.utcoffset() == dt.timedelta(0)
    inner[0]["step"] = "mutated"
    assert outer[1]["step"] == "measures"  # each listener gets its own copy
    assert not events.listening()


def test_listeners_are_per_context():
    got, other = [], []

    def worker():
        events.emit("warning", message="from a plain thread", category="X")

    def copied():
        events.emit("warning", message="from a copied context", category="X")

    with events.listen(got.append):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(copied,))
        t.start()
        t.join()
    with events.listen(other.append):
        pass
    assert [e["message"] for e in got] == ["from a copied context"]
    assert other == []


def test_progress_yields_everything_and_is_rate_limited(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(events.time, "monotonic", lambda: clock["t"])
    got = []

    def items():
        for i in range(100):
            clock["t"] += 0.01  # 100 items over 1 s
            yield i

    with events.listen(got.append):
        out = list(events.progress(items(), step="cells", unit="cell", total=100))
    assert out == list(range(100))
    dones = [e["done"] for e in got]
    assert dones[0] == 0 and dones[-1] == 100
    assert 9 <= len(got) <= 13  # start + about 10 per second + end
    assert all(e["step"] == "cells" and e["unit"] == "cell" and e["total"] == 100 for e in got)
    assert dones == sorted(dones)


def test_progress_total_from_len_and_unknown():
    got = []
    with events.listen(got.append):
        list(events.progress([1, 2, 3], step="a"))
        list(events.progress(iter([1, 2]), step="b"))
    assert {(e["step"], e["total"]) for e in got} == {("a", 3), ("b", None)}
    assert got[-1]["done"] == 2


def test_progress_without_listener_passes_items_through():
    gen = (i for i in range(5))
    assert list(events.progress(gen, step="x")) == [0, 1, 2, 3, 4]


def test_progress_reports_where_a_loop_stopped():
    got = []
    with events.listen(got.append), pytest.raises(ZeroDivisionError):
        for i in events.progress(range(10), step="x"):
            if i == 4:
                1 / 0  # noqa: B018
    assert got[-1]["done"] == 4


def test_capture_warnings_reports_each_message_once():
    got = []
    with events.listen(got.append), events.capture_warnings():
        for _ in range(4):
            warnings.warn("1 of 66 rows left out", GeopipeWarning, stacklevel=1)
        warnings.warn("1 of 66 rows left out", GeopipeWarning, stacklevel=2)  # another 'place'
        warnings.warn("3 points outside", GeopipeWarning, stacklevel=1)
        with warnings.catch_warnings(record=True) as other:
            warnings.simplefilter("always")
            warnings.warn("not ours", DeprecationWarning, stacklevel=1)
    assert [e["message"] for e in got] == ["1 of 66 rows left out", "3 points outside"]
    assert all(e["event"] == "warning" and e["category"] == "GeopipeWarning" for e in got)
    assert got[0]["source"].rsplit(":", 1)[1].isdigit()
    assert [str(w.message) for w in other] == ["not ours"]  # other categories untouched


def test_capture_warnings_without_listener_shows_once():
    with warnings.catch_warnings(record=True) as shown:  # stands in for the usual display
        with events.capture_warnings():
            for _ in range(3):
                warnings.warn("dropped 2 rows", GeopipeWarning, stacklevel=1)
        before = warnings.showwarning
    assert [str(w.message) for w in shown] == ["dropped 2 rows"]
    assert before.__name__ != "show"  # restored on exit
