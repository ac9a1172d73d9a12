"""Hive-partitioned parquet outputs: a monthly refresh adds a partition, a rerun replaces it.

Layout: ``root/iso3=RWA/date=2024-01-01/part-0.parquet``. Each partition holds exactly one file
with a fixed name, written through :func:`geopipe.io.atomic.atomic_path`: replacing a partition is
one atomic rename, so a reader sees the old month or the new one, and the other partitions are
never touched. The partition values are in the folder names (hive convention) **and** stay columns
inside every file, so a file read alone (Power BI's folder connector, ``pandas.read_parquet`` on
one file) still has its ``iso3`` and ``date``. Tables without geometry are written under the BI
rules (:func:`geopipe.io.bi.write_bi_table`: snappy, data page V1, ``date32`` dates).

Reading the whole history: DuckDB ``read_parquet('root/**/*.parquet', hive_partitioning=true)``;
pyarrow ``pyarrow.dataset.dataset(root)`` (the columns are in the files), or with hive pruning
``dataset(root, partitioning=ds.partitioning(pa.schema([("iso3", pa.string()), ("date",
pa.date32())]), flavor="hive"))`` — plain ``partitioning="hive"`` guesses ``date`` as text and then
refuses the ``date32`` column of the files.

Examples
--------
>>> import tempfile, pathlib, pandas as pd
>>> root = pathlib.Path(tempfile.mkdtemp()) / "fact_indicator"
>>> fact = pd.DataFrame({"iso3": ["RWA"], "date": ["2024-01-01"], "value": [1.0]})
>>> [p.relative_to(root).as_posix() for p in write_partitioned(fact, root)]
['iso3=RWA/date=2024-01-01/part-0.parquet']
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geopipe.errors import InputError, MissingColumnError, problem
from geopipe.io.bi import write_bi_table
from geopipe.io.geoparquet import SortMode, write_geoparquet, write_parquet

__all__ = ["write_partitioned"]

_SAFE = re.compile(r"^[A-Za-z0-9._:+ -]+$")
PART_FILE = "part-0.parquet"


def _format_value(value: object) -> str:
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write_partitioned(
    df: pd.DataFrame,
    root: str | os.PathLike[str],
    partition_cols: Sequence[str] = ("iso3", "date"),
    *,
    sort: SortMode = "auto",
    compression: str = "zstd",
    bi: bool = True,
) -> list[Path]:
    """Write ``df`` as hive partitions under ``root``, replacing only the partitions it contains.

    Parameters
    ----------
    df
        Rows to write: a DataFrame (plain parquet) or a GeoDataFrame (GeoParquet 1.1 per partition).
    root
        Dataset folder; created if missing (its parent must exist).
    partition_cols
        Columns whose values name the folders, outermost first. Dates are written as YYYY-MM-DD.
        Values must be non-null and use only letters, digits, space and ``. _ : + -``. They also
        stay columns inside each file.
    sort, compression
        Passed to :func:`~geopipe.io.geoparquet.write_geoparquet` for geometry partitions
        (``compression`` also to plain partitions when ``bi=False``).
    bi
        Write partitions without geometry with :func:`geopipe.io.bi.write_bi_table` (default:
        history is read by BI refreshes); ``False`` uses ``write_parquet``.

    Returns
    -------
    list of pathlib.Path
        The files written, sorted.

    Raises
    ------
    MissingColumnError
        A partition column is not in ``df``.
    InputError
        A partition value is null or cannot be a folder name, or no partition columns are given.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> df = pd.DataFrame({"iso3": ["RWA", "RWA"], "date": ["2024-01-01", "2024-02-01"],
    ...                    "value": [1.0, 2.0]})
    >>> len(write_partitioned(df, root))
    2
    """
    where = "write_partitioned"
    cols = list(partition_cols)
    if not cols:
        raise InputError(
            problem("partition_cols", "is empty", "name at least one column", where=where)
        )
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"partition columns {missing}",
                "are not in the table",
                f"choose from {list(df.columns)}",
                where=where,
            )
        )
    labels = pd.DataFrame({c: df[c].map(_format_value).to_numpy() for c in cols})
    nulls = [c for c in cols if df[c].isna().any()]
    if nulls:
        raise InputError(
            problem(
                f"partition columns {nulls}",
                "contain nulls",
                "fill them (e.g. the run's reference date) before writing",
                where=where,
            )
        )
    bad = sorted({v for c in cols for v in labels[c].unique() if not _SAFE.match(v)})
    if bad:
        raise InputError(
            problem(
                f"partition values {bad[:5]}",
                "cannot be folder names",
                "use letters, digits, space and . _ : + - only",
                where=where,
            )
        )
    root = Path(root)
    root.mkdir(exist_ok=True)
    written = []
    for key, pos in labels.groupby(cols, sort=True).indices.items():
        values = key if isinstance(key, tuple) else (key,)
        folder = root.joinpath(*(f"{c}={v}" for c, v in zip(cols, values, strict=True)))
        folder.mkdir(parents=True, exist_ok=True)
        part = df.iloc[pos].reset_index(drop=True)  # partition values stay columns in the file
        target = folder / PART_FILE
        if isinstance(part, gpd.GeoDataFrame):
            write_geoparquet(part, target, sort=sort, compression=compression)
        elif bi:
            write_bi_table(pd.DataFrame(part), target)
        else:
            write_parquet(pd.DataFrame(part), target, compression=compression)
        for stale in folder.glob("*.parquet"):  # files of an older layout in this partition
            if stale.name != PART_FILE:
                stale.unlink()
        written.append(target)
    return sorted(written)
