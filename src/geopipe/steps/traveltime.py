"""Travel-time coverage: population and children within / beyond N minutes of a facility layer
over a friction surface, and the population-weighted mean travel time
(:func:`gp.travel_time`, :mod:`geopipe.zonal.traveltime_coverage`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from ..indicators.catalog import Indicator, get_indicators
from .base import Step, StepData, source, step_type

__all__ = ["TravelTimeCoverage", "minutes_label"]


def minutes_label(minutes: float) -> tuple[str, str]:
    """The id part and the text of a travel time: ``60min`` / ``60 minutes``.

    Examples
    --------
    >>> minutes_label(60), minutes_label(7.5)
    (('60min', '60 minutes'), ('7p5min', '7.5 minutes'))
    """
    return f"{minutes:g}min".replace(".", "p"), f"{minutes:g} minutes"


@step_type
@dataclasses.dataclass(frozen=True)
class TravelTimeCoverage(Step):
    """Who lives within ``minutes`` of travel of a facility layer, per unit.

    The travel time to the nearest facility is accumulated once per run over the ``friction``
    raster (:func:`gp.travel_time`: least-cost 8-neighbour moves with true metric lengths; MAP
    convention minutes per metre, or ``friction_unit: kmh``); every pixel of the ``population``
    raster (and of ``children``) then takes the travel time of the friction cell containing its
    centre — sampled, never resampled, so the population grid may differ from the friction grid.
    Pixels without a travel time (barriers, unreached) count as beyond, so within + beyond = total.
    Ids: ``population_within_{time}_{service}``, ``children_beyond_{time}_{service}``,
    ``share_population_within_{time}_{service}``, ``travel_time_to_{service}_min_mean`` (weighted by
    ``population_with_travel_time_{service}``), with ``{time}`` like ``60min``.

    Examples
    --------
    >>> TravelTimeCoverage(friction="friction", facilities="health", minutes=60).columns()[0]
    'population_within_60min_health'
    """

    kind = "travel_time_coverage"
    pixel = True
    friction: str = source("raster")
    facilities: str = source("points")
    population: str = source("raster", default="population_total")
    children: str | None = source("raster", default="population_u18")
    minutes: float = 60.0
    service: str | None = None
    facility_name: str | None = None
    friction_unit: Literal["min_per_m", "kmh"] = "min_per_m"
    max_minutes: float | None = None
    total: str = "population_total"

    def problems(self) -> list[str]:
        out = []
        if not self.minutes > 0:
            out.append(f"minutes must be > 0 (was {self.minutes!r})")
        if self.max_minutes is not None and self.max_minutes < self.minutes:
            out.append(f"max_minutes ({self.max_minutes}) is below minutes ({self.minutes})")
        return out

    def _values(self) -> dict[str, str]:
        part, text = minutes_label(self.minutes)
        service = self.service or self.facilities
        return {
            "time": part,
            "time_text": text,
            "service": service,
            "facility_name": self.facility_name or service.replace("_", " "),
            "facilities": self.facilities,
            "friction": self.friction,
        }

    def indicators(self) -> list[Indicator]:
        v, p = self._values(), self.params()
        cat = get_indicators()
        out = [
            cat["population_within_{time}_{service}"].render(v, p),
            cat["population_with_travel_time_{service}"].render(v, p),
        ]
        if self.children:
            out.append(cat["children_beyond_{time}_{service}"].render(v, p))
        out.append(cat["travel_time_to_{service}_min_mean"].render(v, p))
        share = cat["share_population_within_{time}_{service}"].render(v, p)
        out.append(dataclasses.replace(share, denominator=self.total))
        return out

    def _minutes_at(self, data: StepData, px: Any) -> np.ndarray:
        def grid() -> Any:
            from ..zonal.traveltime import travel_time

            return travel_time(
                data.source(self.friction),
                data.source(self.facilities),
                friction_unit=self.friction_unit,
                max_minutes=self.max_minutes,
            )

        tt = data.memo(
            ("travel_time", self.friction, self.facilities, self.friction_unit, self.max_minutes),
            grid,
            scope="run",
        )
        return data.memo(
            ("minutes_at", self.friction, self.facilities, px.grid),
            lambda: tt.value_at(px.lon, px.lat),
            scope="pixels",
        )

    def _sums(self, data: StepData, raster: str) -> dict[str, np.ndarray]:
        """Within / beyond / mean sums of raster ``raster``'s pixels by their travel time."""
        from ..zonal.traveltime_coverage import coverage_sums

        px = data.pixels(raster)
        values, ok = px.values(raster)
        weight = px.coverage * np.where(ok, values, 0.0)
        return coverage_sums(px.unit, weight, self._minutes_at(data, px), px.n, self.minutes)

    def additive(self) -> bool:
        """Population sums, and the mean time weighted by the population that has a time."""
        return True

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        ids = [i.id for i in self.indicators() if i.aggregation != "ratio"]
        s = self._sums(data, self.population)
        cols = {ids[0]: s["within"], ids[1]: s["total"] - s["no_traveltime"], ids[-1]: s["mean"]}
        if self.children:
            cols[ids[2]] = self._sums(data, self.children)["beyond"]
        return cols
