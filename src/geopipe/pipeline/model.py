"""A pipeline is data: sources + units + steps + indicators + quality + outputs.

:class:`Pipeline` is built in Python (``gp.Pipeline(...)``) or from YAML
(``gp.Pipeline.from_yaml(path)``) into the same objects, and everything the runner needs is read
off it: the files to fingerprint, the steps to run, the run's indicator catalog and the key that
decides whether a run is up to date. Relative paths in a YAML file are resolved from the file's
folder. Every problem is reported at once, in one :class:`~geopipe.errors.ConfigError` that names
each YAML path.

Example (``pipelines/sample.yaml`` is the reference)::

    name: demo
    date: 2024-01-01
    output: ../out/demo
    sources:
      admin: {kind: admin, path: {1: adm1.geojson, 2: adm2.geojson}}
      population_total: {kind: raster, path: pop.tif}
      health_facilities: {kind: points, path: health.csv}
    units: {h3: [7]}
    steps:
      - {kind: raster_stats, raster: population_total}
      - {kind: point_count, points: health_facilities}
      - {kind: distance_coverage, facilities: health_facilities, children: null,
         distance_km: 5, service: health, facility_name: health facility}
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, MissingFileError, problem
from ..indicators.catalog import FAMILIES, Indicator, get_indicators
from ..steps import Step, step_from_dict

__all__ = ["ADMIN_KINDS", "REMOTE_KINDS", "SOURCE_KINDS", "Pipeline", "Source", "Units"]

#: source kind -> reader options it accepts
SOURCE_KINDS: dict[str, frozenset[str]] = {
    "admin": frozenset({"iso3", "mapping", "valid_on", "layer", "crs", "version"}),
    "raster": frozenset(),
    "points": frozenset(
        {
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
        }
    ),
    "tiles": frozenset({"quadkey", "zoom", "tile"}),
    "vector": frozenset({"layer", "crs"}),
    "table": frozenset({"sheet", "encoding"}),
    # a GeoRepo view over HTTP (gp.georepo.read_view): an admin source without a file
    "georepo": frozenset(
        {
            "base_url",
            "view_uuid",
            "levels",
            "valid_on",
            "format",
            "token_env",
            "user_env",
            "view_version",
            "page_size",
            "timeout",
            "retries",
            "backoff",
        }
    ),
    # DHIS2 analytics values, with each org unit matched to a ucode of the pipeline's admin units
    "dhis2": frozenset(
        {
            "base_url",
            "dx",
            "pe",
            "ou",
            "org_unit_levels",
            "level_offset",
            "min_overlap",
            "token_env",
            "user_env",
            "password_env",
            "timeout",
            "retries",
            "backoff",
        }
    ),
}
#: source kinds read over the network (no path; fingerprinted by the content they return)
REMOTE_KINDS = frozenset({"georepo", "dhis2"})
#: source kinds that give admin units
ADMIN_KINDS = frozenset({"admin", "georepo"})
_TOP = (
    "name",
    "description",
    "date",
    "output",
    "history",
    "geosight",
    "countries",
    "sources",
    "units",
    "steps",
    "indicators",
    "quality",
)
_GEOSIGHT = {
    "base_url", "dataset_uuid", "indicators", "token_env", "user_env", "max_workers",
    "timeout", "retries", "backoff",
}  # fmt: skip
_QUALITY = {
    "k": (int, float),
    "max_change": (int, float),
    "levels": dict,
    "tolerance": (int, float),
    "area_tolerance": (int, float),
    "coverage_tolerance": (int, float),
    "min_decimals": int,
    "allowed": dict,
    "outside_share": (int, float),
}
_INDICATOR_KEYS = {
    "id",
    "name",
    "unit",
    "family",
    "aggregation",
    "numerator",
    "denominator",
    "weight",
    "scale",
    "description",
    "sensitive",
}


@dataclasses.dataclass(frozen=True)
class Source:
    """A named input: its reader (``kind``), file (``path``; ``{level: path}`` for admin) and reader options.

    Examples
    --------
    >>> Source("raster", "pop.tif").files()
    {'': PosixPath('pop.tif')}
    """

    kind: str
    path: Any
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def files(self) -> dict[str, Path]:
        """Suffix of the input role -> file (admin levels give ``adm0``, ``adm1`` ...)."""
        if self.path is None:
            return {}
        if isinstance(self.path, Mapping):
            return {
                f"adm{int(k)}": Path(v)
                for k, v in sorted(self.path.items(), key=lambda kv: int(kv[0]))
            }
        return {"": Path(self.path)}

    def to_dict(self) -> dict[str, Any]:
        path = (
            {int(k): str(v) for k, v in self.path.items()}
            if isinstance(self.path, Mapping)
            else str(self.path)
        )
        return {"kind": self.kind, "path": path, **dict(self.options)}


@dataclasses.dataclass(frozen=True)
class Units:
    """Unit sets the steps run on: the finest admin level of ``admin`` (always), H3 resolutions and
    square grids (cell sizes in metres), each split at the admin edges.

    Examples
    --------
    >>> Units(h3=(7,)).sets()
    ['admin', 'h3_r7']
    """

    admin: str = "admin"
    h3: tuple[int, ...] = ()
    square: tuple[float, ...] = ()

    def sets(self) -> list[str]:
        """Names of the unit sets: ``admin``, ``h3_r7``, ``sq_5000`` ..."""
        return ["admin", *(f"h3_r{r}" for r in self.h3), *(f"sq_{s:g}" for s in self.square)]


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A validated pipeline: build it in Python or with :meth:`from_yaml`; run it with :func:`gp.run_pipeline`.

    Examples
    --------
    >>> import geopipe as gp
    >>> p = gp.Pipeline(name="demo", date="2024-01-01",
    ...                 sources={"admin": gp.Source("admin", "adm2.geojson"),
    ...                          "population_total": gp.Source("raster", "pop.tif")},
    ...                 steps=[gp.steps.RasterStats(raster="population_total")], check_files=False)
    >>> [i for i in p.catalog()]
    ['population_total']
    """

    name: str
    date: dt.date
    sources: Mapping[str, Source]
    steps: tuple[Step, ...]
    units: Units = Units()
    indicators: tuple[str | Mapping[str, Any], ...] | None = None
    quality: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    output: Path | None = None
    history: Path | None = None
    description: str = ""
    geosight: Mapping[str, Any] | None = None
    countries: tuple[str, ...] = ()
    config_path: Path | None = None
    check_files: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "date", _date(self.date, []))
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "sources", dict(self.sources))
        if self.indicators is not None:
            object.__setattr__(self, "indicators", tuple(self.indicators))
        if not _DEFERRED.get():
            _raise(self.config_path, self.name, self.problems())

    # ---------------------------------------------------------------- validation
    def problems(self) -> list[str]:
        """Every problem of the pipeline (empty when valid), each naming its YAML path."""
        out: list[str] = []
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name or ""):
            out.append(
                f"name: {self.name!r} must be letters, digits, '_', '-' or '.' (it names the output)"
            )
        bad_iso = [c for c in self.countries if not re.fullmatch(r"[A-Z]{3}", str(c))]
        if bad_iso:
            out.append(f"countries: {bad_iso} are not ISO 3166-1 alpha-3 codes (e.g. RWA)")
        templated = [k for k, v in self.sources.items() if "{iso3}" in str(v.path)]
        if templated and not self.countries:
            out.append(f"sources {templated}: paths with {{iso3}} need a 'countries' list")
        for key, src in self.sources.items():
            if self.countries and "{iso3}" in str(src.path):
                for iso in self.countries:
                    out += _source_problems(key, _for_iso(src, iso), self.check_files)
                continue
            out += _source_problems(key, src, self.check_files)
        admin = self.sources.get(self.units.admin)
        if admin is None or admin.kind not in ADMIN_KINDS:
            out.append(
                f"units.admin: {self.units.admin!r} must name a source of kind admin or georepo"
            )
        if not all(isinstance(r, int) and 0 <= r <= 15 for r in self.units.h3):
            out.append(f"units.h3: {list(self.units.h3)} must be H3 resolutions 0-15")
        if not all(isinstance(s, int | float) and s > 0 for s in self.units.square):
            out.append(f"units.square: {list(self.units.square)} must be cell sizes in metres > 0")
        columns: dict[str, str] = {}
        for i, step in enumerate(self.steps):
            for role, name in step.sources().items():
                kinds = step.source_kinds()[role]
                src = self.sources.get(name)
                if src is None:
                    close = difflib.get_close_matches(name, self.sources, n=1)
                    out.append(
                        f"steps[{i}] ({step.kind}).{role}: {name!r} is not a source"
                        + (
                            f" (did you mean {close[0]!r}?)"
                            if close
                            else f" (sources: {sorted(self.sources)})"
                        )
                    )
                elif src.kind not in kinds:
                    out.append(
                        f"steps[{i}] ({step.kind}).{role}: source {name!r} is a {src.kind}, needs {' or '.join(kinds)}"
                    )
            for col in step.columns():
                if col in columns:
                    out.append(
                        f"steps[{i}] ({step.kind}): column {col!r} is also produced by {columns[col]}"
                    )
                columns[col] = f"steps[{i}] ({step.kind})"
        for i, step in enumerate(self.steps):
            for col in step.needs_columns():
                if col not in columns:
                    out.append(
                        f"steps[{i}] ({step.kind}): needs column {col!r}, which no step produces"
                    )
        out += _quality_problems(self.quality)
        if self.geosight is not None:
            bad = sorted(set(self.geosight) - _GEOSIGHT)
            missing = [
                k for k in ("base_url", "dataset_uuid", "indicators") if k not in self.geosight
            ]
            if bad or missing:
                out.append(
                    f"geosight: unknown keys {bad}, missing {missing}"
                    if bad
                    else f"geosight: needs {missing}"
                )
        if not out:
            try:
                self.catalog()
            except ConfigError as exc:
                out.append(str(exc))
        return out

    # ---------------------------------------------------------------- indicators
    def catalog(self) -> dict[str, Indicator]:
        """The run's indicator catalog, in publishing order: what the steps declare, the built-in
        ratios whose parts the steps produce, and the config's own indicators. Filtered to
        ``indicators`` (plus what they are computed from) when that list is given.

        Examples
        --------
        >>> sample = Pipeline.from_yaml("pipelines/sample.yaml")  # doctest: +SKIP
        >>> sample.catalog()["child_poverty_rate"].numerator  # doctest: +SKIP
        'children_in_poverty'
        """
        entries: dict[str, Indicator] = {}
        owner: dict[str, str] = {}
        for i, step in enumerate(self.steps):
            for ind in step.indicators():
                entries[ind.id] = ind
                owner[ind.id] = f"steps[{i}]"
        user, problems = _user_indicators(self.indicators or (), entries)
        for ind in get_indicators().values():  # built-in ratios over what the steps produce
            if (
                (
                    ind.aggregation == "ratio"
                    and "{" not in ind.id
                    and ind.id not in entries
                    and ind.id not in user
                )
                and ind.numerator in entries
                and ind.denominator in entries
            ):
                entries[ind.id] = ind
        entries.update(user)
        problems += _reference_problems(entries)
        if self.indicators is not None:
            wanted = [i if isinstance(i, str) else str(i.get("id")) for i in self.indicators]
            unknown = [w for w in wanted if w not in entries]
            for w in unknown:
                close = difflib.get_close_matches(w, entries, n=1)
                problems.append(
                    f"indicators: {w!r} is not produced by any step"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                )
            if not problems:
                keep: set[str] = set()
                todo = list(wanted)
                while todo:
                    i = todo.pop()
                    if i not in keep:
                        keep.add(i)
                        todo += list(entries[i].depends_on)
                entries = {k: v for k, v in entries.items() if k in keep}
        if problems:
            raise ConfigError(
                problem("indicators", "; ".join(problems), "fix the indicator definitions")
            )
        return entries

    def needed_steps(self, only: Sequence[str] | None = None) -> list[Step]:
        """Steps the published indicators need (and the steps whose columns those steps read), in
        dependency order. ``only`` keeps the named steps (``kind:column`` or ``kind``) and what they need."""
        catalog = self.catalog()
        producer = {c: s for s in self.steps for c in s.columns()}
        wanted = [s for s in self.steps if set(s.columns()) & set(catalog)]
        if only:
            unknown = [o for o in only if not any(o in (s.name, s.kind) for s in self.steps)]
            if unknown:
                raise ConfigError(
                    problem(
                        "--only",
                        f"names no step: {unknown}",
                        f"use one of {[s.name for s in self.steps]}",
                    )
                )
            wanted = [s for s in wanted if s.name in only or s.kind in only]
        order: list[Step] = []

        def visit(step: Step) -> None:
            if step in order:
                return
            for col in step.needs_columns():
                visit(producer[col])
            order.append(step)

        for step in wanted:
            visit(step)
        return order

    # ---------------------------------------------------------------- files and keys
    def input_files(self) -> dict[str, Path]:
        """Every input file by role: the source name (``admin_adm2`` for admin levels)."""
        files: dict[str, Path] = {}
        for name, src in self.sources.items():
            for suffix, path in src.files().items():
                files[f"{name}_{suffix}" if suffix else name] = path
        return files

    def for_country(self, iso3: str) -> Pipeline:
        """This pipeline for one of its countries: ``{iso3}`` in source paths filled in.

        Examples
        --------
        >>> p.for_country("RWA").sources["population_total"].path  # doctest: +SKIP
        PosixPath('data/RWA/pop.tif')
        """
        sources = {k: _for_iso(v, iso3) for k, v in self.sources.items()}
        return dataclasses.replace(self, sources=sources, countries=())

    def environment_problems(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Unset environment variables that the remote sources name for their credentials
        (checked without any network call; values are never read into the messages)."""
        from ..remote import check_env

        out = [
            f"sources.{name}: {msg}"
            for name, src in self.sources.items()
            if src.kind in REMOTE_KINDS
            for msg in check_env({"kind": src.kind, **dict(src.options)}, environ=environ)
        ]
        if self.geosight is not None:
            out += [
                f"geosight: {m}"
                for m in check_env({"kind": "geosight", **dict(self.geosight)}, environ=environ)
            ]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as plain data (what :meth:`from_dict` reads; paths as given)."""
        return {
            "name": self.name,
            "description": self.description,
            "date": self.date.isoformat(),
            "output": None if self.output is None else str(self.output),
            "history": None if self.history is None else str(self.history),
            "sources": {k: v.to_dict() for k, v in self.sources.items()},
            "units": {
                "admin": self.units.admin,
                "h3": list(self.units.h3),
                "square": list(self.units.square),
            },
            "steps": [s.params() for s in self.steps],
            "indicators": None
            if self.indicators is None
            else [i if isinstance(i, str) else dict(i) for i in self.indicators],
            "quality": dict(self.quality),
            "geosight": None if self.geosight is None else dict(self.geosight),
            "countries": list(self.countries),
        }

    def settings(self) -> dict[str, Any]:
        """Everything that can change an output, without file paths (inputs enter by content)."""
        d = self.to_dict()
        d["sources"] = {k: {"kind": v.kind, **dict(v.options)} for k, v in self.sources.items()}
        d.pop("output")
        d.pop("geosight")  # where the values are pushed does not change them
        return d

    # ---------------------------------------------------------------- reading
    @classmethod
    def from_yaml(cls, path: str | Path) -> Pipeline:
        """Read a pipeline YAML file (relative paths from its folder).

        Examples
        --------
        >>> p = Pipeline.from_yaml("pipelines/sample.yaml")  # doctest: +SKIP
        """
        config_path = Path(path)
        if not config_path.is_file():
            raise MissingFileError(
                problem(f"config '{config_path}'", "does not exist", "check the path")
            )
        try:
            data = yaml.load(config_path.read_text(encoding="utf-8"), Loader=_Loader)
        except yaml.YAMLError as exc:
            raise ConfigError(
                problem(f"config '{config_path}'", f"is not valid YAML ({exc})", "fix the syntax")
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(
                problem(
                    f"config '{config_path}'",
                    "is not a mapping of keys",
                    "start from pipelines/sample.yaml",
                )
            )
        return cls.from_dict(data, base=config_path.parent, config_path=config_path)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base: str | Path | None = None,
        config_path: Path | None = None,
        check_files: bool = True,
    ) -> Pipeline:
        """Build a pipeline from its YAML form (a mapping); every problem is reported at once.

        Examples
        --------
        >>> p = Pipeline.from_dict({"name": "demo", "date": "2024-01-01",
        ...     "sources": {"admin": {"kind": "admin", "path": "adm2.geojson"}}, "steps": []},
        ...     check_files=False)
        >>> p.units.sets()
        ['admin']
        """
        root = Path(base) if base is not None else Path.cwd()
        errors: list[str] = []
        unknown = sorted(set(data) - set(_TOP))
        for key in unknown:
            close = difflib.get_close_matches(key, _TOP, n=1)
            errors.append(
                f"{key}: unknown key"
                + (f" (did you mean {close[0]!r}?)" if close else f" (allowed: {list(_TOP)})")
            )
        name = str(data.get("name") or (config_path.stem if config_path else ""))
        date = _date(data.get("date"), errors)
        sources = _read_sources(data.get("sources"), root, errors)
        units = _read_units(data.get("units"), errors)
        steps = []
        raw_steps = data.get("steps") or []
        if not isinstance(raw_steps, list):
            errors.append("steps: must be a list of steps ({kind: ..., ...})")
            raw_steps = []
        for i, spec in enumerate(raw_steps):
            try:
                steps.append(step_from_dict(spec, where=f"steps[{i}]"))
            except ConfigError as exc:
                errors.append(str(exc).split("; fix:")[0])
        indicators = data.get("indicators")
        if indicators is not None and not isinstance(indicators, list):
            errors.append("indicators: must be a list of ids or indicator definitions")
            indicators = None
        quality = data.get("quality") or {}
        if not isinstance(quality, dict):
            errors.append("quality: must be a mapping")
            quality = {}
        output = data.get("output") or f"out/{name}"
        token = _DEFERRED.set(True)  # collect the pipeline's own problems with the parsing ones
        try:
            pipeline = cls(
                name=name,
                description=str(data.get("description") or ""),
                date=date,
                sources=sources,
                steps=tuple(steps),
                units=units,
                indicators=None if indicators is None else tuple(indicators),
                quality=dict(quality),
                output=(root / str(output)).resolve(),
                history=(root / str(data["history"])).resolve() if data.get("history") else None,
                geosight=data.get("geosight"),
                countries=tuple(str(c) for c in (data.get("countries") or [])),
                config_path=config_path,
                check_files=check_files,
            )
        finally:
            _DEFERRED.reset(token)
        _raise(config_path, name, errors + pipeline.problems())
        return pipeline


# -------------------------------------------------------------------- helpers
_DEFERRED: contextvars.ContextVar[bool] = contextvars.ContextVar("geopipe_deferred", default=False)


def _raise(config_path: Path | None, name: str, problems: list[str]) -> None:
    if problems:
        label = f"'{config_path}'" if config_path else f"pipeline {name!r}"
        if all(p.endswith("does not exist") for p in problems):  # only missing inputs: exit 3
            raise MissingFileError(
                problem(
                    label,
                    "names inputs that do not exist: " + "; ".join(problems),
                    "check the paths (relative paths start from the config's folder)",
                )
            )
        raise ConfigError(
            problem(
                label,
                f"has {len(problems)} problem(s): " + "; ".join(problems),
                "fix them (pipelines/sample.yaml is a working example; docs/pipelines.md lists every key)",
            )
        )


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad date is reported by key, not as a YAML error."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _date(value: Any, errors: list[str]) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if value is None:
        errors.append("date: required, the reference date of the inputs (YYYY-MM-DD)")
        return dt.date(1970, 1, 1)
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors.append(f"date: {value!r} is not an ISO date (YYYY-MM-DD)")
        return dt.date(1970, 1, 1)


def _for_iso(src: Source, iso3: str) -> Source:
    """``src`` with ``{iso3}`` in its path(s) replaced by ``iso3``."""
    path = src.path
    if isinstance(path, Mapping):
        path = {k: Path(str(v).replace("{iso3}", iso3)) for k, v in path.items()}
    elif path is not None:
        path = Path(str(path).replace("{iso3}", iso3))
    options = {
        k: v.replace("{iso3}", iso3) if isinstance(v, str) else v for k, v in src.options.items()
    }
    return dataclasses.replace(src, path=path, options=options)


def _resolve(root: Path, value: Any) -> Path:
    p = Path(str(value))
    return p if p.is_absolute() else (root / p).resolve()


def _read_sources(raw: Any, root: Path, errors: list[str]) -> dict[str, Source]:
    if not isinstance(raw, dict) or not raw:
        errors.append("sources: must be a mapping of named inputs ({name: {kind: ..., path: ...}})")
        return {}
    out = {}
    for name, spec in raw.items():
        if (
            not isinstance(spec, dict)
            or "kind" not in spec
            or ("path" not in spec and spec.get("kind") not in REMOTE_KINDS)
        ):
            errors.append(f"sources.{name}: needs 'kind' and 'path'")
            continue
        path = spec.get("path")
        if isinstance(path, dict):
            path = {lv: _resolve(root, p) for lv, p in path.items()}
        elif path is not None:
            path = _resolve(root, path)
        out[str(name)] = Source(
            str(spec["kind"]), path, {k: v for k, v in spec.items() if k not in ("kind", "path")}
        )
    return out


def _source_problems(name: str, src: Source, check_files: bool) -> list[str]:
    out = []
    if src.kind not in SOURCE_KINDS:
        close = difflib.get_close_matches(src.kind, SOURCE_KINDS, n=1)
        return [
            f"sources.{name}.kind: {src.kind!r} is not a source kind"
            + (f" (did you mean {close[0]!r}?)" if close else f" (use {sorted(SOURCE_KINDS)})")
        ]
    bad = sorted(set(src.options) - SOURCE_KINDS[src.kind])
    if bad:
        out.append(
            f"sources.{name}: unknown keys {bad} for a {src.kind} source (allowed: {sorted(SOURCE_KINDS[src.kind])})"
        )
    if src.kind in REMOTE_KINDS:
        need = (
            ("base_url", "view_uuid", "levels")
            if src.kind == "georepo"
            else ("base_url", "dx", "pe")
        )
        missing = [k for k in need if k not in src.options]
        if missing:
            out.append(f"sources.{name}: a {src.kind} source needs {missing}")
        return out
    if isinstance(src.path, Mapping):
        if src.kind != "admin":
            out.append(f"sources.{name}.path: only admin sources take {{level: path}}")
        for lv in src.path:
            if not str(lv).isdigit():
                out.append(f"sources.{name}.path: key {lv!r} is not an admin level (0, 1, 2, ...)")
    if check_files:
        for suffix, path in src.files().items():
            key = f"sources.{name}.path" + (f"[{suffix[3:]}]" if suffix else "")
            if not path.exists():
                out.append(f"{key}: '{path}' does not exist")
            elif path.is_dir() and path.suffix.lower() not in (".gdb",):
                out.append(f"{key}: '{path}' is a folder, not a file")
    return out


def _read_units(raw: Any, errors: list[str]) -> Units:
    if raw is None:
        return Units()
    if not isinstance(raw, dict):
        errors.append("units: must be a mapping like {h3: [7], square: [5000]}")
        return Units()
    bad = sorted(set(raw) - {"admin", "h3", "square"})
    if bad:
        errors.append(f"units: unknown keys {bad} (allowed: admin, h3, square)")

    def listed(key: str) -> tuple:
        v = raw.get(key) or []
        return tuple(v if isinstance(v, list) else [v])

    return Units(admin=str(raw.get("admin", "admin")), h3=listed("h3"), square=listed("square"))


def _quality_problems(quality: Mapping[str, Any]) -> list[str]:
    out = []
    for key, value in quality.items():
        if key not in _QUALITY:
            close = difflib.get_close_matches(key, _QUALITY, n=1)
            out.append(
                f"quality.{key}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
            continue
        want = _QUALITY[key]
        if isinstance(value, bool) or not isinstance(value, want):
            out.append(f"quality.{key}: {value!r} has the wrong type")
        elif isinstance(value, int | float) and value < 0:
            out.append(f"quality.{key}: must be >= 0 (was {value!r})")
    if (
        "k" in quality
        and isinstance(quality["k"], int | float)
        and not isinstance(quality["k"], bool)
        and quality["k"] < 1
    ):
        out.append(
            f"quality.k: must be at least 1 (was {quality['k']!r}); k is the smallest count published"
        )
    levels = quality.get("levels")
    if isinstance(levels, dict):
        out += _level_problems(levels)
    return out


def _level_problems(levels: Mapping[str, Any]) -> list[str]:
    from ..quality.checks import known_check_ids

    known = known_check_ids()
    out = []
    for check, level in levels.items():
        if level not in ("warn", "fail"):
            out.append(f"quality.levels.{check}: {level!r} must be 'warn' or 'fail'")
        if check not in known:
            close = difflib.get_close_matches(check, known, n=1)
            out.append(
                f"quality.levels.{check}: not a check id"
                + (f" (did you mean {close[0]!r}?)" if close else "")
            )
    return out


def _user_indicators(
    items: Sequence[Any], entries: Mapping[str, Indicator]
) -> tuple[dict[str, Indicator], list[str]]:
    out: dict[str, Indicator] = {}
    problems = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            continue
        if not isinstance(item, Mapping) or "id" not in item:
            problems.append(f"indicators[{i}]: an indicator definition needs an 'id'")
            continue
        bad = sorted(set(item) - _INDICATOR_KEYS)
        if bad:
            problems.append(f"indicators[{i}] ({item['id']}): unknown keys {bad}")
            continue
        ind_id = str(item["id"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", ind_id):
            problems.append(f"indicators[{i}]: id {ind_id!r} must be snake_case (a column name)")
        if ind_id in entries or ind_id in out:
            problems.append(
                f"indicators[{i}]: id {ind_id!r} clashes with an indicator a step already publishes"
            )
            continue
        agg = item.get("aggregation")
        if agg not in ("ratio", "weighted_mean", "sum"):
            problems.append(
                f"indicators[{i}] ({ind_id}): aggregation {agg!r} must be ratio, weighted_mean or sum"
            )
            continue
        family = item.get("family", "other")
        if family not in FAMILIES:
            problems.append(
                f"indicators[{i}] ({ind_id}): family {family!r} not in {list(FAMILIES)}"
            )
        for key in ("name", "unit", "description"):
            if not isinstance(item.get(key), str) or not item.get(key):
                problems.append(f"indicators[{i}] ({ind_id}): needs a {key}")
        try:
            scale = float(item.get("scale", 1.0))
        except (TypeError, ValueError):
            problems.append(
                f"indicators[{i}] ({ind_id}): scale {item.get('scale')!r} is not a number"
            )
            scale = 1.0
        out[ind_id] = Indicator(
            id=ind_id,
            name=str(item.get("name", ind_id)),
            unit=str(item.get("unit", "")),
            family=str(family),
            aggregation=agg,
            description=str(item.get("description", "")),
            sensitive=bool(item.get("sensitive", False)),
            numerator=item.get("numerator"),
            denominator=item.get("denominator"),
            weight=item.get("weight"),
            scale=scale,
            params={"defined_in": "config"},
        )
    return out, problems


def _reference_problems(entries: Mapping[str, Indicator]) -> list[str]:
    out = []
    for ind in entries.values():
        if ind.aggregation == "ratio" and not (ind.numerator and ind.denominator):
            out.append(f"{ind.id}: a ratio needs numerator and denominator")
        if ind.aggregation == "weighted_mean" and not ind.weight:
            out.append(f"{ind.id}: a weighted_mean needs a weight")
        if ind.aggregation == "sum" and ind.params.get("defined_in") == "config":
            out.append(f"{ind.id}: a sum comes from a step's column; define a step (docs/steps.md)")
        for ref in ind.depends_on:
            if ref not in entries:
                close = difflib.get_close_matches(ref, entries, n=1)
                out.append(
                    f"{ind.id}: {ref!r} is not an indicator of this pipeline"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                )
            elif entries[ref].aggregation != "sum":
                out.append(
                    f"{ind.id}: {ref!r} is a {entries[ref].aggregation}, not a sum (ratios and weights must be sums)"
                )
    return out
