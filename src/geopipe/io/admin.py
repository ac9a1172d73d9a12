"""Admin boundaries in the GeoRepo-style ``dim_admin`` schema.

``read_admin`` reads geoBoundaries, GeoRepo exports (API JSON and GeoJSON), GADM and OCHA COD-AB
files, or anything else through an explicit column mapping, and returns one table with every level:

========================  =====================================================================
column                    meaning
========================  =====================================================================
ucode                     ``ISO3_V1`` / ``ISO3_0001_V1`` / ``ISO3_0001_0007_V1`` (GeoRepo form)
concept_ucode             ``#ISO3_<n>``; kept from GeoRepo sources, generated otherwise
name                      default name
admin_level               0 = country, 1, 2, ...
parent_ucode              ucode one level up; null at the top level read
iso3                      ISO 3166-1 alpha-3
pcode                     P-code where the source has one (COD-AB ``ADMn_PCODE``, GeoRepo ``ext_codes``)
start_date, end_date      validity of the version; null end = current
source                    file and detected schema
source_id                 the unit's id in the source (shapeID, GID_n, P-code, ucode)
parent_overlap            share of the unit's area inside its parent (1.0 when the source names
                          the parent; the largest-overlap share when geopipe inferred it)
geometry                  valid (Multi)Polygon, EPSG:4326
========================  =====================================================================
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import GeometryError, InputError, MissingColumnError, problem
from ._files import (
    PathLike,
    existing_path,
    list_layers,
    read_json,
    read_vector,
    repair_polygons,
    to_wgs84,
    warn,
)

__all__ = ["DIM_ADMIN_COLUMNS", "read_admin"]

WHERE = "read_admin"
EQUAL_AREA = "EPSG:6933"  # World Cylindrical Equal Area: areas for overlap shares

DIM_ADMIN_COLUMNS = [
    "ucode",
    "concept_ucode",
    "name",
    "admin_level",
    "parent_ucode",
    "iso3",
    "pcode",
    "start_date",
    "end_date",
    "source",
    "source_id",
    "parent_overlap",
    "geometry",
]

# Intermediate columns every schema adapter produces (``_parent_id`` is the parent's source_id).
_NORMAL = [
    "level",
    "name",
    "source_id",
    "_parent_id",
    "ucode",
    "concept_ucode",
    "pcode",
    "iso3",
    "start_date",
    "end_date",
]

_UCODE_RE = re.compile(r"^(?P<base>[A-Z]{3}(?:_\d{4})*)_V(?P<version>\d+)$")
_MAPPING_KEYS = {
    "name",
    "id",
    "parent_id",
    "level",
    "ucode",
    "concept_ucode",
    "pcode",
    "iso3",
    "start_date",
    "end_date",
}


@dataclass(frozen=True)
class _Raw:
    frame: gpd.GeoDataFrame
    label: str  # file (and layer) for messages and the `source` column
    level: int | None  # level the caller named for this file


def read_admin(
    source: PathLike | Mapping[int, PathLike] | gpd.GeoDataFrame,
    level: int | None = None,
    *,
    iso3: str | None = None,
    mapping: Mapping[str, str] | None = None,
    valid_on: str | dt.date | None = None,
    layer: str | int | None = None,
    crs: Any = None,
    version: int = 1,
) -> gpd.GeoDataFrame:
    """Read admin boundaries into the canonical ``dim_admin`` table (all levels in one table).

    Parameters
    ----------
    source
        One file (GeoJSON, TopoJSON, GeoPackage, Shapefile, GeoParquet, GeoRepo API JSON), a
        mapping ``{level: path}`` with one file per level, or a GeoDataFrame already in memory.
        A GeoPackage with several layers named like ``adm0``/``ADM_ADM_1`` is read layer by layer.
    level
        The admin level of a single-level ``source``. When omitted it is inferred from the data:
        geoBoundaries ``shapeType``, GeoRepo ``admin_level``/``level``, GADM ``GID_n``, COD-AB
        ``ADMn_PCODE``.
    iso3
        ISO 3166-1 alpha-3 code; overrides what the source says (needed for mapped sources
        without a country column).
    mapping
        For sources geopipe does not recognise: ``{"name": col, "id": col, "parent_id": col,
        "level": col, "pcode": col, "iso3": col, "ucode": col, "start_date": col, ...}``.
        ``name`` is required; ``parent_id`` refers to the parent's ``id``.
    valid_on
        Keep only the versions valid on this date (``start_date <= valid_on < end_date``, a null
        end meaning "still valid").
    layer
        Layer of a multi-layer file to read.
    crs
        CRS of the coordinates when the file has none (a Shapefile without ``.prj``).
    version
        Version number used in generated ucodes (``_V1``).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`DIM_ADMIN_COLUMNS`, sorted by level then ucode, EPSG:4326. A report of what
        was repaired, dropped or inferred is in ``result.attrs["geopipe"]``.

    Examples
    --------
    >>> import geopipe as gp
    >>> admin = gp.read_admin({0: "rwa_adm0.geojson", 1: "rwa_adm1.geojson", 2: "rwa_adm2.geojson"})
    ... # doctest: +SKIP
    >>> admin.groupby("admin_level").size().tolist()  # doctest: +SKIP
    [1, 5, 30]
    """
    if mapping is not None:
        unknown = set(mapping) - _MAPPING_KEYS
        if unknown or "name" not in mapping:
            raise InputError(
                problem(
                    "mapping",
                    f"has keys {sorted(mapping)}"
                    + (f" (unknown: {sorted(unknown)})" if unknown else " but no 'name'"),
                    f"use keys from {sorted(_MAPPING_KEYS)}; 'name' is required",
                    where=WHERE,
                )
            )
    if version < 1:
        raise InputError(
            problem("version", f"was {version}", "use a positive integer", where=WHERE)
        )

    raws = _read_sources(source, level, layer)
    parts: list[pd.DataFrame] = []
    for raw in raws:
        frame = to_wgs84(raw.frame, crs=crs, path=raw.label, where=WHERE)
        norm, schema = _normalise(frame, raw, mapping)
        label = raw.label if raw.label == "<GeoDataFrame>" else Path(raw.label).name
        norm["source"] = f"{label} ({schema})"
        parts.append(norm)
    table = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)

    if iso3 is not None:
        if not re.fullmatch(r"[A-Za-z]{3}", iso3):
            raise InputError(
                problem(
                    "iso3",
                    f"was {iso3!r}",
                    "use a 3-letter ISO 3166-1 code like 'RWA'",
                    where=WHERE,
                )
            )
        table["iso3"] = iso3.upper()
    _require_iso3(table)

    report: dict[str, Any] = {"sources": [r.label for r in raws], "rows_read": len(table)}
    if valid_on is not None:
        table = _select_valid(table, valid_on)
        report["valid_on"] = str(pd.Timestamp(valid_on).date())
    table, report["geometries_repaired"], report["geometries_rejected"] = _repair(table)
    table = _check_levels(table)
    table, report["parents"] = _link_parents(table)
    table = _assign_ucodes(table, version)
    table = _finish(table)
    report["rows"] = len(table)
    report["units_per_level"] = {
        int(k): int(v) for k, v in table.groupby("admin_level").size().items()
    }
    table.attrs["geopipe"] = report
    return table


# --------------------------------------------------------------------------- reading sources
def _read_sources(source: Any, level: int | None, layer: str | int | None) -> list[_Raw]:
    if isinstance(source, gpd.GeoDataFrame):
        if len(source) == 0:
            raise InputError(
                problem(
                    "source",
                    "is an empty GeoDataFrame",
                    "pass boundaries with at least one row",
                    where=WHERE,
                )
            )
        return [_Raw(source.copy(), "<GeoDataFrame>", level)]
    if isinstance(source, Mapping):
        if level is not None:
            raise InputError(
                problem(
                    "level",
                    "was given together with a {level: path} mapping",
                    "drop level=",
                    where=WHERE,
                )
            )
        bad = [k for k in source if isinstance(k, bool) or not str(k).isdigit()]
        if bad:
            raise InputError(
                problem(
                    "source",
                    f"has keys {bad!r}",
                    "use admin levels 0, 1, 2, ... as keys",
                    where=WHERE,
                )
            )
        out: list[_Raw] = []
        for key, path in sorted(source.items(), key=lambda kv: int(kv[0])):
            out.extend(_read_one(path, int(key), layer))
        return out
    return _read_one(source, level, layer)


def _read_one(path_like: PathLike, level: int | None, layer: str | int | None) -> list[_Raw]:
    path = existing_path(path_like, what="admin boundary", where=WHERE)
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = read_json(path, what="admin boundary", where=WHERE)
        if isinstance(data, list) or (isinstance(data, dict) and "results" in data):
            return [_Raw(_georepo_api_frame(data, path), str(path), level)]
    if layer is None and suffix in {".gpkg", ".gdb"}:
        layers = list_layers(path)
        levelled = [(lyr, _level_from_layer_name(lyr)) for lyr in layers]
        levelled = [(lyr, lvl) for lyr, lvl in levelled if lvl is not None]
        if len(layers) > 1 and levelled:
            if level is not None:
                levelled = [(lyr, lvl) for lyr, lvl in levelled if lvl == level]
            return [
                _Raw(
                    read_vector(path, layer=lyr, what="admin boundary", where=WHERE),
                    f"{path}:{lyr}",
                    lvl,
                )
                for lyr, lvl in levelled
            ]
    frame = read_vector(path, layer=layer, what="admin boundary", where=WHERE)
    label = f"{path}:{layer}" if layer is not None else str(path)
    return [_Raw(frame, label, level)]


def _level_from_layer_name(name: str) -> int | None:
    match = re.search(r"(?:adm|admin|level|lvl)[_ ]?(?:adm[_ ]?)?(\d)\b", name, flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _georepo_api_frame(data: Any, path: Path) -> gpd.GeoDataFrame:
    """GeoRepo API JSON (``{"results": [...]}`` pages, or a list of entities) -> GeoDataFrame."""
    records = data["results"] if isinstance(data, dict) else data
    if not records:
        raise GeometryError(
            problem(
                f"GeoRepo file '{path}'",
                "has no entities in 'results'",
                "check the view and level",
                where=WHERE,
            )
        )
    geoms = [r.get("geometry") or r.get("geom") for r in records]
    if any(g is None for g in geoms):
        raise GeometryError(
            problem(
                f"GeoRepo file '{path}'",
                "has entities without geometry",
                "request the API with geom=full_geom (or use the GeoJSON export)",
                where=WHERE,
            )
        )
    props = pd.DataFrame(
        [{k: v for k, v in r.items() if k not in ("geometry", "geom")} for r in records]
    )
    geometry = shapely.from_geojson([_as_json(g) for g in geoms])
    return gpd.GeoDataFrame(props, geometry=geometry, crs=4326)


def _as_json(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


# --------------------------------------------------------------------------- schema adapters
def _normalise(
    frame: gpd.GeoDataFrame, raw: _Raw, mapping: Mapping[str, str] | None
) -> tuple[pd.DataFrame, str]:
    cols = set(frame.columns)
    if mapping is not None:
        out, schema = _from_mapping(frame, raw, mapping), "column mapping"
    elif "ucode" in cols and ({"admin_level", "level"} & cols):
        out, schema = _from_georepo(frame, raw), "GeoRepo"
    elif {"shapeName", "shapeID"} <= cols:
        out, schema = _from_geoboundaries(frame, raw), "geoBoundaries"
    elif any(re.fullmatch(r"GID_\d", c) for c in cols):
        out, schema = _from_gadm(frame, raw), "GADM"
    elif any(re.fullmatch(r"ADM\d_PCODE", c, flags=re.IGNORECASE) for c in cols):
        out, schema = _from_codab(frame, raw), "COD-AB"
    else:
        shown = ", ".join(sorted(map(str, cols - {frame.geometry.name})))
        raise MissingColumnError(
            problem(
                f"'{raw.label}'",
                f"is not a known boundary schema (columns: {shown})",
                "pass mapping={'name': ..., 'id': ..., 'parent_id': ..., 'level': ...} "
                "(geoBoundaries, GeoRepo, GADM and COD-AB are recognised automatically)",
                where=WHERE,
            )
        )
    out["geometry"] = frame.geometry.to_numpy()
    for col in _NORMAL:
        if col not in out:
            out[col] = None
    table = pd.DataFrame(out)[[*_NORMAL, "geometry"]]
    if raw.level is not None:  # a file with several levels: the caller's level selects its rows
        found = sorted(table["level"].unique().tolist())
        table = table[table["level"] == raw.level]
        if table.empty:
            raise InputError(
                problem(
                    f"'{raw.label}'",
                    f"has no units of level {raw.level} (levels in the file: {found})",
                    "fix the level given for this file",
                    where=WHERE,
                )
            )
    return table, schema


def _fixed_level(
    frame: pd.DataFrame, raw: _Raw, inferred: pd.Series | int | None, what: str
) -> pd.Series:
    """Levels from the data when it has them (the caller's level then selects rows, see
    :func:`_normalise`); otherwise the caller's level; otherwise an error."""
    if inferred is None:
        if raw.level is None:
            raise InputError(
                problem(
                    f"'{raw.label}'",
                    f"does not say its admin level ({what})",
                    "pass level=N or {N: path}",
                    where=WHERE,
                )
            )
        return pd.Series(raw.level, index=frame.index)
    if isinstance(inferred, int):
        return pd.Series(inferred, index=frame.index)
    if inferred.isna().any():
        if raw.level is not None:
            return inferred.fillna(raw.level).astype(int)
        bad = int(inferred.isna().sum())
        raise InputError(
            problem(
                f"'{raw.label}'",
                f"has {bad} rows whose level cannot be read from {what}",
                "pass level=N",
                where=WHERE,
            )
        )
    return inferred.astype(int)


