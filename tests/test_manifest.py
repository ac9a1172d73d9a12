"""Run manifest: fingerprints, package versions, JSON round trip, incremental keys, lineage."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from geopipe.errors import InputError, MissingFileError
from geopipe.manifest import RunManifest, fact_lineage, fingerprint_file, package_versions


@pytest.fixture
def raster(tmp_path: Path) -> Path:
    path = tmp_path / "pop_u18.tif"
    data = np.arange(12, dtype="float32").reshape(3, 4)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=3,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(0.25, 0.0, 29.0, 0.0, -0.5, -1.0),
        nodata=-9999.0,
    ) as dst:
        dst.write(data, 1)
    return path


@pytest.fixture
def inputs(tmp_path: Path, raster: Path) -> dict[str, Path]:
    admin = tmp_path / "adm2.geojson"
    admin.write_text('{"type": "FeatureCollection", "features": []}')
    schools = tmp_path / "schools.csv"
    schools.write_text("lat,lon,connected\n-1.9,30.1,yes\n")
    return {"admin": admin, "pop_u18": raster, "schools": schools}


def test_fingerprint_matches_hashlib_and_rasterio(raster: Path, inputs: dict[str, Path]) -> None:
    fp = fingerprint_file(inputs["schools"])
    assert fp["sha256"] == hashlib.sha256(inputs["schools"].read_bytes()).hexdigest()
    assert fp["size"] == os.stat(inputs["schools"]).st_size
    assert "raster" not in fp

    info = fingerprint_file(raster)["raster"]
    with rasterio.open(raster) as src:
        assert info["crs"] == src.crs.to_string() == "EPSG:4326"
        assert info["shape"] == [src.count, src.height, src.width] == [1, 3, 4]
        assert info["resolution"] == list(src.res) == [0.25, 0.5]
        assert info["bounds"] == list(src.bounds)
        assert info["dtype"] == "float32" and info["nodata"] == -9999.0


def test_fingerprint_reuses_hash_only_when_file_unchanged(inputs: dict[str, Path]) -> None:
    p = inputs["schools"]
    old = fingerprint_file(p)
    fake = {**old, "sha256": "cached"}
    assert fingerprint_file(p, previous=fake)["sha256"] == "cached"
    st = p.stat()
    p.write_text("lat,lon,connected\n-1.9,30.1,non\n")  # same size, new content
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert (
        fingerprint_file(p, previous=fake)["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    )
    with pytest.raises(MissingFileError, match="does not exist"):
        fingerprint_file(p.with_name("gone.csv"))


def test_package_versions_match_importlib() -> None:
    v = package_versions()
    for name in ("geopandas", "shapely", "rasterio", "h3", "duckdb", "pyarrow", "exactextract"):
        assert v[name] == importlib.metadata.version(name)
    assert {"geopipe", "pyogrio", "numpy", "pandas", "python"} <= set(v)


def test_write_read_round_trip_sorted_json(tmp_path: Path, inputs: dict[str, Path]) -> None:
    m = RunManifest.start(run="rwa", parameters={"h3_res": 8, "threshold": 0.5})
    for name, path in inputs.items():
        m.add_input(name, path)
    out = tmp_path / "adm1.parquet"
    out.write_bytes(b"parquet bytes")
    m.add_output("adm1.parquet", out, rows=5, depends_on=["admin", "pop_u18"])
    m.add_quality("population_conserved", True, message="0.0% outside", share_outside=0.0)
    with m.step("zonal"):
        pass
    m.finish()
    path = m.write(tmp_path / "manifest.json")
    text = path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert data["outputs"]["adm1.parquet"]["sha256"] == hashlib.sha256(b"parquet bytes").hexdigest()
    assert data["outputs"]["adm1.parquet"]["rows"] == 5
    assert data["inputs"]["pop_u18"]["raster"]["shape"] == [1, 3, 4]
    assert data["quality"]["population_conserved"]["passed"] is True
    assert data["finished"] >= data["started"]
    assert "zonal" in data["timings"]
    back = RunManifest.read(path)
    assert back == m
    assert back.inputs_key() == m.inputs_key()


def test_inputs_key_depends_on_content_not_paths(tmp_path: Path, inputs: dict[str, Path]) -> None:
    a = RunManifest(inputs={n: fingerprint_file(p) for n, p in inputs.items()}, parameters={"r": 7})
    moved = tmp_path / "moved"
    moved.mkdir()
    copies = {}
    for n, p in reversed(list(inputs.items())):
        copies[n] = moved / p.name
        copies[n].write_bytes(p.read_bytes())
    b = RunManifest(inputs={n: fingerprint_file(p) for n, p in copies.items()}, parameters={"r": 7})
    assert a.inputs_key() == b.inputs_key()
    c = RunManifest(inputs=b.inputs, parameters={"r": 8})
    assert c.inputs_key() != a.inputs_key()


DEPS = {
    "dim_admin.parquet": {"inputs": ["admin"], "params": []},
    "h3_r8.parquet": {"inputs": ["admin", "pop_u18"], "params": ["h3_res"]},
    "adm2.parquet": {"inputs": ["admin", "pop_u18", "schools"], "params": ["threshold"]},
    "warehouse.duckdb": {
        "params": [],
        "outputs": ["dim_admin.parquet", "h3_r8.parquet", "adm2.parquet"],
    },
}


def _first_run(tmp_path: Path, inputs: dict[str, Path], params: dict) -> RunManifest:
    m = RunManifest.start(run="rwa", parameters=params)
    for name, path in inputs.items():
        m.add_input(name, path)
    for out in ["dim_admin.parquet", "h3_r8.parquet", "adm2.parquet", "warehouse.duckdb"]:
        (tmp_path / out).write_text(out)
        m.add_output(out, tmp_path / out, depends_on=DEPS[out])
    m.write(tmp_path / "manifest.json")
    return RunManifest.read(tmp_path / "manifest.json")


def test_incremental_unchanged_inputs_nothing_stale(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    params = {"h3_res": 8, "threshold": 0.5}
    old = _first_run(tmp_path, inputs, params)
    new_inputs = {n: fingerprint_file(p) for n, p in inputs.items()}
    assert old.stale_outputs(new_inputs, dict(params), DEPS) == []


def test_incremental_one_changed_input_rebuilds_only_dependents(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    params = {"h3_res": 8, "threshold": 0.5}
    old = _first_run(tmp_path, inputs, params)
    inputs["schools"].write_text("lat,lon,connected\n-1.9,30.1,yes\n-2.0,30.2,no\n")
    new_inputs = {n: fingerprint_file(p) for n, p in inputs.items()}
    # only adm2 uses the schools, and the warehouse is built from adm2
    assert old.stale_outputs(new_inputs, params, DEPS) == ["adm2.parquet", "warehouse.duckdb"]

    with rasterio.open(inputs["pop_u18"], "r+") as dst:
        dst.write(np.ones((3, 4), dtype="float32"), 1)
    new_inputs = {n: fingerprint_file(p) for n, p in inputs.items()}
    assert old.stale_outputs(new_inputs, params, DEPS) == [
        "adm2.parquet",
        "h3_r8.parquet",
        "warehouse.duckdb",
    ]


def test_incremental_parameter_and_missing_file(tmp_path: Path, inputs: dict[str, Path]) -> None:
    params = {"h3_res": 8, "threshold": 0.5}
    old = _first_run(tmp_path, inputs, params)
    new_inputs = {n: fingerprint_file(p) for n, p in inputs.items()}
    stale = old.stale_outputs(new_inputs, {**params, "h3_res": 7}, DEPS)
    assert stale == ["h3_r8.parquet", "warehouse.duckdb"]
    (tmp_path / "dim_admin.parquet").unlink()
    assert old.stale_outputs(new_inputs, params, DEPS) == ["dim_admin.parquet", "warehouse.duckdb"]
    # a first run (nothing recorded) rebuilds everything
    assert RunManifest().stale_outputs(new_inputs, params, DEPS) == [
        "adm2.parquet",
        "dim_admin.parquet",
        "h3_r8.parquet",
        "warehouse.duckdb",
    ]


def test_outputs_recorded_without_path_use_root(tmp_path: Path, inputs: dict[str, Path]) -> None:
    m = RunManifest(inputs={n: fingerprint_file(p) for n, p in inputs.items()})
    (tmp_path / "fact_indicator.parquet").write_text("x")
    m.add_output("fact_indicator.parquet", rows=3, sha256="abc")  # the runner's style
    assert m.outputs["fact_indicator.parquet"]["depends_on"]["inputs"] == sorted(inputs)
    deps = {"fact_indicator.parquet": sorted(inputs)}
    assert m.stale_outputs(m.inputs, {}, deps, root=tmp_path) == []
    (tmp_path / "fact_indicator.parquet").unlink()
    assert m.stale_outputs(m.inputs, {}, deps, root=tmp_path) == ["fact_indicator.parquet"]


def test_relative_output_paths_resolve_against_root(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "adm1.parquet").write_text("x")
    m = RunManifest(inputs={n: fingerprint_file(p) for n, p in inputs.items()})
    m.add_output("adm1.parquet", run / "adm1.parquet", rows=5)
    m.outputs["adm1.parquet"]["path"] = "adm1.parquet"  # the runner stores names
    deps = {"adm1.parquet": sorted(inputs)}
    assert m.stale_outputs(m.inputs, {}, deps, root=run) == []
    (run / "adm1.parquet").write_text("longer content")  # size changed behind our back
    assert m.stale_outputs(m.inputs, {}, deps, root=run) == ["adm1.parquet"]


def test_dependency_errors_list_every_problem(inputs: dict[str, Path]) -> None:
    m = RunManifest()
    with pytest.raises(InputError, match=r"inputs \['raster'\].*parameters \['h3_res'\]"):
        m.stale_outputs({}, {}, {"a": {"inputs": ["raster"], "params": ["h3_res"]}})
    with pytest.raises(InputError, match="cycle"):
        m.stale_outputs({}, {}, {"a": {"outputs": ["b"]}, "b": {"outputs": ["a"]}})
    with pytest.raises(InputError, match="not a list"):
        m.stale_outputs({"admin": "x"}, {}, {"a": "admin"})  # type: ignore[dict-item]


def test_fact_lineage(inputs: dict[str, Path]) -> None:
    fact = pd.DataFrame(
        {
            "ucode": ["RWA_0001_V1", "RWA_0002_V1", "RWA_0001_V1"],
            "indicator_id": ["population_u18", "population_u18", "schools_total"],
        }
    )
    raster_fp = fingerprint_file(inputs["pop_u18"])
    lin = fact_lineage(
        fact,
        run_id="run42",
        sources={"admin": "geoBoundaries RWA ADM2 2012", "pop_u18": raster_fp, "schools": "v3"},
        uses={"population_u18": ["admin", "pop_u18"], "schools_total": ["admin", "schools"]},
        unit_sources=pd.DataFrame(
            {"ucode": ["RWA_0001_V1"], "source_id": ["admin"], "source_version": ["V1"]}
        ),
    )
    assert list(lin.columns) == ["run_id", "indicator_id", "ucode", "source_id", "source_version"]
    assert (lin.run_id == "run42").all()
    got = set(lin[["indicator_id", "ucode", "source_id", "source_version"]].itertuples(False))
    expected = {
        ("population_u18", "*", "admin", "geoBoundaries RWA ADM2 2012"),
        ("population_u18", "*", "pop_u18", f"sha256:{raster_fp['sha256']}"),
        ("schools_total", "*", "admin", "geoBoundaries RWA ADM2 2012"),
        ("schools_total", "*", "schools", "v3"),
        ("population_u18", "RWA_0001_V1", "admin", "V1"),
        ("schools_total", "RWA_0001_V1", "admin", "V1"),
    }
    assert got == expected
    assert not lin.duplicated(["run_id", "indicator_id", "ucode", "source_id"]).any()

    with pytest.raises(InputError, match=r"no sources for indicators \['schools_total'\]"):
        fact_lineage(fact, run_id="r", sources={"a": "1"}, uses={"population_u18": ["a"]})
    with pytest.raises(InputError, match=r"unknown sources \['b'\]"):
        fact_lineage(
            fact,
            run_id="r",
            sources={"a": "1"},
            uses={"population_u18": ["b"], "schools_total": []},
        )


def test_a_rerun_reuses_the_inputs_hashes_of_its_manifest(tmp_path, monkeypatch):
    """The manifest records input paths relative to the config's folder (and a multi-country
    one prefixes the roles with the country): the hashes are still found and reused."""
    import geopipe.manifest as gm
    from geopipe.pipeline.state import fingerprint_inputs

    data = tmp_path / "data"
    data.mkdir()
    pop = data / "pop.csv"
    pop.write_text("a,b\n1,2\n")
    first = fingerprint_inputs({"pop": pop})
    recorded = {"RWA/pop": {**first["pop"], "path": "../data/pop.csv"}}
    hashed = []
    monkeypatch.setattr(gm, "sha256_file", lambda p: hashed.append(p) or "rehashed")
    again = fingerprint_inputs({"pop": pop}, recorded, base=tmp_path / "pipelines")
    assert again["pop"]["sha256"] == first["pop"]["sha256"] and hashed == []
    # another config folder, same relative path: another file, hashed
    assert (
        fingerprint_inputs({"pop": pop}, recorded, base=tmp_path / "x" / "y")["pop"]["sha256"]
        == "rehashed"
    )
    os.utime(pop, ns=(pop.stat().st_atime_ns, pop.stat().st_mtime_ns + 1_000_000))
    assert (
        fingerprint_inputs({"pop": pop}, recorded, base=tmp_path / "pipelines")["pop"]["sha256"]
        == "rehashed"
    )


def test_a_rerun_of_the_sample_reads_no_input_to_hash_it(tmp_path, monkeypatch):
    import geopipe as gp
    import geopipe.manifest as gm

    root = Path(__file__).resolve().parents[1]
    p = gp.Pipeline.from_yaml(root / "pipelines" / "sample.yaml")
    gp.run_pipeline(p, output=tmp_path / "run")
    real, hashed = gm.sha256_file, []
    monkeypatch.setattr(gm, "sha256_file", lambda f: hashed.append(Path(f)) or real(f))
    gp.run_pipeline(p, output=tmp_path / "run", force=True)
    inputs = {Path(f).resolve() for f in p.input_files().values()}
    assert hashed and not inputs & {f.resolve() for f in hashed}  # outputs are hashed, not inputs
