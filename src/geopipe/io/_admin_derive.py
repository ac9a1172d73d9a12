"""Derived parents for read_admin: the coarser units that finer units name in their codes
(COD-AB ``ADMn_PCODE``, GADM ``GID_n``, GeoRepo ``adm{N}_ucode`` / ``parents[]``, mapping
``id_<k>``) but no file provides, made by dissolving their children."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._admin_schemas import ANC_RE
from ._files import repair_polygons, warn

WHERE = "read_admin"
DERIVED = "derived"  # first word of ``source`` for units made by dissolving their children
_DERIVED_PREFIX = r"^derived: dissolved level-\d units of "


# --------------------------------------------------------------------------- derived parents
def unit_keys(table: pd.DataFrame) -> set[str]:
    """``iso3|level|source_id`` of every row (units a source provides, before any selection)."""
    return set(
        table["iso3"].astype(str)
        + "|"
        + table["level"].astype(str)
        + "|"
        + table["source_id"].astype(str)
    )


def derive_parents(
    table: gpd.GeoDataFrame, known: set[str] | None = None
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Add the ancestors that finer units name in their codes but no file provides.

    Each missing level-k unit is the union of its closest children (the units of the lowest level
    below k that carry its code); levels are derived from the finest up, so a derived level-k
    unit is itself a child when level k-1 is derived. Returns the table without the ``_anc_*``
    columns and ``{level: units derived}``. Units in ``known`` (``iso3|level|source_id`` of the
    rows read, before a ``valid_on`` selection) are never derived: the source has them.
    """
    known = known or set()
    anc_cols = [c for c in table.columns if ANC_RE.match(c)]
    levels = sorted({int(ANC_RE.match(c).group("level")) for c in anc_cols}, reverse=True)
    derived: dict[int, int] = {}
    for k in levels:
        new = _derive_level(table, k, anc_cols, known)
        if new is not None:
            derived[k] = len(new)
            table = gpd.GeoDataFrame(
                pd.concat([table, new], ignore_index=True), geometry="geometry", crs=4326
            )
    return table.drop(columns=anc_cols), {"derived": derived}


def _derive_level(
    table: gpd.GeoDataFrame, k: int, anc_cols: list[str], known: set[str]
) -> pd.DataFrame | None:
    ids = table.get(f"_anc_id_{k}")
    if ids is None:
        return None
    key = table["iso3"].astype(str) + "|" + ids.astype(str)
    at_k = table["level"] == k
    have = set(table.loc[at_k, "iso3"].astype(str) + "|" + table.loc[at_k, "source_id"].astype(str))
    have |= {f"{i}|{sid}" for i, lv, sid in (x.split("|", 2) for x in known) if lv == str(k)}
    need = (ids.notna() & (table["level"] > k) & ~key.isin(have)).to_numpy()
    if not need.any():
        return None
    sub = table.loc[need].assign(_key=key[need])
    closest = sub.groupby("_key")["level"].transform("min")
    sub = sub[sub["level"] == closest]
    coarser = [c for c in anc_cols if int(ANC_RE.match(c).group("level")) < k]
    _report_inconsistent(sub, k, coarser)
    first = sub.groupby("_key", sort=True)[
        ["iso3", "level", "source", *[c for c in anc_cols if c.endswith(f"_{k}")], *coarser]
    ].first()
    shapes = gpd.GeoDataFrame(sub[["_key", "geometry"]], geometry="geometry", crs=4326)
    union = shapes.dissolve(by="_key", sort=True).geometry
    geoms, _ = repair_polygons(_drop_pinholes(union.reindex(first.index).to_numpy()))
    col = first.get
    blank = pd.Series(None, index=first.index, dtype=object)
    name = col(f"_anc_name_{k}", blank).astype(object).fillna(col(f"_anc_id_{k}"))
    parent = col(f"_anc_id_{k - 1}") if k > 0 else None
    new = pd.DataFrame(
        {
            "level": k,
            "name": name.astype(str),
            "source_id": first[f"_anc_id_{k}"].astype(str),
            "_parent_id": parent.astype(object) if parent is not None else None,
            "ucode": col(f"_anc_ucode_{k}"),
            "concept_ucode": None,
            "pcode": col(f"_anc_pcode_{k}"),
            "iso3": first["iso3"],
            "start_date": None,
            "end_date": None,
            "source": DERIVED
            + ": dissolved level-"
            + first["level"].astype(str)
            + " units of "
            + first["source"].astype(str).str.replace(_DERIVED_PREFIX, "", regex=True),
            **{c: first[c] for c in coarser},
            "geometry": geoms,
        },
        index=first.index,
    ).reset_index(drop=True)
    return new


_PINHOLE_DEG2 = 1e-12  # ~0.01 m²: holes this small are noding artefacts of the union, not lakes


def _drop_pinholes(geoms: np.ndarray) -> np.ndarray:
    """Remove the zero-area holes a union of not exactly noded neighbours leaves along shared
    borders (exactextract and GEOS predicates treat such rings inconsistently)."""
    out = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):  # one per derived unit, not per row
        polys = []
        for part in shapely.get_parts(geom):
            rings = shapely.get_rings(part)
            holes = [r for r in rings[1:] if shapely.area(shapely.polygons(r)) > _PINHOLE_DEG2]
            polys.append(shapely.polygons(rings[0], holes=holes or None))
        if not polys:
            out[i] = geom
        else:
            out[i] = polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
    return out


def _report_inconsistent(sub: pd.DataFrame, k: int, coarser: list[str]) -> None:
    id_cols = [c for c in coarser if c.startswith("_anc_id_")]
    if not id_cols:
        return
    spread = sub.groupby("_key")[id_cols].nunique()
    bad = spread.index[(spread > 1).any(axis=1)]
    if len(bad):
        shown = ", ".join(b.split("|", 1)[1] for b in bad[:5])
        warn(
            f"{WHERE}: the children of {len(bad)} level-{k} units name different ancestors above "
            f"them ({shown}); the first child's codes were used for the derived unit"
        )
