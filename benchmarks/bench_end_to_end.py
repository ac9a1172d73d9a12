"""Benchmark: end to end, geopipe against the analyst's status-quo script, with the numbers checked.

Run ``python -m benchmarks end_to_end`` (or ``make bench``). Two cases, each back to back in
fresh processes (start-up and imports count on both sides):

* **sample**: the Rwanda sample, ``REPEATS`` runs each (``GEOPIPE_BENCH_REPEATS``, default 3):
  the peer ``benchmarks/peer_status_quo.py`` against
  ``geopipe run pipelines/sample.yaml --force``;
* **synthetic**: one synthetic country of ``GEOPIPE_BENCH_E2E_N`` square pixels (default 10,000:
  10⁸ pixels, 500 districts, 20,000 facilities and schools; ``benchmarks/synthetic.py``),
  ``GEOPIPE_BENCH_E2E_REPEATS`` runs each (default 1): the peer against ``geopipe run <config>
  --force --engine processes --workers 2 --partition-level 1``.

Both run the CLI installed next to this Python with this checkout's ``src/`` first on
``PYTHONPATH``. Printed: every wall and CPU time (user + system, the process and the children it
waited for), peak memory (``ru_maxrss`` of the process: the largest single process of its tree),
medians and ratios. Then **every indicator at every level and on the H3 fragments** is compared
(``TOLERANCES``); the benchmark fails if one is outside. The results go to
``benchmarks/results/latest.json`` under ``"end_to_end"``.

geopipe suppresses small counts of children (``quality.k``, docs/quality.md): a value geopipe
published as null but the peer computed is *skipped* (and counted) when geopipe flagged it as
suppressed (``fact_indicator.suppressed`` for admin units) or, for H3 fragments (which carry no
flag), when the indicator is one suppression can hide (``SUPPRESSIBLE``). Any other null on one
side only is a failure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import REPEATS

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "peer_status_quo.py"
CONFIG = ROOT / "pipelines" / "sample.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
E2E_N = int(os.environ.get("GEOPIPE_BENCH_E2E_N", "10000"))
E2E_REPEATS = int(os.environ.get("GEOPIPE_BENCH_E2E_REPEATS", "1"))
SYNTHETIC_ENGINE = ["--engine", "processes", "--workers", "2", "--partition-level", "1"]

# indicator -> (tolerance, scale, why), for every level and grid. A value passes when
# |peer - geopipe| <= tolerance x |geopipe| (scale None), <= tolerance x the unit's `scale`
# column, or <= tolerance ("absolute"). Counts and shares over a threshold differ by the people
# whose pixel moves across it: they are measured against the unit's people, not their own value
# (a fragment with 2 % of its people beyond 60 min would otherwise fail for one pixel).
_EXACT_SUM = "exact coverage-weighted sums on both sides; the peer's bands are float32 (6e-8)"
_TT = (
    "the peer prices moves with one cell height and width (OnStove), geopipe per row: "
    "minutes differ by <= 0.06 % over Rwanda and <= 0.3 % over 8° of latitude, which moves "
    "whole 1 km cells across the 60 min threshold (measured: 0.2 % of a Rwanda district's "
    "people, 0.54 % of a synthetic district's at 4° from the grid's middle row)"
)
TOLERANCES: dict[str, tuple[float, str | None, str]] = {
    "population_total": (1e-6, None, _EXACT_SUM),
    "population_u18": (1e-6, None, _EXACT_SUM),
    "population_u5": (1e-6, None, _EXACT_SUM),
    "children_in_poverty": (1e-6, None, _EXACT_SUM + " (tile values at pixel centres)"),
    "child_poverty_rate": (1e-6, None, "ratio of two exact sums"),
    "wealth_index_mean": (
        1e-4,
        None,
        "mean of an index crossing 0: float32 u18 x rwi cancels (measured 3e-6)",
    ),
    "download_mbps_mean": (1e-6, None, "ratio of two exact sums"),
    "download_mbps_tests_mean": (
        1e-6,
        None,
        "tile area shares: the peer in EPSG:6933 (equal-area), geopipe geodesic",
    ),
    "share_population_broadband": (1e-6, None, "ratio of two exact sums"),
    "schools_total": (0.0, None, "point counts, exact (no sample point is on a border)"),
    "schools_connected": (0.0, None, "point counts, exact"),
    "schools_connected_share": (0.0, None, "ratio of exact counts"),
    "children_without_connectivity": (1e-6, None, _EXACT_SUM),
    "health_facilities": (0.0, None, "point counts, exact"),
    "share_population_within_5km_health": (
        1e-6,
        "absolute",
        "both WGS 84 geodesics (pyproj); the peer tries the four nearest facilities by chord",
    ),
    "children_beyond_5km_health": (1e-6, "population_u18", "as above"),
    "distance_to_health_km_mean": (
        1e-4,
        None,
        "the peer's candidate search could miss the nearest facility (two candidates: 15 of "
        "473k sample pixels, <= 42 m; four: none in 2.25 M pixels)",
    ),
    "share_population_within_60min_health": (1e-2, "absolute", _TT),
    "children_beyond_60min_health": (1e-2, "population_u18", _TT),
    "travel_time_to_health_min_mean": (5e-3, None, _TT),
    "schools_per_10k_children": (1e-6, None, "ratio of an exact count and an exact sum"),
}
# On grids, whole friction cells (1 km) share one travel time, so a cell whose time lies within
# the peer's error of 60 min moves all its people across the threshold at once, and a fragment
# of a few cells can change by most of its population (sample: 6 of 5,465 fragments beyond
# 0.5 %). For these the grid check is the people moved, summed over all fragments, as a share of
# everyone (sample: 5e-5): sum |peer - geopipe| x weight / sum weight <= GRID_L1_TOLERANCE.
GRID_L1 = {
    "share_population_within_60min_health": "population_total",
    "children_beyond_60min_health": None,  # a count: its own differences, over population_u18
}
GRID_L1_TOLERANCE = 1e-3

# what small-count suppression can hide (docs/quality.md): sensitive sums, ratios over them,
# means weighted by them
SUPPRESSIBLE = {
    "population_u18",
    "population_u5",
    "children_in_poverty",
    "children_without_connectivity",
    "children_beyond_5km_health",
    "children_beyond_60min_health",
    "child_poverty_rate",
    "schools_per_10k_children",
    "wealth_index_mean",
}


def within_tolerance(
    peer: np.ndarray, ours: np.ndarray, tol: float, scale: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per value: the difference measured as the tolerance measures it, and whether it passes.

    ``|peer - ours| / |ours|`` (or ``/ scale``); a zero difference is 0 whatever the divisor.
    Compares only values present on both sides; NaN on both sides is equal.

    Examples
    --------
    >>> d, ok = within_tolerance(np.array([1.0, 2.0]), np.array([1.0, 2.1]), 0.01)
    >>> ok.tolist()
    [True, False]
    """
    peer, ours = np.asarray(peer, dtype=float), np.asarray(ours, dtype=float)
    div = np.abs(ours) if scale is None else np.abs(np.asarray(scale, dtype=float))
    diff = np.abs(peer - ours)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / div)
    rel = np.where(
        np.isnan(peer) & np.isnan(ours), 0.0, np.nan_to_num(rel, nan=np.inf, posinf=np.inf)
    )
    return rel, rel <= tol


