"""``geopipe run CONFIG``: run a pipeline and write its run folder, for people and for schedulers."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from . import _common


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``run``."""
    parser = _common.add_command(
        sub,
        "run",
        help="run a pipeline config and write its run folder",
        description=(
            "Run a pipeline and write its run folder atomically (a failed run leaves the previous\n"
            "outputs untouched). Unchanged inputs and parameters: 'up to date', nothing is redone.\n"
            "Progress bars on a terminal; --log-format json for schedulers. Exit codes: 0 done or\n"
            "up to date, 1 quality gate failed, 2 config, 3 input, 4 output, 5 partial."
        ),
        example=(
            "geopipe run pipelines/sample.yaml --output out/rwa --force\n"
            "geopipe run pipelines/sample.yaml --log-format json 2> run.jsonl"
        ),
    )
    _common.add_config(parser)
    parser.add_argument("--output", type=Path, help="output folder (default: the config's output)")
    parser.add_argument(
        "--force", action="store_true", help="rebuild even when inputs are unchanged"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="STEP",
        help="run only this step (and what it needs); repeat for several",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "processes", "dask"),
        default="local",
        help="where the pixel steps run: in process (default), a process pool, or Dask",
    )
    parser.add_argument("--workers", type=int, help="pool or local Dask cluster size")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://...)")
    parser.add_argument(
        "--partition-level", type=int, help="partition the units by their admin unit at this level"
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        help="budget of one partition in MB (raster windows + pixel tables; default 1024)",
    )
    _common.add_output_options(parser)
    parser.set_defaults(func=main)


class _RunLog:
    """Passes events to the display; adds run_start / run_end when the runner does not emit them."""

    def __init__(self, sink: Any, config: Path) -> None:
        self.sink, self.config, self.run = sink, config, config.stem
        self.seen: set[str] = set()

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.seen and event["event"] != "run_start":
            start = {"event": "run_start", "time": event["time"], "run": self.run}
            self.sink({**start, "config": str(self.config)})
            self.seen.add("run_start")
        self.seen.add(event["event"])
        self.sink(event)


def _sink(args: argparse.Namespace) -> Any:
    from ._display import Fanout, JsonLines, ProgressBars, TextLines

    if args.log_format == "json":
        return JsonLines()
    bars = None
    if sys.stderr.isatty() and not args.quiet:
        try:
            bars = ProgressBars()
        except ImportError:  # tqdm missing (a broken install): run without bars
            bars = None
    return Fanout(bars, TextLines())


def _only_kwargs(only: list[str] | None) -> dict[str, Any]:
    if not only:
        return {}
    import inspect

    from geopipe.errors import ConfigError, problem
    from geopipe.pipeline import run_pipeline

    if "only" not in inspect.signature(run_pipeline).parameters:
        raise ConfigError(
            problem(
                "--only",
                "is not supported by this version's pipeline runner",
                "run the whole pipeline (leave out --only)",
                where="geopipe run",
            )
        )
    return {"only": list(only)}


def check_writable(out_dir: Path) -> None:
    """Raise OutputError unless ``out_dir`` can be created or replaced (checked before any work).

    The run writes a staging folder next to ``out_dir`` and swaps it in, so the nearest existing
    ancestor must be a writable folder.
    """
    import os

    from geopipe.errors import OutputError, problem

    target = out_dir.resolve()
    if target.exists() and not target.is_dir():
        issue = "exists and is not a folder"
    else:
        parent = target.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            issue = f"cannot be created: '{parent}' is a file, not a folder"
        elif not os.access(parent, os.W_OK | os.X_OK):
            issue = f"cannot be written: no write permission in '{parent}'"
        else:
            return
    raise OutputError(
        problem(f"output folder '{out_dir}'", issue, "pass --output DIR on a writable disk")
    )


def _read_config(args: argparse.Namespace, log: _RunLog) -> Path:
    """Read the config (its errors are the usual ConfigError); name the run; the output folder."""
    from geopipe.config import load_config

    cfg = load_config(args.config)
    log.run = str(cfg.name)
    return args.output if args.output is not None else Path(cfg.output)


def main(args: argparse.Namespace) -> int:
    """Run ``run``; returns the exit code."""
    from geopipe import events
    from geopipe.errors import EXIT_INTERNAL, GeopipeError, exit_code

    sink = _sink(args)
    log = _RunLog(sink, args.config)
    t0 = time.perf_counter()
    result = None
    error: BaseException | None = None
    with events.listen(log), events.capture_warnings():
        try:
            kwargs = _only_kwargs(args.only)
            check_writable(_read_config(args, log))
            from geopipe.pipeline import run_pipeline

            engine = {
                k: v
                for k, v in (
                    ("engine", args.engine if args.engine != "local" else None),
                    ("workers", args.workers),
                    ("scheduler", args.scheduler),
                    ("partition_level", args.partition_level),
                    ("memory_mb", args.memory_mb),
                )
                if v is not None
            }
            result = run_pipeline(
                args.config, output=args.output, force=args.force, **engine, **kwargs
            )
        except BaseException as exc:  # reported in run_end; only GeopipeError is handled here
            error = exc
        finally:
            if error is None:
                code = 0
            elif isinstance(error, KeyboardInterrupt):
                code = 130
            else:
                code = exit_code(error) if isinstance(error, GeopipeError) else EXIT_INTERNAL
            if "run_end" not in log.seen:  # the runner did not say how it ended: say it here
                status = (
                    "failed" if result is None else "up_to_date" if result.up_to_date else "done"
                )
                events.emit(
                    "run_end",
                    status=status,
                    exit_code=code,
                    output=None if result is None else str(result.output),
                    seconds=round(time.perf_counter() - t0, 3),
                    error=None if error is None else f"{type(error).__name__}: {error}",
                )
            sink.close()
    if error is not None and not isinstance(error, GeopipeError):
        raise error  # a bug or Ctrl-C: main() prints the traceback / "interrupted"
    if error is not None:
        if args.log_format == "json":  # the error is in run_end; stderr stays JSON lines
            return code
        return _common.report_error(error, verbose=args.verbose, hint=_common.RUN_HINT)
    if not args.quiet:
        _summary(result)
    return 0


def _summary(result: Any) -> None:
    if result.up_to_date:
        print(f"up to date: {result.output} (inputs and parameters unchanged; --force rebuilds)")
        return
    print(f"wrote {result.output}/")
    for name, rec in result.manifest["outputs"].items():
        rows = f"{rec['rows']:>9,} rows" if rec.get("rows") is not None else ""
        print(f"  {name:<24}{rows}")
    print(f"  {'manifest.json':<24} inputs (sha256), parameters, versions, quality, timings")
    checks = result.manifest.get("quality", {}).get("checks", [])
    warned = sum(1 for c in checks if c.get("level") == "warn")
    print(f"data quality: {len(checks)} checks, {warned} warnings (see quality_report.md)")
