"""DuckDB warehouse: GEOMETRY columns, keys, views, atomic rebuild, plain-duckdb access."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geopipe.errors import GeopipeWarning, InputError, MissingColumnError, OutputError
from geopipe.io import warehouse
from geopipe.io.warehouse import load_spatial, write_duckdb


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    admin = gpd.GeoDataFrame(
        {
            "ucode": ["RWA_V1", "RWA_0001_V1", "RWA_0002_V1", "RWA_0001_0001_V1"],
            "name": ["Rwanda", "Kigali", "Eastern", "Nyarugenge"],
            "admin_level": [0, 1, 1, 2],
            "parent_ucode": [None, "RWA_V1", "RWA_V1", "RWA_0001_V1"],
            "iso3": ["RWA"] * 4,
        },
        geometry=[
            shapely.box(28.8, -2.9, 30.9, -1.0),
            shapely.box(29.9, -2.1, 30.3, -1.8),
            shapely.MultiPolygon([shapely.box(30.3, -2.5, 30.9, -1.0)]),
            shapely.box(29.9, -2.1, 30.1, -1.9),
        ],
        crs="EPSG:4326",
    )
    indicators = pd.DataFrame(
        {
            "indicator_id": ["population_u18", "child_poverty_rate"],
            "name": ["Children under 18", "Child poverty rate"],
            "unit": ["people", "share"],
            "family": ["population", "child_poverty"],
        }
    )
    ucodes = ["RWA_V1", "RWA_0001_V1", "RWA_0002_V1", "RWA_0001_0001_V1"]
    levels = [0, 1, 1, 2]
    rows = []
    for month in ("2024-01-01", "2024-02-01"):
        for u, lv in zip(ucodes, levels, strict=True):
            rows.append((u, lv, "population_u18", month, 1000.0 * (lv + 1), "people", False))
            rows.append((u, lv, "child_poverty_rate", month, 0.1 * (lv + 1), "share", lv == 2))
    fact = pd.DataFrame(
        rows,
        columns=["ucode", "admin_level", "indicator_id", "date", "value", "unit", "suppressed"],
    )
    fact["date"] = pd.to_datetime(fact["date"]).dt.date
    cells = gpd.GeoDataFrame(
        {"cell_id": ["887a6e4281fffff"], "ucode": ["RWA_0001_0001_V1"], "area_km2": [0.7]},
        geometry=[shapely.box(30.0, -2.0, 30.01, -1.99)],
        crs="EPSG:4326",
    )
    return {"dim_admin": admin, "dim_indicator": indicators, "fact_indicator": fact, "h3_r8": cells}


def _reference_view(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """v_indicator_by_admin rebuilt with pandas merges (independent of the SQL)."""
    adm = pd.DataFrame(tables["dim_admin"].drop(columns="geometry"))
    ind = tables["dim_indicator"]
    f = tables["fact_indicator"]
    out = f.merge(adm[["ucode", "name", "parent_ucode", "iso3"]], on="ucode", how="left")
    out = out.merge(
        adm[["ucode", "name"]].rename(columns={"ucode": "parent_ucode", "name": "parent_name"}),
        on="parent_ucode",
        how="left",
    )
    out = out.merge(
        ind[["indicator_id", "name", "family"]].rename(columns={"name": "indicator_name"}),
        on="indicator_id",
    )
    out["value"] = out["value"].where(~out["suppressed"])
    out = out.rename(columns={"name": "admin_name"})
    cols = ["ucode", "admin_name", "admin_level", "parent_name", "indicator_name", "family"]
    return out[[*cols, "value"]].sort_values(["ucode", "indicator_name", "value"])


def test_tables_geometry_and_keys(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    path = write_duckdb(tables, tmp_path / "warehouse.duckdb")
    con = duckdb.connect(str(path), read_only=True)
    names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert {"dim_admin", "dim_indicator", "fact_indicator", "h3_r8", "geometry_columns"} <= names
    assert {"v_indicator_by_admin", "v_indicator_latest", "v_admin"} <= names
    for name, df in tables.items():
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == len(df)

    gtype = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'dim_admin' AND column_name = 'geometry'"
    ).fetchone()[0]
    assert gtype.startswith("GEOMETRY")
    assert load_spatial(con)
    wkb = con.execute("SELECT ucode, ST_AsWKB(geometry) FROM dim_admin ORDER BY ucode").fetchall()
    expected = tables["dim_admin"].set_index("ucode").geometry
    for ucode, blob in wkb:
        assert shapely.equals_exact(shapely.from_wkb(bytes(blob)), expected[ucode], tolerance=0)

    meta = con.execute(
        "SELECT table_name, storage, crs, geometry_types FROM geometry_columns ORDER BY 1"
    ).fetchall()
    assert meta == [
        ("dim_admin", "GEOMETRY", "EPSG:4326", ["MultiPolygon", "Polygon"]),
        ("h3_r8", "GEOMETRY", "EPSG:4326", ["Polygon"]),
    ]

    keys = {
        r[0]: r[1]
        for r in con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    }
    assert keys["fact_indicator"] == ["ucode", "indicator_id", "date"]
    assert keys["dim_admin"] == ["ucode"]
    assert keys["dim_indicator"] == ["indicator_id"]


def test_primary_key_rejects_duplicates_after_load(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    path = write_duckdb(tables, tmp_path / "w.duckdb")
    con = duckdb.connect(str(path))
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO fact_indicator SELECT * FROM fact_indicator LIMIT 1")


def test_view_matches_pandas_reference(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    path = write_duckdb(tables, tmp_path / "w.duckdb")
    con = duckdb.connect(str(path), read_only=True)
    got = con.execute(
        "SELECT ucode, admin_name, admin_level, parent_name, indicator_name, family, value "
        "FROM v_indicator_by_admin"
    ).df()
    got = got.sort_values(["ucode", "indicator_name", "value"]).reset_index(drop=True)
    ref = _reference_view(tables).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref, check_dtype=False)
    latest = con.execute("SELECT DISTINCT date FROM v_indicator_latest").fetchall()
    assert [str(d[0]) for d in latest] == ["2024-02-01"]
    assert con.execute("SELECT count(*) FROM v_indicator_latest").fetchone()[0] == 8


def test_plain_duckdb_subprocess_without_geopipe(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    path = write_duckdb(tables, tmp_path / "warehouse.duckdb")
    script = textwrap.dedent(
        """
        import json, sys
        import duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        rows = con.execute(
            "SELECT ucode, indicator_id, value FROM v_indicator_by_admin "
            "WHERE admin_level = 1 AND date = DATE '2024-02-01' ORDER BY ucode, indicator_id"
        ).fetchall()
        wkt = con.execute("SELECT geometry_wkt FROM v_admin WHERE ucode = 'RWA_0001_V1'").fetchone()
        loaded = [r[0] for r in con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()]
        print(json.dumps({"rows": rows, "wkt": wkt[0], "geopipe": "geopipe" in sys.modules,
                          "spatial": "spatial" in loaded}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["geopipe"] is False and out["spatial"] is False
    f = tables["fact_indicator"]
    ref = f[(f.admin_level == 1) & (f.date.astype(str) == "2024-02-01")].sort_values(
        ["ucode", "indicator_id"]
    )
    assert out["rows"] == [
        list(r) for r in ref[["ucode", "indicator_id", "value"]].itertuples(False)
    ]
    geom = shapely.from_wkt(out["wkt"])
    assert shapely.equals_exact(geom, tables["dim_admin"].geometry.iloc[1], tolerance=0)


def test_two_builds_give_identical_query_results(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    a = write_duckdb(tables, tmp_path / "a.duckdb")
    b = write_duckdb(tables, tmp_path / "b.duckdb")
    ca, cb = duckdb.connect(str(a), read_only=True), duckdb.connect(str(b), read_only=True)
    load_spatial(ca)
    load_spatial(cb)
    for name in ["dim_indicator", "fact_indicator", "v_indicator_by_admin", "v_admin"]:
        q = f"SELECT * FROM {name} ORDER BY ALL"
        assert ca.execute(q).fetchall() == cb.execute(q).fetchall()
    q = "SELECT ucode, ST_AsWKB(geometry) FROM dim_admin ORDER BY ucode"
    assert ca.execute(q).fetchall() == cb.execute(q).fetchall()


def test_duplicate_key_fails_and_keeps_previous_warehouse(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    path = write_duckdb(tables, tmp_path / "w.duckdb")
    before = path.read_bytes()
    bad = dict(tables)
    bad["fact_indicator"] = pd.concat([tables["fact_indicator"]] * 2, ignore_index=True)
    with pytest.raises(InputError, match=r"fact_indicator.*not unique.*RWA_0001_0001_V1"):
        write_duckdb(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]


def test_null_key_and_missing_key_column(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    bad = dict(tables)
    bad["fact_indicator"] = tables["fact_indicator"].assign(date=None)
    with pytest.raises(InputError, match="is null in 16 rows"):
        write_duckdb(bad, tmp_path / "w.duckdb")
    bad["fact_indicator"] = tables["fact_indicator"].drop(columns="date")
    with pytest.raises(MissingColumnError, match=r"no key columns \['date'\]"):
        write_duckdb(bad, tmp_path / "w.duckdb")
    with pytest.raises(InputError, match="not SQL identifiers"):
        write_duckdb({"bad-name": tables["dim_indicator"]}, tmp_path / "w.duckdb")


def test_blob_fallback_is_said_once(
    tmp_path: Path, tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse, "_warned", set())
    with pytest.warns(GeopipeWarning, match="stored as WKB BLOB") as record:
        path = write_duckdb(tables, tmp_path / "w.duckdb", spatial=False)
    assert len([w for w in record if "WKB BLOB" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # second time: silent
        write_duckdb(tables, tmp_path / "w2.duckdb", spatial=False)
    con = duckdb.connect(str(path), read_only=True)
    dtype = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'dim_admin' AND column_name = 'geometry'"
    ).fetchone()[0]
    assert dtype == "BLOB"
    blobs = con.execute("SELECT geometry FROM dim_admin ORDER BY ucode").fetchall()
    ref = tables["dim_admin"].sort_values("ucode").geometry.to_numpy()
    got = shapely.from_wkb([bytes(b[0]) for b in blobs])
    assert shapely.equals_exact(got, ref, tolerance=0).all()
    assert con.execute("SELECT DISTINCT storage FROM geometry_columns").fetchall() == [
        ("WKB BLOB",)
    ]


def test_load_spatial_failure_warns_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(warehouse, "_warned", set())
    monkeypatch.setattr(warehouse, "spatial_extension_path", lambda: tmp_path / "nope.ext")
    con = duckdb.connect()
    with pytest.warns(GeopipeWarning, match="could not be loaded") as record:
        assert load_spatial(con) is False
        assert load_spatial(con) is False
    assert len(record) == 1


def test_wide_table_with_many_indicator_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wide = gpd.GeoDataFrame(
        {"ucode": [f"RWA_{i:04d}_V1" for i in range(50)]}
        | {f"ind_{k}": rng.random(50) for k in range(10)},
        geometry=shapely.points(rng.random(50), rng.random(50)),
        crs="EPSG:4326",
    )
    path = write_duckdb({"adm1": wide}, tmp_path / "w.duckdb", views=False)
    con = duckdb.connect(str(path), read_only=True)
    bi_cols = "geometry_wkt, longitude, latitude"  # the BI columns next to the geometry
    got = con.execute(f"SELECT * EXCLUDE (geometry, {bi_cols}) FROM adm1 ORDER BY ucode").df()
    pd.testing.assert_frame_equal(got, pd.DataFrame(wide.drop(columns="geometry")))
    text = con.execute(f"SELECT {bi_cols} FROM adm1 ORDER BY ucode").df()
    points = shapely.from_wkt(text["geometry_wkt"].to_numpy())
    assert shapely.equals_exact(points, wide.geometry.to_numpy(), tolerance=1e-6).all()
    np.testing.assert_allclose(text["longitude"], wide.geometry.x, atol=1e-12)
    np.testing.assert_allclose(text["latitude"], wide.geometry.y, atol=1e-12)


def test_parts_beyond_the_memory_limit_are_loaded_whole(tmp_path: Path) -> None:
    """A warehouse larger than DuckDB's memory limit: pages go to the file, nothing is lost."""
    from geopipe.io.geoparquet import write_parquet
    from geopipe.io.warehouse import TableParts

    rng = np.random.default_rng(5)
    paths = []
    for k in range(3):
        n = 250_000
        part = pd.DataFrame(
            {
                "ucode": [f"C{k}_{i:07d}" for i in range(n)],
                "indicator_id": "population_total",
                "date": pd.Timestamp("2025-01-01"),
                "value": rng.normal(size=n),
            }
        )
        paths.append(write_parquet(part, tmp_path / f"part{k}.parquet"))
    parts = {"fact_indicator": TableParts(tuple(paths), False)}
    small = write_duckdb(parts, tmp_path / "small.duckdb", views=False, memory_limit="64MB")
    large = write_duckdb(parts, tmp_path / "large.duckdb", views=False, memory_limit="4GB")
    want = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    for db in (small, large):
        got = (
            duckdb.connect(str(db), read_only=True)
            .sql("SELECT * FROM fact_indicator ORDER BY ucode")
            .df()
        )
        assert len(got) == len(want) == 750_000
        np.testing.assert_array_equal(got["value"].to_numpy(), want["value"].to_numpy())
        assert got["ucode"].tolist() == want["ucode"].tolist()


def test_a_warehouse_built_part_by_part_equals_one_built_at_once(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    from geopipe.io.warehouse import WarehouseBuilder

    whole = write_duckdb(tables, tmp_path / "whole.duckdb")
    builder = WarehouseBuilder(tmp_path / "parts.duckdb", geometry_tables=["dim_admin", "h3_r8"])
    assert not (tmp_path / "parts.duckdb").exists()  # built aside until finished
    halves = [
        (n, df.iloc[: len(df) // 2], df.iloc[len(df) // 2 :].reset_index(drop=True))
        for n, df in tables.items()
    ]
    for name, first, _ in halves:
        builder.add(name, first)
    builder.suspend()  # closed between parts (a multi-country run's countries), then reopened
    for name, _, second in halves:
        if len(second):
            builder.add(name, second)
    parts = builder.finish()
    ca, cb = duckdb.connect(str(whole), read_only=True), duckdb.connect(str(parts), read_only=True)
    load_spatial(ca)
    load_spatial(cb)
    for name in [*tables, "geometry_columns", "v_indicator_by_admin", "bi_indicator_latest"]:
        q = (
            f"SELECT * EXCLUDE (geometry) FROM {name}"
            if name in ("dim_admin", "h3_r8")
            else f"SELECT * FROM {name}"
        )
        if name not in tables:  # a view's rows have no order: compared sorted
            q += " ORDER BY ALL"
        assert ca.execute(q).fetchall() == cb.execute(q).fetchall(), name
    keys = "SELECT table_name, constraint_column_names FROM duckdb_constraints() ORDER BY ALL"
    assert ca.execute(keys).fetchall() == cb.execute(keys).fetchall()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts.duckdb", "whole.duckdb"]


def test_an_aborted_or_failed_build_leaves_nothing(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    from geopipe.io.warehouse import WarehouseBuilder

    builder = WarehouseBuilder(tmp_path / "w.duckdb")
    builder.add("fact_indicator", tables["fact_indicator"])
    builder.abort()
    assert list(tmp_path.iterdir()) == []
    builder = WarehouseBuilder(tmp_path / "w.duckdb")
    for _ in range(2):  # the same rows twice: the key check fails when it is finished
        builder.add("fact_indicator", tables["fact_indicator"])
    with pytest.raises(InputError, match="not unique"):
        builder.finish()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="finished or aborted"):
        builder.add("fact_indicator", tables["fact_indicator"])
