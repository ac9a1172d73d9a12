"""Population within / beyond N minutes of a facility, and the population-weighted travel time.

Per population pixel, exactly like :func:`gp.population_within`: each pixel contributes
``coverage x population`` to a unit (the shared :func:`gp.pixel_weights`), and takes the travel
time of the travel-time cell containing its centre (the travel-time raster is sampled, never
resampled: a travel time is a per-cell value, averaging it would invent times nobody has). Pixels
with no travel time (barrier, unreached, outside the travel-time grid) count as *beyond* and are
reported in ``{prefix}_no_traveltime``; the mean is over pixels that have a time.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np

from geopipe.errors import InputError, problem
from geopipe.zonal._sums import class_sums
from geopipe.zonal.traveltime import GridRaster, _read_grid

__all__ = ["coverage_sums", "travel_time_coverage"]

WHERE = "travel_time_coverage"


def coverage_sums(
    unit: np.ndarray, weight: np.ndarray, minutes: np.ndarray, n_units: int, threshold: float
) -> dict[str, np.ndarray]:
    """Per-unit sums from a pixel table (the pure core, for already-read data).

    Parameters
    ----------
    unit
        Unit position (0 .. n_units - 1) of every (unit, pixel) pair.
    weight
        ``coverage x population`` of every pair.
    minutes
        Travel time at the pixel (NaN / inf = no travel time).
    n_units
        Number of units.
    threshold
        Minutes; a pixel is *within* when its time is ``<= threshold``.

    Returns
    -------
    dict
        ``total``, ``within``, ``beyond``, ``no_traveltime``, ``mean`` (arrays of ``n_units``);
        ``within + beyond == total`` to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> s = coverage_sums(np.array([0, 0, 1]), np.array([2.0, 1.0, 4.0]),
    ...                   np.array([30.0, 90.0, np.inf]), 2, 60)
    >>> s["within"].tolist(), s["beyond"].tolist(), s["mean"].tolist()
    ([2.0, 0.0], [1.0, 4.0], [50.0, nan])
    """
    unit = np.asarray(unit, dtype=np.int64)
    weight = np.asarray(weight, dtype=float)
    minutes = np.asarray(minutes, dtype=float)
    timed = np.isfinite(minutes)
    with np.errstate(invalid="ignore"):
        cls = timed.astype(np.int8) + (timed & (minutes <= threshold))  # 0 none, 1 beyond, 2 within
    s = class_sums(unit, n_units, weight, cls, 3)
    total = s.sum(axis=1)
    within = s[:, 2]
    beyond = s[:, 0] + s[:, 1]
    untimed = s[:, 0]
    wt = s[:, 1] + s[:, 2]
    wtm = np.bincount(unit, weight * np.where(timed, minutes, 0.0), minlength=n_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wt > 0, wtm / np.where(wt > 0, wt, 1.0), np.nan)
    return {
        "total": total,
        "within": within,
        "beyond": beyond,
        "no_traveltime": untimed,
        "mean": mean,
    }


def _as_grid(travel_time: Any) -> GridRaster:
    if isinstance(travel_time, GridRaster):
        return travel_time
    arr, transform, crs = _read_grid(travel_time)
    return GridRaster(np.asarray(arr, dtype=float), transform, crs)


def _sums_for(units, raster, tt: GridRaster, threshold: float) -> dict[str, np.ndarray]:
    from geopipe.zonal.distance import _pixel_tables

    n = len(units)
    acc: dict[str, np.ndarray] = {}
    wt = np.zeros(n)
    for px in _pixel_tables(units, raster):
        w = px["coverage"].to_numpy() * px["value"].to_numpy()
        minutes = tt.value_at(px["x"].to_numpy(), px["y"].to_numpy())
        part = coverage_sums(px["unit"].to_numpy(), w, minutes, n, threshold)
        timed_w = part["total"] - part["no_traveltime"]
        for k in ("total", "within", "beyond", "no_traveltime"):
            acc[k] = acc.get(k, np.zeros(n)) + part[k]
        acc["_wtm"] = acc.get("_wtm", np.zeros(n)) + np.nan_to_num(part["mean"]) * timed_w
        wt += timed_w
    if not acc:
        acc = {k: np.zeros(n) for k in ("total", "within", "beyond", "no_traveltime", "_wtm")}
    with np.errstate(invalid="ignore", divide="ignore"):
        acc["mean"] = np.where(wt > 0, acc.pop("_wtm") / np.where(wt > 0, wt, 1.0), np.nan)
    return acc


def _label(minutes: float) -> str:
    return f"{minutes:g}min"


def travel_time_coverage(
    units: gpd.GeoDataFrame,
    population: Any,
    travel_time: Any,
    minutes: float = 60,
    children: Any = None,
    *,
    prefix: str = "population",
    children_prefix: str = "children",
) -> gpd.GeoDataFrame:
    """Population (and children) within / beyond ``minutes`` of travel time, per unit.

    Parameters
    ----------
    units
        Polygons (admin units, H3 fragments).
    population
        Population count raster (path; band 1).
    travel_time
        A :class:`TravelTimeRaster` from :func:`gp.travel_time`, or a travel-time raster path
        (minutes), on any grid and CRS: each population pixel takes the value of the cell
        containing its centre.
    minutes
        Threshold in minutes (inclusive).
    children
        Optional: a child-population raster path, or the child share of the population as a
        float, a column of ``units`` or a Series indexed by ``ucode`` (as in
        :func:`gp.population_within`).
    prefix, children_prefix
        Column prefixes.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` with ``{prefix}_total``, ``{prefix}_within_{M}min``,
        ``{prefix}_beyond_{M}min``, ``{prefix}_no_traveltime`` (part of beyond) and
        ``{prefix}_traveltime_mean_min`` (weighted mean over pixels with a time); the same with
        ``children_prefix`` when ``children`` is given.

    Examples
    --------
    >>> tt = gp.travel_time("friction.tif", clinics)  # doctest: +SKIP
    >>> out = gp.travel_time_coverage(districts, "pop.tif", tt, minutes=60)  # doctest: +SKIP
    >>> out["population_within_60min"] / out["population_total"]  # doctest: +SKIP
    """
    from geopipe.zonal.distance import _children_share
    from geopipe.zonal.points import _check_frame, _check_name

    _check_frame(units, "units", WHERE)
    if not (np.isfinite(minutes) and minutes >= 0):
        raise InputError(problem("`minutes`", f"was {minutes!r}", "pass minutes >= 0", where=WHERE))
    tt = _as_grid(travel_time)
    lab = _label(minutes)
    names = {
        "total": "{p}_total",
        "within": f"{{p}}_within_{lab}",
        "beyond": f"{{p}}_beyond_{lab}",
        "no_traveltime": "{p}_no_traveltime",
        "mean": "{p}_traveltime_mean_min",
    }
    prefixes = [prefix] + ([children_prefix] if children is not None else [])
    for p in prefixes:
        for n in names.values():
            _check_name(units, n.format(p=p), WHERE)
    out = units.copy()
    sums = _sums_for(units, population, tt, minutes)
    for k, n in names.items():
        out[n.format(p=prefix)] = sums[k]
    if children is not None:
        is_column = isinstance(children, str) and children in units.columns
        if (isinstance(children, str) and not is_column) or hasattr(children, "__fspath__"):
            csums = _sums_for(units, children, tt, minutes)
        else:
            share = _children_share(children, units, WHERE)
            csums = {k: (v if k == "mean" else share * v) for k, v in sums.items()}
        for k, n in names.items():
            out[n.format(p=children_prefix)] = csums[k]
    return out
