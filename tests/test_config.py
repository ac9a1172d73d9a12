"""Pipeline configs: every problem reported at once, paths relative to the YAML file."""

from __future__ import annotations

import pytest

from geopipe.config import load_config
from geopipe.errors import ConfigError, MissingFileError


def test_sample_config_resolves_paths_relative_to_the_file(tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    cfg = load_config(root / "pipelines" / "sample.yaml")
    assert cfg.name == "sample" and str(cfg.date) == "2020-01-01"
    assert all(p.is_absolute() and p.exists() for p in cfg.input_files().values())
    assert cfg.output == (root / "out" / "sample").resolve()
    assert cfg.h3_resolutions == (7,)
    assert cfg.wealth["kind"] == "tiles" and cfg.service["distance_km"] == 5.0


def test_every_problem_is_reported_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: 'bad name'\n"
        "date: 2020-13-40\n"
        "admin: {source: missing.geojson, colour: red}\n"
        "rasters: {population_total: nowhere.tif}\n"
        "points: {health_facilities: {path: x.csv}}\n"
        "wealth: {tiles: a.csv, raster: b.tif}\n"
        "service: {facilities: clinics}\n"
        "quality: {k: -1, colour: red}\n"
        "indicators: [population_total, not_an_indicator]\n"
        "surprise: 1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    for fragment in (
        "unknown keys ['surprise']",
        "'name' 'bad name'",
        "not an ISO date",
        "admin: unknown keys ['colour']",
        "missing.geojson",
        "rasters.population_total",
        "points.health_facilities: needs a 'source'",
        "wealth: needs exactly one of",
        "service.facilities 'clinics'",
        "quality: unknown keys ['colour']",
        "quality.k must be a number",
        "not_an_indicator",
    ):
        assert fragment in msg, fragment


def test_missing_config_file(tmp_path):
    with pytest.raises(MissingFileError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    empty = tmp_path / "list.yaml"
    empty.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(empty)
