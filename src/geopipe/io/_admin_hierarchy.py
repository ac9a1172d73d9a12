"""Hierarchy for read_admin: parents (from the source's codes, by largest area overlap, else the
nearest unit) and GeoRepo-form ucodes generated top-down where the source has none. Parents that
no file provides are derived first (:mod:`._admin_derive`)."""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, problem
from ._admin_derive import DERIVED
from ._files import warn

WHERE = "read_admin"
EQUAL_AREA = "EPSG:6933"  # World Cylindrical Equal Area: areas for overlap shares
_UCODE_RE = re.compile(r"^(?P<base>[A-Z]{3}(?:_\d{4})*)_V(?P<version>\d+)$")
# a unit whose code names a parent (given in its own file) but lies mostly elsewhere
_CONFIRM_SHARE = 0.5


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
