"""`geopipe` exit codes: each failure has its own code and writes nothing (docs/cli.md)."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SAMPLE, TESTDATA, geopipe_cli, sample_config
from geopipe import errors


def _nothing_written(tmp_path, *keep: str):
    left = sorted(p.name for p in tmp_path.iterdir() if p.name not in {"pipeline.yaml", *keep})
    assert left == [], f"a failed command left {left}"


def test_exit_code_mapping():
    expected = {
        errors.DataQualityError("x"): 1,
        errors.ConfigError("x"): 2,
        errors.DependencyError("x"): 2,
        errors.MissingFileError("x"): 3,
        errors.FormatError("x"): 3,
        errors.RasterError("x"): 3,
        errors.InputError("x"): 3,
        errors.MissingColumnError("x"): 3,
        errors.GeometryError("x"): 3,
        errors.OutputError("x"): 4,
        errors.PartialRunError("x"): 5,
        errors.GeopipeError("x"): 2,
        RuntimeError("a bug"): errors.EXIT_INTERNAL,
    }
    assert {type(e).__name__: errors.exit_code(e) for e in expected} == {
        type(e).__name__: c for e, c in expected.items()
    }


def test_config_with_three_mistakes_exit_2(tmp_path):
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(
        f"name: 'bad name!'\ndate: 2020-13-01\noutput: {tmp_path / 'out'}\n"
        "sources: {admin: {kind: admin, path: nowhere.geojson}}\n",
        encoding="utf-8",
    )
    for command in ("run", "validate"):
        done = geopipe_cli(command, bad)
        assert done.returncode == 2, done.stderr
        err = done.stderr
        assert err.count("geopipe: error:") == 1  # one error naming all three
        assert "'bad name!'" in err and "not an ISO date" in err and "nowhere.geojson" in err
        assert "Traceback" not in err
        left_untouched = "previous outputs were left untouched" in err
        assert left_untouched == (command == "run")  # validate never writes, never says so
    _nothing_written(tmp_path)


def test_usage_errors_exit_2(tmp_path):
    assert geopipe_cli("run", tmp_path / "no.yaml").returncode == 2  # argparse: no such file
    assert geopipe_cli("frobnicate").returncode == 2
    assert geopipe_cli("run").returncode == 2
    _nothing_written(tmp_path)


def test_unreadable_raster_exit_3(tmp_path):
    broken = tmp_path / "pop.tif"
    shutil.copy(TESTDATA / "bad" / "ras_truncated.tif", broken)
    cfg = sample_config(
        tmp_path,
        **{f"{SAMPLE}/rwa_population_2020_modelled_232m.tif": str(broken)},
    )
    done = geopipe_cli("run", cfg)
    assert done.returncode == 3, done.stderr
    assert "pop.tif" in done.stderr and "Traceback" not in done.stderr
    _nothing_written(tmp_path, "pop.tif")


@pytest.mark.slow
def test_failing_quality_gate_exit_1_json(tmp_path):
    cfg = sample_config(tmp_path, "\nquality:\n  levels: {admin.gap: fail}\n")
    done = geopipe_cli("run", cfg, "--log-format", "json")
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # stderr is JSON only
    end = lines[-1]
    assert end["event"] == "run_end" and end["status"] == "failed" and end["exit_code"] == 1
    assert "admin.gap" in end["error"]
    assert lines[0]["event"] == "run_start"
    _nothing_written(tmp_path)


def test_unwritable_output_exit_4(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    cfg = sample_config(tmp_path)
    done = geopipe_cli("run", cfg, "--output", blocker / "run")
    assert done.returncode == 4, done.stderr
    assert "a_file" in done.stderr and "is a file, not a folder" in done.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    _nothing_written(tmp_path, "a_file")


def test_missing_raster_exit_3(tmp_path):
    cfg = sample_config(
        tmp_path, **{f"{SAMPLE}/rwa_population_2020_modelled_232m.tif": str(tmp_path / "gone.tif")}
    )
    for command in ("run", "validate"):
        done = geopipe_cli(command, cfg)
        assert done.returncode == 3, done.stderr
        assert "gone.tif" in done.stderr and "does not exist" in done.stderr
    _nothing_written(tmp_path)


def test_only_names_steps(tmp_path):
    done = geopipe_cli("run", sample_config(tmp_path), "--only", "measures")
    assert (
        done.returncode == 2
        and "--only" in done.stderr
        and "raster_stats:population_total" in done.stderr
    )
    _nothing_written(tmp_path)


def test_check_and_inspect_missing_file_exit_3(tmp_path):
    for command in ("check", "inspect"):
        done = geopipe_cli(command, tmp_path / "nope.parquet")
        assert done.returncode == 3 and "does not exist" in done.stderr
    done = geopipe_cli("inspect", TESTDATA / "bad" / "ras_not_a_raster.tif")
    assert done.returncode == 3 and "cannot be read as a raster" in done.stderr
