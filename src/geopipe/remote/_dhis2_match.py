"""DHIS2 org units -> dim_admin ucodes: by code, by name under the matched parent, spatially."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..errors import GeopipeWarning, InputError, problem

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    import pandas as pd

__all__ = ["match_org_units"]

WHERE_MATCH = "dhis2.match_org_units"


def match_org_units(
    org_units: gpd.GeoDataFrame,
    admin: gpd.GeoDataFrame,
    *,
    level_offset: int = 1,
    min_overlap: float = 0.5,
) -> pd.DataFrame:
    """Join DHIS2 org units to ``dim_admin`` ucodes: by code, by name under the parent, spatially.

    Each org unit of DHIS2 level ``L`` is compared with admin units of level
    ``L - level_offset`` (DHIS2 counts the country as 1, GeoRepo as 0):

    1. **code** — the org unit's ``code`` equals the admin unit's ``pcode`` or ``ucode``
       (trimmed, case-insensitive; codes shared by two admin units are not used);
    2. **name** — the normalised name (accents, case, spaces and punctuation ignored) is unique
       among the admin children of the ucode the org unit's parent matched (levels are matched
       top-down, so a parent matched by any method counts);
    3. **spatial** — a point lies in the admin unit; a polygon has at least ``min_overlap`` of its
       area in one admin unit (the largest share wins; areas in EPSG:6933).

    Parameters
    ----------
    org_units
        From :func:`read_org_units` (``id, name, code, level, parent_id, geometry``).
    admin
        ``dim_admin`` (e.g. from :func:`geopipe.georepo.read_view` or :func:`geopipe.read_admin`).
    level_offset
        DHIS2 level minus admin level.
    min_overlap
        Least share of an org unit's area inside an admin unit for a spatial match.

    Returns
    -------
    pandas.DataFrame
        Every org unit once: ``id, name, code, level, parent_id, ucode, admin_level,
        match_method`` (``code`` / ``name`` / ``spatial`` / ``unmatched``) and ``match_score``
        (1.0 for code and name and points; the area share for polygons). Counts per method and
        the unmatched ids are in ``attrs["geopipe"]``; unmatched units also raise a warning.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"ucode": ["X_V1", "X_0001_V1"], "admin_level": [0, 1],
    ...     "name": ["X", "North"], "parent_ucode": [None, "X_V1"], "pcode": ["X", "X01"]},
    ...     geometry=[shapely.box(0, 0, 2, 2), shapely.box(0, 1, 2, 2)], crs=4326)
    >>> ou = gpd.GeoDataFrame({"id": ["a", "b"], "name": ["Land X", "NORTH"], "code": ["X", None],
    ...     "level": [1, 2], "parent_id": [None, "a"]}, geometry=[None, None], crs=4326)
    >>> match_org_units(ou, admin)[["id", "ucode", "match_method"]].values.tolist()
    [['a', 'X_V1', 'code'], ['b', 'X_0001_V1', 'name']]
    """
    import pandas as pd

    need_ou = ["id", "name", "code", "level", "parent_id"]
    need_ad = ["ucode", "admin_level", "name", "parent_ucode"]
    _require(org_units, [*need_ou, org_units.geometry.name], "org_units")
    _require(admin, need_ad, "admin")
    if not 0 < min_overlap <= 1:
        raise InputError(
            problem("min_overlap", f"was {min_overlap}", "use a share in (0, 1]", where=WHERE_MATCH)
        )
    out = pd.DataFrame(org_units[need_ou]).reset_index(drop=True)
    out["admin_level"] = out["level"].astype("int64") - int(level_offset)
    out["ucode"] = _match_codes(out, admin)
    out["match_method"] = out["ucode"].notna().map({True: "code", False: None})
    out["match_score"] = out["ucode"].notna().astype(float).where(out["ucode"].notna())
    geoms = org_units.geometry.reset_index(drop=True)
    for level in sorted(out["admin_level"].unique()):
        _match_names(out, admin, level)
        _match_space(out, geoms, admin, level, min_overlap)
    out["match_method"] = out["match_method"].fillna("unmatched")
    out["ucode"] = out["ucode"].astype(object).where(out["ucode"].notna(), None)
    counts = out["match_method"].value_counts().to_dict()
    unmatched = out.loc[out["match_method"] == "unmatched", "id"].tolist()
    if unmatched:
        warnings.warn(
            f"{WHERE_MATCH}: {len(unmatched)} of {len(out)} org units match no admin unit "
            f"(kept with ucode null), e.g. "
            f"{', '.join(out.loc[out['ucode'].isna(), 'name'].astype(str).head(5))}",
            GeopipeWarning,
            stacklevel=2,
        )
    out.attrs["geopipe"] = {
        "matched": {k: int(v) for k, v in counts.items()},
        "unmatched": unmatched,
    }
    return out[[*need_ou, "ucode", "admin_level", "match_method", "match_score"]]


def _require(frame: Any, cols: list[str], name: str) -> None:
    from ..errors import MissingColumnError

    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"{name} columns {missing}",
                "are missing",
                f"pass {'read_org_units()' if name == 'org_units' else 'dim_admin'} output",
                where=WHERE_MATCH,
            )
        )


def _norm_code(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper().replace("", None)


def _norm_name(values: pd.Series) -> pd.Series:
    return (
        values.astype("string")
        .str.normalize("NFKD")
        .str.encode("ascii", "ignore")
        .str.decode("ascii")
        .str.casefold()
        .str.replace(r"[^0-9a-z]+", "", regex=True)
    )


def _unique_lookup(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows of ``frame`` whose ``keys`` identify exactly one ucode (ambiguous keys dropped)."""
    frame = frame.dropna(subset=keys).drop_duplicates([*keys, "ucode"])
    return frame[~frame.duplicated(keys, keep=False)]


