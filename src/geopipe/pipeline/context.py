"""The run context: what a run has read and built, handed to the steps.

* Each source is read once, by the reader its kind names, the first time a step (or a check)
  asks for it; rasters come back as :class:`~geopipe.io.raster.RasterData` (band 1 in memory
  when it fits the budget, else read by row blocks).
* Pixel weights are built once per (unit set, batch of units, raster grid): every step of the
  batch that works on that grid shares them, with the pixel centres, the raster values at those
  pixels and anything a step memoises (nearest-facility distances, layer values at pixels).
* The files read are fingerprinted before the run; :meth:`RunContext.verify_unchanged` fails the
  run when one changed while it was being read, so lineage names the bytes the numbers came from.

``RunContext.counts`` counts reads and weight builds (``read:<source>``,
``weights:<unit set>:<grid>``); tests use it to prove "read once, compute once".
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, RasterError, problem
from .model import Pipeline, Source

__all__ = ["BatchData", "PixelView", "RunContext", "read_source"]


def read_source(src: Source, *, cache_dir: Any = None, admin: Any = None) -> Any:
    """Read a source with the reader of its kind (a GeoDataFrame, RasterData or DataFrame).

    Examples
    --------
    >>> from geopipe.pipeline.model import Source
    >>> read_source(Source("raster", "data/sample/rwa_population_2020_modelled_232m.tif")).in_memory  # doctest: +SKIP
    True
    """
    opts = dict(src.options)
    if src.kind == "admin":
        from ..io.admin import read_admin

        path = {int(k): v for k, v in src.path.items()} if isinstance(src.path, dict) else src.path
        return read_admin(path, **opts)
    if src.kind == "raster":
        from ..io.raster import load_raster

        return load_raster(src.path)
    if src.kind == "points":
        from ..io.points import read_points

        return read_points(src.path, **opts)
    if src.kind == "tiles":
        from ..io.tiles import read_tiles

        return read_tiles(src.path, **opts)
    if src.kind == "vector":
        from ..io._files import read_vector, to_wgs84

        layer = read_vector(
            Path(src.path), layer=opts.get("layer"), what="vector layer", where="sources"
        )
        return to_wgs84(layer, crs=opts.get("crs"), path=str(src.path), where="sources")
    if src.kind == "table":
        import pandas as pd

        path = Path(src.path)
        if path.suffix.lower() in (".xlsx", ".xls"):
            return pd.read_excel(path, sheet_name=opts.get("sheet", 0), dtype=str)
        return pd.read_csv(path, dtype=str, encoding=opts.get("encoding") or "utf-8")
    if src.kind == "georepo":
        from ..remote import georepo

        return georepo.read_view(**opts, cache_dir=None if cache_dir is None else str(cache_dir))
    if src.kind == "dhis2":
        if admin is None:
            raise InputError(
                problem(
                    "a dhis2 source",
                    "needs the admin units to match its org units",
                    "read it through a run",
                )
            )
        return _read_dhis2(opts, admin, cache_dir)
    raise InputError(problem(f"source kind {src.kind!r}", "has no reader", "use a known kind"))


def _read_dhis2(opts: dict[str, Any], admin: Any, cache_dir: Any) -> Any:
    """DHIS2 analytics values with a ``ucode`` per row: org units read and matched to the finest
    admin units (by code, name under the parent, then space), values read for the matched units."""
    from ..remote import dhis2

    keys = ("token_env", "user_env", "password_env", "timeout", "retries", "backoff")
    http = {k: opts[k] for k in keys if k in opts}
    cache = None if cache_dir is None else str(cache_dir)
    org = dhis2.read_org_units(
        opts["base_url"], levels=opts.get("org_unit_levels"), cache_dir=cache, **http
    )
    matched = dhis2.match_org_units(
        org,
        admin,
        level_offset=int(opts.get("level_offset", 1)),
        min_overlap=float(opts.get("min_overlap", 0.5)),
    )
    finest = int(admin["admin_level"].max())
    keep = matched[matched["admin_level"] == finest].dropna(subset=["ucode"])
    ou = opts.get("ou") or ";".join(keep["id"].astype(str))
    values = dhis2.read_analytics(
        opts["base_url"], dx=opts["dx"], ou=ou, pe=opts["pe"], cache_dir=cache, **http
    )
    out = values.merge(
        keep[["id", "ucode", "match_method"]], left_on="ou", right_on="id", how="left"
    )
    out = out.drop(columns="id")
    out.attrs["geopipe"] = {"dhis2": dict(matched.attrs.get("geopipe", {}))}
    return out


class RunContext:
    """Holds a run's inputs (read once) and its run-wide memo; makes :class:`BatchData` per batch."""

    def __init__(
        self,
        pipeline: Pipeline,
        fingerprints: dict[str, dict[str, Any]] | None = None,
        *,
        preread: dict[str, Any] | None = None,
        cache_dir: Any = None,
    ) -> None:
        self.pipeline = pipeline
        # files only: remote sources are fingerprinted by the content they returned
        self.fingerprints = {r: fp for r, fp in (fingerprints or {}).items() if "mtime_ns" in fp}
        self.counts: collections.Counter[str] = collections.Counter()
        self._read: dict[str, Any] = dict(preread or {})
        self.counts.update({f"read:{name}": 1 for name in self._read})
        self.memo: dict[tuple, Any] = {}
        self.cache_dir = cache_dir
        self.timings: dict[str, float] = {}
        from .engines import Engine

        self.engine = Engine()
        #: the run key (tasks of the same run share their run-scope memo in a worker)
        self.run_key: str | None = None
        #: unit set -> step name -> columns computed in another unit set's pass (the grid
        #: fragments computed with the districts they tile), waiting for the unit set's steps
        self.given: dict[str, dict[str, dict[str, np.ndarray]]] = {}

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the seconds of the block to ``timings[name]`` (a step's time over its batches)."""
        from .. import events

        t0 = time.perf_counter()
        events.emit("step_start", step=name, kind=name.split("/", 1)[-1].split(":", 1)[0])
        status = "failed"
        try:
            yield
            status = "computed"
        finally:
            seconds = time.perf_counter() - t0
            self.timings[name] = self.timings.get(name, 0.0) + seconds
            events.emit("step_end", step=name, seconds=round(seconds, 6), rows=None, status=status)

    def source(self, name: str) -> Any:
        """The source ``name``, read on first use."""
        if name not in self._read:
            self.counts[f"read:{name}"] += 1
            src = self.pipeline.sources[name]
            if src.kind == "raster" and self.partitioned:
                from ..io.raster import load_raster

                # the partitions read their own windows: here the header is enough (the checks
                # and whole-country steps read it by row blocks)
                self._read[name] = load_raster(src.path, max_bytes=0)
            else:
                self._read[name] = read_source(src, cache_dir=self.cache_dir)
        return self._read[name]

    @property
    def partitioned(self) -> bool:
        """Whether the pixel steps run in partition tasks that read their own raster windows."""
        return self.engine.kind != "local" or self.engine.partition_level is not None

    def admin(self) -> Any:
        """The ``dim_admin`` table of the pipeline's admin source."""
        return self.source(self.pipeline.units.admin)

    def batch(
        self, unitset: str, units: Any, *, through: tuple[BatchData, np.ndarray] | None = None
    ) -> BatchData:
        """A :class:`BatchData` for ``units`` (one batch of the unit set ``unitset``), computed
        through the pixels of another batch with ``through`` (see :class:`BatchData`)."""
        return BatchData(self, unitset, units, through=through)

    def verify_unchanged(self) -> None:
        """Fail when an input file changed (size, mtime, inode) since it was fingerprinted."""
        changed = []
        for role, fp in self.fingerprints.items():
            try:
                st = os.stat(fp["path"])
            except OSError:
                changed.append(f"{role} ('{fp['path']}' is gone)")
                continue
            if (
                st.st_size != fp["size"]
                or st.st_mtime_ns != fp["mtime_ns"]
                or (fp.get("inode") not in (None, st.st_ino))
            ):
                changed.append(f"{role} ('{fp['path']}')")
        if changed:
            raise InputError(
                problem(
                    f"inputs {', '.join(changed)}",
                    "changed while the run was reading them, so the numbers would not match the recorded sha256",
                    "rerun when the files are no longer being written; the previous outputs were left untouched",
                    where="run_pipeline",
                )
            )


class _Grid:
    """Pixel weights of one batch of units on one raster grid, and what is derived from them."""

    def __init__(self, key: tuple, weights: Any, base: _Grid | None = None) -> None:
        self.key = key
        self.weights = weights
        #: the grid whose pairs these are, relabelled (districts from their fragments): what
        #: depends only on the pixels (values, centres, distinct pixels) is shared with it
        self.base = base
        self.values: dict[str, tuple[np.ndarray, np.ndarray]] = {} if base is None else base.values

    @cached_property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        if self.base is not None:
            return self.base.lonlat
        lon, lat = self.weights.pixel_lonlat()
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    @cached_property
    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """One pair of each distinct pixel (sorted by pixel) and every pair's distinct pixel.

        A lookup table over the rows the pairs span (linear time) when it is not much larger
        than the pairs, else a sort. Which pair stands for a pixel does not matter: the pairs of
        one pixel share its row, column and centre.
        """
        if self.base is not None:
            return self.base.distinct
        w = self.weights
        row, col = w.row, w.col
        if len(row) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        # the table spans the rows and columns the pairs span (a partition's window, not the
        # raster's width), in int32 when the pairs allow it: half the memory to fill and scan
        r0, c0 = int(row.min()), int(col.min())
        span = int(col.max()) - c0 + 1
        key = (row - r0).astype(np.int64) * span
        key += col
        key -= c0
        size = (int(row.max()) - r0 + 1) * span
        if size > 4 * len(key) + 1_000_000:
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            return first, inverse
        kind = np.int32 if len(key) < 2**31 - 1 else np.int64
        pos = np.full(size, -1, dtype=kind)
        pos[key] = np.arange(len(key), dtype=kind)
        present = pos >= 0
        rank = np.cumsum(present, dtype=kind)
        rank -= 1
        return pos[present].astype(np.int64), rank[key].astype(np.int64)


class PixelView:
    """The pixels of a batch of units on one raster's grid (what pixel steps work on).

    ``unit`` (position of each (unit, pixel) pair's unit in the batch), ``coverage``, ``lon`` /
    ``lat`` (pixel centres), ``lattice`` (raster row and column of each pair), ``distinct``
    (first pair of each distinct pixel, and the inverse map), :meth:`values` (raster values at
    the pairs, for any raster source on this grid).
    """

    def __init__(self, data: BatchData, grid: _Grid, raster: str) -> None:
        self._data, self._grid, self.raster = data, grid, raster
        self.weights = grid.weights
        self.grid = grid.key
        self.n = grid.weights.n_units

    @property
    def unit(self) -> np.ndarray:
        return self.weights.unit

    @property
    def coverage(self) -> np.ndarray:
        return self.weights.coverage

    @property
    def lon(self) -> np.ndarray:
        return self._grid.lonlat[0]

    @property
    def lat(self) -> np.ndarray:
        return self._grid.lonlat[1]

    @property
    def lattice(self) -> tuple[np.ndarray, np.ndarray]:
        """Raster row and column of every pair's pixel."""
        return self.weights.row, self.weights.col

    @property
    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        return self._grid.distinct

    def values(self, raster: str) -> tuple[np.ndarray, np.ndarray]:
        """``(values, valid)`` of raster source ``raster`` at every (unit, pixel) pair."""
        if raster not in self._grid.values:
            data = self._data.source(raster)
            if _grid_key(data) != self.grid[:4]:
                raise RasterError(
                    problem(
                        f"raster source {raster!r}",
                        f"is not on the grid of {self.raster!r}",
                        "resample it onto that grid (gdalwarp) or use it in a step of its own",
                        where="pipeline",
                    )
                )
            self._grid.values[raster] = _values_at(data, self.weights)
        return self._grid.values[raster]


class BatchData:
    """What a step receives for one batch of units (implements :class:`geopipe.steps.StepData`).

    With ``through=(fragments, parent)`` the batch's units are computed through the pixels of
    another batch (grid fragments that tile them; ``parent[i]`` is the position in ``units`` of
    fragment ``i``): their pixel weights are the fragments' relabelled, never built again, and
    what depends only on the pixels (raster values, centres, ``scope="pixels"`` memos) is the
    fragments' own.
    """

    def __init__(
        self,
        ctx: RunContext,
        unitset: str,
        units: Any,
        *,
        through: tuple[BatchData, np.ndarray] | None = None,
    ) -> None:
        self.ctx, self.unitset, self.units = ctx, unitset, units
        self._grids: dict[tuple, _Grid] = {}
        self._memo: dict[tuple, Any] = {}
        self.through = through
        self._pixel_memo: dict[tuple, Any] = {} if through is None else through[0]._pixel_memo

    def source(self, name: str) -> Any:
        return self.ctx.source(name)

    def pixels(self, raster: str, *, edge: str = "fraction") -> PixelView:
        data = self.source(raster)
        key = (*_grid_key(data), edge)
        if key not in self._grids:
            if self.through is not None:
                base, parent = self.through
                grid = base.pixels(raster, edge=edge)._grid
                self.ctx.counts[f"relabelled:{self.unitset}:{_short(key)}"] += 1
                weights = grid.weights.relabel(parent, len(self.units))
                self._grids[key] = _Grid(key, weights, base=grid)
            else:
                from ..zonal.raster import pixel_weights

                self.ctx.counts[f"weights:{self.unitset}:{_short(key)}"] += 1
                self._grids[key] = _Grid(key, pixel_weights(self.units, data, edge=edge))
        return PixelView(self, self._grids[key], raster)

    def memo(self, key: tuple, compute: Callable[[], Any], *, scope: str = "batch") -> Any:
        """``compute()`` once per ``scope``: ``"batch"`` (these units), ``"pixels"`` (a value
        that depends only on the batch's pixels, never on its units, e.g. a distance at every
        pair: shared with the units computed through the same pixels) or ``"run"``."""
        store = {"run": self.ctx.memo, "pixels": self._pixel_memo}.get(scope, self._memo)
        if key not in store:
            store[key] = compute()
        return store[key]


def _grid_key(data: Any) -> tuple:
    from ..zonal.raster import crs_id

    return (crs_id(data.crs), tuple(data.transform)[:6], data.height, data.width)


def _short(key: tuple) -> str:
    import hashlib

    return hashlib.sha256(repr(key).encode()).hexdigest()[:8]


def _values_at(data: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    if getattr(data, "in_memory", False):
        return data.values_at(weights.row, weights.col)
    from ..zonal.layers import pixel_values

    return pixel_values(weights, data)
