"""What a run keeps to be incremental and safe: the output guard, the run key, the step cache,
the up-to-date decision. State is not output: it lives in a folder *beside* the published run
folder (``.<run folder name>.geopipe-state``), never in what BI reads, and holds no absolute paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import OutputError, problem
from ..steps import Step

__all__ = [
    "StepCache",
    "check_output_folder",
    "fingerprint_inputs",
    "is_up_to_date",
    "run_key",
    "state_folder",
]

CACHE_VERSION = 2


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def check_output_folder(out_dir: Path, *, history: Path | None = None) -> None:
    """Refuse, before any work, an output folder that is not the run's own.

    A run writes only into an absent folder, an empty one, or a folder that a previous geopipe
    run wrote (it holds a geopipe ``manifest.json``); anything else, such as ``output: ..`` or
    ``output: ../data``, would be replaced by the run and is refused with an
    :class:`~geopipe.errors.OutputError`. A ``history`` path that is a file is refused too.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> check_output_folder(pathlib.Path(tempfile.mkdtemp()) / "new")  # absent: fine
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(problem(f"output '{out_dir}'", "is a file", "point output at a folder"))
    if out_dir.is_dir() and any(out_dir.iterdir()):
        manifest = out_dir / "manifest.json"
        ours = False
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                ours = isinstance(data, dict) and "manifest_version" in data and "run_id" in data
            except (OSError, ValueError):
                ours = False
        if not ours:
            sample = sorted(p.name for p in out_dir.iterdir())[:5]
            raise OutputError(
                problem(
                    f"output folder '{out_dir}'",
                    f"holds files that no geopipe run wrote (e.g. {sample}); a run replaces its output folder as a whole",
                    "point output at a new or empty folder (e.g. out/<name>); nothing was written",
                )
            )
    if history is not None and Path(history).exists() and not Path(history).is_dir():
        raise OutputError(
            problem(f"history '{history}'", "is a file, not a folder", "point history at a folder")
        )


def state_folder(out_dir: Path) -> Path:
    """The state folder of a run folder: ``<parent>/.<name>.geopipe-state``."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.geopipe-state"


def fingerprint_inputs(
    files: Mapping[str, Path],
    previous: Mapping[str, Any] | None = None,
    base: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Fingerprint every input file; a file's sha256 is reused from ``previous`` (a manifest's
    ``inputs``) when its size and modification time match.

    ``previous`` is matched by file, not by role: a manifest records paths relative to the
    config's folder ``base`` (see ``_portable`` in :mod:`geopipe.pipeline.run`), and a
    multi-country manifest names each country's roles ``ISO/role``.

    Examples
    --------
    >>> fps = fingerprint_inputs({"pop": Path("data/pop.tif")})  # doctest: +SKIP
    >>> fingerprint_inputs({"pop": Path("data/pop.tif")}, {"x": fps["pop"]})  # not re-read  # doctest: +SKIP
    """
    from ..manifest import fingerprint_file

    def where(path: str) -> str:
        return os.path.abspath(os.path.join(base, path) if base is not None else path)

    known = {
        where(fp["path"]): fp
        for fp in (previous or {}).values()
        if isinstance(fp, Mapping) and "mtime_ns" in fp and isinstance(fp.get("path"), str)
    }

    def one(path: Path) -> dict[str, Any]:
        prev = known.get(where(str(path)))
        fp = fingerprint_file(path, previous=None if prev is None else {**prev, "path": str(path)})
        fp["inode"] = os.stat(path).st_ino
        return fp

    roles = sorted(files)
    # files are hashed side by side: hashlib releases the GIL while it reads
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1, len(roles) or 1)) as pool:
        return dict(zip(roles, pool.map(one, [files[r] for r in roles]), strict=True))


def run_key(settings: Mapping[str, Any], fingerprints: Mapping[str, Any], version: str) -> str:
    """The up-to-date key: every setting that can change an output, every input's bytes, the code."""
    return digest(
        {
            "settings": settings,
            "inputs": {r: fp["sha256"] for r, fp in sorted(fingerprints.items())},
            "geopipe": version,
            "cache": CACHE_VERSION,
        }
    )


def is_up_to_date(
    out_dir: Path, key: str, history: Path | None, *, geosight: bool = False
) -> tuple[bool, str]:
    """Whether the run folder was written for ``key`` and is intact (every output's sha256 as recorded).

    Returns ``(up_to_date, reason)``; the reason says what forces a rebuild.
    """
    from ..manifest import sha256_file

    manifest = Path(out_dir) / "manifest.json"
    if not manifest.is_file():
        return False, "no previous run"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, "the previous manifest is unreadable"
    if data.get("parameters", {}).get("run_key") != key:
        return False, "inputs or settings changed"
    for name, rec in (data.get("outputs") or {}).items():
        path = Path(out_dir) / (rec.get("path") or name)
        if not path.is_file() or (rec.get("sha256") and sha256_file(path) != rec["sha256"]):
            return False, f"output {name} is missing or was changed"
    want = data.get("history")
    if history is not None:
        if not want:
            return False, "history was not written"
        for rec in want:
            path = Path(history) / rec["path"]
            if not path.is_file() or sha256_file(path) != rec["sha256"]:
                return False, "the history partition of this run is missing or was changed"
    if geosight and not (data.get("geosight") or {}).get("complete"):
        return False, "the GeoSight push did not complete"
    return True, "up to date"