def _match_codes(out: pd.DataFrame, admin: pd.DataFrame) -> pd.Series:
    import pandas as pd

    keys = pd.concat(
        [
            pd.DataFrame(
                {
                    "admin_level": admin["admin_level"],
                    "key": _norm_code(admin[col]),
                    "ucode": admin["ucode"],
                }
            )
            for col in ("pcode", "ucode")
            if col in admin
        ]
    )
    lookup = _unique_lookup(keys, ["admin_level", "key"])
    left = pd.DataFrame({"admin_level": out["admin_level"], "key": _norm_code(out["code"])})
    return left.merge(lookup, on=["admin_level", "key"], how="left")["ucode"].astype(object)


def _match_names(out: pd.DataFrame, admin: pd.DataFrame, level: int) -> None:
    import pandas as pd

    todo = (out["admin_level"] == level) & out["ucode"].isna()
    if not todo.any():
        return
    parent_ucode = out["parent_id"].map(out.dropna(subset=["ucode"]).set_index("id")["ucode"])
    parent_key = parent_ucode.where(out["parent_id"].notna(), "<root>")
    left = pd.DataFrame(
        {"parent": parent_key[todo].astype(object), "key": _norm_name(out.loc[todo, "name"])},
        index=out.index[todo],
    )
    cand = admin[admin["admin_level"] == level]
    right = pd.DataFrame(
        {
            "parent": cand["parent_ucode"]
            .astype(object)
            .where(cand["parent_ucode"].notna(), "<root>"),
            "key": _norm_name(cand["name"]),
            "ucode": cand["ucode"],
        }
    )
    lookup = _unique_lookup(right, ["parent", "key"])
    hit = left.reset_index().merge(lookup, on=["parent", "key"], how="inner").set_index("index")
    out.loc[hit.index, "ucode"] = hit["ucode"]
    out.loc[hit.index, "match_method"] = "name"
    out.loc[hit.index, "match_score"] = 1.0


def _match_space(
    out: pd.DataFrame, geoms: Any, admin: gpd.GeoDataFrame, level: int, min_overlap: float
) -> None:
    import geopandas as gpd
    import numpy as np
    import shapely

    todo = (out["admin_level"] == level) & out["ucode"].isna() & geoms.notna().to_numpy()
    cand = admin[admin["admin_level"] == level]
    if not todo.any() or cand.empty:
        return
    ou = gpd.GeoDataFrame(
        {"row": out.index[todo]}, geometry=geoms[todo.to_numpy()].to_numpy(), crs=4326
    )
    pairs = gpd.sjoin(ou, cand[["ucode", "geometry"]].to_crs(4326), predicate="intersects")
    if pairs.empty:
        return
    a = gpd.GeoSeries(pairs.geometry.to_numpy(), crs=4326).to_crs(6933).to_numpy()
    b = (
        gpd.GeoSeries(cand.geometry.to_crs(4326).loc[pairs["index_right"]].to_numpy(), crs=4326)
        .to_crs(6933)
        .to_numpy()
    )
    polygonal = shapely.get_dimensions(a) == 2
    share = shapely.area(shapely.intersection(a, b)) / shapely.area(a).clip(min=1e-12)
    pairs["share"] = np.where(polygonal, share, 1.0)  # a point (or line) just has to touch
    best = pairs.sort_values("share", ascending=False).drop_duplicates("row")
    best = best[best["share"] >= min_overlap]
    out.loc[best["row"].to_numpy(), "ucode"] = best["ucode"].to_numpy()
    out.loc[best["row"].to_numpy(), "match_method"] = "spatial"
    out.loc[best["row"].to_numpy(), "match_score"] = best["share"].to_numpy()