def compare_level(
    peer: pd.DataFrame,
    ours: pd.DataFrame,
    level: str,
    keys: list[str],
    suppressed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per indicator of ``TOLERANCES``: values compared, skipped, worst difference, ok.

    ``peer`` and ``ours`` are one level's tables, matched on ``keys`` (every unit must be on
    both sides). ``suppressed``: a boolean frame like ``ours`` (same keys as index, indicator
    columns) saying which geopipe nulls are suppressed values; without it (H3), a null is taken
    as suppressed when the indicator is in ``SUPPRESSIBLE``.

    Examples
    --------
    >>> p = pd.DataFrame({"name": ["A"], "population_total": [100.0]})
    >>> compare_level(p, p, "adm2", ["name"]).loc[0, ["indicator", "ok"]].tolist()
    ['population_total', True]
    """
    p, o = peer.set_index(keys), ours.set_index(keys)
    if set(p.index) != set(o.index):
        only_p, only_o = p.index.difference(o.index), o.index.difference(p.index)
        raise KeyError(
            f"{level}: units differ: peer only {list(only_p[:5])} ({len(only_p)}), "
            f"geopipe only {list(only_o[:5])} ({len(only_o)})"
        )
    o = o.loc[p.index]
    rows = []
    for ind, (tol, scale_col, _why) in TOLERANCES.items():
        if ind not in p.columns and ind not in o.columns:
            continue
        for side, t in (("peer", p), ("geopipe", o)):
            if ind not in t.columns:
                raise KeyError(f"{level}: {side} table has no column {ind!r}")
        pv, ov = p[ind].to_numpy(dtype=float), o[ind].to_numpy(dtype=float)
        if suppressed is not None and ind in suppressed.columns:
            hidden = suppressed[ind].reindex(p.index).fillna(False).to_numpy(dtype=bool)
        else:
            hidden = np.full(len(ov), ind in SUPPRESSIBLE and suppressed is None)
        skip = np.isnan(ov) & ~np.isnan(pv) & hidden
        scale = None
        if scale_col == "absolute":
            scale = np.ones(len(pv))
        elif scale_col is not None:
            scale = p[scale_col].to_numpy(dtype=float)
        rel, ok = within_tolerance(pv, ov, tol, scale)
        rel, ok = np.where(skip, 0.0, rel), ok | skip
        worst = int(np.argmax(rel)) if len(rel) else 0
        rule = "per unit"
        if level.startswith("h3") and ind in GRID_L1:
            w = GRID_L1[ind]
            diff = np.abs(pv - ov) * (p[w].to_numpy(dtype=float) if w else 1.0)
            total = p[w or "population_u18"].to_numpy(dtype=float).sum()
            l1 = float(np.nansum(np.where(skip, 0.0, diff)) / total) if total > 0 else 0.0
            ok = np.array([l1 <= GRID_L1_TOLERANCE and not np.isinf(rel).any()])
            rule, tol = f"all fragments (max per fragment {rel[worst]:.2g})", GRID_L1_TOLERANCE
            rel, worst = np.array([l1]), 0
        rows.append(
            {
                "level": level,
                "indicator": ind,
                "compared": int((~skip).sum()),
                "suppressed_skipped": int(skip.sum()),
                "max_diff": float(rel[worst]) if len(rel) else 0.0,
                "worst_unit": str(p.index[worst]) if len(rel) and rule == "per unit" else "",
                "rule": rule,
                "tolerance": tol,
                "ok": bool(ok.all()),
            }
        )
    return pd.DataFrame(rows)


def _suppressed_flags(ours_out: Path) -> pd.DataFrame:
    """``fact_indicator``'s suppressed flags, wide: one row per ucode, one column per id."""
    fact = pd.read_parquet(ours_out / "fact_indicator.parquet")
    return fact.pivot_table(
        index="ucode", columns="indicator_id", values="suppressed", aggfunc="any"
    ).astype(bool)