def _from_geoboundaries(frame: pd.DataFrame, raw: _Raw) -> dict[str, Any]:
    inferred = None
    if "shapeType" in frame:
        inferred = pd.to_numeric(
            frame["shapeType"].astype(str).str.extract(r"ADM(\d)", expand=False), errors="coerce"
        )
    return {
        "level": _fixed_level(frame, raw, inferred, "geoBoundaries shapeType"),
        "name": frame["shapeName"],
        "source_id": frame["shapeID"].astype(str),
        "iso3": frame["shapeGroup"] if "shapeGroup" in frame else None,
    }


def _from_georepo(frame: pd.DataFrame, raw: _Raw) -> dict[str, Any]:
    level_col = "admin_level" if "admin_level" in frame else "level"
    inferred = pd.to_numeric(frame[level_col], errors="coerce")
    level = _fixed_level(frame, raw, inferred, f"GeoRepo '{level_col}'")
    parent = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if "parents" in frame:  # API JSON: parents = [{"ucode": ..., "admin_level": n}, ...]
        parent = pd.Series(
            [_parent_from_list(p, lv) for p, lv in zip(frame["parents"], level, strict=True)],
            index=frame.index,
        )
    for lv in range(1, int(level.max()) + 1 if len(level) else 1):
        col = f"adm{lv - 1}_ucode"
        if col in frame:
            rows = (level == lv) & parent.isna()
            parent[rows] = frame.loc[rows, col]
    if "parent_ucode" in frame:
        parent = parent.fillna(frame["parent_ucode"])
    pcode = None
    if "ext_codes" in frame:
        pcode = frame["ext_codes"].map(_pcode_from_ext)
    for col in ("pcode", "PCode"):
        if col in frame:
            pcode = frame[col] if pcode is None else pd.Series(pcode).fillna(frame[col])
    ucode = frame["ucode"].astype(str)
    return {
        "level": level,
        "name": frame["name"] if "name" in frame else ucode,
        "source_id": ucode,
        "_parent_id": parent,
        "ucode": ucode,
        "concept_ucode": frame["concept_ucode"] if "concept_ucode" in frame else None,
        "pcode": pcode,
        "iso3": ucode.str[:3],
        "start_date": frame["start_date"] if "start_date" in frame else None,
        "end_date": frame["end_date"] if "end_date" in frame else None,
    }


