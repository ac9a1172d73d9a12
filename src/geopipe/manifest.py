"""Run manifest, incremental-run keys and lineage.

A run records what it read (every input with path, size, sha256 and, for rasters, CRS, shape,
resolution, bounds, dtype, nodata), its parameters, package versions, what it wrote (path, rows,
sha256), quality results and per-step timings in ``manifest.json``. Times live only here, never in
the tables, so the tables stay byte-identical between runs.

Incremental runs: each output is recorded with the inputs, parameters and other outputs it depends
on, and a key hashing their content. :meth:`RunManifest.stale_outputs` recomputes the keys from
the new inputs and parameters and returns only the outputs whose key changed (or whose file is
gone), plus everything downstream of them. An empty list means "up to date".

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> src = folder / "adm1.geojson"
>>> _ = src.write_text("{}")
>>> m = RunManifest.start(run="demo", parameters={"h3_res": 7})
>>> _ = m.add_input("admin", src)
>>> out = folder / "adm1.parquet"
>>> _ = out.write_bytes(b"x")
>>> _ = m.add_output("adm1", out, rows=5, depends_on=["admin"])
>>> m.stale_outputs({"admin": fingerprint_file(src)}, {"h3_res": 7}, {"adm1": ["admin"]})
[]
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from geopipe.errors import FormatError, InputError, MissingFileError, problem
from geopipe.io.atomic import atomic_write_text

__all__ = [
    "PACKAGES",
    "RASTER_SUFFIXES",
    "RunManifest",
    "fact_lineage",
    "fingerprint_file",
    "package_versions",
    "sha256_file",
]

#: distributions whose versions every manifest records
PACKAGES = (
    "geopipe",
    "geopandas",
    "shapely",
    "rasterio",
    "h3",
    "duckdb",
    "duckdb-extension-spatial",
    "pyarrow",
    "exactextract",
    "pyogrio",
    "pyproj",
    "numpy",
    "pandas",
)
RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".vrt", ".img", ".nc", ".jp2", ".asc", ".bil"})
MANIFEST_VERSION = 1

Deps = Sequence[str] | Mapping[str, Sequence[str]]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _digest(obj: Any) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e"
    >>> _ = p.write_bytes(b"")
    >>> sha256_file(p)[:12]
    'e3b0c44298fc'
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _raster_info(path: Path) -> dict[str, Any]:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return {
                "crs": src.crs.to_string() if src.crs else None,
                "shape": [src.count, src.height, src.width],
                "resolution": [float(src.res[0]), float(src.res[1])],
                "bounds": [float(v) for v in src.bounds],
                "dtype": src.dtypes[0],
                "nodata": None if src.nodata is None else float(src.nodata),
            }
    except rasterio.errors.RasterioIOError as exc:
        raise FormatError(
            problem(
                f"raster '{path}'",
                f"cannot be opened ({exc})",
                "check the file is a complete GeoTIFF (or pass raster=False)",
                where="fingerprint_file",
            )
        ) from exc


def fingerprint_file(
    path: str | os.PathLike[str],
    *,
    raster: bool | None = None,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Identify an input file by content: path, size, sha256 (and raster properties).

    Parameters
    ----------
    path
        The file.
    raster
        Also record CRS, shape ``[bands, rows, cols]``, resolution, bounds, dtype and nodata via
        rasterio. Default: by suffix (``.tif``, ``.tiff``, ``.vrt``, ...).
    previous
        A fingerprint of the same path from an earlier manifest: when size and modification time
        (ns) are unchanged its sha256 is reused instead of re-reading the file. Default: always hash.

    Returns
    -------
    dict
        ``path, size, mtime_ns, sha256`` plus ``raster`` (a dict) for rasters.

    Raises
    ------
    MissingFileError
        The file does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_text("x\\n")
    >>> fp = fingerprint_file(p)
    >>> fp["size"], len(fp["sha256"])
    (2, 64)
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(
            problem(
                f"input '{p}'",
                "does not exist",
                "check the path in the pipeline config",
                where="fingerprint_file",
            )
        )
    st = p.stat()
    fp: dict[str, Any] = {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    same = (
        previous is not None
        and previous.get("path") == str(p)
        and previous.get("size") == st.st_size
        and previous.get("mtime_ns") == st.st_mtime_ns
        and previous.get("sha256")
    )
    fp["sha256"] = previous["sha256"] if same else sha256_file(p)  # type: ignore[index]
    if raster if raster is not None else p.suffix.lower() in RASTER_SUFFIXES:
        fp["raster"] = previous["raster"] if same and "raster" in previous else _raster_info(p)  # type: ignore[operator,index]
    return fp


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run's numbers depend on (None when absent).

    Examples
    --------
    >>> v = package_versions()
    >>> "duckdb" in v and "python" in v
    True
    """
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _norm_deps(name: str, dep: Deps) -> dict[str, list[str] | None]:
    """``["a", "b"]`` -> inputs a, b and every parameter; a mapping may name inputs/params/outputs."""
    if isinstance(dep, str):
        raise InputError(
            problem(
                f"dependencies of '{name}'",
                f"are the string {dep!r}, not a list",
                f"write [{dep!r}]",
                where="RunManifest",
            )
        )
    if isinstance(dep, Mapping):
        unknown = sorted(set(dep) - {"inputs", "params", "outputs"})
        if unknown:
            raise InputError(
                problem(
                    f"dependencies of '{name}'",
                    f"have unknown keys {unknown}",
                    "use 'inputs', 'params' and 'outputs'",
                    where="RunManifest",
                )
            )
        params = dep.get("params")
        return {
            "inputs": sorted(dep.get("inputs", ())),
            "params": None if params is None else sorted(params),
            "outputs": sorted(dep.get("outputs", ())),
        }
    return {"inputs": sorted(dep), "params": None, "outputs": []}


