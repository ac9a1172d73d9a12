"""Many countries on every engine: per-country cost and peak memory (issue 14's scaling series).

Synthetic countries side by side (:mod:`benchmarks.synthetic`: each ``N x N`` pixels of 3″
(~100 m, default ``N = 10,000``, ``GEOPIPE_BENCH_SCALE_N``), 500 districts under 20 provinces,
20,000 health facilities, 20,000 schools, wealth and speed tiles, a walking friction surface),
run with the steps and indicators of ``pipelines/sample.yaml`` as one multi-country pipeline.
For each number of countries (``GEOPIPE_BENCH_SCALE_COUNTRIES``, default ``1,4,16``) and engine
(``GEOPIPE_BENCH_SCALE_ENGINES``, default ``local,processes,dask``; two workers), each in a fresh
interpreter so that no case inherits the memory, threads or engines of the one before, it measures the
wall time, the time per country and the peak memory — of this process, and of this process and
all its children together (pool workers, Dask nanny and worker processes), sampled every 0.2 s
with psutil. Every engine's ``fact_indicator`` is checked equal to the local engine's.
Results go to ``benchmarks/results/latest.json`` under ``"scaling"`` and the plot to
``docs/img/scaling.png``. The countries are written once under ``GEOPIPE_BENCH_SCALE_DIR``
(default: a folder in the system's temporary directory) and reused when present.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

N = int(os.environ.get("GEOPIPE_BENCH_SCALE_N", "10000"))
COUNTRIES = [int(c) for c in os.environ.get("GEOPIPE_BENCH_SCALE_COUNTRIES", "1,4,16").split(",")]
ENGINES = os.environ.get("GEOPIPE_BENCH_SCALE_ENGINES", "local,processes,dask").split(",")
HERE = Path(__file__).resolve().parent
PLOT = HERE.parent / "docs" / "img" / "scaling.png"


class PeakMemory:
    """Peak RSS (MB) of this process and of its whole process tree, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        import psutil

        self._me, self._every = psutil.Process(), every
        self.parent_mb = self.tree_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                own = self._me.memory_info().rss
                kids = 0
                for child in self._me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        kids += child.memory_info().rss
            except psutil.Error:
                continue
            self.parent_mb = max(self.parent_mb, own / 2**20)
            self.tree_mb = max(self.tree_mb, (own + kids) / 2**20)
            self._stop.wait(self._every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def make_countries(root: Path, n: int) -> list[str]:
    """``n`` synthetic countries under ``root`` (made once, reused), their ISO3-like codes."""
    from benchmarks.synthetic import make_country

    isos = [f"X{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(n)]
    for k, iso in enumerate(isos):
        if not (root / iso / "done").is_file():
            make_country(root, iso, k, N, np.random.default_rng(1400 + k))
            (root / iso / "done").write_text("ok\n")
    return isos


def plot(results: list[dict]) -> None:
    """Seconds per country and peak memory against the number of countries, per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for engine in ENGINES:
        rows = [r for r in results if r["engine"] == engine]
        xs = [r["countries"] for r in rows]
        ax1.plot(xs, [r["per_country_s"] for r in rows], "o-", label=engine)
        ax2.plot(xs, [r["peak_tree_mb"] for r in rows], "o-", label=engine)
    for ax, label in ((ax1, "seconds per country"), (ax2, "peak memory, all processes (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(COUNTRIES, [str(c) for c in COUNTRIES])
        ax.set_xlabel("countries in the run")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    ax1.legend()
    fig.suptitle(f"geopipe, synthetic {N:,}² countries with the sample's indicators, 2 cores")
    fig.tight_layout()
    PLOT.parent.mkdir(exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def run_case(root: Path, isos: list[str], engine: str) -> dict:
    """One run of ``isos`` on ``engine`` in this process: wall time and peak memory.

    Called in a fresh interpreter per case (:func:`main`), so that no case inherits the memory,
    threads or imported engines of the one before it.
    """
    import geopipe as gp
    from benchmarks.synthetic import pipeline_config
    from geopipe.pipeline.engines import close_clients

    n = len(isos)
    out = root / f"out_{n}_{engine}"
    p = gp.Pipeline.from_dict(pipeline_config(root, isos, out, name=f"scaling{n}"))
    t = time.perf_counter()
    with warnings.catch_warnings(), PeakMemory() as mem:
        warnings.simplefilter("ignore", gp.GeopipeWarning)
        gp.run_pipeline(p, output=out, engine=engine, workers=2, partition_level=1, force=True)
        if engine != "local":
            close_clients()  # the workers' memory is counted until they are gone
    wall = time.perf_counter() - t
    return {
        "countries": n,
        "engine": engine,
        "wall_s": round(wall, 2),
        "per_country_s": round(wall / n, 2),
        "peak_parent_mb": round(mem.parent_mb),
        "peak_tree_mb": round(mem.tree_mb),
    }


def machine_probe_s() -> float:
    """Seconds for 10⁷ pure-Python additions, before each case: the machine's speed drifts
    (a shared virtual machine), and this says by how much between cases of one series."""
    t = time.perf_counter()
    total = 0
    for i in range(10**7):
        total += i
    return round(time.perf_counter() - t, 2)


def _case_in_fresh_process(root: Path, isos: list[str], engine: str) -> dict:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; from pathlib import Path; from benchmarks.bench_scaling import run_case; "
        "print('RESULT', json.dumps(run_case(Path(sys.argv[1]), sys.argv[2].split(','), "
        "sys.argv[3])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root), ",".join(isos), engine],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"{engine} on {len(isos)} countries failed:\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    """Run the series (each case in a fresh process), print one table, record the results and
    draw the plot."""
    import pandas as pd

    from benchmarks._common import save_result

    root = Path(
        os.environ.get(
            "GEOPIPE_BENCH_SCALE_DIR", Path(tempfile.gettempdir()) / f"geopipe-scaling-{N}"
        )
    )
    t0 = time.perf_counter()
    isos = make_countries(root, max(COUNTRIES))
    print(
        f"bench_scaling: {len(isos)} synthetic countries of {N:,}² pixels, 500 districts, 20,000 "
        f"health facilities and 20,000 schools each (ready in {time.perf_counter() - t0:.0f} s); "
        "each case in a fresh process"
    )
    print(
        f"{'countries':>9} {'engine':>10} {'wall s':>8} {'s/country':>10} {'parent MB':>10} {'all MB':>8} {'probe s':>8}"
    )
    results, reference = [], {}
    for n in COUNTRIES:
        for engine in ENGINES:
            probe = machine_probe_s()
            row = _case_in_fresh_process(root, isos[:n], engine)
            row["probe_s"] = probe
            results.append(row)
            print(
                f"{n:>9} {engine:>10} {row['wall_s']:>8.1f} {row['per_country_s']:>10.2f} "
                f"{row['peak_parent_mb']:>10.0f} {row['peak_tree_mb']:>8.0f} {probe:>8.2f}",
                flush=True,
            )
            fact = pd.read_parquet(root / f"out_{n}_{engine}" / "fact_indicator.parquet")
            fact = fact.sort_values(["ucode", "indicator_id"])
            ref = reference.setdefault(n, fact)
            assert (
                ref["value"].reset_index(drop=True).equals(fact["value"].reset_index(drop=True))
            ), f"{engine} differs from {ENGINES[0]} at {n} countries"
    summary = []
    for n in COUNTRIES:
        local = next((r for r in results if r["countries"] == n and r["engine"] == "local"), None)
        for r in results:
            if local and r["countries"] == n and r is not local:
                summary.append(
                    f"{n} countries: {r['engine']} is {local['wall_s'] / r['wall_s']:.2f}x as fast as local"
                )
    for engine in ENGINES:
        rows = [r for r in results if r["engine"] == engine]
        if len(rows) > 1:
            spread = max(r["per_country_s"] for r in rows) / min(r["per_country_s"] for r in rows)
            summary.append(
                f"{engine}: per-country time varies by {100 * (spread - 1):.0f} % over {[r['countries'] for r in rows]} countries"
            )
    print("\n".join(summary))
    save_result(
        "scaling",
        {
            "n_pixels": N,
            "countries": COUNTRIES,
            "engines": ENGINES,
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "results": results,
            "summary": summary,
        },
    )
    plot(results)


if __name__ == "__main__":
    main()