class StepCache:
    """Columns of steps computed by earlier runs, content-addressed by (unit set, step, inputs).

    Each entry is ``<state>/steps/<key>.parquet``: the step's columns for the unit set, with its
    report in the file's metadata; the key hashes the step's parameters, the sha256 of the files
    of its sources, the unit set's key and the columns it reads. Entries are written atomically
    and never hold paths, so the cache is safe to keep across runs and crashes; entries the last
    run did not use are removed by :meth:`prune`.
    """

    def __init__(
        self,
        folder: Path | None,
        fingerprints: Mapping[str, Any],
        source_roles: Mapping[str, list[str]],
    ) -> None:
        self.folder = None if folder is None else Path(folder) / "steps"
        self.fingerprints = fingerprints
        self.source_roles = source_roles
        self.status: dict[str, str] = {}
        self.used: set[str] = set()
        #: reuse entries (False: recompute every step, still storing the results)
        self.read = True
        #: with --only: the steps to recompute; every other step must come from the cache
        self.only: set[str] = set()
        self._pending: dict[str, tuple[dict[str, Any], dict[str, Any]] | Path] = {}

    def key(self, unitset_key: str, step: Step, needs: Mapping[str, str]) -> str:
        inputs = {
            role: self.fingerprints[role]["sha256"]
            for name in step.sources().values()
            for role in self.source_roles[name]
        }
        return digest(
            {
                "v": CACHE_VERSION,
                "units": unitset_key,
                "step": step.params(),
                "inputs": inputs,
                "needs": dict(needs),
            }
        )

    def get(self, key: str, n: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.parquet"
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception:  # a damaged entry is recomputed
            return None
        if table.num_rows != n:
            return None
        meta = table.schema.metadata or {}
        self.used.add(key)
        cols = {c: table.column(c).to_numpy() for c in table.column_names}
        return cols, json.loads(meta.get(b"geopipe_report", b"{}"))

    def put(self, key: str, columns: Mapping[str, Any], report: Mapping[str, Any]) -> None:
        """Keep an entry to store when the run succeeds (:meth:`commit`): a failed run writes
        nothing, not even state."""
        self.used.add(key)
        self._pending[key] = (dict(columns), dict(report))

    def spill(self, folder: Path) -> None:
        """Write the entries kept for :meth:`commit` into ``folder`` now (a multi-country run's
        part), so that they are not held in memory until the run succeeds; commit moves them."""
        if self.folder is None:  # no state kept: nothing to store
            self._pending.clear()
            return
        folder = Path(folder)
        for key, entry in list(self._pending.items()):
            if isinstance(entry, tuple):
                self._put(key, *entry, folder=folder)
                self._pending[key] = folder / f"{key}.parquet"

    def commit(self, *, prune: bool = True, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Store the entries of this run; a state folder that cannot be written only turns
        caching off (warned), and unused entries are removed unless ``prune`` is false, or
        used by another run sharing the folder (``keep``: a multi-country run's countries)."""
        pending, self._pending = self._pending, {}
        if self.folder is None:
            return
        import os

        try:
            for key, entry in pending.items():
                if isinstance(entry, Path):  # spilled: moved into place
                    self.folder.mkdir(parents=True, exist_ok=True)
                    os.replace(entry, self.folder / entry.name)
                else:
                    self._put(key, *entry)
        except OSError as exc:
            import warnings

            from ..errors import GeopipeWarning

            warnings.warn(
                f"step cache: '{self.folder}' cannot be written ({exc.strerror or exc}); "
                "this run keeps no state, the next one recomputes every step",
                GeopipeWarning,
                stacklevel=2,
            )
            self.folder = None
            return
        if prune:
            self.prune(keep)

    def _put(
        self,
        key: str,
        columns: Mapping[str, Any],
        report: Mapping[str, Any],
        folder: Path | None = None,
    ) -> None:
        folder = folder or self.folder
        assert folder is not None
        import pyarrow as pa

        from ..io.atomic import atomic_path
        from ._util import jsonable

        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({c: columns[c] for c in columns})
        table = table.replace_schema_metadata(
            {"geopipe_report": json.dumps(jsonable(dict(report)), default=str)}
        )
        import pyarrow.parquet as pq

        with atomic_path(folder / f"{key}.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        self.used.add(key)

    def prune(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Remove the entries this run did not use (nor those in ``keep``)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for path in self.folder.glob("*.parquet"):
            if path.stem not in self.used and path.stem not in keep:
                path.unlink(missing_ok=True)
