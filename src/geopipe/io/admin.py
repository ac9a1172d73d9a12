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
iso3166_2                 ISO 3166-2 subdivision code where the source has one (geoBoundaries
                          ``shapeISO``, GADM ``ISO_n``, mapping key ``iso3166_2``); else null
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
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import GeometryError, InputError, problem
from ._admin_derive import derive_parents, unit_keys
from ._admin_hierarchy import assign_ucodes, link_parents
from ._admin_schemas import _MAPPING_KEYS, _Raw, is_mapping_key, normalise
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

DIM_ADMIN_COLUMNS = [
    "ucode",
    "concept_ucode",
    "name",
    "admin_level",
    "parent_ucode",
    "iso3",
    "pcode",
    "iso3166_2",
    "start_date",
    "end_date",
    "source",
    "source_id",
    "parent_overlap",
    "geometry",
]


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
    derive: bool = True,
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
    derive
        Make the coarser units that the finest level names in its codes (COD-AB ``ADMn_PCODE``,
        GADM ``GID_n``, GeoRepo ``adm{N}_ucode`` / ``parents[]``, mapping ``id_<k>``) but no file
        provides, by dissolving their children (``source`` starts with ``"derived"``). Default
        True; False keeps only the levels read.

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
        unknown = {k for k in mapping if not is_mapping_key(k)}
        if unknown or "name" not in mapping:
            raise InputError(
                problem(
                    "mapping",
                    f"has keys {sorted(mapping)}"
                    + (f" (unknown: {sorted(unknown)})" if unknown else " but no 'name'"),
                    f"use keys from {sorted(_MAPPING_KEYS)} or id_<k> / name_<k> for the level-k "
                    "ancestor's code and name; 'name' is required",
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
        norm, schema = normalise(frame, raw, mapping)
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
    known: set[str] = set()
    if valid_on is not None:
        known = unit_keys(table.assign(source_id=table["source_id"].astype(str)))
        table = _select_valid(table, valid_on)
        report["valid_on"] = str(pd.Timestamp(valid_on).date())
    table, report["geometries_repaired"], report["geometries_rejected"] = _repair(table)
    table = _check_levels(table)
    if derive:
        table, derived = derive_parents(table, known)
    else:
        table, derived = _drop_ancestors(table), {"derived": {}}
    table, report["parents"] = link_parents(table)
    report["parents"].update(derived)
    table = assign_ucodes(table, version)
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


def _drop_ancestors(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return table.drop(columns=[c for c in table.columns if c.startswith("_anc_")])


def _finish(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    table = table.rename(columns={"level": "admin_level"})
    table["admin_level"] = table["admin_level"].astype("int64")
    table["start_date"] = _to_date(table["start_date"])
    table["end_date"] = _to_date(table["end_date"])
    for col in ("pcode", "iso3166_2"):
        table[col] = table[col].astype(object).where(table[col].notna(), None)
    table = table.sort_values(["admin_level", "ucode"], kind="stable").reset_index(drop=True)
    out = gpd.GeoDataFrame(table[DIM_ADMIN_COLUMNS], geometry="geometry", crs=4326)
    for col in ("ucode", "concept_ucode", "name", "iso3", "source", "source_id"):
        out[col] = out[col].astype(str)
    return out
