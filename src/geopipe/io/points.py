"""Point layers: health facilities, schools, survey clusters.

``read_points`` reads CSV / Excel / JSON tables with coordinates and any vector file of points,
recognises a few well-known layouts (WHO public health facility list, healthsites.io, OSM nodes,
Giga school tables), and returns a GeoDataFrame in EPSG:4326 with three canonical columns in front
of the source's own columns:

``point_id`` (string: the source id, or ``<file stem>-<row>`` when there is none; ids that
occur more than once are reported in ``attrs["geopipe"]["duplicate_ids"]``),
``name`` (string or null), ``category`` (facility type / amenity / education level, or null).

Rows whose coordinates are missing, not numbers, outside the valid range or exactly (0, 0) are
never silently dropped: they are left out of the result, counted in a :class:`GeopipeWarning`, and
listed with their reason in ``result.attrs["geopipe"]["rejected"]`` (row number in the file,
reason, original values) so the quality stage can quarantine them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import (
    EmptyInputError,
    FormatError,
    GeometryError,
    InputError,
    MissingColumnError,
    problem,
)
from ._files import PathLike, existing_path, read_vector, to_wgs84, warn

__all__ = ["POINT_PROFILES", "read_points"]

WHERE = "read_points"
_LON_NAMES = (
    "lon",
    "long",
    "lng",
    "longitude",
    "x",
    "xcoord",
    "lon_dd",
    "longitude_dd",
    "gps_longitude",
    "_gps_longitude",
)
_LAT_NAMES = (
    "lat",
    "latitude",
    "y",
    "ycoord",
    "lat_dd",
    "latitude_dd",
    "gps_latitude",
    "_gps_latitude",
)


@dataclass(frozen=True)
class Profile:
    """A known point layout: which columns identify it and which give id, name and category."""

    name: str
    signature: tuple[str, ...]
    id: str | None
    label: str | None
    category: str | None
    dedupe_on_id: bool = False


POINT_PROFILES: tuple[Profile, ...] = (
    Profile(
        "giga",
        ("school_id_giga", "connectivity"),
        "school_id_giga",
        "school_name",
        "education_level",
        True,
    ),
    Profile(
        "giga",
        ("giga_id_school", "connectivity"),
        "giga_id_school",
        "school_name",
        "education_level",
        True,
    ),
    Profile(
        "who_facilities",
        ("Facility name", "Facility type", "Lat", "Long"),
        None,
        "Facility name",
        "Facility type",
    ),
    Profile("healthsites", ("osm_id", "amenity", "healthcare"), "osm_id", "name", "amenity"),
    Profile("osm_nodes", ("osm_node_id", "amenity"), "osm_node_id", "name", "amenity"),
)


def read_points(
    source: PathLike | pd.DataFrame,
    *,
    lon: str | None = None,
    lat: str | None = None,
    crs: Any = None,
    id_col: str | None = None,
    name_col: str | None = None,
    category_col: str | None = None,
    layer: str | int | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    drop_columns: Sequence[str] = (),
    decimal: str = ".",
) -> gpd.GeoDataFrame:
    """Read facilities, schools or other points into EPSG:4326 with canonical id/name/category.

    Parameters
    ----------
    source
        CSV/TSV, Excel (.xlsx/.xls), JSON (records), or any vector file of points (GeoJSON,
        GeoPackage, Shapefile, GeoParquet); or a DataFrame already in memory.
    lon, lat
        Coordinate columns of a table. Detected when omitted (``lon``/``long``/``longitude``/``x``,
        ``lat``/``latitude``/``y``, any case).
    crs
        CRS of the coordinates (default EPSG:4326 for tables; the file's own CRS for vector files).
    id_col, name_col, category_col
        Override the id / name / category columns the detected profile would use.
    layer, sheet
        Layer of a multi-layer vector file; sheet of an Excel workbook.
    encoding
        Text encoding of a CSV (default: UTF-8, with a Latin-1 fallback that is reported).
    drop_columns
        Source columns never to carry into the result (e.g. personal data such as phone numbers).
    decimal
        Decimal separator of the coordinate columns: ``"."`` (default) or ``","`` for exports
        written with comma decimals (``-1,9441``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``point_id, name, category``, the source columns, ``geometry`` (Point, EPSG:4326).
        ``result.attrs["geopipe"]`` holds ``profile``, ``rows_read``, ``rows`` and ``rejected``.

    Raises
    ------
    EmptyInputError
        Every row is rejected (the layer would contribute nothing); the message names the likely
        cause, e.g. a decimal comma when the values parse with one.

    Examples
    --------
    >>> import geopipe as gp
    >>> health = gp.read_points("rwa_who_public_health_facilities.csv")  # doctest: +SKIP
    >>> health[["point_id", "name", "category"]].head(2)  # doctest: +SKIP
    """
    label, frame, geometry_given = _load(source, layer=layer, sheet=sheet, encoding=encoding)
    frame = frame.drop(columns=[c for c in drop_columns if c in frame.columns])
    profile = _detect_profile(frame.columns)

    if geometry_given:
        gdf = to_wgs84(frame, crs=crs, path=label, where=WHERE)
        xs, ys, reasons = _coords_from_geometry(gdf)
        table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    else:
        lon_col = lon or _find_column(frame, _LON_NAMES, "longitude", label)
        lat_col = lat or _find_column(frame, _LAT_NAMES, "latitude", label)
        for arg, col in (("lon", lon_col), ("lat", lat_col)):
            if col not in frame.columns:
                raise MissingColumnError(
                    problem(
                        f"'{label}'",
                        f"has no column {col!r} (given as {arg}=)",
                        f"pick one of {list(map(str, frame.columns))}",
                        where=WHERE,
                    )
                )
        if decimal not in (".", ","):
            raise InputError(problem("decimal", f"was {decimal!r}", "use '.' or ','", where=WHERE))
        xs = _numbers(frame[lon_col], decimal)
        ys = _numbers(frame[lat_col], decimal)
        if crs is not None:
            xs, ys = _reproject(xs, ys, crs)
        reasons = _coordinate_problems(xs, ys, frame[lon_col], frame[lat_col])
        table = pd.DataFrame(frame)

    ids = _ids(table, id_col or (profile.id if profile else None), label)
    names = _text_column(
        table,
        name_col
        or (profile.label if profile else _guess(table, ("name", "facility_name", "school_name"))),
    )
    cats = _text_column(
        table,
        category_col
        or (
            profile.category
            if profile
            else _guess(table, ("type", "category", "amenity", "facility_type"))
        ),
    )

    keep = reasons == ""
    hint = ""
    if not geometry_given and decimal == "." and (reasons == "coordinates are not numbers").any():
        hint = _decimal_comma_hint(frame[lon_col], frame[lat_col], reasons)
    if len(table) and not keep.any():
        raise _all_rejected(label, reasons, hint, xs, ys)
    rejected = _rejected_records(table, reasons, ids)
    result = gpd.GeoDataFrame(
        {"point_id": ids[keep], "name": names[keep], "category": cats[keep]},
        geometry=shapely.points(xs[keep], ys[keep]),
        crs=4326,
    )
    extra = table.loc[keep].reset_index(drop=True)
    extra = extra.drop(
        columns=[c for c in extra.columns if c in ("point_id", "name", "category", "geometry")]
    )
    result = pd.concat([result.drop(columns="geometry"), extra, result[["geometry"]]], axis=1)
    result = gpd.GeoDataFrame(result, geometry="geometry", crs=4326)

    duplicates = _duplicate_ids(result, profile)
    report = {
        "source": label,
        "profile": profile.name if profile else None,
        "rows_read": len(table),
        "rows": len(result),
        "rejected": rejected,
        "duplicate_ids": duplicates,
    }
    if rejected:
        counts = pd.Series([r["reason"] for r in rejected]).value_counts()
        summary = "; ".join(f"{n} {reason}" for reason, n in counts.items())
        extra = f"; {hint}: pass decimal=','" if hint else ""
        warn(
            f"{WHERE}: '{label}': {len(rejected)} of {len(table)} rows left out ({summary}); they are listed in .attrs['geopipe']['rejected']{extra}"
        )
    if duplicates["rows"]:
        warn(
            f"{WHERE}: '{label}': {duplicates['ids']} ids occur more than once ({duplicates['rows']} rows), e.g. {duplicates['examples'][:3]}; kept all rows"
        )
    result.attrs["geopipe"] = report
    return result


# --------------------------------------------------------------------------- loading
def _load(
    source: Any, *, layer: Any, sheet: Any, encoding: str | None
) -> tuple[str, pd.DataFrame, bool]:
    if isinstance(source, gpd.GeoDataFrame):
        return "<GeoDataFrame>", source.copy(), True
    if isinstance(source, pd.DataFrame):
        return "<DataFrame>", source.copy(), False
    path = existing_path(source, what="points", where=WHERE)
    suffix = path.suffix.lower()
    label = str(path)
    if suffix in {".csv", ".tsv", ".txt"}:
        return label, _read_csv(path, encoding, sep="\t" if suffix == ".tsv" else None), False
    if suffix in {".xlsx", ".xlsm", ".xls"}:
        try:
            return (
                label,
                pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=object),
                False,
            )
        except Exception as exc:
            raise FormatError(
                problem(
                    f"points file '{path}'",
                    f"could not be read as Excel ({exc})",
                    "check the file and the sheet name",
                    where=WHERE,
                )
            ) from exc
    if suffix == ".json":
        head = path.read_text(encoding="utf-8-sig", errors="replace")[:4096]
        if '"FeatureCollection"' not in head and '"Feature"' not in head:
            try:
                return label, pd.read_json(path, orient="records", dtype=False), False
            except ValueError as exc:
                raise FormatError(
                    problem(
                        f"points file '{path}'",
                        f"is not a JSON list of records nor GeoJSON ({exc})",
                        "export records or GeoJSON",
                        where=WHERE,
                    )
                ) from exc
    frame = read_vector(path, layer=layer, what="points", where=WHERE)
    return label, frame, True


def _sniff_delimiter(path: Path) -> str:
    """The delimiter of a CSV from its first lines (comma, semicolon, tab or pipe; comma if unsure)."""
    import csv

    head = path.read_bytes()[:65536].decode("latin-1")
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_csv(path: Path, encoding: str | None, sep: str | None) -> pd.DataFrame:
    tried = [encoding] if encoding else ["utf-8-sig", "latin-1"]
    last: Exception | None = None
    sep = sep or _sniff_delimiter(path)  # then the fast C parser, also for millions of rows
    for enc in tried:
        try:
            frame = pd.read_csv(
                path,
                sep=sep,
                engine="c",
                encoding=enc,
                dtype=str,
                keep_default_na=False,
                na_values=["", "NA", "NaN", "nan", "NULL", "null"],
            )
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise FormatError(
                problem(
                    f"points file '{path}'",
                    f"could not be parsed as CSV ({exc})",
                    "check the delimiter and quoting",
                    where=WHERE,
                )
            ) from exc
        if enc == "latin-1" and encoding is None:
            warn(f"{WHERE}: '{path}' is not UTF-8; read it as Latin-1 (pass encoding= to choose)")
        if frame.empty:
            raise FormatError(
                problem(
                    f"points file '{path}'",
                    "has a header but no rows",
                    "check the export",
                    where=WHERE,
                )
            )
        # a UTF-8 BOM in front of non-UTF-8 text survives the Latin-1 fallback as "ï»¿"
        frame.columns = [
            str(c).removeprefix("\ufeff").removeprefix("ï»¿").strip() for c in frame.columns
        ]
        return frame
    raise FormatError(
        problem(
            f"points file '{path}'",
            f"is not in encoding {tried} ({last})",
            "pass encoding='...'",
            where=WHERE,
        )
    )


def _detect_profile(columns: pd.Index) -> Profile | None:
    cols = set(map(str, columns))
    return next((p for p in POINT_PROFILES if set(p.signature) <= cols), None)


def _find_column(frame: pd.DataFrame, names: Sequence[str], what: str, label: str) -> str:
    lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in names:
        if name in lower:
            return lower[name]
    raise MissingColumnError(
        problem(
            f"'{label}'",
            f"has no {what} column (looked for {', '.join(names[:6])}, ...; columns: {list(map(str, frame.columns))})",
            f"pass {'lon' if what == 'longitude' else 'lat'}='<column>'",
            where=WHERE,
        )
    )


def _guess(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    lower = {str(c).lower(): c for c in frame.columns}
    return next((lower[n] for n in names if n in lower), None)


# --------------------------------------------------------------------------- coordinates
def _reproject(xs: np.ndarray, ys: np.ndarray, crs: Any) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import CRS, Transformer

    try:
        src = CRS.from_user_input(crs)
    except Exception as exc:
        raise InputError(
            problem(
                "crs",
                f"was {crs!r}, which pyproj does not recognise",
                "use e.g. 'EPSG:32735'",
                where=WHERE,
            )
        ) from exc
    if src.to_epsg() == 4326:
        return xs, ys
    transformer = Transformer.from_crs(src, 4326, always_xy=True)
    ok = np.isfinite(xs) & np.isfinite(ys)
    out_x, out_y = xs.copy(), ys.copy()
    out_x[ok], out_y[ok] = transformer.transform(xs[ok], ys[ok])
    return out_x, out_y


def _numbers(values: pd.Series, decimal: str) -> np.ndarray:
    if decimal == ",":
        values = values.astype("string").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _decimal_comma_hint(raw_x: pd.Series, raw_y: pd.Series, reasons: np.ndarray) -> str:
    """What to say when rows rejected as "not numbers" parse with a decimal comma ("" if none)."""
    bad = reasons == "coordinates are not numbers"
    fx = np.isfinite(_numbers(raw_x[bad], ","))
    fy = np.isfinite(_numbers(raw_y[bad], ","))
    n = int((fx & fy).sum())
    if not n:
        return ""
    example = raw_y[bad].iloc[int(np.flatnonzero(fx & fy)[0])]
    return f"{n} rows parse as numbers with a decimal comma (e.g. {example!r})"


def _all_rejected(
    label: str, reasons: np.ndarray, hint: str, xs: np.ndarray, ys: np.ndarray
) -> EmptyInputError:
    counts = pd.Series(reasons).value_counts()
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(xs) & np.isfinite(ys)
        swap_fits = ok.any() and bool(
            ((np.abs(xs[ok]) <= 90) & (np.abs(ys[ok]) <= 180) & (np.abs(ys[ok]) > 90)).all()
        )
    summary = "; ".join(f"{n} {reason}" for reason, n in counts.items())
    if hint:
        cause = f"the file uses decimal commas: {hint}"
        fix = "pass decimal=',' or re-export the file with '.' decimals"
    elif counts.index[0] == "coordinates outside lon -180..180 / lat -90..90" and swap_fits:
        cause = (
            "the latitude and longitude columns are swapped (every latitude is beyond ±90 but "
            "within ±180, and every longitude within ±90)"
        )
        fix = "swap them: read_points(..., lon='<latitude column>', lat='<longitude column>')"
    elif counts.index[0] == "coordinates outside lon -180..180 / lat -90..90":
        cause = "the coordinates are projected metres, not degrees"
        fix = "pass crs='EPSG:...' (the CRS of the coordinates)"
    elif counts.index[0] == "missing coordinates":
        cause = "the coordinate columns are empty (the wrong columns were picked?)"
        fix = "pass lon= and lat= naming the coordinate columns"
    else:
        cause = f"{counts.index[0]}"
        fix = "check the coordinate columns and the export"
    return EmptyInputError(
        problem(
            f"points file '{label}'",
            f"contributes nothing: all {len(reasons):,} rows were rejected ({summary}); likely cause: {cause}",
            fix,
            where=WHERE,
        )
    )


def _coordinate_problems(
    xs: np.ndarray, ys: np.ndarray, raw_x: pd.Series, raw_y: pd.Series
) -> np.ndarray:
    reasons = np.full(len(xs), "", dtype=object)
    blank = raw_x.isna().to_numpy() | raw_y.isna().to_numpy()
    not_number = ~blank & (~np.isfinite(xs) | ~np.isfinite(ys))
    with np.errstate(invalid="ignore"):
        out_of_range = np.isfinite(xs) & np.isfinite(ys) & ((np.abs(xs) > 180) | (np.abs(ys) > 90))
        zero = (xs == 0) & (ys == 0)
    reasons[blank] = "missing coordinates"
    reasons[not_number] = "coordinates are not numbers"
    reasons[out_of_range] = "coordinates outside lon -180..180 / lat -90..90"
    reasons[zero] = "coordinates are (0, 0)"
    return reasons


def _coords_from_geometry(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    geoms = shapely.force_2d(gdf.geometry.to_numpy())
    types = shapely.get_type_id(geoms)
    reasons = np.full(len(geoms), "", dtype=object)
    missing = pd.isna(geoms) | shapely.is_empty(geoms)
    reasons[missing] = "missing coordinates"
    multi = types == 4  # MultiPoint: a single-part multipoint is a point
    single_multi = multi & (shapely.get_num_geometries(geoms) == 1)
    geoms = geoms.copy()
    geoms[single_multi] = shapely.get_geometry(geoms[single_multi], 0)
    types = shapely.get_type_id(geoms)
    if ((types != 0) & ~missing).all() and len(geoms):
        raise GeometryError(
            problem(
                "points layer",
                f"has {shapely.get_type_id(geoms[0])} geometries, not points",
                "pass a point layer (or its centroids)",
                where=WHERE,
            )
        )
    reasons[(types != 0) & ~missing] = "geometry is not a point"
    xs = np.full(len(geoms), np.nan)
    ys = np.full(len(geoms), np.nan)
    pts = types == 0
    xs[pts] = shapely.get_x(geoms[pts])
    ys[pts] = shapely.get_y(geoms[pts])
    extra = _coordinate_problems(xs, ys, pd.Series(xs), pd.Series(ys))
    reasons = np.where(reasons == "", extra, reasons)
    return xs, ys, reasons


# --------------------------------------------------------------------------- ids, names, reports
def _ids(table: pd.DataFrame, id_col: str | None, label: str) -> np.ndarray:
    if id_col is not None:
        if id_col not in table.columns:
            raise MissingColumnError(
                problem(
                    f"'{label}'",
                    f"has no id column {id_col!r}",
                    f"pick one of {list(map(str, table.columns))}",
                    where=WHERE,
                )
            )
        # "491234029.0" (an integer id read as float somewhere upstream) -> "491234029"
        ids = _clean_text(table[id_col], r"^(-?\d+)\.0+$")
        if ids.notna().all():
            return ids.to_numpy(dtype=object)
        fallback = _row_ids(table, label)
        return np.where(ids.isna(), fallback, ids.to_numpy(dtype=object))
    return _row_ids(table, label)


def _clean_text(values: pd.Series, integer_float: str | None = None) -> pd.Series:
    """Values as stripped strings (vectorised, Arrow strings); missing and blank values become None.

    With ``integer_float``, a regex like ``^(-?\\d+)\\.0+$`` whose group replaces the match.
    """
    text = values.astype("string[pyarrow]").str.strip()
    if integer_float is not None:
        text = text.str.replace(integer_float, r"\1", regex=True)
    return text.where(text.notna() & (text != ""), None).astype(object)


def _row_ids(table: pd.DataFrame, label: str) -> np.ndarray:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(label).stem.strip("<>")).strip("-") or "point"
    width = max(4, len(str(len(table))))
    numbers = pd.Series(np.arange(1, len(table) + 1)).astype(str).str.zfill(width)
    return (stem + "-" + numbers).to_numpy(dtype=object)


def _text_column(table: pd.DataFrame, col: str | None) -> np.ndarray:
    if col is None or col not in table.columns:
        return np.full(len(table), None, dtype=object)
    return _clean_text(table[col]).to_numpy(dtype=object)


def _rejected_records(
    table: pd.DataFrame, reasons: np.ndarray, ids: np.ndarray
) -> list[dict[str, Any]]:
    bad = np.flatnonzero(reasons != "")
    if not len(bad):
        return []
    rows = table.iloc[bad].astype(object).where(table.iloc[bad].notna(), None)
    records = rows.to_dict(orient="records")
    return [
        {
            "row": int(i) + 1,
            "point_id": ids[i],
            "reason": str(reasons[i]),
            **{str(k): _plain(v) for k, v in rec.items()},
        }
        for i, rec in zip(bad, records, strict=True)
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _duplicate_ids(result: pd.DataFrame, profile: Profile | None) -> dict[str, Any]:
    dup = result["point_id"].duplicated(keep=False)
    if not dup.any():
        return {"ids": 0, "rows": 0, "examples": []}
    ids = result.loc[dup, "point_id"]
    return {
        "ids": int(ids.nunique()),
        "rows": int(dup.sum()),
        "examples": sorted(ids.unique().tolist())[:10],
    }
