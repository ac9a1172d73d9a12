"""Run events: the contract between the pipeline runner and its front ends (CLI, notebooks, logs).

The runner *emits* events; front ends *listen*. Nothing is printed here and nothing heavy is
imported, so emitting costs one context-variable lookup when nobody listens.

An event is a plain dict ``{"event": kind, "time": "<ISO 8601 UTC>", **fields}``. The kinds a run
emits, with their fields:

========== ==============================================================================
run_start  ``run`` (name), ``config`` (path or name)
step_start ``step``, ``kind``
step_end   ``step``, ``seconds``, ``rows`` (or None), ``status`` ("computed", "reused", "failed")
progress   ``step``, ``done``, ``total`` (or None), ``unit``
warning    ``message``, ``category``, ``source`` (``file:line`` of the warning, optional)
run_end    ``status`` ("done", "up_to_date", "failed"), ``exit_code``, ``output``, ``seconds``,
           ``error`` (None or the message)
========== ==============================================================================

Listeners are held in a :mod:`contextvars` variable: a listener receives the events emitted in the
``with listen(...)`` block of its own context (thread or task), nested listeners all receive them,
and threads started inside the block do not inherit it unless they copy the context
(``contextvars.copy_context().run``).

Examples
--------
>>> from geopipe import events
>>> seen = []
>>> with events.listen(seen.append):
...     events.emit("step_start", step="read_admin", kind="stage")
...     total = sum(events.progress(range(3), step="sum", unit="block"))
>>> [e["event"] for e in seen][:2]
['step_start', 'progress']
>>> seen[-1]["done"], seen[-1]["total"]
(3, 3)
>>> events.emit("ignored")  # nobody listens: a no-op
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["capture_warnings", "emit", "listen", "listening", "progress"]

Event = dict[str, Any]
Listener = Callable[[Event], Any]
T = TypeVar("T")

_LISTENERS: contextvars.ContextVar[tuple[Listener, ...]] = contextvars.ContextVar(
    "geopipe_event_listeners", default=()
)
#: seconds between two progress events of one loop (about 10 per second at most)
PROGRESS_INTERVAL = 0.1


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def listening() -> bool:
    """True when at least one listener receives the events emitted here.

    Examples
    --------
    >>> listening()
    False
    >>> with listen(lambda event: None):
    ...     listening()
    True
    """
    return bool(_LISTENERS.get())


def emit(kind: str, /, **fields: Any) -> None:
    """Send the event ``{"event": kind, "time": now, **fields}`` to every active listener.

    A no-op when nobody listens. Each listener gets its own copy of the dict. ``kind`` is
    positional-only, so an event may have a field named ``kind`` (``step_start`` does).

    Parameters
    ----------
    kind
        The event kind (``"step_start"``, ``"progress"``, ...; see the module docstring).
    **fields
        The event's fields; JSON-able values, so a log can write them as they are.

    Examples
    --------
    >>> got = []
    >>> with listen(got.append):
    ...     emit("step_end", step="measures", seconds=1.5, rows=30, status="computed")
    >>> got[0]["event"], got[0]["rows"]
    ('step_end', 30)
    """
    listeners = _LISTENERS.get()
    if not listeners:
        return
    event = {"event": kind, "time": _now(), **fields}
    for callback in listeners:
        callback(dict(event))


@contextlib.contextmanager
def listen(callback: Listener) -> Iterator[Listener]:
    """Call ``callback(event)`` for every event emitted inside the ``with`` block.

    Parameters
    ----------
    callback
        A function taking one event dict. Exceptions it raises propagate to the emitter, so keep
        it simple (write a line, update a bar).

    Examples
    --------
    >>> outer, inner = [], []
    >>> with listen(outer.append):
    ...     with listen(inner.append):
    ...         emit("warning", message="3 rows dropped", category="GeopipeWarning")
    >>> len(outer), len(inner)
    (1, 1)
    """
    token = _LISTENERS.set((*_LISTENERS.get(), callback))
    try:
        yield callback
    finally:
        _LISTENERS.reset(token)


def progress(
    iterable: Iterable[T], *, step: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Yield the items of ``iterable``, emitting ``progress`` events on the way.

    Events carry ``step, done, total, unit``: one when the loop starts (``done=0``), then at most
    one per :data:`PROGRESS_INTERVAL` (0.1 s), and one when it ends. Without a listener the items
    are passed through untouched.

    Parameters
    ----------
    iterable
        The loop's items.
    step
        What is being done, as shown next to the progress bar (e.g. ``"raster population.tif"``).
    total
        Number of items; default ``len(iterable)`` when it has one, else unknown (None).
    unit
        Name of one item (``"block"``, ``"unit"``, ``"cell"``).

    Examples
    --------
    >>> got = []
    >>> with listen(got.append):
    ...     items = list(progress(["a", "b"], step="read", unit="file"))
    >>> items, [(e["done"], e["total"]) for e in got]
    (['a', 'b'], [(0, 2), (2, 2)])
    """
    if not _LISTENERS.get():
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    done = 0
    emit("progress", step=step, done=0, total=total, unit=unit)
    last = time.monotonic()
    try:
        for item in iterable:
            yield item
            done += 1
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL:
                last = now
                emit("progress", step=step, done=done, total=total, unit=unit)
    finally:
        emit("progress", step=step, done=done, total=total, unit=unit)


@contextlib.contextmanager
def capture_warnings(category: type[Warning] | None = None) -> Iterator[None]:
    """Turn warnings of ``category`` raised inside the block into ``warning`` events, once each.

    Each distinct (category, message) is reported once however often and from wherever it is
    raised. With no listener the warning is shown the usual way (still once). Other warnings are
    left alone.

    Parameters
    ----------
    category
        The warning class to capture; default :class:`geopipe.errors.GeopipeWarning` (and its
        subclasses).

    Examples
    --------
    >>> import warnings
    >>> from geopipe.errors import GeopipeWarning
    >>> got = []
    >>> with listen(got.append), capture_warnings():
    ...     for _ in range(4):
    ...         warnings.warn("1 of 66 rows left out", GeopipeWarning, stacklevel=1)
    >>> [e["message"] for e in got]
    ['1 of 66 rows left out']
    """
    if category is None:
        from geopipe.errors import GeopipeWarning

        category = GeopipeWarning
    seen: set[tuple[str, str]] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", category)  # every occurrence reaches us; we dedupe
        original = warnings.showwarning

        def show(message, cat, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            if not issubclass(cat, category):
                return original(message, cat, filename, lineno, file, line)
            key = (cat.__name__, str(message))
            if key in seen:
                return None
            seen.add(key)
            if not _LISTENERS.get():
                return original(message, cat, filename, lineno, file, line)
            emit(
                "warning",
                message=str(message),
                category=cat.__name__,
                source=f"{filename}:{lineno}",
            )
            return None

        warnings.showwarning = show
        yield
