"""Shared fixtures: paths to the committed test data and to the optional ../shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
TESTDATA = ROOT / "tests" / "data"
SHARED_REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def testdata() -> Path:
    return TESTDATA


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """../shared/data/real, or skip: files without a redistribution licence live only there."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (only the repo is on this machine)")
    return SHARED_REAL


@pytest.fixture(scope="session")
def rwanda_admin():
    """dim_admin of the Rwanda sample (ADM0/1/2), read once per session; do not modify it."""
    import warnings

    from geopipe.errors import GeopipeWarning
    from geopipe.io.admin import read_admin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        return read_admin({lv: SAMPLE / f"rwa_adm{lv}.geojson" for lv in (0, 1, 2)})


def write_raster(path, arr, transform, crs="EPSG:4326", **profile):
    """Write a single-band GeoTIFF (extra creation options in ``profile``) and return its path."""
    import rasterio

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        **profile,
    ) as ds:
        ds.write(arr, 1)
    return path


def geopipe_cli(*args, cwd=None, **kwargs):
    """Run ``python -m geopipe.cli ARGS`` in a subprocess (this checkout's src first on the path)."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-m", "geopipe.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        **kwargs,
    )


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """`geopipe run pipelines/sample.yaml` piped (not a terminal): (run folder, CompletedProcess)."""
    out = tmp_path_factory.mktemp("sample_cli") / "run"
    done = geopipe_cli("run", ROOT / "pipelines" / "sample.yaml", "--output", out)
    assert done.returncode == 0, done.stderr
    return out, done


def sample_config(tmp_path, extra: str = "", **replace: str):
    """pipelines/sample.yaml with absolute data paths and output tmp_path/out, plus ``extra``.

    ``replace`` maps text of the config to its replacement (each must occur).
    """
    text = (ROOT / "pipelines" / "sample.yaml").read_text(encoding="utf-8")
    text = text.replace("../data/sample/", f"{SAMPLE}/").replace(
        "output: ../out/sample", f"output: {tmp_path / 'out'}"
    )
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def schools_with_a_bad_row(tmp_path):
    """The sample schools CSV plus one row without latitude: read_points warns "1 of 2754 rows"."""
    import shutil

    path = tmp_path / "schools.csv"
    shutil.copy(SAMPLE / "rwa_schools_modelled.csv", path)
    with open(path, "a", encoding="utf-8") as f:
        f.write("BAD-1,Bad school,Primary,Yes,,29.6\n")
    return {f"{SAMPLE}/rwa_schools_modelled.csv": str(path)}