def check_outputs(peer_out: Path, ours_out: Path) -> pd.DataFrame:
    """Compare a peer output folder with a geopipe run folder: every indicator, every level.

    Admin levels are matched by unit name, H3 fragments by ``cell_id`` and district name.

    Examples
    --------
    >>> res = check_outputs(Path("out/peer"), Path("out/sample"))  # doctest: +SKIP
    >>> bool(res["ok"].all())  # doctest: +SKIP
    True
    """
    flags = _suppressed_flags(ours_out)
    tables = []
    levels = sorted(p.stem for p in peer_out.glob("adm*.parquet"))
    names = {}
    for lv in levels:
        ours = pd.read_parquet(ours_out / f"{lv}.parquet")
        names.update(dict(zip(ours["ucode"], ours["name"])))
        sup = flags.reindex(ours["ucode"]).set_axis(ours["name"], axis=0)
        peer = pd.read_parquet(peer_out / f"{lv}.parquet")
        tables.append(compare_level(peer, ours, lv, ["name"], sup))
    for grid in sorted(p.stem for p in peer_out.glob("h3_r*.parquet")):
        ours = pd.read_parquet(ours_out / f"{grid}.parquet")
        ours["district"] = ours["ucode"].map(names)
        peer = pd.read_parquet(peer_out / f"{grid}.parquet")
        tables.append(compare_level(peer, ours, grid, ["cell_id", "district"]))
    return pd.concat(tables, ignore_index=True)