def _parent_from_list(parents: Any, level: int) -> str | None:
    if parents is None or (isinstance(parents, float) and np.isnan(parents)):
        return None
    if isinstance(parents, str):
        import json

        try:
            parents = json.loads(parents)
        except json.JSONDecodeError:
            return None
    for p in parents or []:
        if isinstance(p, dict) and int(p.get("admin_level", -1)) == level - 1:
            return p.get("ucode")
    return None


def _pcode_from_ext(ext: Any) -> str | None:
    if isinstance(ext, str):
        import json

        try:
            ext = json.loads(ext)
        except json.JSONDecodeError:
            return None
    if isinstance(ext, dict):
        return ext.get("PCode") or ext.get("pcode")
    return None


def _from_gadm(frame: pd.DataFrame, raw: _Raw) -> dict[str, Any]:
    levels = sorted(int(c[4:]) for c in frame.columns if re.fullmatch(r"GID_\d", c))
    lv = raw.level if raw.level is not None else levels[-1]
    if f"GID_{lv}" not in frame:
        raise MissingColumnError(
            problem(
                f"'{raw.label}'",
                f"has no GID_{lv} column for level {lv}",
                f"pass the GADM layer of level {lv}",
                where=WHERE,
            )
        )
    name_col = f"NAME_{lv}" if lv > 0 else ("COUNTRY" if "COUNTRY" in frame else "NAME_0")
    return {
        "level": _fixed_level(frame, raw, lv, "GADM GID_n"),
        "name": frame[name_col] if name_col in frame else frame[f"GID_{lv}"],
        "source_id": frame[f"GID_{lv}"].astype(str),
        "_parent_id": frame[f"GID_{lv - 1}"].astype(str)
        if lv > 0 and f"GID_{lv - 1}" in frame
        else None,
        "iso3": frame["GID_0"] if "GID_0" in frame else None,
    }


