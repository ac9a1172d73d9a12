"""Benchmark: the Rwanda sample end to end, geopipe against the analyst's status-quo script.

Run ``python -m benchmarks end_to_end`` (or ``make bench``). Back to back, ``REPEATS`` times each
(``GEOPIPE_BENCH_REPEATS``, default 3), in fresh processes: the peer
``benchmarks/peer_status_quo.py`` (geopandas + exactextract + h3-py, no geopipe) and
``geopipe run pipelines/sample.yaml --force --output <tmp>`` (the CLI installed next to this
Python, run with this checkout's ``src/`` first on ``PYTHONPATH``). Prints every wall time, the
medians and the ratio, then checks that both computed the same numbers per district (and for the
H3 r7 fragments) and fails when a measure is outside its tolerance.

Tolerances, per district, relative to geopipe:

* populations (exact coverage-weighted sums on both sides): 0.2 %;
* counts: exact. Both sides count a point in the district whose polygon contains it; they would
  differ only for a point exactly on a district border (``sjoin(predicate="within")`` drops it,
  geopipe gives it to the first district in row order) and the sample has none;
* children in poverty, download speed, population within 5 km: 0.5 %. The peer measures the 5 km
  in UTM 35S, whose scale error over Rwanda is up to 0.2 %; geopipe uses WGS 84 geodesics;
* H3 r7: the fragment count exactly, the population total to 0.2 %.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from benchmarks._common import REPEATS

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "peer_status_quo.py"
CONFIG = ROOT / "pipelines" / "sample.yaml"

# peer column -> geopipe adm2.parquet columns accepted for it (first present wins; "a * b" is a
# product of two columns), tolerance. Edit here when geopipe renames a column; nothing else
# refers to geopipe's indicator names.
MEASURES: dict[str, tuple[tuple[str, ...], float]] = {
    "population_total": (("population_total",), 0.002),
    "population_u18": (("population_u18",), 0.002),
    "population_u5": (("population_u5",), 0.002),
    "health_facilities": (("health_facilities",), 0.0),
    "schools_total": (("schools_total",), 0.0),
    "schools_connected": (("schools_connected",), 0.0),
    "children_in_poverty": (("children_in_poverty",), 0.005),
    "download_mbps_mean": (("download_mbps_mean",), 0.005),
    "population_within_5km_health": (
        (
            "population_within_5km_health",
            "population_within_health",
            "share_population_within_5km_health * population_total",
        ),
        0.005,
    ),
}
DISTRICT_KEY = ("district", "name")  # peer / geopipe column holding the district name
H3_POPULATION = ("population_total", "population_total")  # peer / geopipe fragment column
H3_TOLERANCE = 0.002


def geopipe_values(table: pd.DataFrame, candidates: tuple[str, ...]) -> tuple[str, np.ndarray]:
    """The first of ``candidates`` that ``table`` can give, and its values.

    A candidate is a column name, or ``"a * b"``: the product of two columns (e.g. a published
    share times its denominator, should geopipe stop writing the count itself). Raises a
    KeyError naming every candidate and the table's columns when none is there.

    Examples
    --------
    >>> t = pd.DataFrame({"share": [0.5], "total": [10.0]})
    >>> geopipe_values(t, ("count", "share * total"))
    ('share * total', array([5.]))
    """
    for spec in candidates:
        names = [n.strip() for n in spec.split("*")]
        if all(n in table.columns for n in names):
            values = np.prod([table[n].to_numpy(dtype=float) for n in names], axis=0)
            return spec, values
    raise KeyError(f"geopipe table has none of {list(candidates)}; columns: {list(table.columns)}")


def relative_difference(peer: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """|peer - ours| / |ours| element-wise: 0 where both are equal or both NaN, inf where ours is
    0 and the peer's is not, or where only one side is NaN.

    Examples
    --------
    >>> relative_difference(np.array([1.0, 0.0, 2.0]), np.array([1.0, 0.0, 0.0])).tolist()
    [0.0, 0.0, inf]
    """
    peer, ours = np.asarray(peer, dtype=float), np.asarray(ours, dtype=float)
    diff = np.abs(peer - ours)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(ours))
    rel = np.where(np.isnan(rel), np.inf, rel)  # a value on one side only
    return np.where(np.isnan(peer) & np.isnan(ours), 0.0, rel)


def compare_districts(peer: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """One row per measure: the geopipe column used, max relative difference, tolerance, ok.

    ``peer`` is the peer's ``adm2.csv``, ``ours`` geopipe's ``adm2.parquet``; rows are matched by
    district name and every district must be on both sides.

    Examples
    --------
    >>> peer = pd.DataFrame({"district": ["A"], "population_total": [100.1]})
    >>> ours = pd.DataFrame({"name": ["A"], "population_total": [100.0]})
    >>> compare_districts(peer, ours)[["measure", "ok"]].to_dict("records")  # doctest: +SKIP
    [{'measure': 'population_total', 'ok': True}]
    """
    p = peer.set_index(DISTRICT_KEY[0])
    o = ours.set_index(DISTRICT_KEY[1])
    if set(p.index) != set(o.index):
        raise KeyError(
            f"districts differ: peer only {sorted(set(p.index) - set(o.index))}, "
            f"geopipe only {sorted(set(o.index) - set(p.index))}"
        )
    o = o.loc[p.index]
    rows = []
    for measure, (candidates, tol) in MEASURES.items():
        if measure not in p.columns:
            continue
        col, ours_values = geopipe_values(o, candidates)
        rel = relative_difference(p[measure].to_numpy(), ours_values)
        worst = int(np.argmax(rel))
        rows.append(
            {
                "measure": measure,
                "geopipe_column": col,
                "max_rel_diff": float(rel[worst]),
                "worst_district": str(p.index[worst]),
                "tolerance": tol,
                "ok": bool(rel[worst] <= tol),
            }
        )
    return pd.DataFrame(rows)


def compare_h3(peer: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """Fragment count (exact) and population total (``H3_TOLERANCE``) of the H3 r7 tables.

    Examples
    --------
    >>> a = pd.DataFrame({"population_total": [1.0, 2.0]})
    >>> compare_h3(a, a)["ok"].all()
    np.True_
    """
    pp, op = (float(t[c].sum()) for t, c in zip((peer, ours), H3_POPULATION))
    rel = float(relative_difference(np.array([pp]), np.array([op]))[0])
    return pd.DataFrame(
        [
            {
                "measure": "h3_r7 fragments",
                "peer": len(peer),
                "geopipe": len(ours),
                "max_rel_diff": abs(len(peer) - len(ours)) / max(len(ours), 1),
                "tolerance": 0.0,
            },
            {
                "measure": "h3_r7 population_total",
                "peer": pp,
                "geopipe": op,
                "max_rel_diff": rel,
                "tolerance": H3_TOLERANCE,
            },
        ]
    ).assign(ok=lambda t: t["max_rel_diff"] <= t["tolerance"])


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one subprocess, start-up and imports included.

    The CPU time is less sensitive to other jobs on a shared machine. Raises if the command fails.

    ``src/`` of this checkout goes first on ``PYTHONPATH``, so the CLI runs the geopipe code that
    matches this checkout's ``pipelines/sample.yaml`` (not another checkout's editable install).
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def geopipe_cli() -> str:
    """The ``geopipe`` console script installed next to this Python."""
    exe = Path(sys.executable).parent / "geopipe"
    if not exe.exists():
        raise FileNotFoundError(f"no geopipe CLI at {exe}: pip install -e . into this venv")
    return str(exe)


def check_outputs(peer_out: Path, ours_out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare a peer output folder with a geopipe run folder: (per-district table, H3 table).

    Examples
    --------
    >>> districts, h3 = check_outputs(Path("peer"), Path("out/sample"))  # doctest: +SKIP
    >>> bool(districts["ok"].all() and h3["ok"].all())  # doctest: +SKIP
    True
    """
    districts = compare_districts(
        pd.read_csv(peer_out / "adm2.csv"), gpd.read_parquet(ours_out / "adm2.parquet")
    )
    cells = compare_h3(
        pd.read_parquet(peer_out / "h3_r7.parquet"), pd.read_parquet(ours_out / "h3_r7.parquet")
    )
    return districts, cells


