"""The step engine: one place of truth for keys, reads once, several services, user indicators,
and the run folder a run may touch (issues 10 and 11)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopipe as gp
from conftest import tiny_world
from geopipe.errors import ConfigError, InputError, OutputError
from geopipe.pipeline.run import plan_run

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pipelines" / "sample.yaml"


@pytest.fixture
def world(tmp_path):
    return tiny_world(tmp_path), tmp_path


def _leaves(obj, path=()):
    """Every scalar leaf of a nested dict/list, with its path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _mutated(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return f"{value}x"


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


# ------------------------------------------------------------------ one place of truth
def test_every_configurable_value_is_part_of_the_run_key(world):
    """Each value of the YAML form, changed in turn, changes the run key (so the rerun is not
    "up to date"), except paths, which enter by content, and the output folder."""
    cfg, d = world
    cfg = {
        **cfg,
        "quality": {"k": 5, "max_change": 0.25},
        "units": {"h3": [9]},
        "indicators": ["population_total", "child_poverty_rate", "health_facilities"],
    }
    # the full form: every step parameter, defaults included
    cfg = gp.Pipeline.from_dict(cfg).to_dict()
    assert gp.Pipeline.from_dict(cfg).settings() == gp.Pipeline.from_dict(cfg).settings()
    base = plan_run(gp.Pipeline.from_dict(cfg)).key
    checked = 0
    for path, value in _leaves(cfg):
        if path[-1] in ("path", "output", "history") or (path[-1] in (0, 1, 2) and "path" in path):
            continue
        changed = copy.deepcopy(cfg)
        _set(changed, path, _mutated(value))
        try:
            p = gp.Pipeline.from_dict(changed)
        except gp.GeopipeError:
            continue  # the changed value is refused: it cannot silently change an output
        assert plan_run(p).key != base, path
        checked += 1
    assert checked >= 40, checked
    # an input's bytes: same path, new content -> new key
    (d / "health.csv").write_text("lon,lat,name\n0.015,0.005,clinic\n")
    assert plan_run(gp.Pipeline.from_dict(cfg)).key != base


def test_raising_k_recomputes_and_hides_more(world):
    cfg, d = world
    cfg = {**cfg, "quality": {"k": 5}}
    first = gp.run_pipeline(gp.Pipeline.from_dict(cfg), output=d / "run")
    assert gp.run_pipeline(gp.Pipeline.from_dict(cfg), output=d / "run").up_to_date is not False
    strict = gp.run_pipeline(
        gp.Pipeline.from_dict({**cfg, "quality": {"k": 1000}}), output=d / "run"
    )
    assert not strict.up_to_date
    before = first.tables["fact_indicator"]["suppressed"].sum()
    after = pd.read_parquet(d / "run" / "fact_indicator.parquet")["suppressed"].sum()
    assert after > before


def test_each_input_is_read_once_and_weights_built_once_per_grid(monkeypatch, tmp_path):
    """One sample run: readers are called once per source (counted at the readers themselves),
    pixel weights once per raster grid: built for the H3 fragments, relabelled for the districts
    they tile (one pixel pass), and once for the country row check."""
    import geopipe.io.admin
    import geopipe.io.points
    import geopipe.io.raster
    import geopipe.io.tiles
    import geopipe.zonal.raster

    calls: dict[str, int] = {}

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[
                f"{name}:{Path(str(args[0])).name if not isinstance(args[0], dict) else 'admin'}"
            ] = (
                calls.get(
                    f"{name}:{Path(str(args[0])).name if not isinstance(args[0], dict) else 'admin'}",
                    0,
                )
                + 1
            )
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in (
        (geopipe.io.admin, "read_admin"),
        (geopipe.io.points, "read_points"),
        (geopipe.io.tiles, "read_tiles"),
        (geopipe.io.raster, "load_raster"),
    ):
        counting(module, name)
    builds = []
    real_weights = geopipe.zonal.raster._weights_for_grid

    def weights(units, ds, edge):
        builds.append((len(units), ds.width))
        return real_weights(units, ds, edge)

    monkeypatch.setattr(geopipe.zonal.raster, "_weights_for_grid", weights)
    p = gp.Pipeline.from_yaml(SAMPLE)
    result = gp.run_pipeline(
        dataclasses.replace(p, steps=p.steps), output=tmp_path / "s", force=True
    )
    assert calls and set(calls.values()) == {1}, calls
    sources = {s.path.name if not isinstance(s.path, dict) else "admin" for s in p.sources.values()}
    assert {k.split(":", 1)[1] for k in calls} == sources
    # the H3 fragments on the one 232 m grid, plus the country row check (1 unit); the 30
    # districts are computed through the fragments' weights, never built for them
    n_units = sorted({n for n, _ in builds})
    assert len(builds) == len(n_units) == 2, builds
    assert n_units[0] == 1 and n_units[1] == len(result.tables["h3_r7"])
    assert all(
        v == 1
        for k, v in result.counts.items()
        if k.startswith(("read:", "weights:", "relabelled:"))
    )
    assert {k.split(":")[0] + ":" + k.split(":")[1] for k in result.counts if ":" in k} >= {
        "weights:h3_r7",
        "relabelled:admin",
    }


# ------------------------------------------------------------------ several services, user indicators
def test_two_services_and_a_user_ratio_are_named_and_rolled_up(tmp_path):
    p = gp.Pipeline.from_yaml(SAMPLE)
    steps = [
        *p.steps,
        gp.steps.DistanceCoverage(
            facilities="schools", distance_km=2, service="schools", facility_name="school"
        ),
    ]
    indicators = [
        *p.indicators,
        "share_population_within_2km_schools",
        "children_beyond_2km_schools",
        {
            "id": "health_facilities_per_100k",
            "name": "Health facilities per 100,000 people",
            "unit": "per 100,000 people",
            "family": "service_coverage",
            "aggregation": "ratio",
            "numerator": "health_facilities",
            "denominator": "population_total",
            "scale": 100000,
            "description": "health_facilities / population_total x 100,000.",
        },
    ]
    q = dataclasses.replace(
        p, steps=tuple(steps), indicators=tuple(indicators), units=gp.Units(h3=(6,))
    )
    result = gp.run_pipeline(q, output=tmp_path / "two")
    dim = result.tables["dim_indicator"].set_index("indicator_id")
    assert (
        dim.loc["share_population_within_2km_schools", "name"]
        == "Share of population within 2 km of a school"
    )
    assert "2 km" in dim.loc["children_beyond_2km_schools", "description"]
    assert "5 km of a health facility" in dim.loc["share_population_within_5km_health", "name"]
    params = json.loads(dim.loc["share_population_within_2km_schools", "params"])
    assert params["distance_km"] == 2.0 and params["facilities"] == "schools"
    assert json.loads(dim.loc["share_population_within_5km_health", "params"])["distance_km"] == 5.0
    for text in dim["name"].tolist() + dim["description"].tolist():
        assert ("{" not in text and "5 km" not in text) or "5km" in " ".join(dim.index), text
    fact = result.tables["fact_indicator"]
    wide = fact.pivot_table(index="ucode", columns="indicator_id", values="value")
    admin = result.tables["dim_admin"].set_index("ucode")
    # the plain function agrees on the districts (it is tested against pyproj and exactextract)
    districts = result.tables["dim_admin"].query("admin_level == 2").reset_index(drop=True)
    schools = gp.read_points(ROOT / "data" / "sample" / "rwa_schools_modelled.csv")
    ref = gp.population_within(
        districts,
        ROOT / "data/sample/rwa_population_2020_modelled_232m.tif",
        schools,
        distance_m=2000,
    )
    mine = wide.loc[districts["ucode"], "population_within_2km_schools"].to_numpy()
    np.testing.assert_allclose(mine, ref["population_within"].to_numpy(), rtol=1e-9)
    # roll-ups: shares from summed parts, at every level; the user ratio too
    for ucode, row in admin.iterrows():
        if row.admin_level == 2:
            continue
        kids = admin.index[admin["parent_ucode"] == ucode]
        num = wide.loc[kids, "population_within_2km_schools"].sum()
        den = wide.loc[kids, "population_total"].sum()
        assert wide.loc[ucode, "share_population_within_2km_schools"] == pytest.approx(
            num / den, rel=1e-12
        )
        per = wide.loc[kids, "health_facilities"].sum() / den * 1e5
        assert wide.loc[ucode, "health_facilities_per_100k"] == pytest.approx(per, rel=1e-12)
    h3 = result.tables["h3_r6"]
    assert {"share_population_within_2km_schools", "health_facilities_per_100k"} <= set(h3.columns)


def test_user_indicator_problems_are_listed_together():
    p = gp.Pipeline.from_yaml(SAMPLE)
    bad = [
        {
            "id": "population_total",
            "name": "x",
            "unit": "x",
            "description": "x",
            "aggregation": "ratio",
            "numerator": "schools_total",
            "denominator": "population_total",
        },
        {
            "id": "odd_ratio",
            "name": "x",
            "unit": "x",
            "description": "x",
            "aggregation": "ratio",
            "numerator": "wealth_index_mean",
            "denominator": "population_totl",
        },
    ]
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(p, indicators=(*p.indicators, *bad))
    msg = str(err.value)
    assert "clashes" in msg and "is a weighted_mean, not a sum" in msg
    assert (
        "'population_totl' is not an indicator of this pipeline (did you mean 'population_total'?)"
        in msg
    )


def test_wealth_from_a_plain_polygon_layer(tmp_path):
    """child_poverty on any polygon layer (no quadkeys): the RWI tiles as plain polygons give the
    same children in poverty as the tile route."""
    tiles = gp.read_tiles(ROOT / "data" / "sample" / "RWA_relative_wealth_index.csv")
    plain = tiles[["rwi", "geometry"]].rename(columns={"rwi": "wealth_score"})
    plain.to_file(tmp_path / "wealth.gpkg")
    p = gp.Pipeline.from_yaml(SAMPLE)
    sources = {**p.sources, "wealth": gp.Source("vector", tmp_path / "wealth.gpkg")}
    steps = [
        s
        if s.kind != "child_poverty"
        else gp.steps.ChildPoverty(layer="wealth", value="wealth_score")
        for s in p.steps
    ]
    q = dataclasses.replace(p, sources=sources, steps=tuple(steps), units=gp.Units())
    plain_run = gp.run_pipeline(q, output=tmp_path / "plain")
    ref = gp.run_pipeline(dataclasses.replace(p, units=gp.Units()), output=tmp_path / "tiles")
    a = plain_run.tables["adm2"].set_index("ucode")["children_in_poverty"]
    b = ref.tables["adm2"].set_index("ucode")["children_in_poverty"]
    np.testing.assert_allclose(a.to_numpy(), b.loc[a.index].to_numpy(), rtol=1e-9, equal_nan=True)


# ------------------------------------------------------------------ never lose, leak or lie
def test_a_folder_with_foreign_files_is_refused_and_left_intact(world):
    cfg, d = world
    (d / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="no geopipe run wrote"):
        gp.run_pipeline(gp.Pipeline.from_dict(cfg), output=d)
    assert (d / "notes.txt").read_text() == "mine" and (d / "pop.tif").is_file()
    assert not list(d.glob(".geopipe-*"))


def test_truncated_output_is_rebuilt(world):
    cfg, d = world
    p = gp.Pipeline.from_dict(cfg)
    gp.run_pipeline(p, output=d / "run")
    fact = d / "run" / "fact_indicator.parquet"
    good = fact.read_bytes()
    fact.write_bytes(good[: len(good) // 2])
    again = gp.run_pipeline(p, output=d / "run")
    assert not again.up_to_date and fact.read_bytes() == good


def test_input_changed_while_read_fails_and_keeps_the_old_run(world, monkeypatch):
    cfg, d = world
    p = gp.Pipeline.from_dict(cfg)
    gp.run_pipeline(p, output=d / "run")
    before = {f.relative_to(d): f.read_bytes() for f in (d / "run").rglob("*") if f.is_file()}
    import geopipe.pipeline.context as context

    real = context.read_source

    def read_then_touch(src, **kwargs):
        out = real(src, **kwargs)
        if src.kind == "raster" and Path(src.path).name == "pop.tif":
            os.utime(src.path, ns=(1, 1))  # replaced under the run's feet
        return out

    monkeypatch.setattr(context, "read_source", read_then_touch)
    with pytest.raises(InputError, match="changed while the run was reading"):
        gp.run_pipeline(p, output=d / "run", force=True)
    assert {
        f.relative_to(d): f.read_bytes() for f in (d / "run").rglob("*") if f.is_file()
    } == before


def test_a_crash_between_the_swap_and_history_is_repaired_by_the_next_run(world, monkeypatch):
    cfg, d = world
    history = d / "history"
    p = dataclasses.replace(gp.Pipeline.from_dict(cfg), history=history)
    import geopipe.pipeline.run as run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after the swap")

    monkeypatch.setattr(run, "_write_history", killed)
    with pytest.raises(KeyboardInterrupt):
        gp.run_pipeline(p, output=d / "run")
    assert (d / "run" / "fact_indicator.parquet").is_file() and not history.exists()
    monkeypatch.undo()
    again = gp.run_pipeline(p, output=d / "run")
    assert not again.up_to_date
    parts = list(history.rglob("*.parquet"))
    assert len(parts) == 1
    assert len(pd.read_parquet(parts[0])) == len(
        pd.read_parquet(d / "run" / "fact_indicator.parquet")
    )
    assert gp.run_pipeline(p, output=d / "run").up_to_date
    parts[0].unlink()  # history lost later: the run is not up to date any more
    assert not gp.run_pipeline(p, output=d / "run").up_to_date


def test_history_path_that_is_a_file_is_refused_before_any_work(world):
    cfg, d = world
    (d / "history").write_text("not a folder")
    p = dataclasses.replace(gp.Pipeline.from_dict(cfg), history=d / "history")
    with pytest.raises(OutputError, match="is a file"):
        gp.run_pipeline(p, output=d / "run")
    assert not (d / "run").exists()


def _tmpfs(path, options):
    import subprocess

    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")


def _umount(path):
    import subprocess

    subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.parametrize(
    ("options", "cause"), [("size=1m", "No space left|disk is full"), ("ro,size=1m", "read-only")]
)
def test_unwritable_output_is_an_output_error(world, tmp_path_factory, options, cause):
    """A run into a full (1 MiB) or a read-only file system fails with an OutputError naming the
    cause, and leaves nothing behind."""
    cfg, _ = world
    mnt = tmp_path_factory.mktemp("fs")
    _tmpfs(mnt, options)
    try:
        with pytest.raises(OutputError, match=cause):
            gp.run_pipeline(gp.Pipeline.from_dict(cfg), output=mnt / "run")
        assert not (mnt / "run").exists()
        assert [p.name for p in mnt.iterdir() if p.name != ".run.geopipe-state"] == []
    finally:
        _umount(mnt)


def test_state_lives_beside_the_run_folder_and_holds_no_paths(world):
    cfg, d = world
    gp.run_pipeline(gp.Pipeline.from_dict(cfg), output=d / "run")
    assert not [p for p in (d / "run").iterdir() if p.name.startswith(".")]
    state = d / ".run.geopipe-state"
    files = list(state.rglob("*.parquet"))
    assert files
    for f in files:
        assert str(d) not in f.read_bytes().decode("latin-1")


# ------------------------------------------------------------------ a step of your own (docs/steps.md)
@gp.steps.step_type
@dataclasses.dataclass(frozen=True)
class NightLightsMean(gp.steps.Step):
    kind = "night_lights_mean_test"
    pixel = True
    lights: str = gp.steps.source("raster")
    population: str = gp.steps.source("raster", default="population_total")

    def indicators(self):
        p = self.params()
        return [
            gp.steps.measure(
                "lit_population",
                params=p,
                unit="people",
                sensitive=True,
                description=f"Radiance-weighted population of {self.lights}.",
            ),
            gp.steps.measure(
                "night_lights_mean",
                params=p,
                unit="nW/sr/cm2",
                aggregation="weighted_mean",
                weight="population_total",
                description=f"Population-weighted mean radiance of {self.lights}.",
            ),
        ]

    def run(self, units, data):
        from geopipe.zonal.layers import layer_lookup

        px = data.pixels(self.population)
        pop, ok = px.values(self.population)
        w = px.coverage * np.where(ok, pop, 0.0)
        v, has = layer_lookup(data.source(self.lights), None, 1.0, None)(px.lon, px.lat)
        num = np.bincount(px.unit, np.where(has, w * v, 0.0), minlength=px.n)
        den = np.bincount(px.unit, w, minlength=px.n)
        return {
            "lit_population": num,
            "night_lights_mean": np.divide(num, den, out=np.full(px.n, np.nan), where=den > 0),
        }


def test_a_step_of_your_own(world):
    """The docs' night-lights step, named by import path in the YAML form: computed by hand,
    rolled up, cached, in the lineage and the catalog, suppressed like the built-in steps."""
    cfg, d = world
    cfg = {
        **cfg,
        "sources": {**cfg["sources"], "lights": {"kind": "raster", "path": str(d / "u5.tif")}},
    }
    cfg["steps"] = [*cfg["steps"], {"kind": "test_engine:NightLightsMean", "lights": "lights"}]
    p = gp.Pipeline.from_dict(cfg)
    first = gp.run_pipeline(p, output=d / "run")
    wide = first.tables["fact_indicator"].pivot_table(
        index="ucode", columns="indicator_id", values="value"
    )
    # u5 = 0.1 x pop, so the population-weighted mean radiance is sum(0.1 pop^2) / sum(pop)
    from conftest import TINY_POP

    a, b = TINY_POP[:, :2], TINY_POP[:, 2:]
    assert wide.loc["XXX_0001_V1", "night_lights_mean"] == pytest.approx(
        (0.1 * a**2).sum() / a.sum()
    )
    assert wide.loc["XXX_V1", "night_lights_mean"] == pytest.approx(
        (0.1 * TINY_POP**2).sum() / TINY_POP.sum()
    )
    assert wide.loc["XXX_0002_V1", "lit_population"] == pytest.approx((0.1 * b**2).sum())
    lineage = first.tables["fact_lineage"].groupby("indicator_id")["source_id"].apply(set)
    assert {"lights", "population_total"} <= lineage["night_lights_mean"]
    dim = first.tables["dim_indicator"].set_index("indicator_id")
    assert json.loads(dim.loc["night_lights_mean", "params"])["lights"] == "lights"
    (d / "health.csv").write_text("lon,lat,name\n0.015,0.005,clinic\n")  # another input changes
    second = gp.run_pipeline(p, output=d / "run")
    assert (
        second.manifest["quality"]["step_cache"]["admin/night_lights_mean_test:lit_population"]
        == "reused"
    )
    strict = gp.run_pipeline(dataclasses.replace(p, quality={"k": 1e9}), output=d / "run")
    lit = strict.tables["fact_indicator"].query("indicator_id == 'lit_population'")
    assert lit["suppressed"].all() and lit["value"].isna().all()


@pytest.mark.parametrize("case", ["all_nodata", "no_overlap", "swapped_points"])
def test_a_layer_that_contributes_nothing_stops_the_run(world, case):
    """An all-nodata raster, a raster that overlaps no unit, points that all lie outside: an
    InputError naming the file, nothing written."""
    import rasterio

    cfg, d = world
    if case == "swapped_points":
        (d / "health.csv").write_text("lon,lat,name\n0.005,45.015,clinic\n")
        match = "health.csv"
    else:
        with rasterio.open(d / "pop.tif") as src:
            profile, data = src.profile, src.read(1)
        if case == "all_nodata":
            data[:] = profile["nodata"]
        else:
            profile["transform"] = rasterio.transform.from_origin(100, 50, 0.01, 0.01)
        with rasterio.open(d / "pop.tif", "w", **profile) as dst:
            dst.write(data, 1)
        match = "pop.tif"
    with pytest.raises(InputError, match=match):
        gp.run_pipeline(gp.Pipeline.from_dict(cfg), output=d / "run")
    assert not (d / "run").exists() and not (d / ".run.geopipe-state").exists()
