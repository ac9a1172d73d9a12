"""BI tables: the writer rules, the checker naming each broken rule, and reads by BI-side readers.

References are independent of geopipe's BI code: files that break a rule are written directly
with pyarrow; areas are recomputed geodesically with pyproj; the sample run's own tables are the
truth the flat tables are compared with; reads go through DuckDB, pyarrow, pandas and SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

import geopipe as gp
from geopipe.errors import GeopipeWarning, InputError
from geopipe.io.bi import (
    BI_DIM_ADMIN_COLUMNS,
    admin_geometry_wkt,
    check_bi_table,
    write_bi_table,
    write_bi_tables,
)

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("bi_run") / "sample"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        result = gp.run_pipeline(ROOT / "pipelines" / "sample.yaml", output=out, force=True)
    return result


@pytest.fixture(scope="module")
def bi(run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bi_tables(run.tables, tmp_path_factory.mktemp("bi_out") / "bi")


def _base() -> dict[str, pa.Array]:
    return {
        "ucode": pa.array(["RWA_V1", "RWA_0001_V1"]),
        "value": pa.array([1.5, 2.5]),
        "admin_level": pa.array([0, 1], pa.int64()),
        "date": pa.array([dt.date(2020, 1, 1)] * 2, pa.date32()),
        "suppressed": pa.array([False, True]),
    }


def _write(path: Path, columns: dict[str, pa.Array], **options) -> Path:
    kw = {"compression": "snappy", "data_page_version": "1.0"} | options
    pq.write_table(pa.table(columns), path, **kw)
    return path


# ----------------------------------------------------------------------- rules, one each
def test_reference_file_passes(tmp_path: Path) -> None:
    assert check_bi_table(_write(tmp_path / "ok.parquet", _base())) == []


BROKEN = {
    "struct column": (
        {
            "bbox": pa.StructArray.from_arrays(
                [pa.array([0.0, 1.0]), pa.array([2.0, 3.0])], names=["xmin", "xmax"]
            )
        },
        {},
        "bbox",
        "types: no nested",
    ),
    "list column": ({"tags": pa.array([["a"], ["b", "c"]])}, {}, "tags", "types: no nested"),
    "binary column": (
        {"geometry": pa.array(shapely.to_wkb([shapely.Point(0, 0)] * 2), pa.binary())},
        {},
        "geometry",
        "types: no binary",
    ),
    "uint64": ({"n": pa.array([1, 2], pa.uint64())}, {}, "n", "types: no unsigned"),
    "int8": ({"n": pa.array([1, 2], pa.int8())}, {}, "n", "types"),
    "float32": ({"x": pa.array([1, 2], pa.float32())}, {}, "x", "types"),
    "nanosecond timestamp": (
        {"t": pa.array([1, 2], pa.timestamp("ns"))},
        {},
        "t",
        "types: timestamp[us] naive UTC",
    ),
    "time-zone timestamp": (
        {"t": pa.array([1, 2], pa.timestamp("us", tz="Africa/Kigali"))},
        {},
        "t",
        "types: timestamp[us] naive UTC",
    ),
    "arrow dictionary": (
        {"code": pa.array(["a", "b"]).dictionary_encode()},
        {},
        "code",
        "types",
    ),
    "DELTA encoding": (
        {"n": pa.array([1, 2], pa.int64())},
        {"use_dictionary": False, "column_encoding": {"n": "DELTA_BINARY_PACKED"}},
        "n",
        "encodings",
    ),
    "40,000-character WKT": (
        {"wkt": pa.array(["POLYGON ((" + "1 1, " * 8_000 + "1 1))", "POINT (0 0)"])},
        {},
        "wkt",
        "text-length",
    ),
    "zstd compression": ({"n": pa.array([1, 2], pa.int64())}, {"compression": "zstd"}, "n", ""),
    "CamelCase name": ({"Value": pa.array([1.0, 2.0])}, {}, "Value", "names"),
    "non-ASCII name": ({"população": pa.array([1.0, 2.0])}, {}, "população", "names"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_rule_is_named(tmp_path: Path, case: str) -> None:
    extra, options, column, rule = BROKEN[case]
    if case == "zstd compression":
        path = _write(tmp_path / "t.parquet", {**_base()}, **options)
        problems = check_bi_table(path)
        assert len(problems) == len(_base())  # every column chunk is zstd
        assert all("[compression]" in p and "zstd" in p for p in problems)
        return
    path = _write(tmp_path / "t.parquet", {**_base(), **extra}, **options)
    problems = check_bi_table(path)
    assert len(problems) >= 1, problems
    assert all(f"column '{column}'" in p for p in problems), problems
    assert any(f"[{rule}]" in p for p in problems), problems
    assert all("fix:" in p for p in problems)


def test_data_page_v2_and_rle_booleans_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "v2.parquet", {"flag": pa.array([True, False, None])},
                  data_page_version="2.0")  # fmt: skip
    problems = check_bi_table(path)
    assert any("[page-v1]" in p and "DATA_PAGE_V2" in p for p in problems), problems
    assert any("[encodings]" in p and "RLE (boolean values)" in p for p in problems), problems
    assert all("column 'flag'" in p for p in problems)


def test_names_equal_regardless_of_case_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.parquet", {"value": pa.array([1.0]), "VALUE": pa.array([2.0])})
    problems = check_bi_table(path)
    assert any("'VALUE'" in p and "regardless of case" in p for p in problems), problems


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert "does not exist" in check_bi_table(tmp_path / "nope.parquet")[0]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert "not a readable parquet file" in check_bi_table(bad)[0]


# -------------------------------------------------------------------------- the writer
def test_writer_converts_to_bi_types(tmp_path: Path) -> None:
    utc_times = pd.to_datetime(
        ["2024-01-01 10:00:00.123456789", "2024-06-30 23:59:59"], format="ISO8601"
    )
    df = pd.DataFrame(
        {
            "small": pd.array([1, 2], dtype="int8"),
            "unsigned": pd.array([1, 2**40], dtype="uint64"),
            "ratio": np.array([0.25, 0.5], dtype=np.float32),
            "code": pd.Categorical(["RW-01", "RW-02"]),
            "empty": [None, None],
            "local_time": utc_times.tz_localize("UTC").tz_convert("Africa/Kigali"),
            "ns_time": utc_times,
            "day": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)],
            "flag": [True, False],
        }
    )
    path = write_bi_table(df, tmp_path / "t.parquet")
    assert check_bi_table(path) == []
    schema = pq.read_schema(path)
    want = {
        "small": pa.int32(),
        "unsigned": pa.int64(),
        "ratio": pa.float64(),
        "code": pa.string(),
        "empty": pa.string(),
        "local_time": pa.timestamp("us"),
        "ns_time": pa.timestamp("us"),
        "day": pa.date32(),
        "flag": pa.bool_(),
    }
    assert {f.name: f.type for f in schema} == want
    back = pq.read_table(path).to_pandas()
    expected_utc = utc_times.floor("us").as_unit("us")  # UTC wall time, microseconds
    assert (back["local_time"].to_numpy() == expected_utc.to_numpy()).all()
    assert (back["ns_time"].to_numpy() == expected_utc.to_numpy()).all()
    assert back["unsigned"].tolist() == [1, 2**40]
    assert back["code"].tolist() == ["RW-01", "RW-02"]


def test_writer_is_deterministic(tmp_path: Path) -> None:
    df = pd.DataFrame({"ucode": ["a", "b"], "value": [1.0, 2.0]})
    a = write_bi_table(df, tmp_path / "a.parquet").read_bytes()
    b = write_bi_table(df, tmp_path / "b.parquet").read_bytes()
    assert a == b


@pytest.mark.parametrize(
    ("df", "column", "rule"),
    [
        (pd.DataFrame({"blob": [b"\x01\x02"]}), "blob", "types: no binary"),
        (pd.DataFrame({"nested": [{"a": 1}]}), "nested", "types: no nested"),
        (pd.DataFrame({"big": pd.array([2**63 + 1], dtype="uint64")}), "big", "types: no unsigned"),
        (pd.DataFrame({"wkt": ["x" * 40_000]}), "wkt", "text-length"),
        (pd.DataFrame({"Indicator ID": ["a"]}), "Indicator ID", "names"),
    ],
)
def test_writer_refuses_what_it_cannot_convert(
    tmp_path: Path, df: pd.DataFrame, column: str, rule: str
) -> None:
    target = tmp_path / "t.parquet"
    with pytest.raises(InputError) as info:
        write_bi_table(df, target)
    assert f"column '{column}'" in str(info.value) and f"[{rule}" in str(info.value)
    assert not target.exists()


def test_writer_refuses_geometry(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs="EPSG:4326")
    with pytest.raises(InputError, match="write_bi_tables"):
        write_bi_table(gdf, tmp_path / "t.parquet")


# --------------------------------------------------------------- the sample run's BI tables
def test_every_bi_table_of_the_sample_run_passes(run, bi: dict[str, Path]) -> None:
    levels = sorted(n for n in run.tables if n.startswith("adm"))
    grids = sorted(n for n in run.tables if n.startswith("h3_"))
    plain = ["admin_geometry", "dim_admin", "dim_indicator", "fact_indicator", "fact_lineage"]
    assert sorted(bi) == sorted([*plain, *levels, *grids])
    for name, path in bi.items():
        assert path.name == f"{name}.parquet"
        assert check_bi_table(path) == [], name
    # the GIS files are not BI files, and the checker says why
    gis = check_bi_table(run.output / "dim_admin.parquet")
    assert any("column 'bbox'" in p and "[types: no nested]" in p for p in gis)
    assert any("column 'geometry'" in p and "[types: no binary]" in p for p in gis)
    # snappy on every column chunk, the bbox fields included (they were left uncompressed before)
    assert not any("[compression]" in p for p in gis)


def test_bi_tables_have_no_binary_or_nested_columns(bi: dict[str, Path]) -> None:
    for path in bi.values():
        for field in pq.read_schema(path):
            assert not pa.types.is_binary(field.type) and not pa.types.is_nested(field.type)


def test_dim_admin_is_flat_and_matches_the_geometries(run, bi: dict[str, Path]) -> None:
    admin = run.tables["dim_admin"]
    dim = pd.read_parquet(bi["dim_admin"])
    assert list(dim.columns) == BI_DIM_ADMIN_COLUMNS
    assert dim["ucode"].tolist() == admin["ucode"].tolist()
    geoms = admin.geometry.to_numpy()
    centre = shapely.centroid(geoms)
    np.testing.assert_allclose(dim["longitude"], shapely.get_x(centre), atol=1e-12)
    np.testing.assert_allclose(dim["latitude"], shapely.get_y(centre), atol=1e-12)
    np.testing.assert_allclose(
        dim[["bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax"]], shapely.bounds(geoms)
    )
    assert shapely.contains(geoms, shapely.points(dim["longitude"], dim["latitude"])).all()
    for col in ("name", "parent_ucode", "iso3", "admin_level"):
        assert (
            dim[col].astype(object).where(dim[col].notna(), None).tolist()
            == admin[col].astype(object).where(admin[col].notna(), None).tolist()
        )


def test_iso3166_2_from_geoboundaries_shapeiso(bi: dict[str, Path]) -> None:
    dim = pd.read_parquet(bi["dim_admin"]).set_index("name")
    # geoBoundaries ADM1 shapeISO (data/sample/rwa_adm1.geojson); ADM0 and ADM2 have none
    assert dim.loc["Eastern Province", "iso3166_2"] == "RW-02"
    assert dim.loc["City of Kigali", "iso3166_2"] == "RW-01"
    assert dim[dim["admin_level"] != 1]["iso3166_2"].isna().all()


def test_admin_geometry_wkt_round_trips(run, bi: dict[str, Path]) -> None:
    admin = run.tables["dim_admin"]
    geo = pd.read_parquet(bi["admin_geometry"])
    assert geo["ucode"].tolist() == admin["ucode"].tolist()
    assert (geo["wkt"].str.len() < 32_000).all()
    assert (geo["wkt_chars"] == geo["wkt"].str.len()).all()
    back = shapely.from_wkt(geo["wkt"].to_numpy())
    # the sample's polygons all fit: written exactly, to 6 decimals
    assert (geo["simplify_tolerance_deg"] == 0).all() and (geo["area_change"] == 0).all()
    assert shapely.equals_exact(back, admin.geometry.to_numpy(), tolerance=1e-6).all()


def _geodesic_area(geoms: np.ndarray) -> np.ndarray:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in geoms])


def test_long_boundaries_are_simplified_under_the_limit() -> None:
    rng = np.random.default_rng(3)
    angles = np.linspace(0, 2 * np.pi, 6_000, endpoint=False)
    radius = 1 + 0.02 * rng.standard_normal(angles.size)  # a ragged coastline
    ring = np.c_[30 + radius * np.cos(angles), -2 + radius * np.sin(angles)]
    rough = shapely.make_valid(shapely.Polygon(ring))
    small = shapely.box(29, -3, 29.1, -2.9)
    admin = gpd.GeoDataFrame(
        {"ucode": ["XXX_V1", "XXX_0001_V1"], "admin_level": [0, 1]},
        geometry=[rough, small],
        crs="EPSG:4326",
    )
    assert len(shapely.to_wkt(rough, rounding_precision=6)) > 40_000
    geo = admin_geometry_wkt(admin)
    assert (geo["wkt_chars"] < 32_000).all()
    assert geo["simplify_tolerance_deg"].iloc[0] > 0 and geo["simplify_tolerance_deg"].iloc[1] == 0
    back = shapely.from_wkt(geo["wkt"].to_numpy())
    assert shapely.is_valid(back).all()
    tol = geo["simplify_tolerance_deg"].iloc[0]
    assert shapely.hausdorff_distance(back[0], rough) <= tol * 1.01 + 1e-6
    geodesic = _geodesic_area(np.array([rough, back[0]]))
    assert geo["area_change"].iloc[0] == pytest.approx(
        (geodesic[1] - geodesic[0]) / geodesic[0], abs=1e-6
    )
    assert shapely.equals_exact(back[1], small, tolerance=1e-9)


def test_real_country_boundary_fits(shared_real: Path) -> None:
    admin = gp.read_admin(shared_real / "vnm" / "vnm_adm0.geojson", level=0)
    full = shapely.to_wkt(admin.geometry.to_numpy(), rounding_precision=6)
    assert max(len(w) for w in full) > 32_000  # Viet Nam's coastline does not fit as it is
    geo = admin_geometry_wkt(admin)
    assert (geo["wkt_chars"] < 32_000).all()
    back = shapely.from_wkt(geo["wkt"].to_numpy())
    assert shapely.is_valid(back).all()
    geodesic = _geodesic_area(np.array([admin.geometry.iloc[0], back[0]]))
    change = (geodesic[1] - geodesic[0]) / geodesic[0]
    # EPSG:6933 (equal-area, straight edges) vs geodesic edges: same change to within 1e-5
    assert geo["area_change"].iloc[0] == pytest.approx(change, abs=1e-5)
    assert abs(change) < 0.01


def test_wide_and_grid_tables_without_geometry(run, bi: dict[str, Path]) -> None:
    adm2 = run.tables["adm2"]
    flat = pd.read_parquet(bi["adm2"])
    assert "geometry" not in flat.columns and "bbox" not in flat.columns
    measures = [
        c for c in adm2.columns if c not in ("geometry", "date") and adm2[c].dtype.kind == "f"
    ]
    pd.testing.assert_frame_equal(
        flat[measures].reset_index(drop=True), pd.DataFrame(adm2[measures]).reset_index(drop=True)
    )
    cells = run.tables["h3_r7"]
    grid = pd.read_parquet(bi["h3_r7"])
    assert grid["cell_id"].tolist() == cells["cell_id"].tolist()
    back = shapely.from_wkt(grid["wkt"].to_numpy())
    assert shapely.equals_exact(back, cells.geometry.to_numpy(), tolerance=1e-6).all()
    frags = cells.geometry.to_numpy()
    centre = shapely.centroid(frags)
    np.testing.assert_allclose(grid["longitude"], shapely.get_x(centre), atol=1e-12)
    np.testing.assert_allclose(grid["latitude"], shapely.get_y(centre), atol=1e-12)
    near = shapely.distance(frags, shapely.points(grid["longitude"], grid["latitude"]))
    assert (near < 0.02).all()  # a clipped fragment's centroid can lie just outside it


# ------------------------------------------------------- read back by BI-side readers
def test_read_back_through_duckdb_pyarrow_and_pandas(run, bi: dict[str, Path]) -> None:
    fact, dim = bi["fact_indicator"], bi["dim_admin"]

    def describe(path: Path) -> dict[str, str]:
        rows = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        return {r[0]: r[1] for r in rows}

    duck = describe(fact)
    assert duck == {
        "ucode": "VARCHAR",
        "admin_level": "BIGINT",
        "indicator_id": "VARCHAR",
        "date": "DATE",
        "value": "DOUBLE",
        "unit": "VARCHAR",
        "suppressed": "BOOLEAN",
    }
    dim_types = describe(dim)
    assert {k: dim_types[k] for k in ("start_date", "latitude", "bbox_xmin", "iso3166_2")} == {
        "start_date": "DATE",
        "latitude": "DOUBLE",
        "bbox_xmin": "DOUBLE",
        "iso3166_2": "VARCHAR",
    }
    arrow = pq.read_table(fact)
    assert arrow.schema.field("date").type == pa.date32()
    assert arrow.schema.field("admin_level").type == pa.int64()
    frame = pd.read_parquet(fact)
    assert frame["value"].dtype == np.float64 and frame["suppressed"].dtype == bool
    assert frame["admin_level"].dtype == np.int64
    assert isinstance(frame["date"].iloc[0], dt.date)
    # same rows as the run's fact table
    want = run.tables["fact_indicator"]
    assert frame["ucode"].tolist() == want["ucode"].tolist()
    np.testing.assert_array_equal(frame["value"].to_numpy(), want["value"].to_numpy())
    joined = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{fact}') f JOIN read_parquet('{dim}') a USING (ucode)"
    ).fetchone()[0]
    assert joined == len(want)  # every fact row finds its unit in the BI dimension


# ------------------------------------------------------------------- the DuckDB warehouse
@pytest.fixture(scope="module")
def warehouse(run) -> Path:
    return run.output / "warehouse.duckdb"


def test_warehouse_storage_version_is_pinned(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    tags = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()[0]
    assert tags["storage_version"].startswith("v1.0.0")


def test_warehouse_exposes_wkt_and_lonlat_and_bi_tables(run, warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_name LIKE 'bi_%'"
        ).fetchall()
    )
    assert kinds["bi_admin"] == kinds["bi_indicator_by_admin"] == "BASE TABLE"
    assert kinds["bi_indicator_latest"] == "BASE TABLE"
    assert kinds["bi_adm2"] == kinds["bi_h3_r7"] == "VIEW"
    for name in kinds:
        types = {r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
        assert not any(t.startswith(("GEOMETRY", "BLOB", "STRUCT", "MAP")) for t in types), name
    admin = run.tables["dim_admin"]
    got = con.execute(
        "SELECT ucode, geometry_wkt, longitude, latitude FROM dim_admin ORDER BY ucode"
    ).df()
    want = admin.sort_values("ucode").reset_index(drop=True)
    back = shapely.from_wkt(got["geometry_wkt"].to_numpy())
    assert shapely.equals_exact(back, want.geometry.to_numpy(), tolerance=1e-6).all()
    centre = shapely.centroid(want.geometry.to_numpy())
    np.testing.assert_allclose(got["longitude"], shapely.get_x(centre), atol=1e-12)
    n_rows = con.execute("SELECT count(*) FROM bi_indicator_by_admin").fetchone()[0]
    assert n_rows == len(run.tables["fact_indicator"])
    same = con.execute(
        "SELECT count(*) FROM (SELECT * FROM bi_indicator_by_admin EXCEPT "
        "SELECT * FROM v_indicator_by_admin)"
    ).fetchone()[0]
    assert same == 0


def test_superset_route_lists_tables_and_reads_a_row(warehouse: Path) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("duckdb_engine")
    engine = sqlalchemy.create_engine(f"duckdb:///{warehouse}", connect_args={"read_only": True})
    try:
        inspector = sqlalchemy.inspect(engine)
        tables = set(inspector.get_table_names())
        assert {"fact_indicator", "dim_admin", "bi_indicator_by_admin", "bi_admin"} <= tables
        assert {"v_indicator_by_admin", "bi_adm2"} <= set(inspector.get_view_names())
        with engine.connect() as conn:
            row = conn.execute(
                sqlalchemy.text(
                    "SELECT f.admin_name, f.indicator_id, f.value, a.latitude "
                    "FROM bi_indicator_by_admin f JOIN bi_admin a USING (ucode) "
                    "WHERE f.admin_level = 2 ORDER BY f.ucode, f.indicator_id LIMIT 1"
                )
            ).one()
            assert isinstance(row.admin_name, str) and isinstance(row.latitude, float)
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
                conn.execute(sqlalchemy.text("DELETE FROM fact_indicator"))
    finally:
        engine.dispose()
