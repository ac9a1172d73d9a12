"""Hierarchy for read_admin: parent units derived from the finest level's ancestor codes, parents
(from the source's codes, by largest area overlap, else the nearest unit) and GeoRepo-form ucodes
generated top-down where the source has none."""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, problem
from ._admin_schemas import ANC_RE
from ._files import repair_polygons, warn

WHERE = "read_admin"
EQUAL_AREA = "EPSG:6933"  # World Cylindrical Equal Area: areas for overlap shares
_UCODE_RE = re.compile(r"^(?P<base>[A-Z]{3}(?:_\d{4})*)_V(?P<version>\d+)$")
DERIVED = "derived"  # first word of ``source`` for units made by dissolving their children
_DERIVED_PREFIX = r"^derived: dissolved level-\d units of "
# a unit whose code names a parent (given in its own file) but lies mostly elsewhere
_CONFIRM_SHARE = 0.5


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


# --------------------------------------------------------------------------- parents
def link_parents(table: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Resolve ``_parent_id`` to row positions; infer the missing ones by largest area overlap."""
    n = len(table)
    parent_pos = np.full(n, -1, dtype=np.int64)
    overlap = np.full(n, np.nan)
    report: dict[str, Any] = {
        "from_source": 0,
        "inferred": 0,
        "missing": 0,
        "min_inferred_overlap": None,
        "nearest": [],
        "code_geometry_disagreements": [],
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
        report["code_geometry_disagreements"] = _confirm_by_geometry(table, idx, parent_pos[idx])

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
            lost = todo[~ok]
            pos, km = _nearest_parent(table, lost)
            got = pos >= 0
            parent_pos[lost[got]] = pos[got]
            overlap[lost[got]] = 0.0
            names = table["name"].to_numpy()
            report["nearest"] = [
                {
                    "unit": str(names[c]),
                    "source_id": str(table["source_id"].iloc[c]),
                    "parent": str(names[p]),
                    "distance_km": round(float(d), 3),
                }
                for c, p, d in zip(lost[got], pos[got], km[got], strict=True)
            ]
            if got.any():
                shown = "; ".join(
                    f"{r['unit']!r} -> {r['parent']!r} ({r['distance_km']:.1f} km)"
                    for r in report["nearest"][:5]
                )
                warn(
                    f"{WHERE}: {int(got.sum())} units overlap no unit one level up and were put "
                    f"under the nearest one (parent_overlap 0): {shown}. Check the coarser "
                    "level's outline (a simplified coastline often leaves out islands)"
                )
    report["missing"] = int(
        ((parent_pos < 0) & (levels > 0) & np.isin(levels - 1, list(present))).sum()
    )
    table = table.assign(_parent_pos=parent_pos, parent_overlap=overlap)
    table.loc[levels == 0, "parent_overlap"] = np.nan
    return table, report


def _nearest_parent(table: gpd.GeoDataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows ``rows``: the nearest unit one level up in the same country and the distance (km,
    geodesic between the closest points)."""
    from pyproj import Geod

    geoms = table.geometry.to_numpy()
    levels = table["level"].to_numpy()
    iso = table["iso3"].to_numpy()
    pos = np.full(len(rows), -1, dtype=np.int64)
    km = np.full(len(rows), np.nan)
    for (lv, country), at in (
        pd.Series(np.arange(len(rows))).groupby([levels[rows], iso[rows]]).groups.items()
    ):
        at = np.asarray(at)
        cand = np.flatnonzero((levels == lv - 1) & (iso == country))
        if not len(cand):
            continue
        tree = shapely.STRtree(geoms[cand])
        child_i, cand_j = tree.query_nearest(geoms[rows[at]], all_matches=False)
        pos[at[child_i]] = cand[cand_j]
    found = pos >= 0
    if found.any():
        lines = shapely.shortest_line(geoms[rows[found]], geoms[pos[found]])
        geod = Geod(ellps="WGS84")
        km[found] = [geod.geometry_length(line) / 1000.0 for line in lines]
    return pos, km


def _confirm_by_geometry(
    table: gpd.GeoDataFrame, rows: np.ndarray, parents: np.ndarray
) -> list[dict[str, Any]]:
    """Units whose code names a parent read from a file but lie mostly outside it (codes win)."""
    from_file = ~table["source"].astype(str).str.startswith(DERIVED).to_numpy()[parents]
    rows, parents = rows[from_file], parents[from_file]
    if not len(rows):
        return []
    geoms = table.geometry.to_crs(EQUAL_AREA).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = shapely.area(shapely.intersection(geoms[rows], geoms[parents])) / shapely.area(
            geoms[rows]
        )
    low = share < _CONFIRM_SHARE
    if not low.any():
        return []
    best, best_share = _largest_overlap(table, rows[low])
    names = table["name"].to_numpy()
    out = [
        {
            "unit": str(names[r]),
            "parent_by_code": str(names[p]),
            "share_in_parent_by_code": round(float(s), 4),
            "parent_by_geometry": str(names[b]) if b >= 0 else None,
            "share_in_parent_by_geometry": round(float(bs), 4),
        }
        for r, p, s, b, bs in zip(
            rows[low], parents[low], share[low], best, best_share, strict=True
        )
        if b != p
    ]
    if out:
        shown = "; ".join(
            f"{d['unit']!r}: code says {d['parent_by_code']!r} "
            f"({d['share_in_parent_by_code']:.0%} inside), geometry says {d['parent_by_geometry']!r}"
            for d in out[:5]
        )
        warn(
            f"{WHERE}: {len(out)} units lie mostly outside the parent their codes name; the codes "
            f"were kept: {shown}"
        )
    return out


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
def assign_ucodes(table: gpd.GeoDataFrame, version: int) -> gpd.GeoDataFrame:
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
        # no parent: "0000" stands for the unknown ancestors, so the code still has one
        # 4-digit part per level (RWA_0000_0003_V1 at level 2)
        orphan_base = "_0000" * max(int(lv) - 1, 0)
        bases = np.array(
            [
                _base_of(ucode[p]) if p >= 0 and ucode[p] else iso[r] + orphan_base
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
        # after the numbers the source already uses (a GeoRepo export's children, say)
        given = concept.dropna().astype(str).str.extract(r"^#(?P<iso>[A-Z]{3})_(?P<n>\d+)$")
        used = pd.to_numeric(given["n"], errors="coerce").groupby(given["iso"]).max()
        start = sub["iso3"].map(used).fillna(0).astype(int)
        numbers = sub.groupby("iso3").cumcount() + 1 + start
        concept.loc[sub.index] = "#" + sub["iso3"] + "_" + numbers.astype(str)
    table["concept_ucode"] = concept.to_numpy()
    return table


def _base_of(ucode: str) -> str:
    match = _UCODE_RE.match(ucode)
    return match.group("base") if match else re.sub(r"_V\d+$", "", ucode)
