"""Checks on the admin hierarchy that :func:`geopipe.read_admin` built, cheap enough for
``geopipe validate`` (no indicator is computed; with a population raster, one zonal sum over the
pieces a country outline leaves out).

``admin.nearest_parent``
    units that overlap no unit one level up and were put under the nearest one
    (``parent_overlap`` 0), with the distance.
``admin.outside_country``
    parts of the units below a country (islands, usually) that lie wholly outside the country's
    own outline, with their area and, given a population raster, the people living there.
``admin.parent_code_mismatch``
    units whose codes name a parent (read from its own file) that they lie mostly outside of; the
    codes were kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError, MissingColumnError, problem
from .checks import CheckResult, check_levels, make_result

__all__ = ["check_hierarchy"]

WHERE = "check_hierarchy"
EQUAL_AREA = "EPSG:6933"


def check_hierarchy(
    admin: gpd.GeoDataFrame,
    *,
    population: str | os.PathLike[str] | None = None,
    source: str | None = None,
    levels: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Check how the hierarchy was built: nearest-parent units, islands outside the country outline,
    codes that disagree with the geometry.

    Parameters
    ----------
    admin
        ``dim_admin`` from :func:`geopipe.read_admin` (``ucode``, ``name``, ``admin_level``,
        ``parent_ucode``, ``parent_overlap``, ``iso3``, geometry).
    population
        Optional population raster: the people living in the parts left outside the country
        outline are counted with :func:`geopipe.zonal_raster`.
    source
        Name used in the results (default: the files read).
    levels
        Override the level of a check, e.g. ``{"admin.outside_country": "fail"}``.

    Returns
    -------
    list of CheckResult
        ``admin.nearest_parent``, ``admin.outside_country``, ``admin.parent_code_mismatch``.

    Examples
    --------
    >>> import geopipe as gp
    >>> admin = gp.read_admin({0: "vnm_adm0.geojson", 1: "vnm_adm1.geojson"})  # doctest: +SKIP
    >>> [(r.check_id, r.level) for r in gp.check_hierarchy(admin)]  # doctest: +SKIP
    [('admin.nearest_parent', 'warn'), ('admin.outside_country', 'warn'), ...]
    """
    from .boundaries import _source_name

    if not isinstance(admin, gpd.GeoDataFrame):
        raise InputError(
            problem(
                "admin", f"is a {type(admin).__name__}", "pass gp.read_admin's table", where=WHERE
            )
        )
    need = {"ucode", "name", "admin_level", "parent_ucode"}
    missing = sorted(need - set(admin.columns))
    if missing:
        raise MissingColumnError(
            problem(
                "admin",
                f"has no column {missing}",
                "pass the dim_admin table from gp.read_admin",
                where=WHERE,
            )
        )
    lv = check_levels(levels, WHERE)
    src = source or _source_name(admin)
    work = admin if admin.crs is None or admin.crs.to_epsg() == 4326 else admin.to_crs(4326)
    return [
        _nearest(work, src, lv),
        _outside_country(work, src, lv, population),
        _code_mismatch(work, src, lv),
    ]


