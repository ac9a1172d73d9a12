"""Mutation probe: plant known bugs in a temporary copy of ``src/`` and see which the tests catch.

Each mutant below is one deliberate bug of the kind a redesign can introduce (a sort order
flipped, a weight ignored, a loop run once, an edge pixel dropped). For every mutant the script

1. copies ``src/``, ``tests/``, ``data/`` and ``pyproject.toml`` into a temporary folder (the
   working tree is never touched),
2. replaces one exact snippet of source text (the snippet must occur exactly once, so a mutant
   that no longer applies after a refactoring is reported as ``stale``, not silently skipped),
3. runs the mutant's test files against the copy (``PYTHONPATH`` points at the copied ``src``),
4. records ``caught`` (a test failed or errored) or ``MISSED`` (every test passed).

It does this twice by default: once with ``../shared/data/real`` reachable from the copy (a
symbolic link) and once without it, as on a plain clone of the repository, where the tests that
need the shared data skip. Before any mutant, the unmutated copy must pass the same tests.

Usage::

    python scripts/mutation.py                      # every mutant, with and without ../shared
    python scripts/mutation.py --runs 3             # repeat: a catch must not depend on chance
    python scripts/mutation.py --tests-rev 2fc2521  # the tests of an older commit (before/after)
    python scripts/mutation.py --only renormalize_noop --mode repo

``make mutation`` runs the first form. Slow-marked tests are left out (``-m "not slow"``).
Exit status 1 when a mutant is missed or stale, so the probe can gate a CI job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TIMEOUT_S = 900


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (exactly once) by ``new`` in ``path`` under src/geopipe."""

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...] = field(default=())


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "areal_raster_weight_ignored",
        "areal_interpolate(weight=<raster>) silently falls back to area weights",
        "zonal/areal.py",
        "piece_w, src_total = _raster_piece_weights(source, units, table, weight)",
        "piece_w = a\n"
        "        src_total = np.zeros(len(source))\n"
        '        src_total[s] = table["source_area_m2"].to_numpy(dtype=float)',
        ("test_areal.py",),
    ),
    Mutant(
        "split_false_smallest_share",
        "h3_grid/square_grid(split=False) give a cell to the unit with the smallest share",
        "grids/_split.py",
        "order = np.lexsort((-share, pc))",
        "order = np.lexsort((share, pc))",
        ("test_h3_grid.py", "test_square_grid.py"),
    ),
    Mutant(
        "suppression_one_pass",
        "complementary suppression runs one pass (no cascade over levels)",
        "quality/_suppression.py",
        "        stuck |= rest\n",
        "        stuck |= rest\n        break\n",
        ("test_quality_privacy.py",),
    ),
    Mutant(
        "renormalize_noop",
        'zonal_raster(edge="renormalize") does the same as edge="fraction"',
        "zonal/raster.py",
        "        e_cov = _renormalize(e_row, e_col, e_cov, ds.width)",
        "        e_cov = e_cov",
        ("test_zonal_raster.py",),
    ),
    Mutant(
        "coverage_drops_last_column",
        "boundary pixels in the raster's last column get no weight",
        "zonal/_coverage.py",
        "keep = (col_u < width) & (cov > 1e-12)",
        "keep = (col_u < width - 1) & (cov > 1e-12)",
        ("test_zonal_raster.py", "test_raster_streaming.py", "test_indicators_hand.py"),
    ),
    Mutant(
        "coverage_drops_last_row",
        "ring pieces in the raster's last row are dropped",
        "zonal/_coverage.py",
        "keep = (pdv != 0) & (row >= 0) & (row < height) & (col < width)",
        "keep = (pdv != 0) & (row >= 0) & (row < height - 1) & (col < width)",
        ("test_zonal_raster.py", "test_raster_streaming.py", "test_indicators_hand.py"),
    ),
    Mutant(
        "count_points_every_containing_unit",
        "count_points counts a point in every unit containing it (a plain sjoin count)",
        "zonal/points.py",
        "out[name] = np.bincount(pos[hit], minlength=n_units).astype(np.int64)",
        "out[name] = np.bincount(\n"
        "        shapely.STRtree(polys).query(shapely.points(x[ok], y[ok]), "
        'predicate="intersects")[1],\n'
        "        minlength=n_units,\n"
        "    ).astype(np.int64)",
        ("test_count_points.py", "test_quality_property.py"),
    ),
    Mutant(
        "label_raster_largest_position_wins",
        "where units overlap, the label raster gives interior points to the last unit",
        "zonal/points.py",
        "order = np.arange(len(polys))[::-1]",
        "order = np.arange(len(polys))",
        ("test_count_points.py", "test_quality_property.py"),
    ),
    Mutant(
        "points_on_boundary_dropped",
        "the exact point test uses the open interior: points on a unit's edge are lost",
        "zonal/points.py",
        'pt_idx, poly_idx = tree.query(pts, predicate="intersects")',
        'pt_idx, poly_idx = tree.query(pts, predicate="within")',
        ("test_count_points.py", "test_quality_property.py"),
    ),
    Mutant(
        "rollup_ratio_scale_dropped",
        "rolled-up ratios forget their scale (schools per 10k children off by 10,000)",
        "indicators/rollup.py",
        "value = np.where(den > 0, num / den * ind.scale, np.nan)",
        "value = np.where(den > 0, num / den, np.nan)",
        ("test_rollup_property.py", "test_quality_property.py"),
    ),
)


