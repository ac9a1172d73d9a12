"""Step types over the zonal functions: raster statistics, point counts, age shares, line length,
areal interpolation. Each is a declaration around one function of :mod:`geopipe.zonal`."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import InputError, MissingColumnError, problem
from ..indicators.catalog import Indicator, get_indicators
from .base import Step, StepData, source, step_type

__all__ = ["AgeShares", "ArealInterpolate", "LineLength", "PointCount", "RasterStats", "measure"]

_ROLLABLE = ("sum", "mean", "count", "weighted_mean")


def measure(
    id: str,
    *,
    params: dict[str, Any],
    values: dict[str, Any] | None = None,
    name: str | None = None,
    unit: str | None = None,
    family: str | None = None,
    description: str | None = None,
    sensitive: bool | None = None,
    aggregation: str = "sum",
    weight: str | None = None,
) -> Indicator:
    """The indicator a step publishes as column ``id``: the catalog entry of that id (its text
    filled from ``values``), else a new entry from the keyword arguments; explicit keywords win.

    Examples
    --------
    >>> measure("population_total", params={"kind": "raster_stats"}).unit
    'people'
    >>> measure("night_lights", params={}, unit="nW/sr/cm2", description="Mean radiance.").family
    'other'
    """
    catalog = get_indicators()
    base = catalog.get(id)
    if base is None:
        base = Indicator(
            id=id,
            name=id.replace("_", " ").capitalize(),
            unit="",
            family="other",
            aggregation=aggregation,  # type: ignore[arg-type]
            description="",
            weight=weight,
        )
    ind = base.render(values or {}, params)
    changes = {
        k: v
        for k, v in {
            "name": name,
            "unit": unit,
            "family": family,
            "description": description,
            "sensitive": sensitive,
        }.items()
        if v is not None
    }
    return dataclasses.replace(ind, **changes) if changes else ind


@step_type
@dataclasses.dataclass(frozen=True)
class RasterStats(Step):
    """Coverage-weighted statistics of a raster per unit (:func:`gp.zonal_raster`).

    ``stats: [sum]`` publishes one column named ``column`` (default: the raster source's name);
    other statistics publish ``{column}_{stat}``. ``mean`` also publishes ``{column}_count`` (the
    coverage-weighted pixel count) as its roll-up weight; ``weighted_mean`` needs ``weights`` (a
    raster source on the same grid) and publishes ``{column}_weight``.

    Examples
    --------
    >>> RasterStats(raster="night_lights", stats=("mean",), unit="nW/sr/cm2").columns()
    ['night_lights_mean', 'night_lights_count']
    """

    kind = "raster_stats"
    pixel = True
    raster: str = source("raster")
    stats: tuple[str, ...] = ("sum",)
    column: str | None = None
    weights: str | None = source("raster", optional=True)
    edge: Literal["fraction", "renormalize"] = "fraction"
    title: str | None = None
    unit: str | None = None
    family: str | None = None
    description: str | None = None
    sensitive: bool | None = None

    def problems(self) -> list[str]:
        bad = [s for s in self.stats if s not in _ROLLABLE]
        out = []
        if bad:
            out.append(
                f"stats {bad} cannot be rolled up the hierarchy; use {list(_ROLLABLE)} "
                "(gp.zonal_raster computes min / max / median on its own)"
            )
        if not self.stats:
            out.append("stats is empty")
        if "weighted_mean" in self.stats and self.weights is None:
            out.append("weighted_mean needs weights (a raster source on the same grid)")
        return out

    @property
    def prefix(self) -> str:
        return self.column or self.raster

    def _col(self, stat: str) -> str:
        return self.prefix if self.stats == ("sum",) else f"{self.prefix}_{stat}"

    def indicators(self) -> list[Indicator]:
        p, v = self.params(), {"raster_text": f" ({self.raster})"}
        meta = {
            "name": self.title,
            "unit": self.unit,
            "family": self.family,
            "sensitive": self.sensitive,
        }
        out = []
        for stat in self.stats:
            if stat == "sum":
                out.append(
                    measure(
                        self._col("sum"),
                        params=p,
                        values=v,
                        description=self.description
                        or f"Sum of raster {self.raster} over the unit (coverage-weighted).",
                        **meta,
                    )
                )
            elif stat == "count":
                out.append(self._count(p))
            elif stat == "mean":
                out.append(self._count(p))
                out.append(
                    measure(
                        self._col("mean"),
                        params=p,
                        aggregation="weighted_mean",
                        weight=self._col("count"),
                        description=self.description
                        or f"Mean of raster {self.raster} over the unit (coverage-weighted; rolls up weighted by {self._col('count')}).",
                        **meta,
                    )
                )
            elif stat == "weighted_mean":
                out.append(
                    measure(
                        f"{self.prefix}_weight",
                        params=p,
                        unit="",
                        description=f"Sum of raster {self.weights} over the unit (the weight of {self._col('weighted_mean')}).",
                    )
                )
                out.append(
                    measure(
                        self._col("weighted_mean"),
                        params=p,
                        aggregation="weighted_mean",
                        weight=f"{self.prefix}_weight",
                        description=self.description
                        or f"Mean of raster {self.raster} weighted by raster {self.weights} over the unit.",
                        **meta,
                    )
                )
        seen: dict[str, Indicator] = {}
        for ind in out:
            seen.setdefault(ind.id, ind)
        return list(seen.values())

    def _count(self, p: dict[str, Any]) -> Indicator:
        return measure(
            self._col("count"),
            params=p,
            unit="pixels",
            description=f"Coverage-weighted number of valid pixels of raster {self.raster} in the unit.",
        )

    def additive(self) -> bool:
        """Sums, counts and means weighted by the count; a ``weighted_mean``'s declared weight
        also counts pixels without a value, so that one is computed through the pixels."""
        return set(self.stats) <= {"sum", "count", "mean"}

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        """Sums over the (unit, pixel) pairs of the batch's shared pixel weights.

        The values at the pairs are gathered once per raster and grid for every step of the
        batch (the coverage steps read the same population pixels), so a sum is one weighted
        ``bincount``; it equals :func:`gp.zonal_raster` (exactextract's definitions) to float
        rounding (``tests/test_steps.py``).
        """
        px = data.pixels(self.raster, edge=self.edge)
        values, ok = px.values(self.raster)
        cov = px.coverage * ok
        cols: dict[str, np.ndarray] = {}
        total = np.bincount(px.unit, cov * np.where(ok, values, 0.0), minlength=px.n)
        count = np.bincount(px.unit, cov, minlength=px.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            for stat in self.stats:
                if stat == "sum":
                    cols[self._col("sum")] = total
                elif stat in ("count", "mean"):
                    cols[self._col("count")] = count
                    if stat == "mean":
                        cols[self._col("mean")] = np.where(count > 0, total / count, np.nan)
                elif stat == "weighted_mean":
                    wv, wok = px.values(self.weights)
                    w = np.where(ok & wok, px.coverage * np.where(wok, wv, 0.0), 0.0)
                    wden = np.bincount(px.unit, w, minlength=px.n)
                    wsum = np.bincount(px.unit, w * np.where(ok, values, 0.0), minlength=px.n)
                    cols[self._col("weighted_mean")] = np.where(wden > 0, wsum / wden, np.nan)
                    cols[f"{self.prefix}_weight"] = np.bincount(
                        px.unit, px.coverage * np.where(wok, wv, 0.0), minlength=px.n
                    )
        return {c: cols[c] for c in self.columns()}

    def warm(self, data: StepData) -> None:
        if "sum" in self.stats:
            self._total(data)

    def _total(self, data: StepData) -> float:
        raster = data.source(self.raster)
        return data.memo(("raster_total", self.raster), raster.total, scope="run")

    def report(self, units: Any, data: StepData, columns: dict[str, np.ndarray]) -> dict[str, Any]:
        if "sum" not in self.stats:
            return {}
        total = self._total(data)
        assigned = float(np.nansum(columns[self._col("sum")]))
        return {
            "raster": self.raster,
            "edge": self.edge,
            "raster_total": total,
            "assigned_total": assigned,
            "outside_share": (1.0 - assigned / total) if total else None,
        }


@step_type
@dataclasses.dataclass(frozen=True)
class PointCount(Step):
    """Points per unit (:func:`gp.count_points`), plus one count per subset of the points.

    ``subsets`` maps a column name to ``{column: <points column>, values: [...]}``: points whose
    value (trimmed, case-insensitive) is one of ``values``.

    Examples
    --------
    >>> PointCount(points="schools", column="schools_total",
    ...            subsets={"schools_connected": {"column": "connectivity", "values": ["Yes"]}}).columns()
    ['schools_total', 'schools_connected']
    """

    kind = "point_count"
    points: str = source("points")
    column: str | None = None
    subsets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    description: str | None = None
    sensitive: bool | None = None

    def problems(self) -> list[str]:
        return [
            f"subsets.{name} needs 'column' and a list of 'values'"
            for name, rule in self.subsets.items()
            if not isinstance(rule, dict)
            or "column" not in rule
            or not isinstance(rule.get("values"), list | tuple)
        ]

    def indicators(self) -> list[Indicator]:
        p = self.params()
        total = self.column or self.points
        out = [
            measure(
                total,
                params=p,
                unit="points",
                description=self.description
                or f"Number of points of layer {self.points} inside the unit (a point on a shared border counts once).",
                sensitive=self.sensitive,
            )
        ]
        for name, rule in self.subsets.items():
            values = ", ".join(str(v) for v in rule["values"])
            out.append(
                measure(
                    name,
                    params=p,
                    unit="points",
                    description=f"Number of points of layer {self.points} inside the unit whose {rule['column']} is one of: {values}.",
                    sensitive=self.sensitive,
                )
            )
        return out

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        from ..zonal.points import count_points

        points = data.source(self.points)
        total = self.column or self.points
        cols = {
            total: count_points(units, points, name="_n", allow_none_inside=True)["_n"].to_numpy()
        }
        for name, rule in self.subsets.items():
            column = str(rule["column"])
            if column not in points.columns:
                raise MissingColumnError(
                    problem(
                        f"points {self.points!r}",
                        f"have no column {column!r} for subset {name!r}",
                        f"use one of {list(map(str, points.columns))}",
                        where=self.name,
                    )
                )
            wanted = {str(v).strip().lower() for v in rule["values"]}
            chosen = points[points[column].astype(str).str.strip().str.lower().isin(wanted)]
            cols[name] = count_points(units, chosen, name="_n", allow_none_inside=True)[
                "_n"
            ].to_numpy()
        return cols

    def report(self, units: Any, data: StepData, columns: dict[str, np.ndarray]) -> dict[str, Any]:
        points = data.source(self.points)
        counted = int(columns[self.column or self.points].sum())
        info = dict(points.attrs.get("geopipe", {}))
        return {
            "points": len(points),
            "rejected_rows": len(info.get("rejected", [])),
            "counted": counted,
            "outside_units": len(points) - counted,
            **{f"subset_{n}": int(columns[n].sum()) for n in self.subsets},
        }


@step_type
@dataclasses.dataclass(frozen=True)
class AgeShares(Step):
    """Child counts from a total and per-unit age shares (``share_u18``, ``share_u5``) in a table.

    The table is matched on the first key both sides have: ``ucode``, ``pcode``, ``source_id``
    (``shapeID`` in the table), then ``name``; ``outputs`` maps share columns to the columns they
    produce (``total x share``). Units without a share get no value (reported, never guessed).

    Examples
    --------
    >>> AgeShares(table="age_shares").columns()
    ['population_u18', 'population_u5']
    """

    kind = "age_shares"
    table: str = source("table")
    total: str = "population_total"
    outputs: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"share_u18": "population_u18", "share_u5": "population_u5"}
    )

    def indicators(self) -> list[Indicator]:
        p = self.params()
        return [
            measure(
                col,
                params=p,
                description=f"{self.total} x the unit's {share} from table {self.table}.",
            )
            for share, col in self.outputs.items()
        ]

    def needs_columns(self) -> list[str]:
        return [self.total]

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        table = data.source(self.table).rename(columns={"shapeID": "source_id"})
        key = next(
            (
                k
                for k in ("ucode", "pcode", "source_id", "name")
                if k in table.columns and k in units.columns and units[k].notna().all()
            ),
            None,
        )
        if key is None or not set(self.outputs) & set(table.columns):
            raise MissingColumnError(
                problem(
                    f"age-share table {self.table!r}",
                    f"needs a ucode/pcode/source_id/shapeID/name column and share columns {list(self.outputs)}",
                    "add them",
                    where=self.name,
                )
            )
        table = table.drop_duplicates(key).set_index(key)
        keys = units[key].astype(str)
        total = pd.to_numeric(units[self.total], errors="coerce").to_numpy(dtype=float)
        cols = {}
        for share, col in self.outputs.items():
            values = pd.to_numeric(table[share], errors="coerce")
            bad = values.isna() | (values < 0) | (values > 1)
            if bad.any():
                raise InputError(
                    problem(
                        f"age-share table {self.table!r}",
                        f"has {int(bad.sum())} {share} values outside 0-1 or not numbers",
                        "fix the shares",
                        where=self.name,
                    )
                )
            cols[col] = total * keys.map(values.to_dict()).to_numpy(dtype=float)
        return cols

    def report(self, units: Any, data: StepData, columns: dict[str, np.ndarray]) -> dict[str, Any]:
        first = next(iter(columns.values()))
        return {"units_without_share": int(np.isnan(first).sum())}


@step_type
@dataclasses.dataclass(frozen=True)
class LineLength(Step):
    """Geodesic length in km of a line layer (roads, power lines) inside each unit (:func:`gp.line_length`).

    Examples
    --------
    >>> LineLength(lines="power_lines").columns()
    ['power_lines_km']
    """

    kind = "line_length"
    lines: str = source("vector")
    column: str | None = None
    description: str | None = None

    def indicators(self) -> list[Indicator]:
        col = self.column or f"{self.lines}_km"
        return [
            measure(
                col,
                params=self.params(),
                unit="km",
                description=self.description
                or f"Geodesic length of the lines of layer {self.lines} inside the unit.",
            )
        ]

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        from ..zonal.lines import line_length

        col = self.columns()[0]
        return {col: line_length(units, data.source(self.lines), name="_km")["_km"].to_numpy()}


@step_type
@dataclasses.dataclass(frozen=True)
class ArealInterpolate(Step):
    """Transfer a polygon layer's values onto units by area (or a weight raster) (:func:`gp.areal_interpolate`).

    ``extensive`` columns (counts) are split by area share (by weight share with ``weight``) and
    published as sums ``{prefix}{column}``; ``intensive`` columns (rates) are area-weighted means
    ``{prefix}{column}`` rolled up by ``{prefix}covered_km2`` (the unit's area the layer covers).

    Examples
    --------
    >>> ArealInterpolate(layer="surveys", extensive=("households",), prefix="svy_").columns()
    ['svy_households']
    """

    kind = "areal_interpolate"
    layer: str = source("vector", "tiles")
    extensive: tuple[str, ...] = ()
    intensive: tuple[str, ...] = ()
    weight: str | None = source("raster", optional=True)
    prefix: str = ""
    sensitive: bool = False

    def problems(self) -> list[str]:
        out = []
        if not self.extensive and not self.intensive:
            out.append("name at least one column under extensive or intensive")
        if self.intensive and self.weight is not None:
            out.append(
                "intensive columns with a weight raster cannot be rolled up consistently yet; use extensive, or drop weight"
            )
        return out

    def indicators(self) -> list[Indicator]:
        p = self.params()
        out = [
            measure(
                f"{self.prefix}{c}",
                params=p,
                sensitive=self.sensitive,
                description=f"{c} of layer {self.layer} split onto the unit by "
                + (f"the share of raster {self.weight}" if self.weight else "area share")
                + ".",
            )
            for c in self.extensive
        ]
        if self.intensive:
            cov = f"{self.prefix}covered_km2"
            out.append(
                measure(
                    cov,
                    params=p,
                    unit="km2",
                    description=f"Area of the unit covered by layer {self.layer}.",
                )
            )
            out += [
                measure(
                    f"{self.prefix}{c}",
                    params=p,
                    aggregation="weighted_mean",
                    weight=cov,
                    description=f"Area-weighted mean of {c} of layer {self.layer} over the unit.",
                )
                for c in self.intensive
            ]
        return out

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        from ..zonal.areal import areal_interpolate, overlay_table

        layer = data.source(self.layer)
        table = overlay_table(layer, units)
        weight = data.source(self.weight) if self.weight else None
        out = areal_interpolate(
            layer,
            units.drop(
                columns=[c for c in units.columns if c in (*self.extensive, *self.intensive)]
            ),
            extensive=self.extensive,
            intensive=self.intensive,
            weight=weight,
            table=table,
        )
        cols = {
            f"{self.prefix}{c}": out[c].to_numpy(dtype=float)
            for c in (*self.extensive, *self.intensive)
        }
        if self.intensive:
            cols[f"{self.prefix}covered_km2"] = (
                np.bincount(
                    table["unit"].to_numpy(),
                    table["area_m2"].to_numpy(dtype=float),
                    minlength=len(units),
                )
                / 1e6
            )
        return cols


@step_type
@dataclasses.dataclass(frozen=True)
class TableValues(Step):
    """Values reported per admin unit in a table (a DHIS2 analytics export, a survey table) as a
    sum per finest admin unit: the rows whose ``where`` columns match are summed by ``key``.

    Grid fragments get no value (a count reported for a district cannot be placed in its cells):
    the column is empty there. Units without a row get no value either (reported), never 0.

    Examples
    --------
    >>> TableValues(table="hmis", where={"dx": "fbfJHSPpUQD"}, column="anc_visits").columns()
    ['anc_visits']
    """

    kind = "table_values"
    table: str = source("table", "dhis2")
    column: str = "value"
    key: str = "ucode"
    value: str = "value"
    where: dict[str, Any] = dataclasses.field(default_factory=dict)
    unit: str = ""
    description: str | None = None
    sensitive: bool = False

    def indicators(self) -> list[Indicator]:
        rule = ", ".join(f"{k} = {v}" for k, v in self.where.items())
        text = self.description or (
            f"Sum of {self.value} of table {self.table}"
            + (f" where {rule}" if rule else "")
            + f", per unit by {self.key}."
        )
        return [
            measure(
                self.column,
                params=self.params(),
                unit=self.unit,
                description=text,
                sensitive=self.sensitive,
            )
        ]

    def run(self, units: Any, data: StepData) -> dict[str, np.ndarray]:
        table = data.source(self.table)
        missing = [c for c in (self.key, self.value, *self.where) if c not in table.columns]
        if missing:
            raise MissingColumnError(
                problem(
                    f"table {self.table!r}",
                    f"has no columns {missing}",
                    f"use {list(map(str, table.columns))}",
                    where=self.name,
                )
            )
        if "cell_id" in units.columns or self.key not in units.columns:
            return {self.column: np.full(len(units), np.nan)}
        rows = table
        for col, want in self.where.items():
            wanted = {str(v) for v in (want if isinstance(want, list | tuple) else [want])}
            rows = rows[rows[col].astype(str).isin(wanted)]
        values = pd.to_numeric(rows[self.value], errors="coerce")
        sums = values.groupby(rows[self.key].astype(str)).sum(min_count=1)
        return {self.column: units[self.key].astype(str).map(sums).to_numpy(dtype=float)}
