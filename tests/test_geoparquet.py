"""GeoParquet 1.1 writer/reader/checker, compared with geopandas, pyarrow and DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely

from geopipe.errors import GeometryError, InputError, MissingFileError
from geopipe.io._spatial_sort import hilbert_index
from geopipe.io.geoparquet import (
    _row_groups_for_bbox,
    check_geoparquet,
    read_geoparquet,
    write_geoparquet,
    write_parquet,
)
from geopipe.io.warehouse import load_spatial


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def admin() -> gpd.GeoDataFrame:
    """A few admin polygons in EPSG:4326 (one MultiPolygon), GeoRepo-style ucodes."""
    rng = np.random.default_rng(7)
    x0 = rng.uniform(28.9, 30.8, 40)
    y0 = rng.uniform(-2.8, -1.1, 40)
    geoms = list(shapely.box(x0, y0, x0 + 0.05, y0 + 0.04))
    geoms[3] = shapely.MultiPolygon([geoms[3], shapely.box(31.0, -1.0, 31.1, -0.9)])
    return gpd.GeoDataFrame(
        {
            "ucode": [f"RWA_{i:04d}_V1" for i in range(1, 41)],
            "name": [f"District {i}" for i in range(1, 41)],
            "admin_level": np.full(40, 2),
            "population_total": rng.uniform(1e4, 5e5, 40),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


@pytest.fixture
def cells() -> gpd.GeoDataFrame:
    """H3 res-8 cells around Kigali with a measure column."""
    ids = sorted(h3.grid_disk(h3.latlng_to_cell(-1.95, 30.06, 8), 12))
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    rng = np.random.default_rng(1)
    order = rng.permutation(len(ids))  # input deliberately not in H3 order
    return gpd.GeoDataFrame(
        {
            "cell_id": np.array(ids)[order],
            "ucode": "RWA_0001_0001_V1",
            "population_u18": rng.uniform(0, 900, len(ids)),
        },
        geometry=np.array(polys, dtype=object)[order],
        crs="EPSG:4326",
    )


def _geo(path: Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[b"geo"])


def _by(gdf: pd.DataFrame, key: str) -> pd.DataFrame:
    return gdf.sort_values(key).reset_index(drop=True)


# ---------------------------------------------------------------------------------- metadata
def test_geo_metadata_matches_the_data(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    path = write_geoparquet(admin, tmp_path / "adm2.parquet")
    assert check_geoparquet(path) == []
    geo = _geo(path)
    assert geo["version"] == "1.1.0"
    assert geo["primary_column"] == "geometry"
    col = geo["columns"]["geometry"]
    assert col["encoding"] == "WKB"
    assert col["geometry_types"] == sorted(set(admin.geom_type))  # Polygon + MultiPolygon
    assert pyproj.CRS.from_json_dict(col["crs"]) == pyproj.CRS("EPSG:4326")
    assert col["bbox"] == pytest.approx(list(admin.total_bounds), abs=0)
    assert col["covering"] == {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    schema = pq.read_schema(path)
    assert str(schema.field("bbox").type) == (
        "struct<xmin: double, ymin: double, xmax: double, ymax: double>"
    )
    assert (
        pq.read_metadata(path).row_group(0).column(0).compression == "SNAPPY"
    )  # the default codec (geopandas and BI readers), see docs/outputs.md
    meta = pq.read_metadata(path).row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert {c.compression for c in chunks.values()} == {"SNAPPY"}  # bbox.xmin ... too
    with_stats = {p for p, c in chunks.items() if c.is_stats_set}
    assert with_stats == set(chunks) - {"geometry"}  # statistics on all but the WKB


def test_covering_column_equals_geometry_bounds(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    path = write_geoparquet(admin, tmp_path / "adm2.parquet")
    table = pq.read_table(path)
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    box = table.column("bbox").to_pandas()
    got = np.array([[b[k] for k in ("xmin", "ymin", "xmax", "ymax")] for b in box])
    np.testing.assert_array_equal(got, shapely.bounds(geoms))


def test_null_and_empty_geometries(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"ucode": ["A_V1", "B_V1", "C_V1"]},
        geometry=[shapely.Point(1, 2), None, shapely.Polygon()],
        crs="EPSG:4326",
    )
    path = write_geoparquet(gdf, tmp_path / "p.parquet", sort=None)
    assert check_geoparquet(path) == []
    assert pq.read_table(path).column("bbox").null_count == 2
    back = read_geoparquet(path)
    assert back.geometry.isna().tolist() == [False, True, False]
    assert back.geometry.is_empty.tolist() == [False, False, True]


def test_3d_geometry_types_are_declared(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(1, 2, 3), shapely.Point(0, 0)], crs=4326)
    path = write_geoparquet(gdf, tmp_path / "z.parquet")
    assert _geo(path)["columns"]["geometry"]["geometry_types"] == ["Point", "Point Z"]
    assert check_geoparquet(path) == []
    assert read_geoparquet(path).has_z.sort_values().tolist() == [False, True]


# ---------------------------------------------------------------------------------- round trip
def test_read_back_identically_by_geopandas_pyarrow_duckdb(
    tmp_path: Path, admin: gpd.GeoDataFrame
) -> None:
    path = write_geoparquet(admin, tmp_path / "adm2.parquet")
    expected = _by(admin, "ucode")

    ours = _by(read_geoparquet(path), "ucode")
    pd.testing.assert_frame_equal(ours.drop(columns="geometry"), expected.drop(columns="geometry"))
    assert ours.crs == admin.crs
    assert ours.geometry.geom_equals_exact(expected.geometry, tolerance=0).all()

    by_gpd = _by(gpd.read_parquet(path), "ucode")
    assert list(by_gpd.columns) == list(admin.columns)  # geopandas hides the covering too
    pd.testing.assert_frame_equal(
        by_gpd.drop(columns="geometry"), expected.drop(columns="geometry")
    )
    assert by_gpd.crs == admin.crs
    assert by_gpd.geometry.geom_equals_exact(expected.geometry, tolerance=0).all()

    table = pq.read_table(path).to_pandas()
    by_arrow = _by(table, "ucode")
    np.testing.assert_array_equal(
        shapely.from_wkb(by_arrow["geometry"]), expected.geometry.to_numpy()
    )

    con = duckdb.connect()
    assert load_spatial(con)
    rows = con.execute(
        "SELECT ucode, name, admin_level, population_total, ST_AsWKB(geometry) AS wkb, "
        "ST_XMin(geometry) = bbox.xmin AND ST_YMax(geometry) = bbox.ymax AS box_ok "
        "FROM read_parquet(?) ORDER BY ucode",
        [str(path)],
    ).df()
    assert rows["box_ok"].all()
    pd.testing.assert_series_equal(rows["ucode"], expected["ucode"], check_dtype=False)
    np.testing.assert_array_equal(rows["population_total"], expected["population_total"])
    dgeoms = shapely.from_wkb(rows["wkb"].map(bytes))
    assert shapely.equals_exact(dgeoms, expected.geometry.to_numpy(), tolerance=0).all()
    crs = con.execute(
        "SELECT DISTINCT ST_CRS(geometry) FROM read_parquet(?)", [str(path)]
    ).fetchall()
    assert crs == [("EPSG:4326",)]


def test_columns_selection_keeps_geometry(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    path = write_geoparquet(admin, tmp_path / "a.parquet")
    got = read_geoparquet(path, columns=["ucode"])
    assert list(got.columns) == ["ucode", "geometry"]
    assert set(got.ucode) == set(admin.ucode)


def test_column_order_and_a_second_geometry_column_survive_the_read(tmp_path: Path) -> None:
    pts = shapely.points([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    gdf = gpd.GeoDataFrame(
        {"a": [1, 2, 3], "centre": gpd.GeoSeries(pts, crs="EPSG:4326"), "b": ["x", "y", "z"]},
        geometry=shapely.buffer(pts, 0.5),
        crs="EPSG:4326",
    )
    path = write_geoparquet(gdf, tmp_path / "two.parquet")
    back = read_geoparquet(path).sort_values("a", ignore_index=True)  # the writer sorts rows
    assert list(back.columns) == ["a", "centre", "b", "geometry"]
    assert back.geometry.name == "geometry" and back.crs == gdf.crs
    assert isinstance(back["centre"], gpd.GeoSeries) and back["centre"].crs == gdf.crs
    assert shapely.equals_exact(back["centre"].to_numpy(), pts, tolerance=0).all()
    picked = read_geoparquet(path, columns=["b", "centre", "a"]).sort_values("a")
    assert list(picked.columns) == ["b", "centre", "a", "geometry"]
    assert picked["b"].tolist() == ["x", "y", "z"]


def test_named_index_is_written_as_column(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    path = write_geoparquet(admin.set_index("ucode"), tmp_path / "i.parquet")
    assert "ucode" in pq.read_schema(path).names
    assert set(read_geoparquet(path).ucode) == set(admin.ucode)


# ------------------------------------------------------------------------------- determinism
def test_same_input_gives_identical_bytes(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    a = write_geoparquet(admin, tmp_path / "a.parquet")
    b = write_geoparquet(admin.copy(), tmp_path / "b.parquet")
    assert a.read_bytes() == b.read_bytes()
    assert b"geopandas" not in a.read_bytes()  # no foreign creator / timestamp metadata


def test_row_order_of_input_does_not_matter(tmp_path: Path, cells: gpd.GeoDataFrame) -> None:
    shuffled = cells.sample(frac=1, random_state=3).reset_index(drop=True)
    a = write_geoparquet(cells, tmp_path / "a.parquet")
    b = write_geoparquet(shuffled, tmp_path / "b.parquet")
    assert a.read_bytes() == b.read_bytes()


def test_plain_parquet_is_deterministic_and_readable(tmp_path: Path) -> None:
    fact = pd.DataFrame(
        {
            "ucode": ["RWA_0001_V1", "RWA_0002_V1"],
            "indicator_id": ["population_total"] * 2,
            "date": pd.to_datetime(["2024-01-01"] * 2).date,
            "value": [1.0, np.nan],
            "suppressed": [False, True],
        }
    )
    a = write_parquet(fact, tmp_path / "a.parquet")
    b = write_parquet(fact, tmp_path / "b.parquet")
    assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(a), fact)
    n = duckdb.sql(f"select count(*) from read_parquet('{a}') where suppressed").fetchone()[0]
    assert n == 1


# ------------------------------------------------------------------------------ spatial order
def test_h3_cells_are_sorted_by_cell_id(tmp_path: Path, cells: gpd.GeoDataFrame) -> None:
    path = write_geoparquet(cells, tmp_path / "h3_r8.parquet")
    written = pq.read_table(path, columns=["cell_id"]).column("cell_id").to_pylist()
    assert written == sorted(cells.cell_id, key=h3.str_to_int)
    assert check_geoparquet(path) == []


def test_hilbert_index_is_a_space_filling_path() -> None:
    # definition of a Hilbert curve of order 4: it visits each of the 16x16 cells exactly once
    # and every step moves to an edge-adjacent cell
    x, y = np.meshgrid(np.arange(16), np.arange(16))
    d = hilbert_index(x.ravel(), y.ravel(), level=4)
    assert sorted(d.tolist()) == list(range(256))
    order = np.argsort(d)
    steps = np.abs(np.diff(x.ravel()[order])) + np.abs(np.diff(y.ravel()[order]))
    assert (steps == 1).all()
    assert d[0] == 0  # starts at the origin


def test_bbox_read_skips_row_groups_and_matches_geopandas(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    pts = shapely.points(rng.uniform(28.8, 31, n), rng.uniform(-2.9, -1, n))
    gdf = gpd.GeoDataFrame({"i": np.arange(n)}, geometry=shapely.buffer(pts, 0.002), crs=4326)
    path = write_geoparquet(gdf, tmp_path / "pts.parquet", row_group_size=1_000)
    window = (29.0, -2.0, 29.2, -1.8)

    pf = pq.ParquetFile(path)
    groups = _row_groups_for_bbox(pf, "bbox", window)
    assert pf.metadata.num_row_groups == 20
    assert len(groups) <= 4  # Hilbert order: a small window touches few row groups

    got = read_geoparquet(path, bbox=window)
    b = gdf.bounds
    brute = gdf[
        (b.minx <= window[2])
        & (b.maxx >= window[0])
        & (b.miny <= window[3])
        & (b.maxy >= window[1])
    ]
    ref = gpd.read_parquet(path, bbox=window)
    assert len(got) > 0
    assert sorted(got.i) == sorted(brute.i) == sorted(ref.i)


def test_bbox_read_without_covering_falls_back_to_geometry(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"v": [1, 2]}, geometry=[shapely.Point(0, 0), shapely.Point(5, 5)], crs=4326
    )
    path = tmp_path / "plain.parquet"
    gdf.to_parquet(path)  # geopandas default: no covering column
    assert read_geoparquet(path, bbox=(4, 4, 6, 6)).v.tolist() == [2]


# ------------------------------------------------------------------------------------- checks
def test_check_reports_files_without_11_covering(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    path = tmp_path / "gpd10.parquet"
    admin.to_parquet(path, schema_version="1.0.0")
    problems = check_geoparquet(path)
    assert any("version" in p for p in problems)
    assert any("covering" in p for p in problems)


def test_check_reports_duckdb_copy_without_crs_and_covering(tmp_path: Path) -> None:
    path = tmp_path / "duck.parquet"
    con = duckdb.connect()
    load_spatial(con)
    con.execute(
        f"COPY (SELECT 'A_V1' AS ucode, ST_Point(1, 2) AS geometry) TO '{path}' (FORMAT parquet)"
    )
    problems = check_geoparquet(path)
    assert problems  # DuckDB writes GeoParquet 1.0 metadata: not accepted as 1.1
    assert any("covering" in p or "version" in p for p in problems)


def test_check_detects_tampered_covering_and_bbox(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    path = write_geoparquet(admin, tmp_path / "ok.parquet")
    table = pq.read_table(path)
    geo = _geo(path)
    geo["columns"]["geometry"]["bbox"] = [0, 0, 1, 1]
    geo["columns"]["geometry"]["geometry_types"] = ["Point"]
    del geo["columns"]["geometry"]["crs"]
    meta = dict(table.schema.metadata)
    meta[b"geo"] = json.dumps(geo).encode()
    shifted = table.column("bbox").combine_chunks().flatten()
    import pyarrow as pa

    bad_box = pa.StructArray.from_arrays(
        [pa.compute.add(shifted[0], 1.0), *shifted[1:]], names=["xmin", "ymin", "xmax", "ymax"]
    )
    bad = table.set_column(table.schema.get_field_index("bbox"), "bbox", bad_box)
    pq.write_table(bad.replace_schema_metadata(meta), tmp_path / "bad.parquet")
    problems = check_geoparquet(tmp_path / "bad.parquet")
    text = "\n".join(problems)
    assert "bbox [0, 0, 1, 1] differs" in text
    assert "misses types" in text
    assert "crs is missing" in text
    assert "covering column 'bbox' differs from the geometries' bounds in 40 rows" in text


def test_check_on_non_parquet_and_missing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    assert "not a readable parquet" in check_geoparquet(junk)[0]
    assert "does not exist" in check_geoparquet(tmp_path / "nope.parquet")[0]
    plain = write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "plain.parquet")
    assert check_geoparquet(plain) == ["file metadata has no 'geo' key"]


# ------------------------------------------------------------------------------------- errors
def test_errors_name_the_problem_and_fix(tmp_path: Path, admin: gpd.GeoDataFrame) -> None:
    with pytest.raises(GeometryError, match="has no CRS; fix: set it"):
        write_geoparquet(admin.set_crs(None, allow_override=True), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="'bbox'.*reserved"):
        write_geoparquet(admin.assign(bbox=1), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="sort='h3'"):
        write_geoparquet(admin, tmp_path / "x.parquet", sort="h3")
    with pytest.raises(InputError, match="sort"):
        write_geoparquet(admin, tmp_path / "x.parquet", sort="zorder")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not a GeoDataFrame"):
        write_geoparquet(pd.DataFrame(admin.drop(columns="geometry")), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="use write_geoparquet"):
        write_parquet(admin, tmp_path / "x.parquet")
    with pytest.raises(MissingFileError):
        read_geoparquet(tmp_path / "missing.parquet")
    assert not (tmp_path / "x.parquet").exists()


def _mixed_geometries() -> np.ndarray:
    line = shapely.LineString([(0, 0), (1, 1)])
    holed = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2)]])
    return np.array(
        [
            shapely.Point(0, 0),
            shapely.Point(0, 0, 1),
            line,
            shapely.LinearRing([(0, 0), (1, 0), (1, 1)]),
            shapely.box(0, 0, 1, 1),
            holed,
            shapely.MultiPoint([(0, 0), (1, 1)]),
            shapely.MultiLineString([line]),
            shapely.MultiPolygon([shapely.box(0, 0, 1, 1)]),
            shapely.GeometryCollection([line]),
            shapely.Polygon(),
            shapely.Point(),
            shapely.LineString(),
            shapely.Point(np.nan, 1.0),
            shapely.from_wkt("LINESTRING Z (0 0 0, 1 1 1)"),
            shapely.from_wkt("POINT M (1 2 3)"),
            shapely.from_wkt("POLYGON Z ((0 0 1, 1 0 1, 1 1 1, 0 0 1))"),
            shapely.Point(-0.0, 1e-300),
            None,
        ],
        dtype=object,
    )


def _encoded(geoms: np.ndarray, order: np.ndarray | None = None) -> list[bytes | None]:
    from geopipe.io._geoparquet_speed import encode_wkb

    return encode_wkb(geoms).rows(order).to_pylist()


def test_declared_geometry_types_equal_shapely_types() -> None:
    """The writer's declared types (from the encoder) against shapely's type ids and has_z."""
    from geopipe.io._geoparquet_speed import encode_wkb
    from geopipe.io.geoparquet import _geometry_types

    geoms = _mixed_geometries()
    assert encode_wkb(geoms).geometry_types == _geometry_types(geoms)
    assert encode_wkb(geoms[4:]).geometry_types == _geometry_types(geoms[4:])
    assert encode_wkb(geoms[-1:]).geometry_types == []  # only a null


def test_wkb_encoder_gives_shapely_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row's bytes equal shapely.to_wkb (GEOS' writer, ISO, little endian): for each
    geometry kind alone, mixed, reordered, and split into many Arrow arrays."""
    import geopipe.io._geoparquet_speed as gq

    rng = np.random.default_rng(11)
    x, y = rng.uniform(-180, 180, 3000), rng.uniform(-90, 90, 3000)
    pts = shapely.points(x, y)
    lines = shapely.linestrings(np.stack([x, y, x + 1, y - 1], axis=1).reshape(-1, 2, 2))
    polys = shapely.buffer(pts, rng.uniform(0.1, 2, 3000), quad_segs=rng.integers(1, 9))
    mixed = np.concatenate([pts[:50], _mixed_geometries(), lines[:50], polys[:50], [None]])
    mixed = mixed[rng.permutation(len(mixed))]
    for geoms in (pts, lines, polys, mixed, mixed[:0], mixed[5:6]):
        expected = list(shapely.to_wkb(geoms, flavor="iso", byte_order=1))
        assert _encoded(geoms) == expected
        order = rng.permutation(len(geoms))
        assert _encoded(geoms, order) == [expected[i] for i in order]
    monkeypatch.setattr(gq, "_CHUNK_BYTES", 4096)  # the coordinates in many arrays per kind
    for geoms in (polys, mixed):
        expected = list(shapely.to_wkb(geoms, flavor="iso", byte_order=1))
        assert _encoded(geoms) == expected
        order = rng.permutation(len(geoms))[: len(geoms) // 2]  # some rows, in any order
        assert _encoded(geoms, order) == [expected[i] for i in order]
    assert isinstance(gq.encode_wkb(polys).parts[0].body, pa.ChunkedArray)


def test_wkb_encoder_on_real_boundaries_lines_and_points(shared_real: Path) -> None:
    """Real admin polygons (holes, multi-parts), power lines and health sites."""
    for name in (
        "rwa_adm2.geojson",
        "rwa_kigali_mv_lines_gridfinder.geojson",
        "rwa_healthsites_2020.geojson",
    ):
        geoms = gpd.read_file(shared_real / "rwa" / name).geometry.to_numpy()
        polygons = shapely.get_parts(geoms[shapely.get_type_id(geoms) == 6])
        for sample in (geoms, polygons):
            assert _encoded(sample) == list(shapely.to_wkb(sample, flavor="iso", byte_order=1))


def test_stable_argsort_equals_numpy_stable_sort() -> None:
    from geopipe.io._spatial_sort import stable_argsort

    rng = np.random.default_rng(4)
    cells = np.array([h3.str_to_int(c) for c in h3.grid_disk("881e6c1b2bfffff", 30)])
    cases = [
        rng.integers(0, 50, 10_000),  # many ties
        rng.integers(0, 2**40, 10_000) << 7,  # constant low bits
        rng.permutation(np.repeat(cells, 3)),  # H3 fragments: each cell three times
        rng.integers(-(2**62), 2**62, 1000),  # negative: numpy's own sort
        np.array([2**62, 0, 2**62, 1]),  # range too wide to pack the row number
        np.full(100, 7),
        np.array([3]),
        np.array([], dtype=np.int64),
    ]
    for keys in cases:
        np.testing.assert_array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_h3_sort_keys_equal_string_order_and_reject_non_h3() -> None:
    from geopipe.io._spatial_sort import _h3_keys

    ids = sorted(h3.grid_disk(h3.latlng_to_cell(-1.95, 30.06, 7), 5))
    shuffled = list(np.random.default_rng(1).permutation(ids))
    keys = _h3_keys(pd.Series(shuffled, dtype="string"))
    assert keys.tolist() == [h3.str_to_int(c) for c in shuffled]
    assert [shuffled[i] for i in np.argsort(keys, kind="stable")] == ids
    for bad in (["87283082bffffff", "87283082BFFFFFF"], ["8728308"], ["87283082bffffff", None]):
        assert _h3_keys(pd.Series(bad, dtype="string")) is None


def test_row_groups_taken_one_at_a_time_give_the_file_of_one_write_table(
    tmp_path: Path,
    cells: gpd.GeoDataFrame,
    admin: gpd.GeoDataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows put in order row group by row group (and the WKB in many Arrow arrays, in groups of
    geometry types): the bytes of pyarrow's own ``write_table`` of the ordered table."""
    import geopipe.io._geoparquet_speed as gq

    monkeypatch.setattr(gq, "_CHUNK_BYTES", 2048)
    points = gpd.GeoSeries(shapely.centroid(admin.geometry.to_numpy()), crs=admin.crs)
    mixed = admin.assign(geometry=admin.geometry.where(admin.index % 3 > 0, points))
    for name, gdf, ucode_dict in (("cells", cells, ["ucode"]), ("mixed", mixed, [])):
        shuffled = gdf.sample(frac=1.0, random_state=3).reset_index(drop=True)
        ours = write_geoparquet(shuffled, tmp_path / f"{name}.parquet", row_group_size=50)
        table = pq.read_table(ours)  # rows in the file's order, schema with geo metadata
        stats = [c for c in table.column_names if c not in ("geometry", "bbox")]
        reference = tmp_path / f"{name}_reference.parquet"
        pq.write_table(
            table,
            reference,
            row_group_size=50,
            compression="snappy",
            use_dictionary=ucode_dict,
            write_statistics=[*stats, "bbox.xmin", "bbox.ymin", "bbox.xmax", "bbox.ymax"],
        )
        assert pq.read_metadata(ours).num_row_groups == -(-len(gdf) // 50)
        assert ours.read_bytes() == reference.read_bytes()
        assert check_geoparquet(ours) == []
