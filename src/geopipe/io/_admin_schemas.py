"""Schema adapters for read_admin: geoBoundaries, GeoRepo, GADM, COD-AB and explicit mappings.

Each adapter turns a source's columns into the intermediate columns ``_NORMAL`` (level, name,
source id, the parent's source id, ucodes, P-code, ISO3, validity dates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputError, MissingColumnError, problem

WHERE = "read_admin"

# Intermediate columns every schema adapter produces (``_parent_id`` is the parent's source_id).
_NORMAL = [
    "level",
    "name",
    "source_id",
    "_parent_id",
    "ucode",
    "concept_ucode",
    "pcode",
    "iso3166_2",
    "iso3",
    "start_date",
    "end_date",
]

_UCODE_RE = re.compile(r"^(?P<base>[A-Z]{3}(?:_\d{4})*)_V(?P<version>\d+)$")
# Ancestor columns: ``_anc_{field}_{k}`` is the level-k ancestor's id / name / P-code / ucode as the
# source spells it on a row of a finer level; read_admin derives the parents that have no file.
_ANC_FIELDS = ("id", "name", "pcode", "ucode")
ANC_RE = re.compile(r"^_anc_(?P<field>id|name|pcode|ucode)_(?P<level>\d)$")
# mapping keys naming ancestor columns: id_0, name_0, id_1, name_1, ...
_MAPPING_ANC_RE = re.compile(r"^(?P<field>id|name)_(?P<level>\d)$")
_MAPPING_KEYS = {
    "name",
    "id",
    "parent_id",
    "level",
    "ucode",
    "concept_ucode",
    "pcode",
    "iso3166_2",
    "iso3",
    "start_date",
    "end_date",
}
_ISO3166_2 = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


@dataclass(frozen=True)
class _Raw:
    frame: gpd.GeoDataFrame
    label: str  # file (and layer) for messages and the `source` column
    level: int | None  # level the caller named for this file


# --------------------------------------------------------------------------- schema adapters
def normalise(
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
    anc = sorted(c for c in out if ANC_RE.match(c))
    table = pd.DataFrame(out)[[*_NORMAL, *anc, "geometry"]]
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


def _ancestors(level: pd.Series, spec: Mapping[int, Mapping[str, Any]]) -> dict[str, pd.Series]:
    """``_anc_{field}_{k}`` columns from ``{k: {field: values}}``, blank on rows at level <= k."""
    out: dict[str, pd.Series] = {}
    for k, fields in spec.items():
        above = (level > k).to_numpy()
        for field, values in fields.items():
            if values is None:
                continue
            text = pd.Series(values, index=level.index).astype("string").str.strip()
            blank = (text.isna() | (text == "")).to_numpy(dtype=bool) | ~above
            out[f"_anc_{field}_{k}"] = text.astype(object).where(~blank, None)
    return out


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
        "iso3166_2": _iso3166_2(frame["shapeISO"]) if "shapeISO" in frame else None,
    }


def _iso3166_2(codes: pd.Series) -> pd.Series:
    """ISO 3166-2 subdivision codes (``RW-02``); anything else (e.g. an ADM0 ``RWA``) -> None."""
    text = codes.astype(object).where(codes.notna(), "").astype(str).str.strip().str.upper()
    return text.where(text.str.match(_ISO3166_2), None).astype(object)


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
    spec: dict[int, dict[str, Any]] = {}
    for k in range(int(level.max()) if len(level) else 0):
        codes = frame[f"adm{k}_ucode"] if f"adm{k}_ucode" in frame else None
        names = frame[f"adm{k}_name"] if f"adm{k}_name" in frame else None
        if "parents" in frame:
            listed = frame["parents"].map(lambda p, k=k: _parent_entry(p, k))
            from_list = listed.map(lambda e: e.get("ucode") if e else None)
            codes = from_list if codes is None else pd.Series(codes).fillna(from_list)
            listed_names = listed.map(lambda e: e.get("name") if e else None)
            names = listed_names if names is None else pd.Series(names).fillna(listed_names)
        if codes is not None:
            spec[k] = {"id": codes, "ucode": codes, "name": names}
    return {
        **_ancestors(level, spec),
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
    entry = _parent_entry(parents, level - 1)
    return entry.get("ucode") if entry else None


def _parent_entry(parents: Any, level: int) -> dict[str, Any] | None:
    """The entry of GeoRepo ``parents[]`` (a list or its JSON text) at ``level``, if any."""
    if parents is None or (isinstance(parents, float) and np.isnan(parents)):
        return None
    if isinstance(parents, str):
        import json

        try:
            parents = json.loads(parents)
        except json.JSONDecodeError:
            return None
    for p in parents if isinstance(parents, list | tuple | np.ndarray) else []:
        if isinstance(p, dict) and int(p.get("admin_level", -1)) == level:
            return p
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
    name_col = _gadm_name_col(frame, lv)
    level = _fixed_level(frame, raw, lv, "GADM GID_n")
    spec = {
        k: {"id": frame[f"GID_{k}"], "name": frame.get(_gadm_name_col(frame, k))}
        for k in levels
        if k < lv
    }
    return {
        **_ancestors(level, spec),
        "level": level,
        "name": frame[name_col] if name_col in frame else frame[f"GID_{lv}"],
        "source_id": frame[f"GID_{lv}"].astype(str),
        "_parent_id": frame[f"GID_{lv - 1}"].astype(str)
        if lv > 0 and f"GID_{lv - 1}" in frame
        else None,
        "iso3": frame["GID_0"] if "GID_0" in frame else None,
        "iso3166_2": _iso3166_2(frame[f"ISO_{lv}"]) if lv > 0 and f"ISO_{lv}" in frame else None,
    }


def _gadm_name_col(frame: pd.DataFrame, lv: int) -> str:
    return f"NAME_{lv}" if lv > 0 else ("COUNTRY" if "COUNTRY" in frame else "NAME_0")


def _codab_name_col(upper: Mapping[str, str], lv: int, default: str | None) -> str | None:
    keys = ("EN", "FR", "ES", "PT", "REF", "NAME")
    return next((upper[f"ADM{lv}_{k}"] for k in keys if f"ADM{lv}_{k}" in upper), default)


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
    name_col = _codab_name_col(upper, lv, pcode_col)
    parent_col = upper.get(f"ADM{lv - 1}_PCODE") if lv > 0 else None
    iso = None
    if "ISO3" in upper:
        iso = frame[upper["ISO3"]]
    elif "ADM0_PCODE" in upper:
        iso = frame[upper["ADM0_PCODE"]].map(_iso3_from_code)
    level = _fixed_level(frame, raw, lv, "COD-AB ADMn_PCODE")
    spec = {}
    for k in (k for k in levels if k < lv):
        code = frame[upper[f"ADM{k}_PCODE"]]
        anc_name = _codab_name_col(upper, k, None)
        spec[k] = {"id": code, "pcode": code, "name": frame[anc_name] if anc_name else None}
    return {
        **_ancestors(level, spec),
        "level": level,
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
    if "iso3166_2" in mapping:
        out["iso3166_2"] = _iso3166_2(frame[mapping["iso3166_2"]])
    out["source_id"] = frame[mapping["id"]].astype(str) if "id" in mapping else None
    out["_parent_id"] = frame[mapping["parent_id"]].astype(str) if "parent_id" in mapping else None
    inferred = (
        pd.to_numeric(frame[mapping["level"]], errors="coerce") if "level" in mapping else None
    )
    out["level"] = _fixed_level(frame, raw, inferred, "the mapping's 'level' column")
    spec: dict[int, dict[str, Any]] = {}
    for key, col in mapping.items():
        match = _MAPPING_ANC_RE.match(key)
        if match:
            spec.setdefault(int(match.group("level")), {})[match.group("field")] = frame[col]
    out.update(_ancestors(out["level"], spec))
    if out["_parent_id"] is None and spec:
        # no parent_id column: the parent is the ancestor one level up
        parent = pd.Series(None, index=frame.index, dtype=object)
        for k, fields in spec.items():
            rows = (out["level"] == k + 1).to_numpy()
            if "id" in fields:
                parent[rows] = fields["id"][rows].astype(str)
        out["_parent_id"] = parent
    return out


def is_mapping_key(key: str) -> bool:
    """A key read_admin's ``mapping=`` accepts (``name``, ``id``, ..., ``id_0``, ``name_0``, ...)."""
    return key in _MAPPING_KEYS or bool(_MAPPING_ANC_RE.match(key))
