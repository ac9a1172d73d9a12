"""report.html of the sample run: content against the run's files, and drawn in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from geopipe.report import write_report_html
from geopipe.report._maps import PALETTE

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


@pytest.fixture(scope="module")
def report(sample_run):
    run, _ = sample_run
    t0 = time.perf_counter()
    path = write_report_html(run)
    print(f"write_report_html: {time.perf_counter() - t0:.2f} s, {path.stat().st_size:,} bytes")
    return run, path


def _mapdata(html: str) -> dict:
    raw = re.search(r"<script id='mapdata' type='application/json'>(.*?)</script>", html, re.S)
    return json.loads(raw.group(1).replace("<\\/", "</"))


def test_report_is_self_contained(report):
    run, path = report
    html = path.read_text(encoding="utf-8")
    assert path == run / "report.html"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert path.stat().st_size < 3_000_000


def test_report_content_matches_the_run(report):
    run, path = report
    html = path.read_text(encoding="utf-8")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    checks = manifest["quality"]["checks"]
    for level in ("pass", "warn", "fail"):
        n = sum(c["level"] == level for c in checks)
        assert f"{n} {level}</span>" in html
    for c in checks:
        if c["level"] != "pass":
            assert c["check_id"] in html
    for step, seconds in manifest["timings"].items():
        assert f"<td>{step}</td><td class='n'>{seconds:.2f} s</td>" in html
    for rec in manifest["inputs"].values():
        assert rec["sha256"][:16] in html
    data = _mapdata(html)
    assert len(data["levels"]) == 4  # adm0, adm1, adm2, h3_r7
    indicators = set(pd.read_parquet(run / "dim_indicator.parquet")["indicator_id"])
    adm2 = pd.read_parquet(run / "adm2.parquet")
    lv = data["levels"][2]
    assert lv["labels"] == adm2["name"].tolist()
    assert {m["id"] for m in lv["maps"]} == indicators & set(adm2.columns)
    for m in lv["maps"]:
        v = adm2[m["id"]].to_numpy(dtype="float64")
        np.testing.assert_allclose(np.array(lv["values"][m["id"]], dtype="float64"), v, rtol=1e-3)
        cls = np.array([int(c) if c != "-" else -1 for c in m["classes"]])
        assert ((cls == -1) == ~np.isfinite(v)).all()
        edges = np.array(m["breaks"])
        ok = cls >= 0
        assert (v[ok] >= edges[cls[ok]] - 1e-9).all() and (v[ok] <= edges[cls[ok] + 1] + 1e-9).all()
        assert set(m["colors"]) <= set(PALETTE)
    # every unit of every level has geometry to draw
    for lv in data["levels"]:
        units = np.array(lv["units"])
        assert (np.diff(units) >= 1).all() and len(lv["xy"]) == 2 * lv["rings"][-1]
    h3 = pd.read_parquet(run / "h3_r7.parquet", columns=["cell_id"])
    assert data["levels"][3]["labels"] == h3["cell_id"].tolist()


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser installed ({', '.join(BROWSERS)}): apt-get install chromium")


def _chromium(browser, tmp_path, *args):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=240)


def test_report_renders_every_map_in_chromium(report, tmp_path):
    from PIL import Image

    browser = _browser()
    _, path = report
    data = _mapdata(path.read_text(encoding="utf-8"))
    dom = _chromium(browser, tmp_path, "--dump-dom", path.as_uri()).stdout
    canvases = re.findall(r"<canvas ([^>]*)>", dom)
    expected = sum(len(lv["maps"]) for lv in data["levels"] if len(lv["labels"]) > 1)
    assert len(canvases) == expected > 40
    for attrs in canvases:  # the script drew every unit of every map, then its legend
        level = int(re.search(r'data-level="(\d+)"', attrs).group(1))
        drawn = re.search(r'data-drawn="(\d+)"', attrs)
        assert drawn and int(drawn.group(1)) == len(data["levels"][level]["labels"]), attrs
    legends = re.findall(r'<div class="legend"[^>]*>(.*?)</div>', dom)
    assert len(legends) == expected and all("<i style" in legend for legend in legends)

    shot = tmp_path / "report.png"
    done = _chromium(
        browser, tmp_path, "--window-size=1280,16000", f"--screenshot={shot}", path.as_uri()
    )
    assert shot.is_file(), done.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    palette = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in PALETTE])
    hits = [(np.abs(pixels - col).sum(axis=1) <= 6).sum() for col in palette]
    assert all(h > 2_000 for h in hits), hits  # every class colour is on screen
    assert sum(hits) > 15_000 * expected  # about 300 x 240 px per map, half of it land


def test_a_level_beyond_the_map_limit_is_summarised_not_mapped(sample_run, tmp_path, monkeypatch):
    from geopipe.report import html as report_html

    run, _ = sample_run
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    h3 = pd.read_parquet(folder / "h3_r7.parquet")
    monkeypatch.setattr(report_html, "MAX_MAP_FEATURES", len(h3) - 1)
    html = write_report_html(folder).read_text(encoding="utf-8")
    data = _mapdata(html)
    assert [len(lv["labels"]) for lv in data["levels"]][3] == 0  # h3_r7: no map data
    assert data["levels"][2]["maps"]  # adm2 still mapped
    assert f"{len(h3):,} units: more than {len(h3) - 1:,}, not mapped here" in html
    section = html[html.index("id='level3'") :]
    v = h3["population_total"].to_numpy(dtype="float64")
    ok = v[np.isfinite(v)]
    row = re.search(r"<code>population_total</code></td><td>[^<]*</td>(.*?)</tr>", section).group(1)
    cells = re.findall(r"<td class='n'>([^<]*)</td>", row)
    assert cells == [
        f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.3g}" for x in (ok.min(), np.median(ok), ok.max())
    ] + [f"{ok.size:,} / {len(v):,}"]
