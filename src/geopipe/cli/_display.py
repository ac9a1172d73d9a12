"""Front ends for run events: progress bars (terminal, notebook), text lines and JSON lines.

Each front end is a callable ``sink(event)`` to pass to :func:`geopipe.events.listen`, with a
``close()`` that ends its bars. The bars use tqdm (``tqdm.notebook`` in Jupyter when ipywidgets is
installed) and appear only for steps that take longer than :data:`BAR_DELAY` seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from geopipe import events

__all__ = ["JsonLines", "ProgressBars", "TextLines", "show_progress"]

#: a step's bar appears once it has run this long (seconds; GEOPIPE_PROGRESS_DELAY overrides)
BAR_DELAY = float(os.environ.get("GEOPIPE_PROGRESS_DELAY", "1.0"))
#: JSON logs write a loop's progress at most this often (seconds), plus its first and last event
JSON_PROGRESS_INTERVAL = 2.0


class ProgressBars:
    """One tqdm bar per running step (elapsed time) and per ``progress`` loop (done / total).

    A bar shows after :data:`BAR_DELAY` seconds, so quick steps print nothing; a step that was
    shown leaves one line ``<step>  <seconds> s`` when it ends.
    """

    def __init__(self, file: TextIO | None = None, *, notebook: bool = False) -> None:
        if notebook:
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        self._tqdm = tqdm
        self._file = file if file is not None else sys.stderr
        self._steps: dict[str, Any] = {}
        self._loops: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        # the terminal's size, or 80 x 24 where it reports none (0 x 0 would draw empty bars)
        self._size = shutil.get_terminal_size()

    def _bar(self, desc: str, total: int | None, unit: str) -> Any:
        fmt = None if total else "{desc}: {elapsed}"
        return self._tqdm(
            total=total,
            desc=desc,
            unit=unit,
            delay=BAR_DELAY,
            leave=False,
            file=self._file,
            bar_format=fmt,
            ncols=min(self._size.columns, 120),
            nrows=self._size.lines,
        )

    def _tick(self) -> None:  # refresh the elapsed time of steps that report no progress
        while not self._stop.wait(0.5):
            with self._lock:
                for bar in (*self._steps.values(), *self._loops.values()):
                    bar.update(0)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        with self._lock:
            if kind == "step_start":
                self._end(self._steps, event["step"])
                self._steps[event["step"]] = self._bar(event["step"], None, "s")
                if self._ticker is None:
                    self._ticker = threading.Thread(target=self._tick, daemon=True)
                    self._ticker.start()
            elif kind == "progress":
                self._progress(event)
            elif kind == "step_end":
                for name in list(self._loops):
                    self._end(self._loops, name)
                bar = self._steps.get(event["step"])
                shown = bar is not None and bar.last_print_t >= bar.start_t + BAR_DELAY
                self._end(self._steps, event["step"])
                if shown:  # a step long enough to have had a bar leaves one line
                    line = f"{event['step']:<24} {event['seconds']:8.1f} s"
                    self._tqdm.write(line, file=self._file)
            elif kind == "run_end":
                self._close()

    def _progress(self, event: dict[str, Any]) -> None:
        step, done, total = event["step"], int(event["done"]), event.get("total")
        bar = self._loops.get(step)
        if bar is None or done < bar.n:  # a new loop (or the same one again)
            self._end(self._loops, step)
            bar = self._loops[step] = self._bar(step, total, event.get("unit", "it"))
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    @staticmethod
    def _end(bars: dict[str, Any], name: str) -> None:
        bar = bars.pop(name, None)
        if bar is not None:
            bar.close()

    def _close(self) -> None:
        self._stop.set()
        for bars in (self._loops, self._steps):
            for name in list(bars):
                self._end(bars, name)

    def close(self) -> None:
        """End every bar and the refresh thread."""
        with self._lock:
            self._close()


class TextLines:
    """Warnings as ``warning: <message>`` lines on stderr (each distinct message once)."""

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file if file is not None else sys.stderr

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "warning":
            line = f"warning: {event['message']}"
            tqdm = sys.modules.get("tqdm")
            if tqdm is not None:  # bars may be on screen: tqdm clears and redraws them
                tqdm.tqdm.write(line, file=self._file)
            else:
                print(line, file=self._file, flush=True)

    def close(self) -> None:
        """Nothing to end."""


class JsonLines:
    """One JSON object per event (one line each) for schedulers; progress thinned out."""

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file if file is not None else sys.stderr
        self._last: dict[str, float] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "progress":
            now = time.monotonic()
            last = self._last.get(event["step"])
            final = event.get("total") is not None and event["done"] >= event["total"]
            first = event["done"] == 0
            if not (first or final or last is None or now - last >= JSON_PROGRESS_INTERVAL):
                return
            self._last[event["step"]] = now
        self._file.write(json.dumps(event, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Nothing to end."""


class Fanout:
    """Several sinks as one."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, event: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(event)

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            sink.close()


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None  # type: ignore[attr-defined]
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


@contextlib.contextmanager
def show_progress(*, warnings: bool = True) -> Iterator[None]:
    """Show progress bars (and each distinct warning once) for the runs inside the block.

    In Jupyter the bars are notebook widgets when ``ipywidgets`` is installed, text otherwise;
    in a terminal they are text bars on stderr. A bar appears only for a step that takes longer
    than about a second.

    Parameters
    ----------
    warnings
        Also collect :class:`~geopipe.errors.GeopipeWarning` warnings and show each distinct
        message once.

    Examples
    --------
    >>> import geopipe as gp
    >>> with gp.show_progress():  # doctest: +SKIP
    ...     result = gp.run_pipeline("pipelines/sample.yaml")
    """
    notebook = False
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401

            notebook = True
        except ImportError:
            notebook = False
    bars = ProgressBars(notebook=notebook)
    sink = Fanout(bars, TextLines() if warnings else None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(events.listen(sink))
        if warnings:
            stack.enter_context(events.capture_warnings())
        stack.callback(sink.close)
        yield
