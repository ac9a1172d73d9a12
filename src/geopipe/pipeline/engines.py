"""Engines: where the pixel steps of a run execute — in process, on a process pool, or as tasks
on a Dask ``distributed`` cluster. No home-made scheduler: ``concurrent.futures`` and
``distributed`` do the scheduling, retries and worker-failure recovery.

A **partition** is a set of units (all the finest admin units under one unit of
``partition_level``, or a memory-bounded batch of units) whose pixel steps run together: the
task receives the pipeline (sources as *paths* and parameters, never open datasets), the units of
the partition and the steps; it opens the rasters itself and holds only the rows its units cover.
Every unit belongs to exactly one partition and a unit's pixels are summed in the same order
whatever the partition, so the tables equal the unpartitioned run's; steps that need every unit
at once (point counts, overlays, ``edge="renormalize"``) are not partitioned.

Dask is an optional extra (``pip install geopipe[dask]``); ``import geopipe`` never imports it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._heap import KEEP_BYTES, reuse_heap_for_good, reusing_heap
from ..errors import ConfigError, DependencyError, problem
from ..io.raster import bounded_block_cache

__all__ = ["ENGINES", "PARTITION_MB", "Engine", "iter_tasks", "map_tasks", "run_partitions"]

ENGINES = ("local", "processes", "dask")
#: default budget of one partition (MB): raster windows plus pixel tables
PARTITION_MB = 1024


@dataclasses.dataclass(frozen=True)
class Engine:
    """How a run executes its pixel steps.

    Parameters
    ----------
    kind
        ``"local"`` (in process, default), ``"processes"`` (a process pool on this machine) or
        ``"dask"`` (a ``distributed.Client``: a ``LocalCluster`` by default).
    workers
        Pool / local cluster size (default: the number of CPUs).
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``) instead of a local cluster.
    retries
        Times a failed task is retried (Dask: also survives a worker dying, within
        distributed's ``allowed-failures``).
    partition_level
        Partition the finest units by their ancestor at this admin level (default: memory-bounded
        batches of units).
    memory_mb
        Budget of one partition (default :data:`PARTITION_MB`): its raster windows and pixel
        tables, as estimated by :func:`~geopipe.zonal.layers.plan_batches`, which splits units
        (and admin partitions larger than the budget) so that each partition fits.

    Examples
    --------
    >>> Engine("processes", workers=2).kind
    'processes'
    """

    kind: str = "local"
    workers: int | None = None
    scheduler: str | None = None
    retries: int = 2
    partition_level: int | None = None
    memory_mb: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise ConfigError(
                problem("engine", f"was {self.kind!r}", f"use one of {list(ENGINES)}")
            )
        if self.workers is not None and self.workers < 1:
            raise ConfigError(problem("workers", f"was {self.workers}", "use 1 or more"))
        if self.memory_mb is not None and self.memory_mb < 16:
            raise ConfigError(
                problem("memory_mb", f"was {self.memory_mb}", "give a budget of 16 MB or more")
            )

    @property
    def budget_bytes(self) -> int:
        """The partition budget in bytes."""
        return (self.memory_mb or PARTITION_MB) * 2**20

    def partitioning(self) -> dict[str, int | None]:
        """What decides the partitions (part of the run key: sums over other partitions can
        differ in the last bits); the engine kind and worker count are not."""
        return {"partition_level": self.partition_level, "memory_mb": self.memory_mb}


def _window(units: Any, data: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Raster rows and columns ``([start, stop), [start, stop))`` the units cover, with a
    one-pixel margin: what a partition reads of a raster (its bounding box, not a strip of
    whole rows: the strips of a country's provinces overlap, and read 5.3 times its pixels on
    the synthetic countries where the boxes read 1.4 times).

    Examples
    --------
    >>> _window(districts.iloc[:3], load_raster("pop.tif", max_bytes=0))  # doctest: +SKIP
    ((120, 388), (40, 301))
    """
    import shapely
    from pyproj import Transformer

    from ..zonal.raster import crs_id

    x0, y0, x1, y1 = units.total_bounds
    box = shapely.box(x0, y0, x1, y1)
    if crs_id(units.crs) != crs_id(data.crs):
        # the box's edges densified: a projected edge can bulge beyond its corners
        box = shapely.segmentize(box, max(x1 - x0, y1 - y0, 1e-12) / 20)
    xs, ys = shapely.get_coordinates(box).T
    if crs_id(units.crs) != crs_id(data.crs):
        xs, ys = Transformer.from_crs(units.crs, data.crs, always_xy=True).transform(xs, ys)
    inv = ~data.transform
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    cols, rows = inv.a * xs + inv.b * ys + inv.c, inv.d * xs + inv.e * ys + inv.f
    r0, r1 = int(np.floor(np.min(rows))) - 1, int(np.ceil(np.max(rows))) + 1
    c0, c1 = int(np.floor(np.min(cols))) - 1, int(np.ceil(np.max(cols))) + 1
    return (max(0, r0), min(data.height, r1)), (max(0, c0), min(data.width, c1))


#: what the tasks of one run share inside a worker process (a travel-time surface, pixel
#: distances): ``(run key, memo)``, replaced when a task of another run arrives
_RUN_MEMO: list[Any] = [None, {}]


@bounded_block_cache
@reusing_heap
def run_partition(
    pipeline: Any,
    unitset: str,
    units: Any,
    steps: Sequence[Any],
    run_key: str | None = None,
    cells: tuple[str, Any, np.ndarray] | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The task: run ``steps`` on ``units`` of ``pipeline``, opening what it needs itself.

    Rasters are opened here and hold only the rows the partition covers. Results a step keeps
    for the whole run (``scope="run"``, e.g. a travel-time surface) are computed once per worker
    process and run (``run_key``: the run key, which covers every input's bytes), not once per
    task. With ``cells=(grid name, fragments, parent)`` (the grid fragments that tile ``units``,
    ``parent[i]`` the position in ``units`` of fragment ``i``) the steps run on the fragments
    too, and the units are computed through the fragments' pixel weights (one pixel pass).

    Returns ``{unit set: {step name: {column: values}}}``, values in the order of the units.

    Examples
    --------
    >>> cols = run_partition(pipeline, "admin", districts.iloc[:3], pixel_steps)  # doctest: +SKIP
    >>> cols["admin"]["raster_stats:population_total"]["population_total"]  # doctest: +SKIP
    """
    from ..io.raster import load_raster
    from .context import RunContext

    ctx = RunContext(pipeline)
    shared: dict[str, Any] = {}
    if run_key is not None:
        if _RUN_MEMO[0] != run_key:
            _RUN_MEMO[:] = [run_key, {}]
        ctx.memo = _RUN_MEMO[1]
        # vector sources (facilities, tiles) are read once per worker and run, like the memo
        shared = ctx.memo.setdefault(("sources",), {})
        ctx._read.update(shared)
    windows = set()
    for name, src in pipeline.sources.items():
        if src.kind == "raster" and any(name in s.sources().values() for s in steps):
            header = load_raster(src.path, max_bytes=0)  # the header only
            rows, cols = _window(units, header)
            ctx._read[name] = load_raster(src.path, rows=rows, cols=cols)
            windows.add(name)
    out = run_batch(ctx, unitset, units, steps, cells)
    if run_key is not None:
        shared.update({k: v for k, v in ctx._read.items() if k not in windows})
    return out


def run_batch(
    ctx: Any,
    unitset: str,
    units: Any,
    steps: Sequence[Any],
    cells: tuple[str, Any, np.ndarray] | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Run ``steps`` on one batch of ``units`` from what ``ctx`` holds (and on its grid
    ``cells``, see :func:`run_partition`): ``{unit set: {step name: {column: values}}}``.

    Examples
    --------
    >>> run_batch(ctx, "admin", districts, pixel_steps)["admin"]  # doctest: +SKIP
    """
    if cells is None:
        data = ctx.batch(unitset, units)
        return {unitset: {s.name: _timed(ctx, unitset, s, units, data) for s in steps}}
    name, fragments, parent = cells
    fdata = ctx.batch(name, fragments)
    data = ctx.batch(unitset, units, through=(fdata, parent))
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {unitset: {}, name: {}}
    for s in steps:
        out[name][s.name] = _timed(ctx, name, s, fragments, fdata)
    known = {c: v for cols in out[name].values() for c, v in cols.items()}
    for s in steps:
        rolled = from_fragments(s, known, parent, len(units)) if s.additive() else None
        out[unitset][s.name] = (
            rolled if rolled is not None else _timed(ctx, unitset, s, units, data)
        )
    return out


def from_fragments(
    step: Any, columns: dict[str, np.ndarray], parent: np.ndarray, n: int
) -> dict[str, np.ndarray] | None:
    """``step``'s columns for ``n`` units from those of the fragments that tile them.

    ``columns`` holds the fragments' columns (this step's and the other steps' of the batch),
    ``parent[i]`` the unit of fragment ``i``. Sums add up; a weighted mean is the fragments'
    means weighted by its declared weight (fragments without a mean or with no weight count
    nothing). Only for a step whose :meth:`~geopipe.steps.Step.additive` is true; ``None`` when
    a column or a weight is not among ``columns``.

    Examples
    --------
    >>> from_fragments(raster_stats_step, {"population_total": np.array([1.0, 2.0, 4.0])},
    ...                np.array([0, 0, 1]), 2)  # doctest: +SKIP
    {'population_total': array([3., 4.])}
    """
    out: dict[str, np.ndarray] = {}
    for ind in step.indicators():
        if ind.aggregation == "ratio":
            continue
        if ind.id not in columns:
            return None
        if ind.aggregation == "sum":
            out[ind.id] = np.bincount(parent, columns[ind.id], minlength=n)
            continue
        weight = columns.get(ind.weight)
        if weight is None:
            return None
        mean = columns[ind.id]
        has = np.isfinite(mean) & (weight > 0)
        den = np.bincount(parent, np.where(has, weight, 0.0), minlength=n)
        num = np.bincount(parent, np.where(has, mean * weight, 0.0), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[ind.id] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return {c: out[c] for c in step.columns()}


def _timed(ctx: Any, unitset: str, step: Any, units: Any, data: Any) -> dict[str, np.ndarray]:
    with ctx.timed(f"{unitset}/{step.name}"):
        return step.run(units, data)


def run_partitions(
    engine: Engine,
    pipeline: Any,
    unitset: str,
    parts: list[Any],
    steps: Sequence[Any],
    run_key: str | None = None,
    cells: list[tuple[str, Any, np.ndarray]] | None = None,
) -> list[dict[str, dict[str, dict[str, np.ndarray]]]]:
    """Run :func:`run_partition` for every partition (a GeoDataFrame of units, with its grid
    fragments in ``cells``) on ``engine``."""
    calls = [
        (pipeline, unitset, part, list(steps), run_key, None if cells is None else cells[i])
        for i, part in enumerate(parts)
    ]
    order = largest_first(parts)
    try:
        done = map_tasks(engine, run_partition, [calls[i] for i in order])
        results: list[Any] = [None] * len(calls)
        for i, result in zip(order, done, strict=True):
            results[i] = result
        return results
    finally:
        if engine.kind == "local":  # in this process: do not hold the run's memo after it
            _RUN_MEMO[:] = [None, {}]


def largest_first(parts: Sequence[Any]) -> np.ndarray:
    """Positions of ``parts`` (GeoDataFrames of units) by decreasing area, ties in list order:
    the order their tasks are handed out in, so that the largest partitions do not come last
    and leave a worker idle at the end of the run. Results are put back in list order.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> small, big = (gpd.GeoDataFrame(geometry=[shapely.box(0, 0, s, s)]) for s in (1, 3))
    >>> largest_first([small, big, small]).tolist()
    [1, 0, 2]
    """
    import shapely

    areas = [float(shapely.area(part.geometry.to_numpy()).sum()) for part in parts]
    return np.argsort(-np.asarray(areas, dtype=float), kind="stable")


def map_tasks(engine: Engine, fn: Any, calls: list[tuple[Any, ...]]) -> list[Any]:
    """``[fn(*args) for args in calls]`` on ``engine``, results in the order of ``calls``.

    ``processes``: a spawned process pool; a pool broken by a dying worker is replaced and the
    calls retried (``engine.retries`` times). ``dask``: ``client.submit`` with
    ``retries=engine.retries``; distributed reschedules the tasks of a worker that dies.

    Examples
    --------
    >>> map_tasks(Engine("local"), pow, [(2, 3), (3, 2)])
    [8, 9]
    """
    if engine.kind == "local" or not calls:
        return [fn(*args) for args in calls]
    if engine.kind == "processes":
        return list(_on_pool(engine, fn, calls))
    return _on_dask(engine, fn, calls)


def iter_tasks(engine: Engine, fn: Any, calls: list[tuple[Any, ...]]) -> Iterator[Any]:
    """:func:`map_tasks` as an iterator: each result in the order of ``calls`` as soon as it
    and those before it are done (``local``: each call is made when its result is asked for),
    so that the caller can use the first results while the engine computes the others.

    Examples
    --------
    >>> list(iter_tasks(Engine("local"), pow, [(2, 3), (3, 2)]))
    [8, 9]
    """
    if engine.kind == "local" or not calls:
        for args in calls:
            yield fn(*args)
    elif engine.kind == "processes":
        yield from _on_pool(engine, fn, calls)
    else:
        client = _client(engine)
        for future in [
            client.submit(fn, *args, retries=engine.retries, pure=False) for args in calls
        ]:
            yield future.result()


def _on_pool(engine: Engine, fn: Any, calls: list[tuple[Any, ...]]) -> Iterator[Any]:
    from concurrent.futures.process import BrokenProcessPool

    attempts, done = engine.retries + 1, 0
    for attempt in range(attempts):
        pool = _pool(engine.workers)
        try:
            futures = [pool.submit(fn, *args) for args in calls[done:]]
            for future in futures:
                result = future.result()
                done += 1
                yield result
            return
        except BrokenProcessPool:  # a worker died: a fresh pool retries the calls not done
            _POOLS.pop(engine.workers, None)
            if attempt == attempts - 1:
                raise


#: one process pool per size for the life of the process (spawning workers costs ~1 s each)
_POOLS: dict[int | None, Any] = {}


#: what a partition's task imports: a warmed-up worker has them before its first task
_TASK_MODULES = (
    "geopipe.pipeline.context",
    "geopipe.steps",
    "geopipe.zonal.areal",
    "geopipe.zonal.distance",
    "geopipe.zonal.layers",
    "geopipe.zonal.raster",
    "geopipe.zonal.traveltime",
    "scipy.spatial",
)


def warm_up(engine: Engine) -> None:
    """Start the ``processes`` pool's workers now, without waiting for them.

    A spawned worker is a fresh interpreter that imports geopipe and its libraries (about 1 s
    each) before its first task; started when the run begins, that overlaps with the parent
    reading the inputs and building the grids instead of following it. Other engines: nothing
    (a Dask cluster starts when its client is first needed).

    Examples
    --------
    >>> warm_up(Engine("local"))  # nothing to start
    """
    if engine.kind != "processes":
        return
    pool = _pool(engine.workers)
    for _ in range(engine.workers or os.cpu_count() or 1):
        pool.submit(_import_task_modules)


def _import_task_modules() -> None:
    import importlib

    for name in _TASK_MODULES:
        importlib.import_module(name)


def _pool(workers: int | None) -> Any:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if workers not in _POOLS:
        ctx = multiprocessing.get_context("spawn")  # no fork after GDAL / thread pools started
        _POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=reuse_heap_for_good
        )
    return _POOLS[workers]


def _client(engine: Engine) -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise DependencyError(
            problem("engine 'dask'", "needs the distributed package", "pip install 'geopipe[dask]'")
        ) from exc
    client = _CLIENTS.get((engine.scheduler, engine.workers))
    if client is None or client.status != "running":
        if engine.scheduler:
            client = distributed.Client(engine.scheduler)
        else:
            import dask

            # distributed starts its workers with MALLOC_TRIM_THRESHOLD_=65536 so that they hand
            # memory back to the OS at once: every NumPy temporary is then a fresh mmap whose
            # pages the kernel zeroes, and the pixel work ran 20-60 % slower. The workers of a
            # cluster geopipe starts keep freed memory for reuse instead, as its process pool
            # does (geopipe._heap; docs/engines.md, "Freed memory is kept for reuse"). The
            # nanny also writes these into this process's os.environ (distributed's documented
            # behaviour): this process, already started, is not changed by that. Its workers'
            # statistical profiler (a stack sample every 10 ms, for a dashboard this cluster
            # does not start) is off: it took 8 % of a 10⁸-pixel country's time (83.4 s against
            # 77.3 s, docs/engines.md)
            environ = "distributed.nanny.pre-spawn-environ"
            with dask.config.set(
                {
                    f"{environ}.MALLOC_TRIM_THRESHOLD_": str(KEEP_BYTES),
                    f"{environ}.MALLOC_MMAP_MAX_": "0",
                    # a worker runs its tasks in a thread, and glibc serves a thread's blocks
                    # over 64 MB (its arenas' heap size) with a fresh mmap whatever
                    # MALLOC_MMAP_MAX_ says: one arena, the main heap, for every thread
                    f"{environ}.MALLOC_ARENA_MAX": "1",
                    "distributed.worker.profile.enabled": False,
                }
            ):
                cluster = distributed.LocalCluster(
                    n_workers=engine.workers or 2,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,
                )
            client = distributed.Client(cluster)
        _CLIENTS[(engine.scheduler, engine.workers)] = client
    return client


def _on_dask(engine: Engine, fn: Any, calls: list[tuple[Any, ...]]) -> list[Any]:
    client = _client(engine)
    futures = [client.submit(fn, *args, retries=engine.retries, pure=False) for args in calls]
    return client.gather(futures)


#: one client per (scheduler, workers) for the life of the process (a cluster is slow to start)
_CLIENTS: dict[tuple[Any, Any], Any] = {}


def close_clients() -> None:
    """Close the Dask clients (and local clusters) and process pools this process started."""
    for pool in list(_POOLS.values()):
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()
    for client in list(_CLIENTS.values()):
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
    _CLIENTS.clear()