def _env() -> dict[str, str]:
    paths = (str(ROOT / "src"), os.environ.get("PYTHONPATH"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def timed(cmd: list[str]) -> dict[str, float]:
    """Wall and CPU seconds and peak memory (MB) of one subprocess; raises if it fails.

    CPU is user + system of the process and of the children it waited for (worker processes);
    the peak is ``ru_maxrss`` from ``wait4``: the largest single process of its tree.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=_env())
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
    }


def geopipe_cli() -> str:
    """The ``geopipe`` console script installed next to this Python."""
    exe = Path(sys.executable).parent / "geopipe"
    if not exe.exists():
        raise FileNotFoundError(f"no geopipe CLI at {exe}: pip install -e . into this venv")
    return str(exe)


def run_case(
    name: str, peer_cmd: list[str], ours_cmd: list[str], repeats: int
) -> dict[str, object]:
    """Time both sides back to back ``repeats`` times; medians and geopipe / peer ratios."""
    runs: dict[str, list[dict[str, float]]] = {"peer": [], "geopipe": []}
    for _ in range(repeats):
        runs["peer"].append(timed(peer_cmd))
        runs["geopipe"].append(timed(ours_cmd))
    med = {
        side: {k: statistics.median(r[k] for r in v) for k in ("wall_s", "cpu_s", "peak_mb")}
        for side, v in runs.items()
    }
    speedup = {k: med["peer"][k] / med["geopipe"][k] for k in ("wall_s", "cpu_s")}
    return {"case": name, "repeats": repeats, "runs": runs, "median": med, "speedup": speedup}


def report(case: dict, checks: pd.DataFrame) -> None:
    print(f"bench_end_to_end: {case['case']}, {case['repeats']} run(s) each, back to back")
    for side, runs in case["runs"].items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
        cpus = ", ".join(f"{r['cpu_s']:.1f}" for r in runs)
        m = case["median"][side]
        print(
            f"  {side:8} wall {m['wall_s']:7.1f} s (runs {walls})  cpu {m['cpu_s']:7.1f} s "
            f"(runs {cpus})  peak {m['peak_mb']:6.0f} MB"
        )
    stages = case.get("geopipe_stages_s", {})
    if stages:
        top = ", ".join(f"{k} {v:.1f}" for k, v in list(stages.items())[:6])
        print(f"  geopipe stages, last run (manifest.json, s): {top}")
    s = case["speedup"]
    print(f"  geopipe is {s['wall_s']:.2f}x as fast as the peer (wall), {s['cpu_s']:.2f}x (cpu)")
    bad = checks[~checks["ok"]]
    print(
        f"  checked {int(checks['compared'].sum())} values ({len(checks)} indicator x level), "
        f"{int(checks['suppressed_skipped'].sum())} suppressed by geopipe skipped; "
        f"{len(bad)} outside tolerance"
    )
    worst = checks.sort_values("max_diff", ascending=False).groupby("level").head(3)
    print(worst.to_string(index=False))
    if len(bad):
        print("OUTSIDE TOLERANCE:")
        print(bad.to_string(index=False))


def save(results: dict) -> None:
    """Read-modify-write ``latest.json``: only the ``end_to_end`` key is replaced."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data["end_to_end"] = results
    RESULTS.write_text(json.dumps(data, indent=2, default=float) + "\n")


def _record(case: dict, checks: pd.DataFrame) -> dict:
    return {
        **{k: v for k, v in case.items() if k != "runs"},
        "runs": case["runs"],
        "values_checked": int(checks["compared"].sum()),
        "suppressed_skipped": int(checks["suppressed_skipped"].sum()),
        "outside_tolerance": checks.loc[~checks["ok"], ["level", "indicator"]].to_dict("records"),
        "all_equal_within_tolerance": bool(checks["ok"].all()),
    }


def stage_times(run: Path) -> dict[str, float]:
    """geopipe's own stage timings (s) from a run's ``manifest.json``, longest first.

    Examples
    --------
    >>> stage_times(Path("out/sample"))  # doctest: +SKIP
    {'h3_r7': 4.29, 'steps': 2.27, ...}
    """
    manifest = run / "manifest.json"
    timings = json.loads(manifest.read_text()).get("timings", {}) if manifest.is_file() else {}
    flat = {k: float(v) for k, v in timings.items() if isinstance(v, int | float)}
    return dict(sorted(flat.items(), key=lambda kv: -kv[1]))


def sample_case(tmp: Path, repeats: int = REPEATS) -> tuple[dict, pd.DataFrame]:
    peer_out, ours_out = tmp / "peer", tmp / "geopipe"
    peer_cmd = [sys.executable, str(PEER), "--output", str(peer_out)]
    ours_cmd = [geopipe_cli(), "run", str(CONFIG), "--force", "--output", str(ours_out)]
    case = run_case("Rwanda sample", peer_cmd, ours_cmd, repeats)
    case["geopipe_stages_s"] = stage_times(ours_out)
    return case, check_outputs(peer_out, ours_out)


def synthetic_case(tmp: Path, n: int = E2E_N, repeats: int = E2E_REPEATS):
    from benchmarks import synthetic

    t0 = time.perf_counter()
    synthetic.make_country(tmp / "data", "XAA", 0, n, np.random.default_rng(14))
    made = time.perf_counter() - t0
    peer_out, ours_out = tmp / "peer", tmp / "geopipe"
    inputs = tmp / "peer_inputs.json"
    inputs.write_text(json.dumps(synthetic.peer_inputs(tmp / "data", "XAA")))
    cfg = synthetic.write_config(
        synthetic.pipeline_config(tmp / "data", "XAA", ours_out), tmp / "synthetic.yaml"
    )
    peer_cmd = [sys.executable, str(PEER), "--inputs", str(inputs), "--output", str(peer_out)]
    ours_cmd = [geopipe_cli(), "run", str(cfg), "--force", *SYNTHETIC_ENGINE]
    case = run_case(f"synthetic country {n}x{n} pixels", peer_cmd, ours_cmd, repeats)
    case["generate_s"] = made
    case["geopipe_stages_s"] = stage_times(ours_out)
    return case, check_outputs(peer_out, ours_out)


def main() -> None:
    """Both cases: time, check, print, save; fail if any value is outside its tolerance."""
    results, failed = {}, []
    for key, fn in (("sample", sample_case), ("synthetic", synthetic_case)):
        with tempfile.TemporaryDirectory(prefix=f"bench_e2e_{key}_") as tmp:
            case, checks = fn(Path(tmp))
        report(case, checks)
        results[key] = _record(case, checks)
        if not checks["ok"].all():
            failed.append(key)
    save(results)
    if failed:
        raise AssertionError(f"peer and geopipe differ beyond tolerance in: {failed}")
    print("all indicators equal within tolerance")


if __name__ == "__main__":
    main()