def _from_codab(frame: pd.DataFrame, raw: _Raw) -> dict[str, Any]:
    upper = {c.upper(): c for c in frame.columns}
    levels = sorted(int(c[3]) for c in upper if re.fullmatch(r"ADM\d_PCODE", c))
    lv = raw.level if raw.level is not None else levels[-1]
    pcode_col = upper.get(f"ADM{lv}_PCODE")
    if pcode_col is None:
        raise MissingColumnError(
            problem(
                f"'{raw.label}'",
                f"has no ADM{lv}_PCODE column",
                f"pass the COD-AB layer of level {lv}",
                where=WHERE,
            )
        )
    name_col = next(
        (
            upper[k]
            for k in (
                f"ADM{lv}_EN",
                f"ADM{lv}_FR",
                f"ADM{lv}_ES",
                f"ADM{lv}_PT",
                f"ADM{lv}_REF",
                f"ADM{lv}_NAME",
            )
            if k in upper
        ),
        pcode_col,
    )
    parent_col = upper.get(f"ADM{lv - 1}_PCODE") if lv > 0 else None
    iso = None
    if "ISO3" in upper:
        iso = frame[upper["ISO3"]]
    elif "ADM0_PCODE" in upper:
        iso = frame[upper["ADM0_PCODE"]].map(_iso3_from_code)
    return {
        "level": _fixed_level(frame, raw, lv, "COD-AB ADMn_PCODE"),
        "name": frame[name_col],
        "source_id": frame[pcode_col].astype(str),
        "_parent_id": frame[parent_col].astype(str) if parent_col else None,
        "pcode": frame[pcode_col].astype(str),
        "iso3": iso,
        "start_date": frame[upper["VALIDON"]] if "VALIDON" in upper else None,
        "end_date": frame[upper["VALIDTO"]] if "VALIDTO" in upper else None,
    }