def _sha(value: Any) -> str:
    return value["sha256"] if isinstance(value, Mapping) else str(value)


def _output_keys(
    inputs: Mapping[str, Any], params: Mapping[str, Any], deps: Mapping[str, Deps]
) -> tuple[dict[str, str], dict[str, dict[str, Any]], list[str]]:
    """Keys of every output in ``deps`` (and the normalised deps, in dependency order)."""
    norm = {o: _norm_deps(o, d) for o, d in deps.items()}
    problems = []
    for o, d in norm.items():
        miss_in = [i for i in d["inputs"] if i not in inputs]
        miss_p = [p for p in (d["params"] or []) if p not in params]
        miss_o = [x for x in d["outputs"] if x not in norm]
        if miss_in:
            problems.append(f"'{o}' needs inputs {miss_in} that were not given")
        if miss_p:
            problems.append(f"'{o}' needs parameters {miss_p} that were not given")
        if miss_o:
            problems.append(f"'{o}' needs outputs {miss_o} that have no dependencies declared")
    if problems:
        raise InputError(
            problem(
                "the dependency record",
                "; ".join(problems),
                "declare every input, parameter and output an output depends on",
                where="RunManifest",
            )
        )
    keys: dict[str, str] = {}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(o: str) -> str:
        if o in keys:
            return keys[o]
        if o in visiting:
            raise InputError(
                problem(
                    f"output '{o}'",
                    "depends on itself (a cycle)",
                    "remove the cycle",
                    where="RunManifest",
                )
            )
        visiting.add(o)
        d = norm[o]
        used_params = params if d["params"] is None else {p: params[p] for p in d["params"]}
        keys[o] = _digest(
            {
                "inputs": {i: _sha(inputs[i]) for i in d["inputs"]},
                "params": dict(used_params),
                "outputs": {x: visit(x) for x in d["outputs"]},
            }
        )
        visiting.discard(o)
        order.append(o)
        return keys[o]

    for o in sorted(norm):
        visit(o)
    return keys, norm, order


