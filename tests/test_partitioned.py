"""Hive partitions by iso3/date: a refresh adds a month, a rerun replaces only its month."""

from __future__ import annotations

from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import shapely

from geopipe.errors import InputError, MissingColumnError
from geopipe.io.geoparquet import check_geoparquet
from geopipe.io.partitioned import write_partitioned


def _fact(dates: list[str], iso3: str = "RWA", scale: float = 1.0) -> pd.DataFrame:
    ucodes = [f"{iso3}_{i:04d}_V1" for i in range(1, 6)]
    rows = [
        (iso3, d, u, "population_u18", scale * (k + 1) * 100.0)
        for d in dates
        for k, u in enumerate(ucodes)
    ]
    return pd.DataFrame(rows, columns=["iso3", "date", "ucode", "indicator_id", "value"])


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def _duck(root: Path) -> pd.DataFrame:
    return (
        duckdb.sql(
            f"SELECT iso3, strftime(date, '%Y-%m-%d') AS date, ucode, indicator_id, value "
            f"FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
        )
        .df()
        .sort_values(["iso3", "date", "ucode"])
        .reset_index(drop=True)
    )


def _arrow(root: Path) -> pd.DataFrame:
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    df = table.to_pandas()
    return (
        df[["iso3", "date", "ucode", "indicator_id", "value"]]
        .astype({"iso3": str, "date": str})
        .sort_values(["iso3", "date", "ucode"])
        .reset_index(drop=True)
    )


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    return (
        df.sort_values(["iso3", "date", "ucode"])
        .reset_index(drop=True)
        .astype({c: object for c in ("iso3", "date", "ucode", "indicator_id")})
    )


def test_monthly_refresh_adds_a_partition_and_rerun_replaces_only_it(tmp_path: Path) -> None:
    root = tmp_path / "fact_indicator"
    jan_feb = _fact(["2024-01-01", "2024-02-01"])
    written = write_partitioned(jan_feb, root)
    assert [p.relative_to(root).as_posix() for p in written] == [
        "iso3=RWA/date=2024-01-01/part-0.parquet",
        "iso3=RWA/date=2024-02-01/part-0.parquet",
    ]
    before = _files(root)

    march = _fact(["2024-03-01"])
    write_partitioned(march, root)  # monthly refresh: history untouched
    after_add = _files(root)
    assert {k: after_add[k] for k in before} == before
    assert len(after_add) == 3

    march_fixed = _fact(["2024-03-01"], scale=2.0)
    write_partitioned(march_fixed, root)  # rerun of the same month: replaces it only
    after_rerun = _files(root)
    assert {k: after_rerun[k] for k in before} == before
    march_key = "iso3=RWA/date=2024-03-01/part-0.parquet"
    assert after_rerun[march_key] != after_add[march_key]

    expected = _norm(pd.concat([jan_feb, march_fixed], ignore_index=True))
    pd.testing.assert_frame_equal(_norm(_duck(root)), expected, check_dtype=False)
    pd.testing.assert_frame_equal(_norm(_arrow(root)), expected, check_dtype=False)

    write_partitioned(march_fixed, root)  # idempotent: same bytes again
    assert _files(root) == after_rerun


def test_other_countries_are_untouched(tmp_path: Path) -> None:
    root = tmp_path / "fact"
    write_partitioned(pd.concat([_fact(["2024-01-01"]), _fact(["2024-01-01"], "BDI")]), root)
    bdi = _files(root / "iso3=BDI")
    write_partitioned(_fact(["2024-01-01"], scale=3.0), root)
    assert _files(root / "iso3=BDI") == bdi


def test_datetime_partition_values_become_dates(tmp_path: Path) -> None:
    df = _fact(["2024-01-01"]).assign(date=pd.Timestamp("2024-01-01"))
    write_partitioned(df, tmp_path / "f")
    assert (tmp_path / "f" / "iso3=RWA" / "date=2024-01-01" / "part-0.parquet").is_file()


def test_stale_files_of_an_older_layout_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "f"
    write_partitioned(_fact(["2024-01-01"]), root)
    part = root / "iso3=RWA" / "date=2024-01-01"
    (part / "part-1.parquet").write_bytes((part / "part-0.parquet").read_bytes())
    write_partitioned(_fact(["2024-01-01"]), root)
    assert sorted(p.name for p in part.iterdir()) == ["part-0.parquet"]


def test_geometry_partitions_are_geoparquet(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    gdf = gpd.GeoDataFrame(
        {
            "iso3": ["RWA"] * 4 + ["BDI"] * 4,
            "date": ["2024-01-01"] * 8,
            "ucode": [f"X_{i:04d}_V1" for i in range(8)],
        },
        geometry=shapely.points(rng.uniform(29, 30, 8), rng.uniform(-3, -2, 8)),
        crs="EPSG:4326",
    )
    files = write_partitioned(gdf, tmp_path / "g")
    assert len(files) == 2
    assert all(check_geoparquet(f) == [] for f in files)
    n = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/g/**/*.parquet', hive_partitioning=true) "
        "WHERE iso3 = 'RWA'"
    ).fetchone()[0]
    assert n == 4


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingColumnError, match="iso3"):
        write_partitioned(pd.DataFrame({"date": ["2024-01-01"]}), tmp_path / "f")
    with pytest.raises(InputError, match="contain nulls"):
        write_partitioned(_fact(["2024-01-01"]).assign(date=None), tmp_path / "f")
    with pytest.raises(InputError, match="cannot be folder names"):
        write_partitioned(_fact(["2024/01"]), tmp_path / "f")
    with pytest.raises(InputError, match="is empty"):
        write_partitioned(_fact(["2024-01-01"]), tmp_path / "f", partition_cols=())


def test_partition_file_read_alone_has_its_partition_values(tmp_path: Path) -> None:
    """Power BI's folder connector reads each file alone: iso3 and date must be inside it."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from geopipe.io.bi import check_bi_table

    fact = _fact(["2024-01-01", "2024-02-01"])
    fact["date"] = pd.to_datetime(fact["date"]).dt.date  # real dates, as the pipeline writes
    root = tmp_path / "fact_indicator"
    files = write_partitioned(fact, root)
    one = root / "iso3=RWA" / "date=2024-02-01" / "part-0.parquet"
    assert one in files
    alone = pq.read_table(one)  # a plain file read, no dataset, no folder names
    assert alone.schema.field("iso3").type == pa.string()
    assert alone.schema.field("date").type == pa.date32()
    assert set(alone.column("iso3").to_pylist()) == {"RWA"}
    assert set(alone.column("date").to_pylist()) == {dt.date(2024, 2, 1)}
    assert set(pd.read_parquet(one)["iso3"]) == {"RWA"}
    assert check_bi_table(one) == []
    # hive reads still give every row once, with the same values as the input
    want = _norm(fact.astype({"date": str}))
    assert _norm(_duck(root)).equals(want)
    typed = ds.partitioning(
        pa.schema([("iso3", pa.string()), ("date", pa.date32())]), flavor="hive"
    )
    hive = ds.dataset(root, format="parquet", partitioning=typed).to_table().to_pandas()
    got = hive[want.columns].astype({"date": str})
    assert _norm(got).equals(want)
    assert len(ds.dataset(root, format="parquet").to_table()) == len(fact)
