"""Step types over value layers (:mod:`geopipe.zonal.layers`): any value layer, child poverty,
connectivity. A value layer (tiles, polygons, points or a raster) gives each pixel of a weight
raster a value; the step sums the weights by value per unit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ..indicators.catalog import Indicator
from .base import Step, StepData, source, step_type
from .measures import measure

__all__ = ["ChildPoverty", "Connectivity", "ValueLayer"]

_LAYER_KINDS = ("tiles", "vector", "points", "raster")


def _layer_at_pixels(
    data: StepData,
    px: Any,
    layer: str,
    value: str | None,
    scale: float,
    max_km: float | None,
    keep: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Layer value at each pixel centre of ``px`` (shared by every step using the same layer)."""
    from ..zonal.layers import layer_lookup

    def lookup() -> Any:
        frame = data.source(layer)
        if keep is not None:
            frame = keep(frame)
        return layer_lookup(frame, value, scale, max_km * 1000.0 if max_km else None)

    key = (layer, value, scale, max_km, keep is not None)
    find = data.memo(("layer_lookup", *key), lookup, scope="run")
    return data.memo(
        ("layer_at", *key, px.grid), lambda: find(px.lon, px.lat, px.lattice), scope="pixels"
    )


def _weights(px: Any, raster: str) -> np.ndarray:
    values, ok = px.values(raster)
    return px.coverage * np.where(ok, values, 0.0)


@step_type
@dataclasses.dataclass(frozen=True)
class ValueLayer(Step):
    """Weighted mean and threshold sums of a value layer per unit (:func:`gp.zonal_layer`).

    Each pixel of the ``weight`` raster (population, children) takes the ``value`` of the layer
    at its centre (tile / polygon containing it, nearest point within ``max_distance_km``, or the
    raster cell). Publishes ``{column}_mean`` (weighted mean, rolled up by ``{column}_covered``),
    ``{column}_covered`` (weight with a value), and with thresholds ``{column}_below`` (value
    < ``below``) and ``{column}_at_least`` (value >= ``at_least``).

    Examples
    --------
    >>> ValueLayer(layer="rwi", value="rwi", weight="population_u18", below=0.0).columns()
    ['rwi_covered', 'rwi_mean', 'rwi_below']
    """

    kind = "value_layer"
    pixel = True
    layer: str = source(*_LAYER_KINDS)
    weight: str = source("raster")
    value: str | None = None
    column: str | None = None
    scale: float = 1.0
    below: float | None = None
    at_least: float | None = None
    max_distance_km: float | None = None
    unit: str = ""
    sensitive: bool = False

    def problems(self) -> list[str]:
        if self.max_distance_km is not None and self.max_distance_km <= 0:
            return [f"max_distance_km must be > 0 (was {self.max_distance_km})"]
        return []

    @property
    def prefix(self) -> str:
        return self.column or self.layer

    def indicators(self) -> list[Indicator]:
        p, c = self.params(), self.prefix
        what = f"layer {self.layer}" + (f" ({self.value})" if self.value else "")
        out = [
            measure(
                f"{c}_covered",
                params=p,
                unit="",
                sensitive=self.sensitive,
                description=f"Sum of raster {self.weight} over the unit's pixels where {what} has a value.",
            ),
            measure(
                f"{c}_mean",
                params=p,
                unit=self.unit,
                aggregation="weighted_mean",
                weight=f"{c}_covered",
                description=f"Mean of {what} over the unit, weighted by raster {self.weight}.",
            ),
        ]
        if self.below is not None:
            out.append(
                measure(
                    f"{c}_below",
                    params=p,
                    unit="",
                    sensitive=self.sensitive,
                    description=f"Sum of raster {self.weight} where {what} is below {self.below:g}.",
                )
            )
        if self.at_least is not None:
            out.append(
                measure(
                    f"{c}_at_least",
                    params=p,
                    unit="",
                    sensitive=self.sensitive,
                    description=f"Sum of raster {self.weight} where {what} is at least {self.at_least:g}.",
                )
            )
        return out

    def additive(self) -> bool:
        """Sums of population, and means weighted by the population they were divided by."""
        return True

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        from ..zonal.layers import layer_columns, layer_sums

        px = data.pixels(self.weight)
        v, has = _layer_at_pixels(
            data, px, self.layer, self.value, self.scale, self.max_distance_km
        )
        sums = layer_sums(
            px.unit,
            px.n,
            _weights(px, self.weight),
            v,
            has,
            below=self.below,
            at_least=self.at_least,
        )
        cols = layer_columns(sums, below=self.below, at_least=self.at_least)
        return {
            f"{self.prefix}_{k}": cols[k]
            for k in ("covered", "mean", "below", "at_least")
            if k in cols
        }


@step_type
@dataclasses.dataclass(frozen=True)
class ChildPoverty(Step):
    """Children living where a wealth layer is below a poverty threshold, and the child-weighted
    wealth index: ``children_in_poverty``, ``wealth_index_mean``, ``children_with_wealth_data``
    (the catalog's child-poverty family; ``child_poverty_rate`` follows from them).

    Examples
    --------
    >>> ChildPoverty(layer="rwi").columns()
    ['children_in_poverty', 'children_with_wealth_data', 'wealth_index_mean']
    """

    kind = "child_poverty"
    pixel = True
    layer: str = source(*_LAYER_KINDS)
    children: str = source("raster", default="population_u18")
    value: str | None = "rwi"
    poverty_threshold: float = 0.0
    scale: float = 1.0
    max_distance_km: float | None = None

    def indicators(self) -> list[Indicator]:
        p = self.params()
        v = {
            "poverty_threshold": f"{self.poverty_threshold:g}",
            "layer_text": f" ({self.layer}, column {self.value})",
        }
        return [
            measure(i, params=p, values=v)
            for i in ("children_in_poverty", "children_with_wealth_data", "wealth_index_mean")
        ]

    def additive(self) -> bool:
        """Sums of population, and means weighted by the population they were divided by."""
        return True

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        from ..zonal.layers import layer_columns, layer_sums

        px = data.pixels(self.children)
        v, has = _layer_at_pixels(
            data, px, self.layer, self.value, self.scale, self.max_distance_km
        )
        sums = layer_sums(
            px.unit, px.n, _weights(px, self.children), v, has, below=self.poverty_threshold
        )
        cols = layer_columns(sums, below=self.poverty_threshold)
        return {
            "children_in_poverty": cols["below"],
            "children_with_wealth_data": cols["covered"],
            "wealth_index_mean": cols["mean"],
        }