@dataclasses.dataclass
class RunManifest:
    """What one pipeline run read, used, wrote, checked and how long each step took.

    Build it with :meth:`start` (or the constructor), fill it with :meth:`add_input`,
    :meth:`add_output`, :meth:`add_quality` and :meth:`step`, close it with :meth:`finish` and save
    it with :meth:`write` (atomic JSON, sorted keys). :meth:`read` loads it back.

    Attributes
    ----------
    run
        The pipeline's name (e.g. ``"rwa_sample"``).
    run_id
        Unique id of this run (used as ``fact_lineage.run_id``).
    started, finished
        ISO 8601 UTC times (kept here, never in the tables).
    inputs
        Input name -> fingerprint (:func:`fingerprint_file`).
    parameters
        The run's parameters (JSON values).
    outputs
        Output name (e.g. ``"adm1.parquet"``) -> ``path, rows, size, sha256, depends_on, key``.
    quality
        Check name -> result (any JSON value; :meth:`add_quality` writes a standard record).
    timings
        Step name -> seconds.
    packages
        :func:`package_versions` at the start of the run.

    Examples
    --------
    >>> m = RunManifest.start(run="sample", parameters={"h3_res": 7})
    >>> with m.step("load"):
    ...     pass
    >>> sorted(m.timings)
    ['load']
    """

    run: str = ""
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: str = dataclasses.field(default_factory=_now)
    finished: str | None = None
    inputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    quality: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    packages: dict[str, str | None] = dataclasses.field(default_factory=package_versions)
    manifest_version: int = MANIFEST_VERSION

    @classmethod
    def start(
        cls,
        *,
        run: str = "",
        run_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> RunManifest:
        """A new manifest stamped with the start time and the installed package versions."""
        kwargs: dict[str, Any] = {"run": run, "parameters": dict(parameters or {})}
        if run_id:
            kwargs["run_id"] = run_id
        return cls(**kwargs)

    # ---- filling
    def add_input(self, name: str, path: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
        """Fingerprint ``path`` (see :func:`fingerprint_file`) and record it as input ``name``."""
        self.inputs[name] = fingerprint_file(path, **kwargs)
        return self.inputs[name]

    def add_output(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        rows: int | None = None,
        sha256: str | None = None,
        depends_on: Deps | None = None,
    ) -> dict[str, Any]:
        """Record output ``name`` with its rows, size, sha256 and what it depends on.

        Parameters
        ----------
        name
            Output name; by convention its file name in the run folder (``"adm1.parquet"``).
        path
            The written file: size and sha256 are read from it. Without it, ``sha256`` (if any) is
            stored as given and file checks use ``root / name`` (see :meth:`stale_outputs`).
        rows
            Row count.
        sha256
            Hash of the file when ``path`` is not given.
        depends_on
            A list of input names (the output then depends on *every* parameter), or a mapping
            ``{"inputs": [...], "params": [...], "outputs": [...]}`` (outputs named there must be
            added first). Default: every input and every parameter.
        """
        if depends_on is None:
            depends_on = sorted(self.inputs)
        deps = {o: rec["depends_on"] for o, rec in self.outputs.items()}
        deps[name] = _norm_deps(name, depends_on)
        keys, norm, _ = _output_keys(self.inputs, self.parameters, deps)
        record: dict[str, Any] = {"path": None, "rows": rows, "size": None, "sha256": sha256}
        if path is not None:
            p = Path(path)
            if not p.exists():
                raise MissingFileError(
                    problem(
                        f"output '{p}'",
                        "does not exist",
                        "write it before recording it",
                        where="RunManifest.add_output",
                    )
                )
            if p.is_file():
                record.update(path=str(p), size=p.stat().st_size, sha256=sha256_file(p))
            else:
                record.update(path=str(p))
        record.update(depends_on=norm[name], key=keys[name])
        self.outputs[name] = record
        return record

    def reuse_outputs(self, previous: RunManifest, names: Sequence[str]) -> None:
        """Copy the records of up-to-date outputs ``names`` from the previous run's manifest."""
        missing = [n for n in names if n not in previous.outputs]
        if missing:
            raise InputError(
                problem(
                    f"outputs {missing}",
                    "are not in the previous manifest",
                    "rebuild them instead",
                    where="RunManifest.reuse_outputs",
                )
            )
        for n in names:
            self.outputs[n] = json.loads(_canonical(previous.outputs[n]))

    def add_quality(
        self, name: str, passed: bool, *, level: str = "warn", message: str = "", **details: Any
    ) -> None:
        """Record one data-quality result under ``quality[name]`` (``level``: warn or fail)."""
        self.quality[name] = {
            "passed": bool(passed),
            "level": level,
            "message": message,
            **details,
        }

    @contextlib.contextmanager
    def step(self, name: str, kind: str = "stage") -> Iterator[None]:
        """Time the block, add the seconds to ``timings[name]``; emit step_start / step_end events."""
        from geopipe import events

        events.emit("step_start", step=name, kind=kind)
        t0 = time.perf_counter()
        status = "failed"
        try:
            yield
            status = "computed"
        finally:
            seconds = time.perf_counter() - t0
            self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 6)
            events.emit("step_end", step=name, seconds=round(seconds, 6), rows=None, status=status)

    def finish(self) -> RunManifest:
        """Stamp the end time; returns self."""
        self.finished = _now()
        return self

    # ---- keys
    def inputs_key(self) -> str:
        """Stable hash of every input's sha256 and the parameters (paths and times excluded)."""
        return _digest(
            {"inputs": {n: _sha(fp) for n, fp in self.inputs.items()}, "params": self.parameters}
        )

    def stale_outputs(
        self,
        new_inputs: Mapping[str, Mapping[str, Any] | str],
        new_params: Mapping[str, Any],
        deps: Mapping[str, Deps],
        *,
        root: str | os.PathLike[str] | None = None,
        check_files: bool = True,
    ) -> list[str]:
        """Outputs of ``deps`` that must be rebuilt for ``new_inputs`` and ``new_params``.

        Parameters
        ----------
        new_inputs
            Input name -> fingerprint (from :func:`fingerprint_file`) or bare sha256.
        new_params
            The run's parameters.
        deps
            Output name -> what it depends on (see :meth:`add_output`).
        root
            The run folder: outputs recorded with a relative path (or none) are looked up there
            (``root / path`` or ``root / name``).
        check_files
            Also treat an output whose file is missing or changed size as stale.

        Returns
        -------
        list of str
            Stale outputs in dependency order (an output after the outputs it depends on);
            empty when everything is up to date.

        Examples
        --------
        >>> m = RunManifest.start(run_id="r")
        >>> m.stale_outputs({"raster": "ab12"}, {}, {"h3_r7": ["raster"]})
        ['h3_r7']
        """
        keys, norm, order = _output_keys(new_inputs, new_params, deps)
        stale: set[str] = set()
        for o in order:
            rec = self.outputs.get(o)
            if (
                rec is None
                or rec.get("key") != keys[o]
                or (check_files and not _file_matches(o, rec, root))
                or any(x in stale for x in norm[o]["outputs"])
            ):
                stale.add(o)
        return [o for o in order if o in stale]

    # ---- persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (non-JSON values such as paths become strings)."""
        return json.loads(_canonical(dataclasses.asdict(self)))

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest as JSON (sorted keys, 2-space indent) atomically."""
        text = json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"
        return atomic_write_text(path, text)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunManifest:
        """Load a manifest written by :meth:`write`."""
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(
                problem(
                    f"manifest '{p}'",
                    "does not exist",
                    "run the pipeline once (or --force)",
                    where="RunManifest.read",
                )
            )
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            fields = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in fields})
        except (json.JSONDecodeError, TypeError) as exc:
            raise FormatError(
                problem(
                    f"manifest '{p}'",
                    f"is not a geopipe manifest ({exc})",
                    "delete it and rerun with --force",
                    where="RunManifest.read",
                )
            ) from exc


def _file_matches(name: str, rec: Mapping[str, Any], root: str | os.PathLike[str] | None) -> bool:
    if rec.get("path"):
        p = Path(rec["path"])
        if root is not None and not p.is_absolute():  # recorded relative to the run folder
            p = Path(root) / p
    elif root is not None:
        p = Path(root) / name
    else:
        return True  # nothing to check against
    if not p.exists():
        return False
    return rec.get("size") is None or not p.is_file() or p.stat().st_size == rec["size"]


def fact_lineage(
    fact: pd.DataFrame,
    *,
    run_id: str,
    sources: Mapping[str, str | Mapping[str, Any]],
    uses: Mapping[str, Sequence[str]] | None = None,
    unit_sources: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build the ``fact_lineage`` table: which source versions each indicator value comes from.

    Parameters
    ----------
    fact
        ``fact_indicator`` (needs ``indicator_id``; ``ucode`` when ``unit_sources`` is given).
    run_id
        The run's id (``RunManifest.run_id``).
    sources
        Source id -> version: a string (e.g. a GeoRepo view version), a fingerprint from
        :func:`fingerprint_file` (version ``sha256:<hex>``) or a mapping with ``"version"``.
    uses
        Indicator id -> source ids it is computed from. Default: every source for every indicator.
        When given, it must cover every indicator in ``fact``.
    unit_sources
        Optional per-unit versions: columns ``ucode, source_id, source_version``. They add rows
        for the units of every indicator that uses that source.

    Returns
    -------
    pandas.DataFrame
        ``run_id, indicator_id, ucode, source_id, source_version``; ``ucode`` is ``"*"`` for a
        source that applies to all units. Sorted, one row per key.

    Examples
    --------
    >>> import pandas as pd
    >>> fact = pd.DataFrame({"ucode": ["A_V1"], "indicator_id": ["population_total"]})
    >>> fact_lineage(fact, run_id="r1", sources={"worldpop": {"sha256": "ab"}}).iloc[0].tolist()
    ['r1', 'population_total', '*', 'worldpop', 'sha256:ab']
    """
    where = "fact_lineage"

    def version(v: str | Mapping[str, Any]) -> str:
        if isinstance(v, Mapping):
            if "version" in v:
                return str(v["version"])
            if "sha256" in v:
                return f"sha256:{v['sha256']}"
            raise InputError(
                problem(
                    "a sources entry",
                    "has neither 'version' nor 'sha256'",
                    "pass a version string or a fingerprint",
                    where=where,
                )
            )
        return str(v)

    versions = {s: version(v) for s, v in sources.items()}
    indicators = sorted(fact["indicator_id"].dropna().astype(str).unique())
    use = {i: list(sources) for i in indicators} if uses is None else dict(uses)
    uncovered = [i for i in indicators if i not in use]
    unknown = sorted({s for i in indicators if i in use for s in use[i] if s not in versions})
    if uncovered or unknown:
        raise InputError(
            problem(
                "lineage",
                (f"has no sources for indicators {uncovered}" if uncovered else "")
                + ("; " if uncovered and unknown else "")
                + (f"names unknown sources {unknown}" if unknown else ""),
                "list every indicator in uses= and every source in sources=",
                where=where,
            )
        )
    pairs = pd.DataFrame(
        [(i, s) for i in indicators for s in use[i]], columns=["indicator_id", "source_id"]
    )
    rows = pairs.assign(ucode="*", source_version=pairs["source_id"].map(versions))
    if unit_sources is not None and len(unit_sources):
        units = fact[["indicator_id", "ucode"]].drop_duplicates()
        extra = pairs.merge(units, on="indicator_id").merge(
            unit_sources[["ucode", "source_id", "source_version"]], on=["ucode", "source_id"]
        )
        rows = pd.concat([rows, extra], ignore_index=True)
    rows.insert(0, "run_id", run_id)
    cols = ["run_id", "indicator_id", "ucode", "source_id", "source_version"]
    rows = rows[cols].astype({"source_version": "str"})
    return (
        rows.sort_values(cols[1:4], kind="stable").drop_duplicates(cols[:4]).reset_index(drop=True)
    )
