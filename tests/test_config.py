"""Pipeline configs: every problem reported at once with its YAML path, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

import geopipe as gp
from geopipe.config import load_config
from geopipe.errors import ConfigError, MissingFileError

ROOT = Path(__file__).resolve().parents[1]


def test_sample_config_resolves_paths_relative_to_the_file():
    p = load_config(ROOT / "pipelines" / "sample.yaml")
    assert isinstance(p, gp.Pipeline)
    assert p.name == "sample" and str(p.date) == "2020-01-01"
    assert all(f.is_absolute() and f.exists() for f in p.input_files().values())
    assert p.output == (ROOT / "out" / "sample").resolve()
    assert p.units.h3 == (7,)
    kinds = [s.kind for s in p.steps]
    assert kinds.count("raster_stats") == 3 and "distance_coverage" in kinds


def test_every_problem_is_reported_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: 'bad name'\n"
        "date: 2020-13-40\n"
        "sources:\n"
        "  admin: {kind: admin, path: missing.geojson, colour: red}\n"
        "  pop: {kind: rastr, path: nowhere.tif}\n"
        "  clinics: {kind: points}\n"
        "steps:\n"
        "  - {kind: raster_stat, raster: pop}\n"
        "  - {kind: distance_coverage, facilities: clinics, distance_km: five}\n"
        "  - {kind: point_count, points: clinic, colum: n}\n"
        "quality: {k: -1, colour: red}\n"
        "surprise: 1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    for fragment in (
        "surprise: unknown key",
        "not an ISO date",
        "sources.clinics: needs 'kind' and 'path'",
        "steps[0].kind",
        "did you mean 'raster_stats'",
        "steps[1]",
        "distance_km = 'five' is not a number",
        "steps[2] (point_count) has unknown keys 'colum' (did you mean 'column'?)",
        "sources.pop.kind: 'rastr' is not a source kind",  # found with the parsing problems
        "quality.k: must be at least 1",
        "quality.colour: unknown key",
    ):
        assert fragment in msg, fragment


def test_pipeline_level_problems_name_their_paths(tmp_path):
    (tmp_path / "adm.geojson").write_text("{}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: ok\n"
        "date: 2020-01-01\n"
        "sources:\n"
        "  admin: {kind: admin, path: adm.geojson, colour: red}\n"
        "  pop: {kind: rastr, path: nowhere.tif}\n"
        "  folder: {kind: raster, path: .}\n"
        "steps:\n"
        "  - {kind: raster_stats, raster: popp}\n"
        "  - {kind: point_count, points: folder}\n"
        "indicators: [population_total, not_an_indicator]\n"
        "quality: {k: 0, levels: {admin.gapp: fail}, max_change: low}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    for fragment in (
        "sources.admin: unknown keys ['colour']",
        "sources.pop.kind: 'rastr' is not a source kind (did you mean 'raster'?)",
        "sources.folder.path: ",
        "is a folder, not a file",
        "steps[0] (raster_stats).raster: 'popp' is not a source (did you mean 'pop'?)",
        "steps[1] (point_count).points: source 'folder' is a raster, needs points",
        "quality.k: must be at least 1",
        "quality.levels.admin.gapp: not a check id (did you mean 'admin.gap'?)",
        "quality.max_change: 'low' has the wrong type",
    ):
        assert fragment in msg, fragment


def test_missing_config_file(tmp_path):
    with pytest.raises(MissingFileError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    empty = tmp_path / "list.yaml"
    empty.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(empty)


def test_python_and_yaml_build_the_same_pipeline():
    """gp.Pipeline(...) in Python and the YAML file are the same object (same settings, same key)."""
    y = gp.Pipeline.from_yaml(ROOT / "pipelines" / "sample.yaml")
    p = gp.Pipeline(
        name=y.name,
        description=y.description,
        date="2020-01-01",
        sources=y.sources,
        steps=[gp.steps.step_from_dict(s) for s in y.to_dict()["steps"]],
        units=gp.Units(h3=(7,)),
        indicators=y.indicators,
        quality={"k": 5},
        output=y.output,
    )
    assert p.settings() == y.settings()
    assert list(p.catalog()) == list(y.catalog())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sources": ["a.tif", "b.tif"]}, "sources: must be a mapping"),
        (
            {"steps": [{"kind": "distance_coverage", "facilities": "clinics", "distance_km": -5}]},
            "distance_km must be a distance > 0",
        ),
        (
            {"steps": [{"kind": "child_poverty", "layer": "pop", "poverty_threshold": "low"}]},
            "poverty_threshold = 'low' is not a number",
        ),
        (
            {"steps": [{"kind": "raster_stats", "raster": "pop", "stats": ["max"]}]},
            "cannot be rolled up",
        ),
        ({"quality": {"k": 0}}, "quality.k: must be at least 1"),
        ({"quality": {"levels": {"admin.gapp": "fail"}}}, "did you mean 'admin.gap'"),
        ({"units": {"h3": [16]}}, "units.h3"),
        ({"indicators": "population_total"}, "indicators: must be a list"),
    ],
)
def test_each_wrong_value_is_a_config_error_with_its_path(tmp_path, change, message):
    (tmp_path / "adm.geojson").write_text("{}")
    (tmp_path / "pop.tif").write_bytes(b"")
    (tmp_path / "c.csv").write_text("lon,lat\n")
    base = {
        "name": "x",
        "date": "2020-01-01",
        "sources": {
            "admin": {"kind": "admin", "path": "adm.geojson"},
            "pop": {"kind": "raster", "path": "pop.tif"},
            "clinics": {"kind": "points", "path": "c.csv"},
        },
        "steps": [],
    }
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gp.Pipeline.from_dict({**base, **change}, base=tmp_path)