@step_type
@dataclasses.dataclass(frozen=True)
class Connectivity(Step):
    """Speed tiles (Ookla style) weighted by population: the catalog's connectivity family.

    Publishes ``download_mbps_mean`` (population-weighted), ``population_with_speed_data``,
    ``population_broadband`` (speed >= ``broadband_mbps``), ``children_without_connectivity``
    (with ``children``: below the threshold or without a tile), and with a ``tests`` column
    ``speed_tests`` and ``download_mbps_tests_mean`` (Ookla's own tests weighting). Tiles with
    fewer than ``min_tests`` tests are left out.

    Examples
    --------
    >>> Connectivity(tiles="speed").columns()[:2]
    ['download_mbps_mean', 'population_with_speed_data']
    """

    kind = "connectivity"
    pixel = True
    tiles: str = source("tiles", "vector")
    population: str = source("raster", default="population_total")
    children: str | None = source("raster", optional=True)
    value: str = "avg_d_kbps"
    scale: float = 0.001
    broadband_mbps: float = 10.0
    min_tests: int = 1
    tests_column: str | None = "tests"

    def indicators(self) -> list[Indicator]:
        p = self.params()
        v = {"min_tests": str(self.min_tests), "broadband_mbps": f"{self.broadband_mbps:g}"}
        ids = ["download_mbps_mean", "population_with_speed_data", "population_broadband"]
        if self.children:
            ids.append("children_without_connectivity")
        if self.tests_column:
            ids += ["speed_tests", "download_mbps_tests_mean"]
        return [measure(i, params=p, values=v) for i in ids]

    def _keep(self, tiles: Any) -> Any:
        if self.tests_column and self.tests_column in tiles.columns:
            tests = pd.to_numeric(tiles[self.tests_column], errors="coerce").fillna(0)
            return tiles[tests >= self.min_tests]
        return tiles

    def additive(self) -> bool:
        """Population sums and means as the other layers; Ookla's tests are split by tile area
        shares, and a district's fragments' pieces add up to its own to 4e-4 on the synthetic
        countries (the cut puts vertices on the district's edges, where a geodesic and a
        straight lon/lat edge part), so with ``tests`` the district keeps its own overlay."""
        return self.tests_column is None

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        from ..zonal.layers import layer_columns, layer_sums

        thr = float(self.broadband_mbps)
        cols: dict[str, np.ndarray] = {}
        px = data.pixels(self.population)
        v, has = _layer_at_pixels(data, px, self.tiles, self.value, self.scale, None, self._keep)
        pop = layer_columns(
            layer_sums(px.unit, px.n, _weights(px, self.population), v, has, at_least=thr),
            at_least=thr,
        )
        cols["download_mbps_mean"] = pop["mean"]
        cols["population_with_speed_data"] = pop["covered"]
        cols["population_broadband"] = pop["at_least"]
        if self.children:
            cpx = data.pixels(self.children)
            cv, chas = _layer_at_pixels(
                data, cpx, self.tiles, self.value, self.scale, None, self._keep
            )
            kids = layer_sums(cpx.unit, cpx.n, _weights(cpx, self.children), cv, chas, below=thr)
            cols["children_without_connectivity"] = kids["below"] + kids["uncovered"]
        if self.tests_column:
            tiles = data.memo(
                ("tiles_kept", self.tiles, self.min_tests),
                lambda: self._keep(data.source(self.tiles)),
                scope="run",
            )
            cols["speed_tests"], cols["download_mbps_tests_mean"] = _tests_weighted(
                units, tiles, self.value, self.scale, self.tests_column
            )
        return cols


def _tests_weighted(
    units: Any, tiles: Any, value: str, scale: float, tests_col: str
) -> tuple[np.ndarray, np.ndarray]:
    """Tests per unit (each tile's tests split by area share) and the tests-weighted mean speed."""
    from ..zonal.areal import overlay_table

    n = len(units)
    if tests_col not in tiles.columns:
        return np.zeros(n), np.full(n, np.nan)
    pieces = overlay_table(tiles, units)
    tests = pd.to_numeric(tiles[tests_col], errors="coerce").fillna(0).to_numpy(dtype=float)
    speed = pd.to_numeric(tiles[value], errors="coerce").to_numpy(dtype=float) * scale
    src, unit = pieces["source"].to_numpy(), pieces["unit"].to_numpy()
    w = pieces["area_m2"].to_numpy() / pieces["source_area_m2"].to_numpy() * tests[src]
    ok = np.isfinite(speed[src])
    weight = np.bincount(unit[ok], weights=w[ok], minlength=n)
    total = np.bincount(unit[ok], weights=(w * np.nan_to_num(speed[src]))[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weight, np.where(weight > 0, total / weight, np.nan)
