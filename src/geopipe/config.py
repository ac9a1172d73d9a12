"""Pipeline configuration: a YAML file (or dict) validated into a :class:`PipelineConfig`.

Relative paths in a YAML file are resolved from the folder of that file, so a config runs the same
from any working directory. Every problem is reported at once, not only the first.

Example (``pipelines/sample.yaml``)::

    name: sample
    date: 2020-01-01
    output: ../out/sample
    admin:
      source: {0: ../data/sample/rwa_adm0.geojson, 1: ..., 2: ...}
    rasters:
      population_total: ../data/sample/rwa_population_2020_modelled_232m.tif
    points:
      health_facilities: {source: ../data/sample/rwa_who_public_health_facilities.csv}
      schools_total:
        source: ../data/sample/rwa_schools_modelled.csv
        subsets: {schools_connected: {column: connectivity, values: ["Yes", "1", "true"]}}
    indicators: [population_total, health_facilities, schools_connected_share]
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, MissingFileError, problem

__all__ = ["PipelineConfig", "PointLayer", "load_config"]

_TOP_KEYS = {
    "name",
    "date",
    "output",
    "admin",
    "rasters",
    "points",
    "indicators",
    "grids",
    "age_shares",
    "description",
    "wealth",
    "connectivity",
    "service",
    "quality",
    "history",
}
_LAYER_SOURCES = ("tiles", "raster", "points")
_SERVICE_KEYS = {"facilities", "distance_km"}
_QUALITY_KEYS = {
    "k",
    "max_change",
    "levels",
    "tolerance",
    "area_tolerance",
    "coverage_tolerance",
    "min_decimals",
    "allowed",
}
_ADMIN_KEYS = {"source", "iso3", "mapping", "valid_on", "layer", "crs", "version"}
_POINT_KEYS = {
    "source",
    "lon",
    "lat",
    "crs",
    "id_col",
    "name_col",
    "category_col",
    "layer",
    "sheet",
    "encoding",
    "drop_columns",
    "subsets",
}


@dataclass(frozen=True)
class PointLayer:
    """A point layer counted per unit into the column ``name``; ``subsets`` add filtered counts."""

    name: str
    source: Path
    options: dict[str, Any] = field(default_factory=dict)
    subsets: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineConfig:
    """A validated pipeline description. Build it with :func:`load_config` or directly."""

    name: str
    date: dt.date
    output: Path
    admin_source: Path | dict[int, Path]
    admin_options: dict[str, Any] = field(default_factory=dict)
    rasters: dict[str, Path] = field(default_factory=dict)
    points: tuple[PointLayer, ...] = ()
    indicators: tuple[str, ...] | None = None
    h3_resolutions: tuple[int, ...] = ()
    age_shares: Path | None = None
    wealth: dict[str, Any] = field(default_factory=dict)
    connectivity: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    history: Path | None = None
    config_path: Path | None = None

    def input_files(self) -> dict[str, Path]:
        """Every input file by a stable role name (used for hashing and lineage)."""
        files: dict[str, Path] = {}
        if isinstance(self.admin_source, dict):
            files.update({f"admin_adm{lv}": p for lv, p in self.admin_source.items()})
        else:
            files["admin"] = self.admin_source
        files.update({f"raster_{k}": p for k, p in self.rasters.items()})
        files.update({f"points_{layer.name}": layer.source for layer in self.points})
        if self.age_shares is not None:
            files["age_shares"] = self.age_shares
        if self.wealth:
            files["wealth_tiles"] = self.wealth["tiles"]
        if self.connectivity:
            files["connectivity_tiles"] = self.connectivity["tiles"]
        return files


def load_config(
    source: str | Path | Mapping[str, Any], *, base: str | Path | None = None
) -> PipelineConfig:
    """Read and validate a pipeline configuration.

    Parameters
    ----------
    source
        Path of a YAML file, or a mapping with the same content.
    base
        Folder relative paths are resolved from (default: the YAML file's folder, or the current
        folder for a mapping).

    Examples
    --------
    >>> cfg = load_config({"name": "demo", "date": "2024-01-01", "output": "out/demo",
    ...                    "admin": {"source": "adm2.geojson"}})
    >>> cfg.name, str(cfg.date)
    ('demo', '2024-01-01')
    """
    config_path: Path | None = None
    if isinstance(source, Mapping):
        data = dict(source)
        root = Path(base) if base is not None else Path.cwd()
    else:
        config_path = Path(source)
        if not config_path.is_file():
            raise MissingFileError(
                problem(
                    f"config '{config_path}'",
                    "does not exist",
                    "check the path",
                    where="load_config",
                )
            )
        try:
            data = yaml.load(config_path.read_text(encoding="utf-8"), Loader=_Loader)
        except yaml.YAMLError as exc:
            raise ConfigError(
                problem(
                    f"config '{config_path}'",
                    f"is not valid YAML ({exc})",
                    "fix the syntax",
                    where="load_config",
                )
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(
                problem(
                    f"config '{config_path}'",
                    "is not a mapping of keys",
                    "start from pipelines/sample.yaml",
                    where="load_config",
                )
            )
        root = Path(base) if base is not None else config_path.parent
    errors: list[str] = []
    label = str(config_path) if config_path else "config"

    unknown = set(data) - _TOP_KEYS
    if unknown:
        errors.append(f"unknown keys {sorted(unknown)} (allowed: {sorted(_TOP_KEYS)})")
    name = str(data.get("name") or (config_path.stem if config_path else ""))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        errors.append(
            f"'name' {name!r} must be letters, digits, '_', '-' or '.' (it names the output folder)"
        )
    try:
        date = _date(data.get("date"))
    except ValueError as exc:
        errors.append(str(exc))
        date = dt.date.today()
    output = (root / str(data.get("output") or f"out/{name}")).resolve()

    admin = data.get("admin")
    admin_source: Path | dict[int, Path] = Path()
    admin_options: dict[str, Any] = {}
    if not isinstance(admin, dict) or "source" not in admin:
        errors.append("'admin' must be a mapping with a 'source' (a path or {level: path})")
    else:
        bad = set(admin) - _ADMIN_KEYS
        if bad:
            errors.append(f"admin: unknown keys {sorted(bad)} (allowed: {sorted(_ADMIN_KEYS)})")
        src = admin["source"]
        if isinstance(src, dict):
            admin_source = {}
            for lv, p in src.items():
                if not str(lv).isdigit():
                    errors.append(f"admin.source: key {lv!r} is not an admin level (0, 1, 2, ...)")
                    continue
                admin_source[int(lv)] = _file(root, p, f"admin.source[{lv}]", errors)
        else:
            admin_source = _file(root, src, "admin.source", errors)
        admin_options = {k: v for k, v in admin.items() if k in _ADMIN_KEYS - {"source"}}

    rasters: dict[str, Path] = {}
    for key, path in (data.get("rasters") or {}).items():
        rasters[str(key)] = _file(root, path, f"rasters.{key}", errors)

    points: list[PointLayer] = []
    for key, spec in (data.get("points") or {}).items():
        spec = {"source": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or "source" not in spec:
            errors.append(f"points.{key}: needs a 'source'")
            continue
        bad = set(spec) - _POINT_KEYS
        if bad:
            errors.append(
                f"points.{key}: unknown keys {sorted(bad)} (allowed: {sorted(_POINT_KEYS)})"
            )
        subsets: dict[str, tuple[str, tuple[str, ...]]] = {}
        for sub, rule in (spec.get("subsets") or {}).items():
            if not isinstance(rule, dict) or "column" not in rule or "values" not in rule:
                errors.append(f"points.{key}.subsets.{sub}: needs 'column' and 'values'")
                continue
            subsets[str(sub)] = (str(rule["column"]), tuple(str(v) for v in rule["values"]))
        options = {
            k: v for k, v in spec.items() if k not in {"source", "subsets"} and k in _POINT_KEYS
        }
        points.append(
            PointLayer(
                str(key),
                _file(root, spec["source"], f"points.{key}.source", errors),
                options,
                subsets,
            )
        )

    indicators = data.get("indicators")
    if indicators is not None:
        from .indicators.catalog import get_indicators

        if not isinstance(indicators, list):
            errors.append("'indicators' must be a list of indicator ids")
            indicators = None
        else:
            try:
                get_indicators([str(i) for i in indicators])
            except Exception as exc:
                errors.append(str(exc))
            indicators = tuple(str(i) for i in indicators)

    grids = data.get("grids") or {}
    h3_res: tuple[int, ...] = ()
    if grids:
        res = grids.get("h3", []) if isinstance(grids, dict) else None
        res = [res] if isinstance(res, int) else res
        if not isinstance(res, list) or not all(isinstance(r, int) and 0 <= r <= 15 for r in res):
            errors.append("grids.h3 must be a resolution 0-15 or a list of them")
        else:
            h3_res = tuple(res)

    age_shares = (
        _file(root, data["age_shares"], "age_shares", errors) if data.get("age_shares") else None
    )

    wealth = _layer(
        data.get("wealth"),
        "wealth",
        root,
        errors,
        {
            "value": "rwi",
            "scale": 1.0,
            "poverty_threshold": 0.0,
            "zoom": None,
            "max_distance_km": None,
        },
    )
    connectivity = _layer(
        data.get("connectivity"),
        "connectivity",
        root,
        errors,
        {
            "value": "avg_d_kbps",
            "scale": 0.001,
            "broadband_mbps": 10.0,
            "min_tests": 1,
            "zoom": None,
        },
    )
    for section, needs in (("wealth", "population_u18"), ("connectivity", "population_total")):
        if data.get(section) and needs not in rasters:
            errors.append(f"{section}: needs a '{needs}' raster under 'rasters'")
    service: dict[str, Any] = {}
    if data.get("service"):
        spec = data["service"]
        if not isinstance(spec, dict) or "facilities" not in spec:
            errors.append(
                "service: needs 'facilities' (the name of a points layer, e.g. health_facilities)"
            )
        else:
            bad = set(spec) - _SERVICE_KEYS
            if bad:
                errors.append(
                    f"service: unknown keys {sorted(bad)} (allowed: {sorted(_SERVICE_KEYS)})"
                )
            if spec["facilities"] not in {p.name for p in points}:
                errors.append(
                    f"service.facilities {spec['facilities']!r} is not a layer under 'points'"
                )
            if "population_total" not in rasters:
                errors.append("service: needs a 'population_total' raster under 'rasters'")
            service = {
                "facilities": str(spec["facilities"]),
                "distance_km": float(spec.get("distance_km", 5.0)),
            }
    quality = dict(data.get("quality") or {})
    bad = set(quality) - _QUALITY_KEYS
    if bad:
        errors.append(f"quality: unknown keys {sorted(bad)} (allowed: {sorted(_QUALITY_KEYS)})")
    for key in ("k", "max_change", "tolerance", "area_tolerance", "coverage_tolerance"):
        if key in quality and not (
            isinstance(quality[key], int | float)
            and not isinstance(quality[key], bool)
            and quality[key] >= 0
        ):
            errors.append(f"quality.{key} must be a number >= 0 (was {quality[key]!r})")
    history = (root / str(data["history"])).resolve() if data.get("history") else None

    if errors:
        raise ConfigError(
            problem(
                f"'{label}'",
                "has problems: " + "; ".join(errors),
                "fix them (see pipelines/sample.yaml for a working example)",
                where="load_config",
            )
        )
    return PipelineConfig(
        name=name,
        date=date,
        output=output,
        admin_source=admin_source,
        admin_options=admin_options,
        rasters=rasters,
        points=tuple(points),
        indicators=indicators,
        h3_resolutions=h3_res,
        age_shares=age_shares,
        wealth=wealth,
        connectivity=connectivity,
        service=service,
        quality=quality,
        history=history,
        config_path=config_path,
    )


def _layer(
    spec: Any, section: str, root: Path, errors: list[str], defaults: dict[str, Any]
) -> dict[str, Any]:
    """A tile layer section (``wealth`` / ``connectivity``): tiles path + parameters with defaults."""
    if not spec:
        return {}
    allowed_sources = _LAYER_SOURCES if section == "wealth" else ("tiles",)
    given = [k for k in allowed_sources if isinstance(spec, dict) and k in spec]
    if len(given) != 1:
        errors.append(
            f"{section}: needs exactly one of {list(allowed_sources)} (a tile file, a value raster or a point layer)"
        )
        return {}
    allowed = {*allowed_sources, *defaults}
    bad = set(spec) - allowed
    if bad:
        errors.append(f"{section}: unknown keys {sorted(bad)} (allowed: {sorted(allowed)})")
    out = {**defaults, **{k: v for k, v in spec.items() if k in allowed}}
    out["kind"] = given[0]
    out["tiles"] = _file(root, spec[given[0]], f"{section}.{given[0]}", errors)  # the layer's file
    out.pop("raster", None)
    out.pop("points", None)
    if given[0] == "points" and not out.get("max_distance_km"):
        errors.append(
            f"{section}: a point layer needs max_distance_km (the radius a point speaks for)"
        )
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad date is reported by key, not as a YAML error."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _date(value: Any) -> dt.date:
    if value is None:
        raise ValueError("'date' is required: the reference date of the inputs (YYYY-MM-DD)")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"'date' {value!r} is not an ISO date (YYYY-MM-DD)") from exc


def _file(root: Path, value: Any, key: str, errors: list[str]) -> Path:
    path = (root / str(value)).resolve() if not Path(str(value)).is_absolute() else Path(str(value))
    if not path.exists():
        errors.append(f"{key}: file '{value}' does not exist (resolved to {path})")
    return path