def _nearest(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> CheckResult:
    from pyproj import Geod

    if "parent_overlap" not in admin.columns:
        return CheckResult("admin.nearest_parent", "pass", src, 0, "no parent_overlap; not checked")
    rows = np.flatnonzero(
        (admin["parent_overlap"].to_numpy() == 0) & admin["parent_ucode"].notna().to_numpy()
    )
    pos = pd.Series(np.arange(len(admin)), index=admin["ucode"].astype(str).to_numpy())
    pos = pos[~pos.index.duplicated()]
    parent = pos.reindex(admin["parent_ucode"].astype(str).to_numpy()[rows]).to_numpy()
    rows, parent = rows[~np.isnan(parent)], parent[~np.isnan(parent)].astype(np.int64)
    geoms = admin.geometry.to_numpy()
    geod = Geod(ellps="WGS84")
    km = np.array(
        [
            geod.geometry_length(line) / 1000.0
            for line in shapely.shortest_line(geoms[rows], geoms[parent])
        ]
    )
    names = admin["name"].astype(str).to_numpy()
    pairs = [
        {"unit": names[r], "parent": names[p], "distance_km": round(float(d), 3)}
        for r, p, d in zip(rows, parent, km, strict=True)
    ]
    shown = "; ".join(
        f"{p['unit']!r} under {p['parent']!r} ({p['distance_km']:.1f} km)" for p in pairs[:5]
    )
    return make_result(
        "admin.nearest_parent",
        src,
        len(rows),
        default="warn",
        levels=lv,
        bad=f"{len(rows)} units overlap no unit one level up and were put under the nearest one: "
        f"{shown}; check the coarser level's outline (a simplified coastline often leaves out islands)",
        ok="every unit overlaps its parent",
        examples=admin["ucode"].astype(str).to_numpy()[rows],
        details={"units": pairs, "max_distance_km": float(km.max()) if len(km) else 0.0},
    )


def _outside_country(
    admin: gpd.GeoDataFrame, src: str, lv: dict[str, str], population: Any
) -> CheckResult:
    levels = pd.to_numeric(admin["admin_level"], errors="coerce").to_numpy()
    below = levels[levels > 0]
    if not (levels == 0).any() or not len(below):
        return CheckResult(
            "admin.outside_country", "pass", src, 0, "no country and sub-national levels together"
        )
    sub_level = below.min()
    iso = admin["iso3"].astype(str).to_numpy() if "iso3" in admin.columns else None
    geoms = admin.geometry.to_numpy()
    countries = np.flatnonzero(levels == 0)
    children = np.flatnonzero(levels == sub_level)
    # polygon parts of the sub-national units, each with the row it belongs to
    parts, owner = shapely.get_parts(geoms[children], return_index=True)
    owner = children[owner]
    country_of = np.full(len(parts), -1, dtype=np.int64)
    for c in countries:
        same = (iso[owner] == iso[c]) if iso is not None else np.ones(len(parts), dtype=bool)
        country_of[same] = c
    has_country = country_of >= 0
    outside = np.zeros(len(parts), dtype=bool)
    outside[has_country] = ~shapely.intersects(parts[has_country], geoms[country_of[has_country]])
    lost = parts[outside]
    area_km2 = float(
        gpd.GeoSeries(lost, crs=4326).to_crs(EQUAL_AREA).area.sum() / 1e6 if len(lost) else 0.0
    )
    people, note = _population_in(lost, population)
    names = admin["name"].astype(str).to_numpy()
    units = sorted(set(names[owner[outside]]))
    who = f", {people:,.0f} people" if people is not None else ""
    return make_result(
        "admin.outside_country",
        src,
        int(outside.sum()),
        default="warn",
        levels=lv,
        bad=f"{int(outside.sum())} parts of level-{int(sub_level)} units ({area_km2:,.1f} km²{who}) lie "
        f"wholly outside the country outline ({', '.join(units[:5])}); the outline leaves out islands "
        "— roll-ups follow the finer level, so they are counted, but maps of level 0 omit them",
        ok="the country outline covers every sub-national unit",
        examples=admin["ucode"].astype(str).to_numpy()[np.unique(owner[outside])],
        details={
            "area_km2": area_km2,
            "population": people,
            "population_note": note,
            "units": units,
        },
    )


def _population_in(parts: np.ndarray, population: Any) -> tuple[float | None, str | None]:
    if population is None:
        return None, None
    if not len(parts):
        return 0.0, None
    from ..errors import EmptyInputError
    from ..zonal.raster import zonal_raster

    frame = gpd.GeoDataFrame(geometry=list(parts), crs=4326)
    try:
        out = zonal_raster(frame, population, stats=("sum",))
    except EmptyInputError:
        return 0.0, "no raster data over these parts (beyond the raster's extent, or nodata)"
    return float(out["sum"].sum()), None


def _code_mismatch(admin: gpd.GeoDataFrame, src: str, lv: dict[str, str]) -> CheckResult:
    info = admin.attrs.get("geopipe", {}) if isinstance(admin.attrs, dict) else {}
    found = (info.get("parents") or {}).get("code_geometry_disagreements") or []
    shown = "; ".join(
        f"{d['unit']!r} coded under {d['parent_by_code']!r} but mostly in {d['parent_by_geometry']!r}"
        for d in found[:5]
    )
    return make_result(
        "admin.parent_code_mismatch",
        src,
        len(found),
        default="warn",
        levels=lv,
        bad=f"{len(found)} units lie mostly outside the parent their codes name (codes kept): {shown}; "
        "the levels come from different sources or years",
        ok="parents named by codes agree with the geometry",
        examples=[d["unit"] for d in found],
        details={"units": found},
    )