def _iso3_from_code(code: Any) -> str | None:
    """ISO3 from a COD-AB ADM0_PCODE, which is usually the ISO 3166-1 alpha-2 code."""
    if not isinstance(code, str):
        return None
    code = code.strip().upper()
    if len(code) == 3 and code.isalpha():
        return code
    import pycountry

    country = pycountry.countries.get(alpha_2=code[:2])
    return country.alpha_3 if country else None


def _from_mapping(frame: pd.DataFrame, raw: _Raw, mapping: Mapping[str, str]) -> dict[str, Any]:
    missing = [f"{key}={col!r}" for key, col in mapping.items() if col not in frame.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"'{raw.label}'",
                f"has no column for {', '.join(missing)} (columns: {sorted(map(str, frame.columns))})",
                "fix the mapping",
                where=WHERE,
            )
        )
    out: dict[str, Any] = {}
    for key in ("name", "ucode", "concept_ucode", "pcode", "iso3", "start_date", "end_date"):
        if key in mapping:
            out[key] = frame[mapping[key]]
    out["source_id"] = frame[mapping["id"]].astype(str) if "id" in mapping else None
    out["_parent_id"] = frame[mapping["parent_id"]].astype(str) if "parent_id" in mapping else None
    inferred = (
        pd.to_numeric(frame[mapping["level"]], errors="coerce") if "level" in mapping else None
    )
    out["level"] = _fixed_level(frame, raw, inferred, "the mapping's 'level' column")
    return out


