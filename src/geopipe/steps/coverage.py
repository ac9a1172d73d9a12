"""Distance coverage: population and children within / beyond a distance of a facility layer
(points, or lines and polygons such as power lines, roads or markets), and the
population-weighted mean distance (the functions of :mod:`geopipe.zonal.distance`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..indicators.catalog import Indicator, get_indicators
from .base import Step, StepData, source, step_type

__all__ = ["DENSE_PIXELS", "DistanceCoverage", "distance_label"]

#: grids up to this many pixels keep one distance per pixel for the whole run (8 bytes a pixel)
DENSE_PIXELS = 32_000_000


def distance_label(km: float) -> tuple[str, str]:
    """The id part and the text of a distance: whole km -> ``5km`` / ``5 km``, else metres.

    Examples
    --------
    >>> distance_label(5.0), distance_label(2.5)
    (('5km', '5 km'), ('2500m', '2.5 km'))
    """
    if float(km).is_integer():
        return f"{int(km)}km", f"{int(km)} km"
    metres = km * 1000.0
    part = (
        f"{int(round(metres))}m"
        if abs(metres - round(metres)) < 1e-6
        else f"{metres:g}m".replace(".", "p")
    )
    return part, f"{km:g} km"


@step_type
@dataclasses.dataclass(frozen=True)
class DistanceCoverage(Step):
    """Who lives within ``distance_km`` of a facility layer, per unit.

    Every pixel of the ``population`` raster (and of ``children``) counts, coverage-weighted,
    as *within* when the distance from its centre to the nearest feature of ``facilities`` is
    at most ``distance_km`` (geodesic for points; see :func:`nearest_feature_distance` for lines
    and polygons), so within + beyond = total exactly. Ids follow the documented rule
    ``population_within_{distance}_{service}`` / ``children_beyond_{distance}_{service}`` /
    ``share_population_within_{distance}_{service}`` / ``distance_to_{service}_km_mean``, where
    ``{distance}`` is ``5km`` (whole km) or ``2500m`` and ``service`` defaults to the facility
    source's name; ``total`` is the column of the population sum the share divides by.

    Examples
    --------
    >>> DistanceCoverage(facilities="schools", distance_km=2, service="schools",
    ...                  facility_name="school").columns()
    ['population_within_2km_schools', 'children_beyond_2km_schools', 'distance_to_schools_km_mean']
    """

    kind = "distance_coverage"
    pixel = True
    facilities: str = source("points", "vector", "tiles")
    population: str = source("raster", default="population_total")
    children: str | None = source("raster", default="population_u18")
    distance_km: float = 5.0
    service: str | None = None
    facility_name: str | None = None
    total: str = "population_total"
    mean_distance: bool = True

    def problems(self) -> list[str]:
        out = []
        if not self.distance_km > 0:
            out.append(f"distance_km must be a distance > 0 in km (was {self.distance_km!r})")
        if self.service is not None and not self.service.replace("_", "").isalnum():
            out.append(
                f"service {self.service!r} must be letters, digits and '_' (it is part of ids)"
            )
        return out

    def _values(self) -> dict[str, str]:
        part, text = distance_label(self.distance_km)
        service = self.service or self.facilities
        return {
            "distance": part,
            "distance_text": text,
            "service": service,
            "facility_name": self.facility_name or service.replace("_", " "),
            "facilities": self.facilities,
        }

    def _entry(self, template: str, **changes: Any) -> Indicator:
        ind = get_indicators()[template].render(self._values(), self.params())
        return dataclasses.replace(ind, **changes) if changes else ind

    def indicators(self) -> list[Indicator]:
        within = self._entry("population_within_{distance}_{service}")
        out = [within]
        if self.children:
            out.append(self._entry("children_beyond_{distance}_{service}"))
        if self.mean_distance:
            out.append(self._entry("distance_to_{service}_km_mean", weight=self.total))
        out.append(
            self._entry(
                "share_population_within_{distance}_{service}",
                denominator=self.total,
                description=f"{within.id} / {self.total}, the share of the population living within "
                f"{self._values()['distance_text']} of a {self._values()['facility_name']}.",
            )
        )
        return out

    def additive(self) -> bool:
        """Population sums; the mean distance is weighted by another step's total (``total``),
        which need not be the exact sum it was divided by, so with it the pixels are used."""
        return not self.mean_distance

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        limit = self.distance_km * 1000.0
        ids = [i.id for i in self.indicators()]
        px = data.pixels(self.population)
        d = self._distances(data, px)
        w = _weights(px)
        inside = d <= limit  # False where there is no distance (nan)
        cols = {ids[0]: np.bincount(px.unit, np.where(inside, w, 0.0), minlength=px.n)}
        if self.children:
            cpx = data.pixels(self.children)
            cd = self._distances(data, cpx)
            cw = _weights(cpx)
            cin = cd <= limit
            cols[ids[1]] = np.bincount(cpx.unit, np.where(cin, 0.0, cw), minlength=cpx.n)
        if self.mean_distance:
            wsum = np.bincount(px.unit, w, minlength=px.n)
            wd = np.bincount(px.unit, w * np.nan_to_num(d), minlength=px.n)
            with np.errstate(invalid="ignore", divide="ignore"):
                cols[f"distance_to_{self._values()['service']}_km_mean"] = np.where(
                    wsum > 0, wd / wsum / 1000.0, np.nan
                )
        return cols

    def _distances(self, data: StepData, px: Any) -> np.ndarray:
        """Distance (m) from each pixel centre to the nearest facility, once per distinct pixel.

        Only pixels that weigh something in this step (a non-zero value of ``population`` or
        ``children`` on this grid) are measured; the others keep ``nan`` and add nothing. On
        grids up to :data:`DENSE_PIXELS` pixels the distances are kept for the whole run in a
        grid-shaped array, so the admin units and the grid fragments (the same pixels) share them.
        """
        rasters = tuple(r for r in (self.population, self.children) if r)

        def compute() -> np.ndarray:
            from ..zonal.distance import nearest_feature_distance

            first, inverse = px.distinct
            need = np.zeros(len(first), dtype=bool)
            for name in rasters:
                if data.pixels(name).grid == px.grid:
                    values, ok = px.values(name)
                    need |= ok[first] & (values[first] != 0)
            height, width = px.weights.shape
            if height * width > DENSE_PIXELS:
                at = first[need]  # the pairs standing for the pixels to measure
                d = np.full(len(first), np.nan)
                d[need] = nearest_feature_distance(
                    px.lon[at],
                    px.lat[at],
                    data.source(self.facilities),
                    lattice=(px.weights.row[at], px.weights.col[at]),
                    transform=px.weights.lonlat_transform(),
                )
                return d[inverse]
            rows, cols = px.weights.row[first], px.weights.col[first]
            known = data.memo(
                ("distance_grid", self.facilities, px.grid[:4]),
                lambda: np.full((height, width), np.nan),
                scope="run",
            )
            todo = need & np.isnan(known[rows, cols])
            if todo.any():
                known[rows[todo], cols[todo]] = nearest_feature_distance(
                    px.lon[first][todo],
                    px.lat[first][todo],
                    data.source(self.facilities),
                    lattice=(rows[todo], cols[todo]),
                    transform=px.weights.lonlat_transform(),
                )
            return known[rows, cols][inverse]

        return data.memo(("distance", self.facilities, px.grid, rasters), compute, scope="pixels")


def _weights(px: Any) -> np.ndarray:
    values, ok = px.values(px.raster)
    return px.coverage * np.where(ok, values, 0.0)
