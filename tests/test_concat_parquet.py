"""concat_parquet: the parts of a multi-country warehouse become one file, a row group at a time."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from geopipe.errors import InputError
from geopipe.io.geoparquet import (
    check_geoparquet,
    concat_parquet,
    read_geoparquet,
    write_geoparquet,
    write_parquet,
)


def _cells(n: int, x0: float, seed: int, extra: bool = False) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = x0 + rng.uniform(0, 1, n)
    y = rng.uniform(0, 1, n)
    df = {
        "ucode": [f"U{seed}_{i % 7}" for i in range(n)],
        "value": rng.normal(size=n),
    }
    if extra:
        df["only_here"] = np.arange(n, dtype=float)
    geoms = shapely.buffer(shapely.points(x, y), 0.01, quad_segs=2)
    geoms[::11] = shapely.points(x[::11], y[::11])  # two geometry types
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def test_geoparquet_parts_give_a_valid_file_with_every_row_and_merged_metadata(tmp_path):
    a, b = _cells(3000, 0.0, 1), _cells(2500, 5.0, 2, extra=True)
    pa_ = write_geoparquet(a, tmp_path / "a.parquet")
    pb = write_geoparquet(b, tmp_path / "b.parquet")
    out = concat_parquet([pa_, pb], tmp_path / "ab.parquet")
    assert check_geoparquet(out) == []
    got = read_geoparquet(out)
    want = pd.concat([read_geoparquet(pa_), read_geoparquet(pb)], ignore_index=True)
    assert list(got.columns) == ["ucode", "value", "only_here", "geometry"]
    assert got["only_here"].isna().sum() == len(a)
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")),
        pd.DataFrame(want.drop(columns="geometry"))[list(got.columns[:-1])],
    )
    assert shapely.equals(got.geometry.to_numpy(), want.geometry.to_numpy()).all()
    import json

    geo = json.loads(pq.read_schema(out).metadata[b"geo"])["columns"]["geometry"]
    lo, hi = (
        shapely.bounds(np.concatenate([a.geometry.values, b.geometry.values])).min(axis=0),
        shapely.bounds(np.concatenate([a.geometry.values, b.geometry.values])).max(axis=0),
    )
    assert geo["bbox"] == [lo[0], lo[1], hi[2], hi[3]]
    assert geo["geometry_types"] == ["Point", "Polygon"]
    # the parts' row groups, codecs and statistics are kept
    parts = [pq.ParquetFile(p).metadata for p in (pa_, pb)]
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == sum(m.num_row_groups for m in parts)
    col = {meta.schema.column(j).path: j for j in range(meta.num_columns)}
    first = parts[0].row_group(0)
    for j in range(first.num_columns):
        c = first.column(j)
        mine = meta.row_group(0).column(col[c.path_in_schema])
        assert mine.compression == c.compression
        assert mine.is_stats_set == c.is_stats_set
    # byte-identical when run again
    again = concat_parquet([pa_, pb], tmp_path / "ab2.parquet")
    assert again.read_bytes() == out.read_bytes()


def test_plain_parts_promote_an_all_null_column(tmp_path):
    a = write_parquet(pd.DataFrame({"k": ["x"], "v": [None]}), tmp_path / "a.parquet")
    b = write_parquet(pd.DataFrame({"k": ["y", "z"], "v": [1.5, 2.5]}), tmp_path / "b.parquet")
    got = pd.read_parquet(concat_parquet([a, b], tmp_path / "ab.parquet"))
    assert got["k"].tolist() == ["x", "y", "z"]
    assert got["v"].iloc[1:].tolist() == [1.5, 2.5] and pd.isna(got["v"].iloc[0])


def test_parts_with_another_crs_are_refused(tmp_path):
    a = write_geoparquet(_cells(10, 0, 1), tmp_path / "a.parquet")
    b = write_geoparquet(_cells(10, 0, 2).to_crs(3857), tmp_path / "b.parquet")
    with pytest.raises(InputError, match="different CRS"):
        concat_parquet([a, b], tmp_path / "ab.parquet")
