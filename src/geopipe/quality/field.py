"""The input checks for files as they come from the field (issue 12), in one call for a run's
input stage or ``geopipe validate``: nothing is computed but one zonal sum of the population.

:func:`check_field_inputs` validates the ``quality.levels`` keys, checks the hierarchy
(:func:`~geopipe.quality.hierarchy.check_hierarchy`), the population share outside every unit
(:func:`~geopipe.quality.rasters.check_outside_units`), and stops with
:class:`~geopipe.errors.EmptyInputError` on a point or tile layer none of whose points lies inside
the boundaries (:func:`~geopipe.quality.points.require_points_inside`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import geopandas as gpd

from .checks import CheckResult, validate_check_levels

__all__ = ["check_field_inputs"]


def check_field_inputs(
    admin: gpd.GeoDataFrame,
    *,
    population: str | os.PathLike[str] | None = None,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    edge: str = "fraction",
    outside_share: float = 0.01,
    levels: Mapping[str, Any] | None = None,
) -> list[CheckResult]:
    """Run the issue-12 input checks: hierarchy, population outside the units, empty layers.

    Parameters
    ----------
    admin
        ``dim_admin`` from :func:`geopipe.read_admin`; the population and the layers are compared
        with its finest level.
    population
        The population raster (optional): counts the people in the island parts a country outline
        leaves out, and gives ``raster.outside_units``.
    layers
        ``{name shown in messages: points or tiles GeoDataFrame}``, as read by the run.
    edge
        The run's edge rule (``"fraction"`` or ``"renormalize"``), for ``raster.outside_units``.
    outside_share
        Warn threshold of ``raster.outside_units`` (config ``quality.outside_share``).
    levels
        The config's ``quality.levels``; unknown check ids raise
        :class:`~geopipe.errors.ConfigError` with "did you mean" suggestions.

    Returns
    -------
    list of CheckResult
        ``admin.nearest_parent``, ``admin.outside_country``, ``admin.parent_code_mismatch`` and,
        with ``population``, ``raster.outside_units``.

    Raises
    ------
    ConfigError
        ``levels`` names unknown check ids or levels.
    EmptyInputError
        A layer has no point inside the boundaries (the message names it and the likely cause).

    Examples
    --------
    >>> import geopipe as gp
    >>> admin = gp.read_admin({0: "vnm_adm0.geojson", 1: "vnm_adm1.geojson"})  # doctest: +SKIP
    >>> results = check_field_inputs(admin, population="vnm_ppp_2020.tif")  # doctest: +SKIP
    >>> [(r.check_id, r.level) for r in results][:1]  # doctest: +SKIP
    [('admin.nearest_parent', 'warn')]
    """
    from .hierarchy import check_hierarchy
    from .points import require_points_inside
    from .rasters import check_outside_units

    lv = validate_check_levels(levels)
    finest = admin[admin["admin_level"] == admin["admin_level"].max()]
    for name, frame in (layers or {}).items():
        require_points_inside(frame, finest, source=name, where="check_field_inputs")
    results = check_hierarchy(admin, population=population, levels=lv)
    if population is not None:
        results.append(
            check_outside_units(finest, population, edge=edge, warn_share=outside_share, levels=lv)
        )
    return results
