"""The GeoParquet 1.1 checks behind :func:`geopipe.io.geoparquet.check_geoparquet`.

Each ``_check_*`` function appends human-readable problems to a list and never raises: the caller
gets every problem of a file at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from geopipe.io._geoparquet_speed import TYPE_NAMES

__all__ = ["run_checks"]

# the names GeoParquet allows, with and without " Z" (shapely's type ids index TYPE_NAMES)
_VALID_TYPES = {base + z for base in TYPE_NAMES for z in ("", " Z")}
_FIELDS = ("xmin", "ymin", "xmax", "ymax")
_VERSION = re.compile(r"^1\.1\.\d+$")


def run_checks(path: Path) -> list[str]:
    """Return the list of problems of ``path`` (empty when it passes)."""
    if not path.is_file():
        return [f"'{path}' does not exist"]
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        return [f"'{path}' is not a readable parquet file: {exc}"]
    raw = (pf.schema_arrow.metadata or {}).get(b"geo")
    if raw is None:
        return ["file metadata has no 'geo' key"]
    try:
        geo = json.loads(raw)
    except json.JSONDecodeError as exc:
        return [f"'geo' metadata is not valid JSON: {exc}"]
    if not isinstance(geo, dict):
        return ["'geo' metadata is not a JSON object"]

    problems: list[str] = []
    _check_top_level(geo, pf.schema_arrow, problems)
    columns = geo.get("columns")
    if not isinstance(columns, dict) or not columns:
        return problems
    table = pf.read()
    for name, meta in columns.items():
        if not isinstance(meta, dict):
            problems.append(f"geo.columns.{name} is not an object")
            continue
        if name not in table.column_names:
            continue  # reported by _check_top_level
        geoms = _decode(table, name, meta, problems)
        if geoms is None:
            continue
        _check_types(name, meta, geoms, problems)
        _check_crs(name, meta, problems)
        _check_bbox(name, meta, geoms, problems)
        _check_optional(name, meta, problems)
        if name == geo.get("primary_column") or "covering" in meta:
            _check_covering(name, meta, geoms, table, problems)
    return problems


def _check_top_level(geo: dict[str, Any], schema: pa.Schema, problems: list[str]) -> None:
    version = geo.get("version")
    if version is None:
        problems.append("geo.version is missing")
    elif not isinstance(version, str) or not _VERSION.match(version):
        problems.append(f"geo.version is {version!r}, expected '1.1.0'")
    primary = geo.get("primary_column")
    columns = geo.get("columns")
    if primary is None:
        problems.append("geo.primary_column is missing")
    if not isinstance(columns, dict) or not columns:
        problems.append("geo.columns is missing or empty")
        return
    if primary is not None and primary not in columns:
        problems.append(f"geo.primary_column {primary!r} is not listed in geo.columns")
    for name in columns:
        if name not in schema.names:
            problems.append(f"geometry column {name!r} is in geo.columns but not in the file")
            continue
        ftype = schema.field(name).type
        if not (pa.types.is_binary(ftype) or pa.types.is_large_binary(ftype)):
            problems.append(f"geometry column {name!r} has type {ftype}, expected binary (WKB)")


def _decode(table: pa.Table, name: str, meta: dict[str, Any], problems: list[str]) -> Any:
    encoding = meta.get("encoding")
    if encoding != "WKB":
        problems.append(f"geo.columns.{name}.encoding is {encoding!r}, expected 'WKB'")
        return None
    col = table.column(name)
    if not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
        return None
    try:
        return shapely.from_wkb(col.to_numpy(zero_copy_only=False), on_invalid="raise")
    except shapely.errors.GEOSException as exc:
        problems.append(f"geometry column {name!r} holds values that are not valid WKB: {exc}")
        return None


def _check_types(name: str, meta: dict[str, Any], geoms: np.ndarray, problems: list[str]) -> None:
    declared = meta.get("geometry_types")
    if declared is None:
        problems.append(f"geo.columns.{name}.geometry_types is missing")
        return
    if not isinstance(declared, list):
        problems.append(f"geo.columns.{name}.geometry_types is not a list")
        return
    bad = [t for t in declared if t not in _VALID_TYPES]
    if bad:
        problems.append(f"geo.columns.{name}.geometry_types has invalid names {bad}")
    if len(set(declared)) != len(declared):
        problems.append(f"geo.columns.{name}.geometry_types lists a type twice")
    present = ~shapely.is_missing(geoms)
    ids = shapely.get_type_id(geoms[present])
    has_z = shapely.has_z(geoms[present])
    actual = {TYPE_NAMES[int(t)] + (" Z" if z else "") for t, z in zip(ids, has_z, strict=True)}
    if declared and not actual <= set(declared):
        problems.append(
            f"geo.columns.{name}.geometry_types {sorted(declared)} misses types present in the "
            f"data: {sorted(actual - set(declared))}"
        )


def _check_crs(name: str, meta: dict[str, Any], problems: list[str]) -> None:
    if "crs" not in meta:
        problems.append(f"geo.columns.{name}.crs is missing (geopipe always writes the CRS)")
        return
    crs = meta["crs"]
    if crs is None:
        problems.append(f"geo.columns.{name}.crs is null (unknown CRS)")
        return
    if not isinstance(crs, dict):
        problems.append(f"geo.columns.{name}.crs is not a PROJJSON object")
        return
    try:
        import pyproj

        pyproj.CRS.from_json_dict(crs)
    except (pyproj.exceptions.CRSError, TypeError, ValueError) as exc:
        problems.append(f"geo.columns.{name}.crs is not PROJJSON that pyproj can read: {exc}")


def _total_bounds(geoms: np.ndarray) -> np.ndarray | None:
    b = shapely.bounds(geoms)
    ok = np.isfinite(b).all(axis=1)
    if not ok.any():
        return None
    b = b[ok]
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])


def _check_bbox(name: str, meta: dict[str, Any], geoms: np.ndarray, problems: list[str]) -> None:
    bbox = meta.get("bbox")
    total = _total_bounds(geoms)
    if bbox is None:
        if total is not None:
            problems.append(f"geo.columns.{name}.bbox is missing")
        return
    if not isinstance(bbox, list) or len(bbox) not in (4, 6):
        problems.append(f"geo.columns.{name}.bbox must be a list of 4 (or 6) numbers")
        return
    if total is None:
        return
    box = np.array([bbox[0], bbox[1], bbox[-3], bbox[-2]] if len(bbox) == 6 else bbox, float)
    if not np.allclose(box, total, rtol=0, atol=1e-9):
        problems.append(
            f"geo.columns.{name}.bbox {bbox} differs from the geometries' bounds {total.tolist()}"
        )


def _check_optional(name: str, meta: dict[str, Any], problems: list[str]) -> None:
    if "edges" in meta and meta["edges"] not in ("planar", "spherical"):
        problems.append(f"geo.columns.{name}.edges is {meta['edges']!r}: planar or spherical")
    if "orientation" in meta and meta["orientation"] != "counterclockwise":
        problems.append(f"geo.columns.{name}.orientation must be 'counterclockwise'")
    if "epoch" in meta and not isinstance(meta["epoch"], int | float):
        problems.append(f"geo.columns.{name}.epoch must be a number")


def _check_covering(
    name: str, meta: dict[str, Any], geoms: np.ndarray, table: pa.Table, problems: list[str]
) -> None:
    cov = (meta.get("covering") or {}).get("bbox")
    if not isinstance(cov, dict):
        problems.append(f"geo.columns.{name}.covering.bbox is missing (GeoParquet 1.1 covering)")
        return
    paths = {}
    for field in _FIELDS:
        p = cov.get(field)
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)):
            problems.append(f"geo.columns.{name}.covering.bbox.{field} must be [column, field]")
            return
        paths[field] = p
    heads = {p[0] for p in paths.values()}
    if len(heads) != 1:
        problems.append(f"covering.bbox of {name!r} points at several columns {sorted(heads)}")
        return
    col = heads.pop()
    if col not in table.column_names:
        problems.append(f"covering column {col!r} of {name!r} is not in the file")
        return
    ctype = table.schema.field(col).type
    if not pa.types.is_struct(ctype):
        problems.append(f"covering column {col!r} has type {ctype}, expected a struct")
        return
    names = [ctype.field(i).name for i in range(ctype.num_fields)]
    for field, (_, sub) in paths.items():
        if sub not in names:
            problems.append(f"covering column {col!r} has no field {sub!r} (for {field})")
            return
        stype = ctype.field(sub).type
        if not pa.types.is_floating(stype):
            problems.append(f"covering field {col}.{sub} has type {stype}, expected float/double")
            return
    arr = table.column(col)
    values = np.column_stack(
        [
            pc.struct_field(arr, paths[f][1]).to_numpy(zero_copy_only=False).astype(float)
            for f in _FIELDS
        ]
    )
    box_null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values[box_null] = np.nan
    truth = shapely.bounds(geoms)
    empty = ~np.isfinite(truth).all(axis=1)
    bad_null = int(((box_null | np.isnan(values).any(axis=1)) & ~empty).sum())
    if bad_null:
        problems.append(f"covering column {col!r} is null/NaN for {bad_null} non-empty geometries")
    both = ~empty & np.isfinite(values).all(axis=1)
    single = all(ctype.field(paths[f][1]).type == pa.float32() for f in _FIELDS)
    if single:  # float32 boxes must be conservative (never smaller than the geometry)
        wrong = (values[both, :2] > truth[both, :2]).any(axis=1) | (
            values[both, 2:] < truth[both, 2:]
        ).any(axis=1)
    else:
        wrong = (values[both] != truth[both]).any(axis=1)
    if wrong.any():
        problems.append(
            f"covering column {col!r} differs from the geometries' bounds in {int(wrong.sum())} rows"
        )