def stage_times(run: Path) -> list[str]:
    """``stage time`` strings from a run's ``manifest.json`` timings (empty if it has none).

    Examples
    --------
    >>> stage_times(Path("out/sample"))  # doctest: +SKIP
    ['h3_r7 4.29', 'measures 2.27', ...]
    """
    manifest = run / "manifest.json"
    timings = json.loads(manifest.read_text()).get("timings", {}) if manifest.is_file() else {}
    flat = {k: v for k, v in timings.items() if isinstance(v, int | float)}
    return [f"{k} {v:.2f}" for k, v in sorted(flat.items(), key=lambda kv: -kv[1])]


def main() -> None:
    """Time the peer and geopipe back to back, print medians and the ratio, check the numbers."""
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        peer_out, ours_out = Path(tmp) / "peer", Path(tmp) / "geopipe"
        peer_cmd = [sys.executable, str(PEER), "--output", str(peer_out)]
        ours_cmd = [geopipe_cli(), "run", str(CONFIG), "--force", "--output", str(ours_out)]
        times: dict[str, list[tuple[float, float]]] = {"peer": [], "geopipe": []}
        for _ in range(REPEATS):
            times["peer"].append(_timed(peer_cmd))
            times["geopipe"].append(_timed(ours_cmd))
        districts, cells = check_outputs(peer_out, ours_out)
        stages = stage_times(ours_out)
    print(f"bench_end_to_end: Rwanda sample, {REPEATS} runs each, back to back, per process")
    med: dict[str, dict[str, float]] = {}
    for k, v in times.items():
        walls, cpus = [w for w, _ in v], [c for _, c in v]
        med[k] = {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}
        runs = {
            "wall": ", ".join(f"{t:.2f}" for t in walls),
            "cpu": ", ".join(f"{t:.2f}" for t in cpus),
        }
        print(
            f"  {k:8} wall median {med[k]['wall']:6.2f} s (runs: {runs['wall']})"
            f"  cpu median {med[k]['cpu']:6.2f} s (runs: {runs['cpu']})"
        )
    for kind in ("wall", "cpu"):
        ratio = med["geopipe"][kind] / med["peer"][kind]
        print(f"  {kind}: geopipe / peer {ratio:.2f} (geopipe is {1 / ratio:.2f}x as fast)")
    if stages:
        print("  geopipe stages, last run (manifest.json timings, s): " + ", ".join(stages))
    print("per district, peer vs geopipe adm2.parquet (max relative difference over districts):")
    print(districts.to_string(index=False))
    print("H3 r7 fragments:")
    print(cells.to_string(index=False))
    bad = [*districts.loc[~districts["ok"], "measure"], *cells.loc[~cells["ok"], "measure"]]
    if bad:
        raise AssertionError(f"peer and geopipe differ beyond tolerance: {bad}")
    print("all measures equal within tolerance")


if __name__ == "__main__":
    main()