def _copy_repo(dest: Path, tests_rev: str | None, with_shared: bool) -> Path:
    repo = dest / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    shutil.copytree(ROOT / "src", repo / "src", ignore=ignore)
    shutil.copytree(ROOT / "data", repo / "data", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    if tests_rev is None:
        shutil.copytree(ROOT / "tests", repo / "tests", ignore=ignore)
    else:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", tests_rev, "tests"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    if with_shared:
        if not SHARED.is_dir():
            raise SystemExit(f"{SHARED} is absent: run with --mode repo")
        (dest / "shared").symlink_to(SHARED, target_is_directory=True)
    return repo


def _pytest(repo: Path, tests: tuple[str, ...]) -> tuple[int, list[str], float]:
    paths = [f"tests/{t}" for t in tests if (repo / "tests" / t).exists()]
    if not paths:
        return 5, [], 0.0
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "PYTHONHASHSEED": "0"}
    # no Hypothesis example database: a failure found under one mutant must not be replayed
    # under the next (each result would then depend on the order of the list)
    shutil.rmtree(repo / ".hypothesis", ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        "-rfE",
        "--tb=no",
        *paths,
    ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return 124, ["(timeout)"], time.perf_counter() - t0
    failed = sorted(
        {
            line.split()[1].split("::")[0].removeprefix("tests/")
            + "::"
            + line.split()[1].split("::", 1)[-1].split("[")[0]
            for line in proc.stdout.splitlines()
            if line.startswith(("FAILED ", "ERROR ")) and "::" in line
        }
    )
    return proc.returncode, failed, time.perf_counter() - t0


def _apply(repo: Path, m: Mutant) -> str | None:
    """Plant the mutant; return the original text (None when the snippet is not found once)."""
    path = repo / "src" / "geopipe" / m.path
    text = path.read_text(encoding="utf-8")
    if text.count(m.old) != 1:
        return None
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")
    return text


def run(mode: str, mutants: list[Mutant], tests_rev: str | None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="geopipe-mut-") as tmp:
        repo = _copy_repo(Path(tmp), tests_rev, with_shared=(mode == "shared"))
        all_tests = tuple(sorted({t for m in mutants for t in m.tests}))
        code, failed, secs = _pytest(repo, all_tests)
        if code != 0:
            raise SystemExit(
                f"[{mode}] the unmutated copy fails its tests (exit {code}): {failed}; "
                "fix that first"
            )
        print(f"[{mode}] baseline passes ({secs:.0f} s)", file=sys.stderr)
        for m in mutants:
            original = _apply(repo, m)
            if original is None:
                rows.append({"mutant": m.name, "mode": mode, "result": "stale", "by": []})
                continue
            try:
                code, failed, secs = _pytest(repo, m.tests)
            finally:
                (repo / "src" / "geopipe" / m.path).write_text(original, encoding="utf-8")
            result = "MISSED" if code == 0 else ("no tests" if code == 5 else "caught")
            rows.append({"mutant": m.name, "mode": mode, "result": result, "by": failed})
            print(f"[{mode}] {m.name}: {result} ({secs:.0f} s)", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["both", "shared", "repo"], default="both")
    ap.add_argument("--runs", type=int, default=1, help="repeat every mutant this many times")
    ap.add_argument("--only", nargs="*", help="mutant names (default: all)")
    ap.add_argument("--tests-rev", help="git revision whose tests/ to use (default: working tree)")
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = ap.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.name:38s} {m.path:22s} {m.what}")
        return 0
    modes = ["shared", "repo"] if args.mode == "both" else [args.mode]
    if "shared" in modes and not SHARED.is_dir():
        print(f"{SHARED} is absent: only the repo-only column is run", file=sys.stderr)
        modes = ["repo"]
    results: dict[tuple[str, str], list[str]] = {}
    catchers: dict[str, set[str]] = {m.name: set() for m in mutants}
    for _ in range(args.runs):
        for mode in modes:
            for row in run(mode, mutants, args.tests_rev):
                results.setdefault((row["mutant"], mode), []).append(row["result"])
                catchers[row["mutant"]].update(row["by"])
    label = {"shared": "with ../shared", "repo": "repo only"}
    head = "| mutant | " + " | ".join(label[m] for m in modes) + " | failing tests (any run) |"
    print(head)
    print("|" + "---|" * (len(modes) + 2))
    bad = False
    for m in mutants:
        cells = []
        for mode in modes:
            res = results[(m.name, mode)]
            n = res.count("caught")
            cells.append(
                f"caught {n}/{len(res)}"
                if n == len(res)
                else f"**{res[-1]}** {n}/{len(res)} caught"
            )
            bad |= n != len(res)
        per_file: dict[str, list[str]] = {}
        for test in sorted(catchers[m.name]):
            per_file.setdefault(test.split("::")[0], []).append(test.split("::")[-1])
        shown = "; ".join(
            f"{f}: " + ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
            for f, names in per_file.items()
        )
        print(f"| `{m.name}` | " + " | ".join(cells) + f" | {shown} |")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
