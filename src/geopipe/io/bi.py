"""Flat tables for BI tools (Power BI, Superset, Tableau), written beside the GeoParquet files.

The GeoParquet files of a run are for GIS tools: WKB geometry, a ``bbox`` struct, zstd. A BI
refresh needs something else (see ``docs/bi.md``): no binary or nested columns, text under
32,000 characters, signed integers, float64 measures, ``date32`` dates, naive UTC microsecond
timestamps, data page V1 with PLAIN/dictionary encodings, snappy, snake_case ASCII names. Those
rules live in one place (:mod:`geopipe.io._bi_rules`); :func:`write_bi_table` applies them and
checks the file it wrote, :func:`check_bi_table` checks any parquet file against them and
:func:`write_bi_tables` turns a run's in-memory tables into the BI folder:

=========================  =================================================================
file (in ``<run>/bi/``)    what it holds
=========================  =================================================================
``dim_admin.parquet``      one row per unit, no geometry: ucode, concept_ucode, name,
                           admin_level, parent_ucode, iso3, iso3166_2, pcode, start_date,
                           end_date, source, latitude, longitude (centroid), bbox_xmin,
                           bbox_ymin, bbox_xmax, bbox_ymax
``admin_geometry.parquet`` ucode, admin_level, ``wkt`` (simplified until under 32,000
                           characters), wkt_chars, simplify_tolerance_deg, area_change
``adm0.parquet`` ...       the wide tables per level without geometry, + latitude/longitude
``h3_r7.parquet`` ...      the grid tables without WKB: + latitude/longitude and ``wkt``
``fact_indicator.parquet``  the other tables (no geometry) under the same rules
=========================  =================================================================

Examples
--------
>>> import tempfile, pathlib, pandas as pd
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> p = write_bi_table(pd.DataFrame({"ucode": ["RWA_V1"], "value": [1.5]}), folder / "t.parquet")
>>> check_bi_table(p)
[]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from geopipe.errors import InputError, MissingColumnError, OutputError, problem
from geopipe.io._bi_rules import MAX_TEXT_CHARS, NAME_RE, check_file, conform
from geopipe.io.atomic import atomic_path
from geopipe.io.geoparquet import _frame_to_table

__all__ = [
    "BI_DIM_ADMIN_COLUMNS",
    "MAX_TEXT_CHARS",
    "admin_geometry_wkt",
    "check_bi_table",
    "fit_wkt",
    "flat_admin",
    "flat_table",
    "write_bi_table",
    "write_bi_tables",
]

BI_DIM_ADMIN_COLUMNS = [
    "ucode",
    "concept_ucode",
    "name",
    "admin_level",
    "parent_ucode",
    "iso3",
    "iso3166_2",
    "pcode",
    "start_date",
    "end_date",
    "source",
    "latitude",
    "longitude",
    "bbox_xmin",
    "bbox_ymin",
    "bbox_xmax",
    "bbox_ymax",
]
_DIM_TYPES: dict[str, pa.DataType] = {
    **{
        c: pa.string()
        for c in ("ucode", "concept_ucode", "name", "parent_ucode", "iso3", "iso3166_2", "pcode")
    },
    "source": pa.string(),
    "admin_level": pa.int64(),
    "start_date": pa.date32(),
    "end_date": pa.date32(),
}
WKT_PRECISION = 6  # decimal places of degrees: about 0.1 m
_FIRST_TOLERANCE = 1e-5  # degrees (about 1.1 m at the equator); doubled until the WKT fits
_MAX_STEPS = 24
_EQUAL_AREA = "EPSG:6933"


def _geometry_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(df[c].dtype, gpd.array.GeometryDtype)]


def _apply_types(table: pa.Table, types: Mapping[str, pa.DataType], where: str) -> pa.Table:
    missing = [c for c in types if c not in table.column_names]
    if missing:
        raise MissingColumnError(
            problem(
                f"columns {missing} named in types=",
                "are not in the table",
                f"choose from {table.column_names}",
                where=where,
            )
        )
    for name, target in types.items():
        i = table.schema.get_field_index(name)
        col = table.column(i)
        if col.type == target:
            continue
        if pa.types.is_date32(target) and (pa.types.is_string(col.type)):
            col = col.cast(pa.timestamp("us"))  # ISO text -> timestamp -> date
        try:
            col = col.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                problem(
                    f"column '{name}'",
                    f"cannot be converted from {col.type} to {target} ({exc})",
                    "clean the values or pass another type",
                    where=where,
                )
            ) from exc
        table = table.set_column(i, name, col)
    return table


def write_bi_table(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    types: Mapping[str, pa.DataType] | None = None,
    row_group_size: int | None = None,
) -> Path:
    """Write a table without geometry as a parquet file every BI tool reads, then check it.

    Column types are converted to the BI rules (small or unsigned integers to int32/int64,
    float32 to float64, categoricals to strings, all-null columns to strings, time-zone
    timestamps to naive UTC microseconds, ...). The file is snappy compressed, with data page V1
    and PLAIN/dictionary encodings, written atomically, and byte-identical for identical input.

    Parameters
    ----------
    df
        The table; no geometry columns (see :func:`write_bi_tables` for GeoDataFrames).
    path
        Output file; its folder must exist.
    types
        Explicit Arrow types for some columns, e.g. ``{"start_date": pa.date32()}`` for a date
        column that is all null (it would otherwise be written as text).
    row_group_size
        Rows per row group (pyarrow's default when None).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        ``df`` has geometry, binary or nested columns, names that are not snake_case ASCII or that
        collide regardless of case, text of 32,000 characters or more, or uint64 values above
        2**63-1. The message lists every problem, one line each, naming the column and the rule.
    OutputError
        The folder does not exist, or the written file fails :func:`check_bi_table`.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> df = pd.DataFrame({"ucode": ["RWA_V1"], "n": pd.array([3], dtype="uint8")})
    >>> p = write_bi_table(df, pathlib.Path(tempfile.mkdtemp()) / "t.parquet")
    >>> str(pd.read_parquet(p)["n"].dtype)
    'int32'
    """
    where = "write_bi_table"
    path = Path(path)
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            problem("df", f"is a {type(df).__name__}", "pass a pandas DataFrame", where=where)
        )
    geoms = _geometry_columns(df)
    if geoms:
        raise InputError(
            problem(
                f"geometry columns {geoms}",
                "cannot go into a BI table (Power BI cannot load WKB)",
                "use write_bi_tables (WKT text and latitude/longitude) or drop them",
                where=where,
            )
        )
    table = _frame_to_table(df, where).replace_schema_metadata(None)
    if types:
        table = _apply_types(table, types, where)
    table, problems = conform(table)
    if problems:
        raise InputError(
            problem(
                f"the table for '{path.name}'",
                "breaks BI rules:\n  " + "\n  ".join(problems) + "\n",
                "see each line",
                where=where,
            )
        )
    text = [f.name for f in table.schema if pa.types.is_string(f.type)]
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            row_group_size=row_group_size,
            compression="snappy",
            data_page_version="1.0",
            use_dictionary=text,
            write_statistics=True,
        )
        after = check_file(tmp, text=False)
        if after:
            raise OutputError(
                problem(
                    f"'{path}'",
                    "was written but breaks BI rules: " + "; ".join(after),
                    "report this as a geopipe bug",
                    where=where,
                )
            )
    return path


def check_bi_table(path: str | os.PathLike[str]) -> list[str]:
    """Every BI rule a parquet file breaks, one line per problem naming the column and the rule.

    Rules (ids in brackets in each line): [names] snake_case ASCII, unique regardless of case;
    [types] int32/int64, float64, string, bool, date32, naive ``timestamp[us]`` only, with
    [types: no nested], [types: no binary], [types: no unsigned] and
    [types: timestamp[us] naive UTC] named where they apply; [text-length] text under 32,000
    characters; [page-v1] data pages version 1; [encodings] PLAIN/dictionary only;
    [compression] snappy.

    Parameters
    ----------
    path
        A parquet file (geopipe's or any other writer's).

    Returns
    -------
    list of str
        Empty when the file passes.

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.parquet"
    >>> pq.write_table(pa.table({"Value": pa.array([1], pa.uint64())}), p, compression="zstd")
    >>> for line in check_bi_table(p):
    ...     print(line.split(";")[0])
    column 'Value': name is not snake_case ASCII breaks BI rule [names]
    column 'Value': uint64 (unsigned integer) breaks BI rule [types: no unsigned]
    column 'Value': compressed with ['zstd'] breaks BI rule [compression]
    """
    return check_file(Path(path))


# ------------------------------------------------------------------------- flat tables
def _centroid_lonlat(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = shapely.centroid(geoms)
    return shapely.get_x(c), shapely.get_y(c)


def flat_admin(admin: gpd.GeoDataFrame) -> pd.DataFrame:
    """The BI admin dimension: ``dim_admin`` without geometry, with centroid and flat bbox.

    Columns :data:`BI_DIM_ADMIN_COLUMNS`. ``iso3166_2`` is taken from ``admin`` when it has that
    column (null otherwise); ``latitude``/``longitude`` are the centroid of the polygon in
    degrees (for a map pin; it may fall outside a strongly concave unit), ``bbox_*`` its bounds.

    Parameters
    ----------
    admin
        ``dim_admin`` as returned by :func:`geopipe.read_admin`, in EPSG:4326.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"ucode": ["RWA_V1"], "name": ["Rwanda"], "admin_level": [0],
    ...                           "iso3": ["RWA"]}, geometry=[shapely.box(29, -3, 31, -1)],
    ...                          crs="EPSG:4326")
    >>> flat_admin(admin)[["ucode", "latitude", "longitude", "bbox_xmax"]].to_dict("records")
    [{'ucode': 'RWA_V1', 'latitude': -2.0, 'longitude': 30.0, 'bbox_xmax': 31.0}]
    """
    admin = _in_wgs84(admin, "flat_admin")
    missing = [c for c in ("ucode", "name", "admin_level") if c not in admin.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"dim_admin columns {missing}",
                "are missing",
                "pass the table read_admin returns",
                where="flat_admin",
            )
        )
    geoms = admin.geometry.to_numpy()
    lon, lat = _centroid_lonlat(geoms)
    bounds = shapely.bounds(geoms)
    out = pd.DataFrame(index=range(len(admin)))
    for c in BI_DIM_ADMIN_COLUMNS[:11]:
        out[c] = admin[c].to_numpy() if c in admin.columns else None
    out["latitude"], out["longitude"] = lat, lon
    for i, c in enumerate(("bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax")):
        out[c] = bounds[:, i]
    return out


def _in_wgs84(gdf: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(
            problem("the table", f"is a {type(gdf).__name__}", "pass a GeoDataFrame", where=where)
        )
    if gdf.crs is None:
        raise InputError(problem("the table", "has no CRS", "set_crs('EPSG:4326')", where=where))
    return gdf if gdf.crs.equals("EPSG:4326") else gdf.to_crs("EPSG:4326")


def _wkt_lengths(wkt: np.ndarray) -> np.ndarray:
    return np.array(pd.Series(wkt, dtype=object).str.len().fillna(0), dtype=np.int64)


def fit_wkt(
    geoms: np.ndarray,
    *,
    max_chars: int = MAX_TEXT_CHARS,
    precision: int = WKT_PRECISION,
    labels: pd.Series | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """WKT of ``geoms``, each simplified (only if needed) until it is under ``max_chars``.

    The rule behind :func:`admin_geometry_wkt` (read its description), on a bare array.

    Parameters
    ----------
    geoms
        Shapely geometries (None allowed: WKT None, length 0).
    max_chars, precision
        As in :func:`admin_geometry_wkt`.
    labels
        Names of the rows for the error message (e.g. the ucodes).

    Returns
    -------
    tuple of numpy.ndarray
        ``wkt`` (object), ``chars`` (int64), ``tolerance`` (degrees, 0 where unchanged) and the
        geometries the WKT describes.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> wkt, chars, tol, _ = fit_wkt(np.array([shapely.box(0, 0, 1, 1)]))
    >>> wkt[0], int(chars[0]), float(tol[0])
    ('POLYGON ((1 0, 1 1, 0 1, 0 0, 1 0))', 35, 0.0)
    """
    wkt = np.asarray(shapely.to_wkt(geoms, rounding_precision=precision, trim=True), dtype=object)
    lengths = _wkt_lengths(wkt)
    tolerance = np.zeros(len(geoms))
    simplified = np.array(geoms, dtype=object, copy=True)
    tol = _FIRST_TOLERANCE
    for _ in range(_MAX_STEPS):
        over = np.flatnonzero(lengths >= max_chars)
        if not len(over):
            break
        simplified[over] = shapely.simplify(geoms[over], tol, preserve_topology=True)
        wkt[over] = shapely.to_wkt(simplified[over], rounding_precision=precision, trim=True)
        lengths[over] = _wkt_lengths(wkt[over])
        tolerance[over] = tol
        tol *= 2
    if (lengths >= max_chars).any():
        worst = int(np.argmax(lengths))
        name = labels.iloc[worst] if labels is not None else f"row {worst}"
        raise OutputError(
            problem(
                f"the WKT of '{name}'",
                f"is still {int(lengths.max()):,} characters after simplifying at {tol / 2:g}°",
                "pass a larger max_chars or a lower precision",
                where="fit_wkt",
            )
        )
    return wkt, lengths, tolerance, simplified


def admin_geometry_wkt(
    admin: gpd.GeoDataFrame, *, max_chars: int = MAX_TEXT_CHARS, precision: int = WKT_PRECISION
) -> pd.DataFrame:
    """The BI geometry table: one WKT per unit, simplified until it is under ``max_chars``.

    Coordinates are written with ``precision`` decimals (6: about 0.1 m). A polygon whose WKT is
    still too long is simplified with ``shapely.simplify(preserve_topology=True)`` at a tolerance
    of 0.00001° (about 1.1 m), doubled until its WKT fits; only those polygons change. Each row
    records its tolerance (0 when not simplified) and the relative change of its area
    (simplified minus original, over original, in the equal-area EPSG:6933). Polygons are
    simplified one by one, so along a simplified border two neighbours can differ by up to the
    tolerance.

    Parameters
    ----------
    admin
        ``dim_admin`` (EPSG:4326, or transformed to it).
    max_chars
        Every WKT value is shorter than this (default 32,000, Power BI's text limit).
    precision
        Decimal places of the coordinates.

    Returns
    -------
    pandas.DataFrame
        ``ucode, admin_level, wkt, wkt_chars, simplify_tolerance_deg, area_change``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> circle = shapely.Point(30, -2).buffer(1, quad_segs=2000)  # 8,000 vertices
    >>> admin = gpd.GeoDataFrame({"ucode": ["X_V1"], "admin_level": [0]}, geometry=[circle],
    ...                          crs="EPSG:4326")
    >>> row = admin_geometry_wkt(admin).iloc[0]
    >>> bool(row.wkt_chars < 32_000), bool(row.simplify_tolerance_deg > 0), bool(abs(row.area_change) < 1e-4)
    (True, True, True)
    """
    where = "admin_geometry_wkt"
    admin = _in_wgs84(admin, where)
    geoms = admin.geometry.to_numpy()
    wkt, lengths, tolerance, simplified = fit_wkt(
        geoms, max_chars=max_chars, precision=precision, labels=admin.get("ucode")
    )
    area_change = np.zeros(len(geoms))
    changed = np.flatnonzero(tolerance > 0)
    if len(changed):
        before = gpd.GeoSeries(geoms[changed], crs="EPSG:4326").to_crs(_EQUAL_AREA).area
        after = gpd.GeoSeries(simplified[changed], crs="EPSG:4326").to_crs(_EQUAL_AREA).area
        area_change[changed] = (after.to_numpy() - before.to_numpy()) / before.to_numpy()
    return pd.DataFrame(
        {
            "ucode": admin["ucode"].to_numpy() if "ucode" in admin else None,
            "admin_level": admin["admin_level"].to_numpy() if "admin_level" in admin else None,
            "wkt": wkt,
            "wkt_chars": lengths,
            "simplify_tolerance_deg": tolerance,
            "area_change": area_change,
        }
    )


def flat_table(gdf: gpd.GeoDataFrame, *, wkt: bool = False) -> pd.DataFrame:
    """A wide GeoDataFrame without its geometry: + centroid ``latitude``/``longitude`` (+ ``wkt``).

    Geometry columns and the GeoParquet ``bbox`` covering are dropped; the centroid of the active
    geometry gives ``latitude``/``longitude`` (kept if the table already has them). With
    ``wkt=True`` (grid cells: short polygons) a ``wkt`` text column is added too, simplified
    only where it would reach 32,000 characters (:func:`fit_wkt`).

    Parameters
    ----------
    gdf
        A wide table (``adm1``, ``h3_r7``, ...).
    wkt
        Add the geometry as WKT text (6 decimals).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame({"cell_id": ["87..."]}, geometry=[shapely.box(0, 0, 2, 2)],
    ...                      crs="EPSG:4326")
    >>> flat_table(g, wkt=True).columns.tolist()
    ['cell_id', 'latitude', 'longitude', 'wkt']
    """
    gdf = _in_wgs84(gdf, "flat_table")
    geoms = gdf.geometry.to_numpy()
    drop = [*_geometry_columns(gdf), *(["bbox"] if "bbox" in gdf.columns else [])]
    out = pd.DataFrame(gdf.drop(columns=drop)).reset_index(drop=True)
    lon, lat = _centroid_lonlat(geoms)
    if "latitude" not in out.columns:
        out["latitude"] = lat
    if "longitude" not in out.columns:
        out["longitude"] = lon
    if wkt:
        out["wkt"] = fit_wkt(geoms)[0]
    return out


def write_bi_tables(
    tables: Mapping[str, pd.DataFrame], folder: str | os.PathLike[str]
) -> dict[str, Path]:
    """Write the flat BI tables of a run into ``folder`` (usually ``<run>/bi``).

    From ``dim_admin``: ``dim_admin.parquet`` (:func:`flat_admin`) and ``admin_geometry.parquet``
    (:func:`admin_geometry_wkt`). Every other GeoDataFrame (``adm0`` ..., ``h3_r7`` ...):
    :func:`flat_table`, with ``wkt`` for grids (names starting ``h3_`` or ``sq_``). Tables without
    geometry (``fact_indicator``, ``dim_indicator``, ``fact_lineage``) are written as they are.
    Every file goes through :func:`write_bi_table` (BI rules applied, then checked).

    Parameters
    ----------
    tables
        Table name -> DataFrame, as a run holds them in memory.
    folder
        Folder to write into; created if missing (its parent must exist).

    Returns
    -------
    dict of str to pathlib.Path
        BI table name -> file, in name order.

    Raises
    ------
    InputError
        A table name is not snake_case, or a table breaks a BI rule no conversion can fix.
    OutputError
        The parent folder does not exist.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd, geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"ucode": ["RWA_V1"], "name": ["Rwanda"], "admin_level": [0],
    ...                           "iso3": ["RWA"]}, geometry=[shapely.box(29, -3, 31, -1)],
    ...                          crs="EPSG:4326")
    >>> fact = pd.DataFrame({"ucode": ["RWA_V1"], "indicator_id": ["population_total"],
    ...                      "value": [13.2e6]})
    >>> out = write_bi_tables({"dim_admin": admin, "fact_indicator": fact},
    ...                       pathlib.Path(tempfile.mkdtemp()) / "bi")
    >>> sorted(out)
    ['admin_geometry', 'dim_admin', 'fact_indicator']
    """
    where = "write_bi_tables"
    bad = [n for n in tables if not isinstance(n, str) or not NAME_RE.match(n)]
    if bad:
        raise InputError(
            problem(f"table names {bad}", "are not snake_case", "rename them", where=where)
        )
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise OutputError(
            problem(f"folder '{folder.parent}'", "does not exist", "create it first", where=where)
        )
    folder.mkdir(exist_ok=True)
    flat: dict[str, tuple[pd.DataFrame, Mapping[str, pa.DataType] | None]] = {}
    for name in sorted(tables):
        df = tables[name]
        if name == "dim_admin" and isinstance(df, gpd.GeoDataFrame):
            flat["dim_admin"] = (flat_admin(df), _DIM_TYPES)
            flat["admin_geometry"] = (admin_geometry_wkt(df), None)
        elif isinstance(df, gpd.GeoDataFrame):
            flat[name] = (flat_table(df, wkt=name.startswith(("h3_", "sq_"))), None)
        else:
            flat[name] = (df, None)
    return {
        name: write_bi_table(df, folder / f"{name}.parquet", types=types)
        for name, (df, types) in sorted(flat.items())
    }
