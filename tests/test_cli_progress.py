"""Progress bars on a terminal, none when piped or --quiet; --log-format json for schedulers."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import ROOT, geopipe_cli, sample_config, schools_with_a_bad_row

CONFIG = ROOT / "pipelines" / "sample.yaml"
BAR = re.compile(r"(steps|h3_r7): \d\d:\d\d")  # a step's bar: "<step>: <elapsed>"


def _run_in_pty(*args, timeout=300):
    """Run ``geopipe ARGS`` with stdin/stdout/stderr on a 100x30 pseudo-terminal; (rc, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = dict(
        os.environ,
        GEOPIPE_PROGRESS_DELAY="0.2",  # bars for any step over 0.2 s, whatever the machine's speed
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "geopipe.cli", *map(str, args)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
        close_fds=True,
    )
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), out.decode("utf-8", "replace")


WARNING = "1 of 2754 rows left out"  # read_points raises it once per read of the schools


@pytest.mark.slow
def test_progress_on_a_terminal(tmp_path):
    cfg = sample_config(tmp_path, **schools_with_a_bad_row(tmp_path))
    rc, out = _run_in_pty("run", cfg)
    assert rc == 0, out
    assert out.count(WARNING) == 1, out  # each distinct warning once
    assert BAR.search(out), out  # steps longer than ~1 s showed a bar
    assert re.search(r"(steps|h3_r7) +\d+\.\d s\r?\n", out)  # and left their time
    assert "wrote" in out


def test_no_progress_when_piped(sample_run):
    _, done = sample_run  # `geopipe run` with stdout and stderr captured (pipes)
    assert "wrote" in done.stdout
    assert not BAR.search(done.stderr + done.stdout)
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr


def test_quiet_and_json_never_draw_bars(monkeypatch):
    from geopipe.cli import _display, run

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)

    def sinks(**kw):
        args = argparse.Namespace(**{"quiet": False, "log_format": "text", **kw})
        sink = run._sink(args)
        return [type(s).__name__ for s in getattr(sink, "sinks", [sink])]

    assert "ProgressBars" in sinks()
    assert "ProgressBars" not in sinks(quiet=True)
    assert sinks(log_format="json") == ["JsonLines"]
    assert _display.BAR_DELAY <= 1.0


@pytest.mark.slow
def test_json_log_lines(tmp_path):
    out = tmp_path / "out"
    cfg = sample_config(tmp_path, **schools_with_a_bad_row(tmp_path))
    done = geopipe_cli("run", cfg, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert events[0]["run"] == "sample" and events[0]["config"] == str(cfg)
    assert kinds.count("run_start") == 1 and kinds.count("run_end") == 1
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", e["time"]) for e in events)
    starts = [e["step"] for e in events if e["event"] == "step_start"]
    ends = {e["step"]: e for e in events if e["event"] == "step_end"}
    assert {"read_admin", "steps", "write"} <= set(starts) and set(starts) == set(ends)
    assert all(e["status"] == "computed" and e["seconds"] >= 0 for e in ends.values())
    assert any(e["event"] == "progress" and e["unit"] == "block" for e in events)
    warned = [e for e in events if e["event"] == "warning"]
    assert [WARNING in e["message"] for e in warned] == [True]  # once, though raised twice
    assert warned[0]["category"] == "GeopipeWarning"
    end = events[-1]
    assert end["status"] == "done" and end["exit_code"] == 0 and end["error"] is None
    assert end["output"] == str(out) and end["seconds"] > 0
    assert "wrote" in done.stdout  # people still get the summary on stdout
    # unchanged inputs: up to date, still ending with run_end
    again = geopipe_cli("run", cfg, "--log-format", "json", "--quiet")
    last = json.loads(again.stderr.splitlines()[-1])
    assert again.returncode == 0 and last["status"] == "up_to_date" and again.stdout == ""


def test_progress_bars_render_steps_and_loops(monkeypatch):
    import io

    from geopipe import events
    from geopipe.cli import _display

    monkeypatch.setattr(_display, "BAR_DELAY", 0.0)
    buf = io.StringIO()
    bars = _display.ProgressBars(file=buf)
    bars._size = os.terminal_size((100, 30))
    with events.listen(bars):
        events.emit("step_start", step="measures", kind="stage")
        for _ in events.progress(range(50), step="raster pop.tif", unit="block"):
            time.sleep(0.004)
        events.emit("step_end", step="measures", seconds=1.25, rows=None, status="computed")
        events.emit("run_end", status="done", exit_code=0, output="o", seconds=1.3, error=None)
    text = buf.getvalue()
    assert "raster pop.tif" in text and "/50 " in text and "block" in text
    assert re.search(r"measures +1\.2 s\n", text)


def test_show_progress_listens_only_inside():
    import geopipe as gp
    from geopipe import events

    with gp.show_progress():
        assert events.listening()
    assert not events.listening()


def _fake_runner(monkeypatch, fn):
    import geopipe.pipeline

    monkeypatch.setattr(geopipe.pipeline, "run_pipeline", fn)


def test_runner_events_pass_through_once_and_only_is_passed(monkeypatch, tmp_path, capsys):
    """A runner that emits run_start / run_end itself and takes only=: no duplicates, only= given."""
    from types import SimpleNamespace

    from geopipe import events
    from geopipe.cli import main

    seen = {}

    def runner(config, *, output=None, force=False, only=None):
        seen.update(config=config, output=output, force=force, only=only)
        events.emit("run_start", run="sample", config=str(config))
        with events.listen(lambda e: None):  # nested listeners do not hide events from the CLI
            events.emit("step_start", step="measures", kind="measures")
        events.emit("step_end", step="measures", seconds=0.1, rows=30, status="reused")
        events.emit(
            "run_end", status="up_to_date", exit_code=0, output=str(output), seconds=0.2, error=None
        )
        return SimpleNamespace(up_to_date=True, output=output, manifest={})

    _fake_runner(monkeypatch, runner)
    cfg = sample_config(tmp_path)
    code = main(["run", str(cfg), "--only", "measures", "--only", "h3_r7", "--log-format", "json"])
    assert code == 0
    assert seen["only"] == ["measures", "h3_r7"] and seen["force"] is False
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [e["event"] for e in lines] == ["run_start", "step_start", "step_end", "run_end"]
    assert lines[2]["status"] == "reused" and lines[2]["rows"] == 30


def test_a_crash_still_ends_the_json_log(monkeypatch, tmp_path, capsys):
    from geopipe.cli import main
    from geopipe.errors import EXIT_INTERNAL

    def runner(config, *, output=None, force=False):
        raise KeyError("a bug")

    _fake_runner(monkeypatch, runner)
    code = main(["run", str(sample_config(tmp_path)), "--log-format", "json"])
    err = capsys.readouterr().err
    end = json.loads(next(x for x in err.splitlines() if x.startswith("{") and "run_end" in x))
    assert code == EXIT_INTERNAL == end["exit_code"] and end["status"] == "failed"
    assert "KeyError" in end["error"] and "Traceback" in err
