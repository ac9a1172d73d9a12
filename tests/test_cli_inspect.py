"""`geopipe inspect` on every kind of file the sample reads or writes, against direct reads."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import SAMPLE, TESTDATA, geopipe_cli, write_raster
from geopipe.io.inspect import file_kind, inspect_file


def _cli_json(*paths):
    done = geopipe_cli("inspect", "--json", *paths)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _text(path):
    done = geopipe_cli("inspect", path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_geoparquet_outputs(sample_run):
    run, _ = sample_run
    for name in ("adm2.parquet", "h3_r7.parquet", "dim_admin.parquet"):
        info = inspect_file(run / name)
        ref = gpd.read_parquet(run / name)
        geo = info["geoparquet"]
        assert info["kind"] == "geoparquet" and info["rows"] == len(ref)
        assert geo["version"] == "1.1.0" and geo["encoding"] == "WKB"
        assert geo["crs"] == "EPSG:4326" and ref.crs.to_epsg() == 4326
        assert geo["covering"] == "bbox -> column 'bbox'"
        np.testing.assert_allclose(geo["bbox"], ref.total_bounds)
        assert set(ref.geom_type) <= set(geo["geometry_types"])
        assert list(info["columns"]) == list(pq.read_schema(run / name).names)
    text = _text(run / "adm2.parquet")
    for fact in ("rows: 30", "version 1.1.0", "crs: EPSG:4326", "covering: bbox", "population_u18"):
        assert fact in text


def test_plain_parquet_and_wkt_tiles(sample_run):
    run, _ = sample_run
    fact = inspect_file(run / "fact_indicator.parquet")
    assert fact["kind"] == "parquet" and "geoparquet" not in fact
    assert fact["rows"] == len(pd.read_parquet(run / "fact_indicator.parquet"))
    assert {"ucode", "indicator_id", "value", "suppressed"} <= set(fact["columns"])
    tiles = inspect_file(SAMPLE / "rwa_ookla_fixed_2020q1_modelled.parquet")
    ref = gpd.GeoSeries.from_wkt(
        pd.read_parquet(SAMPLE / "rwa_ookla_fixed_2020q1_modelled.parquet")["tile"]
    )
    assert tiles["rows"] == len(ref)
    np.testing.assert_allclose(tiles["wkt_columns"]["tile"]["bounds"], ref.total_bounds)


def test_duckdb_warehouse(sample_run):
    import duckdb

    run, _ = sample_run
    info = inspect_file(run / "warehouse.duckdb")
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    try:
        tables = dict(
            con.execute("select table_name, table_type from information_schema.tables").fetchall()
        )
    finally:
        con.close()
    assert set(info["tables"]) == {t for t, k in tables.items() if k == "BASE TABLE"}
    assert set(info["views"]) == {t for t, k in tables.items() if k == "VIEW"}
    assert info["tables"]["fact_indicator"]["rows"] == len(
        pd.read_parquet(run / "fact_indicator.parquet")
    )
    np.testing.assert_allclose(
        info["tables"]["adm2"]["bounds"],
        gpd.read_parquet(run / "adm2.parquet").total_bounds,
        atol=1e-9,
    )
    assert "v_indicator_by_admin" in _text(run / "warehouse.duckdb")


def test_rasters_by_blocks_and_from_overviews(tmp_path):
    path = SAMPLE / "rwa_population_2020_modelled_232m.tif"
    info = inspect_file(path)
    with rasterio.open(path) as ds:
        arr = ds.read(1, masked=True)
        assert info["nodata"] == ds.nodata and info["crs"] == ds.crs.to_string()
        assert info["block"] == list(ds.block_shapes[0]) and info["pixels"] == ds.width * ds.height
    band = info["bands"][0]
    assert band["min"] == pytest.approx(float(arr.min())) and band["max"] == pytest.approx(
        float(arr.max())
    )
    assert band["valid_pixels"] == int(arr.count())
    assert band["sum"] == pytest.approx(float(arr.sum(dtype="float64")), rel=1e-9)
    assert "approximate" not in band
    # a raster with overviews and a projected CRS: range read from the smallest overview
    rng = np.random.default_rng(3)
    data = rng.uniform(1, 2, (512, 512)).astype("float32")
    data[:16] = -1
    big = write_raster(
        tmp_path / "ov.tif",
        data,
        from_origin(500_000, 9_800_000, 100, 100),
        crs="EPSG:32735",
        nodata=-1,
        tiled=True,
    )
    with rasterio.open(big, "r+") as ds:
        ds.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    ov = inspect_file(big)
    b = ov["bands"][0]
    assert ov["overviews"] == [2, 4] and "1/4 overview" in b["approximate"]
    assert 1 <= b["min"] < b["max"] <= 2
    assert b["valid_pixels"] == pytest.approx(496 * 512, rel=0.02)
    lon0, lat0, lon1, lat1 = ov["bounds_wgs84"]
    assert 26 < lon0 < lon1 < 28 and -2.5 < lat0 < lat1 < -1.5  # UTM 35S near the equator
    assert "1/4 overview" in _text(big)


def test_vector_files(tmp_path):
    for path in (SAMPLE / "rwa_adm2.geojson", TESTDATA / "admin" / "codab_rwa.gpkg"):
        info = inspect_file(path)
        for layer, facts in info["layers"].items():
            ref = gpd.read_file(path, layer=layer)
            assert facts["features"] == len(ref) and facts["crs"] == "EPSG:4326"
            np.testing.assert_allclose(facts["bounds"], ref.total_bounds)
            assert list(facts["columns"]) == [c for c in ref.columns if c != "geometry"]
    assert len(inspect_file(TESTDATA / "admin" / "codab_rwa.gpkg")["layers"]) == 3
    # TopoJSON: two squares sharing an arc
    topo = {
        "type": "Topology",
        "objects": {
            "units": {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "arcs": [[0, 1]], "properties": {"name": "west"}},
                    {"type": "Polygon", "arcs": [[2, -1]], "properties": {"name": "east"}},
                ],
            }
        },
        "arcs": [
            [[30, 0], [30, -1]],
            [[30, -1], [29, -1], [29, 0], [30, 0]],
            [[30, 0], [31, 0], [31, -1], [30, -1]],
        ],
    }
    path = tmp_path / "units.topojson"
    path.write_text(json.dumps(topo), encoding="utf-8")
    info = inspect_file(path)
    (facts,) = [f for f in info["layers"].values() if f["features"] == 2]
    np.testing.assert_allclose(facts["bounds"], [29, -1, 31, 0])
    assert "name" in facts["columns"]
    assert "2 features" in _text(path)


def test_csv_inputs_and_outputs(sample_run):
    run, _ = sample_run
    for path in (SAMPLE / "rwa_schools_modelled.csv", SAMPLE / "RWA_relative_wealth_index.csv"):
        info = inspect_file(path)
        ref = pd.read_csv(path)
        lon, lat = info["coordinates"]["lon"], info["coordinates"]["lat"]
        assert info["rows"] == len(ref) and list(info["columns"]) == list(ref.columns)
        np.testing.assert_allclose(
            info["bounds"], [ref[lon].min(), ref[lat].min(), ref[lon].max(), ref[lat].max()]
        )
    out = inspect_file(run / "geosight.csv")
    assert out["rows"] == len(pd.read_csv(run / "geosight.csv")) and "coordinates" not in out
    assert {"geom_id", "indicator_shortcode", "value"} <= set(out["columns"])


def test_manifest_and_several_files(sample_run):
    run, _ = sample_run
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    infos = _cli_json(run / "manifest.json", run / "adm1.parquet", SAMPLE / "rwa_adm1.geojson")
    assert [i["kind"] for i in infos] == ["manifest", "geoparquet", "vector"]
    assert infos[0]["run_id"] == manifest["run_id"]
    assert infos[0]["outputs"]["adm1.parquet"] == manifest["outputs"]["adm1.parquet"]["rows"]


def test_file_kinds():
    assert file_kind("a.GPKG") == "vector" and file_kind("w.duckdb") == "duckdb"
    from geopipe.errors import FormatError

    with pytest.raises(FormatError, match=r"\.xyz"):
        file_kind("notes.xyz")


def test_partitioned_parquet_folder(sample_run, tmp_path):
    from geopipe.io.partitioned import write_partitioned

    run, _ = sample_run
    fact = pd.read_parquet(run / "fact_indicator.parquet")
    fact = pd.concat([fact.assign(date="2020-01-01"), fact.assign(date="2021-01-01")])
    fact["iso3"] = "RWA"
    root = tmp_path / "fact_indicator"
    files = write_partitioned(fact, root)
    info = inspect_file(root)
    assert info["kind"] == "parquet_dataset" and info["files"] == len(files)
    assert info["rows"] == len(fact)
    assert info["partitions"] == {"date": ["2020-01-01", "2021-01-01"], "iso3": ["RWA"]}
    assert "partition date: 2 values" in _text(root)
