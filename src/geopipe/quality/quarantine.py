"""Quarantine: rows a reader or a check rejected, kept with the reason instead of lost silently.

A quarantine table has the columns ``source, check_id, reason, row, record_id`` followed by the
offending row's own values as text (geometry as WKT), so that any mix of sources and columns can be
written to plain Parquet and read by anyone. :func:`write_quarantine` writes
``<folder>/quarantine/<source>.parquet`` atomically (temporary name, then ``os.replace``).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, OutputError, problem

__all__ = [
    "QUARANTINE_COLUMNS",
    "quarantine",
    "quarantine_flagged",
    "rejected_to_quarantine",
    "write_quarantine",
]

WHERE = "quarantine"
QUARANTINE_COLUMNS = ["source", "check_id", "reason", "row", "record_id"]

# read_points' reasons -> check ids
_READER_REASONS = {
    "missing coordinates": "points.null_coordinates",
    "coordinates are (0, 0)": "points.zero_coordinates",
    "coordinates are not numbers": "points.coordinates_not_numeric",
    "coordinates outside lon -180..180 / lat -90..90": "points.coordinates_out_of_range",
    "geometry is not a point": "points.not_a_point",
}


def quarantine(
    rows: pd.DataFrame,
    check_id: str,
    reason: str | Sequence[str],
    source: str,
    *,
    id_col: str | None = None,
) -> pd.DataFrame:
    """Turn offending rows into quarantine records.

    Parameters
    ----------
    rows
        The rows to quarantine (any DataFrame or GeoDataFrame); not modified.
    check_id
        The check that rejected them, e.g. ``"points.zero_coordinates"``.
    reason
        One reason for all rows, or one per row.
    source
        The input they came from (file name).
    id_col
        Column holding the row's id (default ``point_id``/``ucode`` when present).

    Returns
    -------
    pandas.DataFrame
        ``source, check_id, reason, row, record_id`` then the rows' values as text.

    Examples
    --------
    >>> import pandas as pd
    >>> q = quarantine(pd.DataFrame({"point_id": ["a"], "lat": [0.0]}), "points.zero_coordinates",
    ...                "coordinates are (0, 0)", "schools.csv")
    >>> q[["check_id", "record_id", "lat"]].iloc[0].tolist()
    ['points.zero_coordinates', 'a', '0.0']
    """
    if not isinstance(rows, pd.DataFrame):
        raise InputError(
            problem(
                "rows",
                f"is a {type(rows).__name__}",
                "pass a DataFrame of the offending rows",
                where=WHERE,
            )
        )
    n = len(rows)
    reasons = [reason] * n if isinstance(reason, str) else list(reason)
    if len(reasons) != n:
        raise InputError(
            problem(
                "reason",
                f"has {len(reasons)} entries for {n} rows",
                "pass one reason or one per row",
                where=WHERE,
            )
        )
    id_col = id_col or next(
        (c for c in ("point_id", "ucode", "cell_id") if c in rows.columns), None
    )
    record_id = (
        rows[id_col].astype(object).where(rows[id_col].notna(), None).map(_text)
        if id_col
        else pd.Series([None] * n, index=rows.index)
    )
    row_no = (
        pd.to_numeric(rows["row"], errors="coerce").to_numpy()
        if "row" in rows.columns
        else _row_numbers(rows)
    )
    head = pd.DataFrame(
        {
            "source": [str(source)] * n,
            "check_id": [str(check_id)] * n,
            "reason": [str(r) for r in reasons],
            "row": pd.array(row_no, dtype="Int64"),
            "record_id": pd.array(record_id.to_numpy(dtype=object), dtype="str"),
        }
    )
    values = {}
    for col in rows.columns:
        if col in QUARANTINE_COLUMNS:
            continue
        name = f"value_{col}" if col in head.columns else str(col)
        values[name] = pd.array([_text(v) for v in rows[col].to_numpy(dtype=object)], dtype="str")
    return pd.concat([head, pd.DataFrame(values)], axis=1) if values else head


def _row_numbers(rows: pd.DataFrame) -> list[int | None]:
    idx = rows.index
    if pd.api.types.is_integer_dtype(idx):
        return [int(i) + 1 for i in idx]  # 1-based position in the source table
    return [None] * len(rows)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, shapely.Geometry):
        return shapely.to_wkt(value, rounding_precision=-1)
    if isinstance(value, bytes):
        return value.hex()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def rejected_to_quarantine(
    points_or_records: pd.DataFrame | Iterable[Mapping[str, Any]], source: str | None = None
) -> pd.DataFrame:
    """Quarantine records for the rows :func:`~geopipe.io.points.read_points` left out.

    Parameters
    ----------
    points_or_records
        The GeoDataFrame returned by ``read_points`` (its ``attrs["geopipe"]["rejected"]`` is used)
        or that list of dicts (``row, point_id, reason, <values>``).
    source
        Source name (default: the reader's source file).

    Examples
    --------
    >>> q = rejected_to_quarantine([{"row": 3, "point_id": "s-3", "reason": "coordinates are (0, 0)",
    ...                              "lat": "0", "lon": "0"}], "schools.csv")
    >>> q[["check_id", "record_id"]].iloc[0].tolist(), int(q["row"].iloc[0])
    (['points.zero_coordinates', 's-3'], 3)
    """
    if isinstance(points_or_records, pd.DataFrame):
        info = points_or_records.attrs.get("geopipe", {})
        records = list(info.get("rejected", []))
        source = source or str(info.get("source", "points")).rsplit("/", 1)[-1]
    else:
        records = list(points_or_records)
    source = source or "points"
    if not records:
        return pd.DataFrame(
            {c: pd.Series(dtype="Int64" if c == "row" else "str") for c in QUARANTINE_COLUMNS}
        )
    frame = pd.DataFrame.from_records(records)
    reasons = frame["reason"].astype(str).tolist()
    parts = []
    for reason in dict.fromkeys(reasons):
        sel = frame[frame["reason"].astype(str) == reason]
        check_id = _READER_REASONS.get(reason, "points.rejected_by_reader")
        q = quarantine(sel.drop(columns=["reason"]), check_id, reason, source, id_col="point_id")
        q["row"] = (
            pd.array(pd.to_numeric(sel["row"], errors="coerce").to_numpy(), dtype="Int64")
            if "row" in sel
            else q["row"]
        )
        parts.append(q)
    return pd.concat(parts, ignore_index=True)


def quarantine_flagged(
    frame: pd.DataFrame, flags: pd.DataFrame, source: str, *, check_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Quarantine records for every (row, check) that is True in ``flags``
    (from :func:`geopipe.quality.points.flag_points`).

    Examples
    --------
    >>> q = quarantine_flagged(points, flag_points(points), "schools.csv")  # doctest: +SKIP
    """
    from .points import POINT_CHECKS

    cols = list(check_ids) if check_ids is not None else list(flags.columns)
    parts = []
    for check_id in cols:
        mask = flags[check_id].to_numpy(dtype=bool)
        if mask.any():
            reason = (
                POINT_CHECKS.get(check_id, ("", check_id, ""))[1]
                .split(";")[0]
                .replace("{n} ", "")
                .format(d="N", m="?", k="", detail="")
            )
            parts.append(quarantine(frame.loc[mask], check_id, reason, source))
    if not parts:
        return quarantine(frame.iloc[0:0], "none", "", source)
    return pd.concat(parts, ignore_index=True)


def _safe_name(source: str) -> str:
    stem = Path(str(source)).name
    stem = re.sub(
        r"\.(csv|tsv|json|geojson|gpkg|parquet|xlsx|xls|shp|txt)$", "", stem, flags=re.IGNORECASE
    )
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "source"
    return stem


def write_quarantine(
    frames: Mapping[str, pd.DataFrame], folder: str | os.PathLike[str]
) -> dict[str, Path]:
    """Write each non-empty quarantine table to ``<folder>/quarantine/<source>.parquet``.

    Each file is written under a temporary name in the same folder and renamed into place, so a
    reader never sees half a file. Empty tables are not written.

    Parameters
    ----------
    frames
        ``{source: quarantine table}`` (from :func:`quarantine` / :func:`rejected_to_quarantine`).
    folder
        The run folder.

    Returns
    -------
    dict
        ``{source: path written}``.

    Examples
    --------
    >>> paths = write_quarantine({"schools.csv": q}, "out/sample")  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(folder) / "quarantine"
    written: dict[str, Path] = {}
    names: dict[str, str] = {}
    for source, frame in frames.items():
        if frame is None or len(frame) == 0:
            continue
        missing = [c for c in ("check_id", "reason") if c not in frame.columns]
        if missing:
            raise InputError(
                problem(
                    f"quarantine table for {source!r}",
                    f"has no column(s) {missing}",
                    "build it with quarantine()",
                    where="write_quarantine",
                )
            )
        name = _safe_name(source)
        if name in names and names[name] != source:
            raise InputError(
                problem(
                    "frames",
                    f"map {names[name]!r} and {source!r} to the same file {name}.parquet",
                    "rename one source",
                    where="write_quarantine",
                )
            )
        names[name] = source
        try:
            target.mkdir(parents=True, exist_ok=True)
            final = target / f"{name}.parquet"
            tmp = target / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                table = pa.Table.from_pandas(
                    pd.DataFrame(frame).reset_index(drop=True), preserve_index=False
                )
                pq.write_table(table, tmp)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError as exc:
            raise OutputError(
                problem(
                    f"quarantine folder '{target}'",
                    f"could not be written ({exc})",
                    "check the path and the permissions",
                    where="write_quarantine",
                )
            ) from exc
        written[source] = final
    return written