# --------------------------------------------------------------------------- cleaning
def _require_iso3(table: pd.DataFrame) -> None:
    iso = table["iso3"]
    bad = iso.isna() | ~iso.astype(str).str.fullmatch(r"[A-Za-z]{3}")
    if bad.any():
        sample = table.loc[bad, "source"].iloc[0]
        raise InputError(
            problem(
                f"'{sample}'",
                f"has {int(bad.sum())} units without a 3-letter country code",
                "pass iso3='XXX'",
                where=WHERE,
            )
        )
    table["iso3"] = iso.astype(str).str.upper()


def _to_date(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return pd.Series(
        [d.date() if not pd.isna(d) else None for d in parsed], index=values.index, dtype=object
    )


def _select_valid(table: gpd.GeoDataFrame, valid_on: str | dt.date) -> gpd.GeoDataFrame:
    try:
        day = pd.Timestamp(valid_on).date()
    except (ValueError, TypeError) as exc:
        raise InputError(
            problem(
                "valid_on", f"was {valid_on!r}", "use an ISO date like '2024-01-31'", where=WHERE
            )
        ) from exc
    start = _to_date(table["start_date"])
    end = _to_date(table["end_date"])
    ok = start.map(lambda s: s is None or s <= day) & end.map(lambda e: e is None or day < e)
    if not ok.any():
        raise InputError(
            problem(
                "valid_on",
                f"({day}) matches no version of any unit",
                "pick a date inside the start/end dates of the source",
                where=WHERE,
            )
        )
    return table.loc[ok.to_numpy()].reset_index(drop=True)


def _repair(table: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int, int]:
    geoms, n_repaired = repair_polygons(table.geometry.to_numpy())
    types = shapely.get_type_id(geoms)
    bad = pd.isna(geoms) | shapely.is_empty(geoms) | ~np.isin(types, (3, 6))
    table = table.set_geometry(geoms, crs=4326)
    if n_repaired:
        warn(
            f"{WHERE}: repaired {n_repaired} invalid boundary geometries with make_valid (kept their polygonal part)"
        )
    n_bad = int(bad.sum())
    if n_bad:
        names = ", ".join(
            f"{n!r} ({s})"
            for n, s in table.loc[bad, ["name", "source"]].head(5).itertuples(index=False)
        )
        warn(f"{WHERE}: rejected {n_bad} units with empty or non-polygon geometry: {names}")
        table = table.loc[~bad].reset_index(drop=True)
    if len(table) == 0:
        raise GeometryError(
            problem(
                "source", "has no unit with a usable polygon", "check the geometries", where=WHERE
            )
        )
    return table, n_repaired, n_bad


def _check_levels(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    levels = table["level"].astype(int)
    if (levels < 0).any() or (levels > 9).any():
        raise InputError(
            problem(
                "admin level",
                f"values {sorted(levels.unique())} are out of range",
                "use levels 0 to 9",
                where=WHERE,
            )
        )
    table["level"] = levels
    if table["name"].isna().any():
        table["name"] = table["name"].fillna(table["source_id"])
    table["name"] = table["name"].astype(str).str.strip()
    if table["source_id"].isna().any():
        # no id in the source: the name is the id within (iso3, level)
        table["source_id"] = table["source_id"].fillna(
            table["iso3"] + ":" + table["level"].astype(str) + ":" + table["name"]
        )
    return table


# --------------------------------------------------------------------------- parents
def _link_parents(table: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Resolve ``_parent_id`` to row positions; infer the missing ones by largest area overlap."""
    n = len(table)
    parent_pos = np.full(n, -1, dtype=np.int64)
    overlap = np.full(n, np.nan)
    report: dict[str, Any] = {
        "from_source": 0,
        "inferred": 0,
        "missing": 0,
        "min_inferred_overlap": None,
    }
    levels = table["level"].to_numpy()
    key = table["iso3"] + "|" + table["level"].astype(str) + "|" + table["source_id"].astype(str)
    lookup = pd.Series(np.arange(n), index=key.to_numpy())
    lookup = lookup[~lookup.index.duplicated(keep="first")]

    given = table["_parent_id"].notna().to_numpy() & (levels > 0)
    if given.any():
        pkey = (
            table["iso3"]
            + "|"
            + (table["level"] - 1).astype(str)
            + "|"
            + table["_parent_id"].astype(str)
        )[given]
        pos = lookup.reindex(pkey.to_numpy()).to_numpy()
        found = ~np.isnan(pos)
        idx = np.flatnonzero(given)[found]
        parent_pos[idx] = pos[found].astype(np.int64)
        overlap[idx] = 1.0
        report["from_source"] = int(found.sum())

    present = set(levels.tolist())
    todo = np.flatnonzero((parent_pos < 0) & (levels > 0) & np.isin(levels - 1, list(present)))
    if len(todo):
        pos, share = _largest_overlap(table, todo)
        ok = pos >= 0
        parent_pos[todo[ok]] = pos[ok]
        overlap[todo[ok]] = share[ok]
        report["inferred"] = int(ok.sum())
        if ok.any():
            report["min_inferred_overlap"] = round(float(share[ok].min()), 6)
        if (~ok).any():
            names = ", ".join(table["name"].to_numpy()[todo[~ok]][:5])
            warn(
                f"{WHERE}: {int((~ok).sum())} units overlap no unit one level up and have no parent: {names}"
            )
    report["missing"] = int(
        ((parent_pos < 0) & (levels > 0) & np.isin(levels - 1, list(present))).sum()
    )
    table = table.assign(_parent_pos=parent_pos, parent_overlap=overlap)
    table.loc[levels == 0, "parent_overlap"] = np.nan
    return table, report


def _largest_overlap(table: gpd.GeoDataFrame, todo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows ``todo``: position of the unit one level up (same iso3) overlapping most, and the share."""
    geoms = table.geometry.to_crs(EQUAL_AREA).to_numpy()
    levels = table["level"].to_numpy()
    iso = table["iso3"].to_numpy()
    best_pos = np.full(len(todo), -1, dtype=np.int64)
    best_share = np.zeros(len(todo))
    for lv in np.unique(levels[todo]):
        rows = todo[levels[todo] == lv]
        cand = np.flatnonzero(levels == lv - 1)
        tree = shapely.STRtree(geoms[cand])
        ci, pj = tree.query(geoms[rows], predicate="intersects")
        if len(ci) == 0:
            continue
        same_country = iso[rows[ci]] == iso[cand[pj]]
        ci, pj = ci[same_country], pj[same_country]
        inter = shapely.area(shapely.intersection(geoms[rows[ci]], geoms[cand[pj]]))
        pairs = pd.DataFrame({"child": ci, "parent": cand[pj], "area": inter})
        pairs = pairs.sort_values(
            ["child", "area", "parent"], ascending=[True, False, True]
        ).drop_duplicates("child")
        pairs = pairs[pairs["area"] > 0]
        child_area = shapely.area(geoms[rows[pairs["child"].to_numpy()]])
        where_in_todo = np.searchsorted(todo, rows[pairs["child"].to_numpy()])
        best_pos[where_in_todo] = pairs["parent"].to_numpy()
        best_share[where_in_todo] = np.minimum(pairs["area"].to_numpy() / child_area, 1.0)
    return best_pos, best_share


# --------------------------------------------------------------------------- ucodes
def _assign_ucodes(table: gpd.GeoDataFrame, version: int) -> gpd.GeoDataFrame:
    """Keep source ucodes; generate GeoRepo-form ucodes top-down where missing."""
    ucode = np.array(
        table["ucode"].astype(object).where(table["ucode"].notna(), None), dtype=object
    )
    parent_pos = table["_parent_pos"].to_numpy()
    levels = table["level"].to_numpy()
    names = table["name"].astype(str).to_numpy()
    source_ids = table["source_id"].astype(str).to_numpy()
    iso = table["iso3"].to_numpy()
    for lv in sorted(set(levels.tolist())):
        rows = np.flatnonzero((levels == lv) & pd.isna(ucode))
        if not len(rows):
            continue
        bases = np.array(
            [
                _base_of(ucode[p]) if p >= 0 and ucode[p] else iso[r]
                for r, p in zip(rows, parent_pos[rows], strict=True)
            ],
            dtype=object,
        )
        if lv == 0:
            # one country unit per iso3: the code is the iso3 itself
            for r in rows:
                ucode[r] = f"{iso[r]}_V{version}"
            continue
        order = pd.DataFrame(
            {"row": rows, "base": bases, "name": names[rows], "sid": source_ids[rows]}
        )
        order = order.sort_values(["base", "name", "sid"], kind="stable")
        seq = order.groupby("base").cumcount().to_numpy() + 1
        if seq.max() > 9999:
            raise InputError(
                problem(
                    "admin units",
                    f"have more than 9,999 siblings under one parent at level {lv}",
                    "split the source",
                    where=WHERE,
                )
            )
        for r, b, s in zip(order["row"].to_numpy(), order["base"].to_numpy(), seq, strict=True):
            ucode[r] = f"{b}_{s:04d}_V{version}"
    table = table.assign(ucode=ucode)
    dup = table["ucode"].duplicated(keep=False)
    if dup.any():
        shown = ", ".join(sorted(set(table.loc[dup, "ucode"]))[:5])
        files = ", ".join(sorted({f"'{s}'" for s in table.loc[dup, "source"]}))
        raise InputError(
            problem(
                f"ucode in {files}",
                f"is not unique ({shown})",
                "select one version per unit with valid_on=, or remove duplicate rows",
                where=WHERE,
            )
        )
    # parent ucodes from positions
    parent = np.array([ucode[p] if p >= 0 else None for p in parent_pos], dtype=object)
    table["parent_ucode"] = parent
    # concept ucodes: keep the source's, number the rest per country in (level, ucode) order
    concept = table["concept_ucode"].astype(object).where(table["concept_ucode"].notna(), None)
    missing = concept.isna().to_numpy()
    if missing.any():
        sub = table.loc[missing, ["iso3", "level", "ucode"]].sort_values(["iso3", "level", "ucode"])
        numbers = sub.groupby("iso3").cumcount() + 1
        concept.loc[sub.index] = "#" + sub["iso3"] + "_" + numbers.astype(str)
    table["concept_ucode"] = concept.to_numpy()
    return table


def _base_of(ucode: str) -> str:
    match = _UCODE_RE.match(ucode)
    return match.group("base") if match else re.sub(r"_V\d+$", "", ucode)


def _finish(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    table = table.rename(columns={"level": "admin_level"})
    table["admin_level"] = table["admin_level"].astype("int64")
    table["start_date"] = _to_date(table["start_date"])
    table["end_date"] = _to_date(table["end_date"])
    table["pcode"] = table["pcode"].astype(object).where(table["pcode"].notna(), None)
    table = table.sort_values(["admin_level", "ucode"], kind="stable").reset_index(drop=True)
    out = gpd.GeoDataFrame(table[DIM_ADMIN_COLUMNS], geometry="geometry", crs=4326)
    for col in ("ucode", "concept_ucode", "name", "iso3", "source", "source_id"):
        out[col] = out[col].astype(str)
    return out
