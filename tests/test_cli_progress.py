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

from conftest import ROOT, geopipe_cli

CONFIG = ROOT / "pipelines" / "sample.yaml"
BAR = re.compile(r"(measures|h3_r7): \d\d:\d\d")  # a step's bar: "<step>: <elapsed>"


def _run_in_pty(*args, timeout=300):
    """Run ``geopipe ARGS`` with stdin/stdout/stderr on a 100x30 pseudo-terminal; (rc, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
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


def test_progress_on_a_terminal(tmp_path):
    rc, out = _run_in_pty("run", CONFIG, "--output", tmp_path / "run")
    assert rc == 0, out
    assert BAR.search(out), out  # steps longer than ~1 s showed a bar
    assert re.search(r"(measures|h3_r7) +\d+\.\d s\r?\n", out)  # and left their time
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


def test_json_log_lines(tmp_path):
    out = tmp_path / "run"
    done = geopipe_cli("run", CONFIG, "--output", out, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("run_start") == 1 and kinds.count("run_end") == 1
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", e["time"]) for e in events)
    starts = [e["step"] for e in events if e["event"] == "step_start"]
    ends = {e["step"]: e for e in events if e["event"] == "step_end"}
    assert {"read_admin", "measures", "write"} <= set(starts) and set(starts) == set(ends)
    assert all(e["status"] == "computed" and e["seconds"] >= 0 for e in ends.values())
    assert any(e["event"] == "progress" and e["unit"] == "block" for e in events)
    end = events[-1]
    assert end["status"] == "done" and end["exit_code"] == 0 and end["error"] is None
    assert end["output"] == str(out) and end["seconds"] > 0
    assert "wrote" in done.stdout  # people still get the summary on stdout
    # unchanged inputs: up to date, still ending with run_end
    again = geopipe_cli("run", CONFIG, "--output", out, "--log-format", "json", "--quiet")
    last = json.loads(again.stderr.splitlines()[-1])
    assert again.returncode == 0 and last["status"] == "up_to_date" and again.stdout == ""
