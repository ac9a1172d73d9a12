"""Measures per unit: raster sums, point counts, wealth, connectivity and service coverage.

Every function takes units (admin units or H3 fragments) and returns a new table with the measure
columns, named by the catalog's indicator ids; :class:`MeasureCache` reuses the measures of the
previous run when their own inputs are unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..config import PipelineConfig, PointLayer
from ..errors import InputError, MissingColumnError, problem
from ._util import jsonable, parameters

__all__ = [
    "MeasureCache",
    "add_age_shares",
    "add_connectivity",
    "add_measures",
    "add_point_counts",
    "add_raster_sums",
    "add_service_coverage",
    "add_wealth",
    "h3_table",
]


def add_measures(
    units: gpd.GeoDataFrame,
    cfg: PipelineConfig,
    *,
    cache: MeasureCache | None = None,
    unitset: str = "units",
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Add every measure the config asks for to ``units`` (admin units or H3 fragments).

    Columns are named by the catalog's sum / mean indicator ids: raster sums
    (``population_total``, ...), point counts, ``children_in_poverty``/``wealth_index_mean``
    (``wealth``), ``download_mbps_mean``/``population_broadband``/... (``connectivity``) and
    ``population_within_health``/``children_beyond_5km_health``/``distance_to_health_km_mean``
    (``service``). Returns the units and a report per stage for the manifest.

    With a :class:`MeasureCache`, each group of measures is reused from the previous run when its
    own inputs and parameters are unchanged (``unitset`` names the set of units, e.g. ``adm2``).
    """
    groups: list[tuple[str, list[str], dict[str, Any], Any]] = [
        (
            "rasters",
            [f"raster_{k}" for k in cfg.rasters],
            {},
            lambda u: add_raster_sums(u, cfg.rasters),
        )
    ]
    if cfg.age_shares is not None:
        groups.append(
            ("age_shares", ["age_shares"], {}, lambda u: (add_age_shares(u, cfg.age_shares), {}))
        )
    groups.append(
        (
            "points",
            [f"points_{p.name}" for p in cfg.points],
            parameters(cfg)["points"],
            lambda u: add_point_counts(u, cfg.points),
        )
    )
    if cfg.wealth:
        groups.append(
            (
                "wealth",
                ["wealth_tiles", "raster_population_u18"],
                parameters(cfg)["wealth"],
                lambda u: add_wealth(u, cfg),
            )
        )
    if cfg.connectivity:
        deps = ["connectivity_tiles", "raster_population_total"] + (
            ["raster_population_u18"] if "population_u18" in cfg.rasters else []
        )
        groups.append(
            (
                "connectivity",
                deps,
                parameters(cfg)["connectivity"],
                lambda u: add_connectivity(u, cfg),
            )
        )
    if cfg.service:
        deps = [f"points_{cfg.service['facilities']}", "raster_population_total"] + (
            ["raster_population_u18"] if "population_u18" in cfg.rasters else []
        )
        params = {
            **parameters(cfg)["service"],
            "points": parameters(cfg)["points"][cfg.service["facilities"]],
        }
        groups.append(("service", deps, params, lambda u: (add_service_coverage(u, cfg), {})))
    reports: dict[str, Any] = {}
    for name, deps, params, compute in groups:
        if cache is None:
            units, reports[name] = compute(units)
        else:
            units, reports[name] = cache.apply(unitset, name, deps, params, units, compute)
    return units, reports


class MeasureCache:
    """Measures of the previous run, reused per (unit set, group) when their inputs are unchanged.

    Entries live in ``<run>/.cache/<unitset>__<group>.parquet``: the columns the group added, with
    the key (sha256 of the group's input files, its parameters and the unit set) in the file's
    metadata. A run reads the old folder's entries and writes the entries it used into the new one.
    """

    def __init__(
        self, old: Path, new: Path, input_sha: dict[str, str], unit_keys: dict[str, str]
    ) -> None:
        self.old, self.new = old, new
        self.input_sha = input_sha
        self.unit_keys = unit_keys
        self.status: dict[str, str] = {}

    def _key(self, unitset: str, group: str, deps: list[str], params: dict[str, Any]) -> str:
        import hashlib
        import json

        blob = json.dumps(
            {
                "units": self.unit_keys[unitset],
                "group": group,
                "inputs": {d: self.input_sha.get(d) for d in sorted(deps)},
                "params": params,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def apply(
        self,
        unitset: str,
        group: str,
        deps: list[str],
        params: dict[str, Any],
        units: gpd.GeoDataFrame,
        compute: Any,
    ) -> tuple[gpd.GeoDataFrame, Any]:
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        key = self._key(unitset, group, deps, params)
        name = f"{unitset}__{group}.parquet"
        old = self.old / name
        if old.is_file():
            meta = pq.read_schema(old).metadata or {}
            if meta.get(b"geopipe_key", b"").decode() == key:
                table = pq.read_table(old)
                if table.num_rows == len(units):
                    cached = table.to_pandas()
                    out = units.copy()
                    for col in cached.columns:
                        out[col] = cached[col].to_numpy()
                    self._store(name, table)
                    self.status[f"{unitset}/{group}"] = "reused"
                    return out, json.loads(meta.get(b"geopipe_report", b"{}"))
        out, report = compute(units)
        added = [c for c in out.columns if c not in units.columns]
        table = pa.Table.from_pandas(
            pd.DataFrame(out[added]).reset_index(drop=True), preserve_index=False
        )
        table = table.replace_schema_metadata(
            {
                "geopipe_key": key,
                "geopipe_report": json.dumps(jsonable(report), sort_keys=True, default=str),
            }
        )
        self._store(name, table)
        self.status[f"{unitset}/{group}"] = "computed"
        return out, report

    def _store(self, name: str, table: Any) -> None:
        import pyarrow.parquet as pq

        self.new.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.new / name, compression="zstd")


def add_wealth(
    units: gpd.GeoDataFrame, cfg: PipelineConfig
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Child poverty from a wealth tile layer weighted by the under-18 raster."""
    from ..zonal.layers import zonal_layer

    spec = cfg.wealth
    kind = spec.get("kind", "tiles")
    if kind == "raster":
        tiles, value = spec["tiles"], None
    elif kind == "points":
        from ..io.points import read_points

        tiles, value = read_points(spec["tiles"]), spec["value"]
    else:
        tiles, value = _read_value_layer(spec["tiles"], spec.get("zoom")), spec["value"]
    max_d = float(spec["max_distance_km"]) * 1000.0 if spec.get("max_distance_km") else None
    out = zonal_layer(
        units,
        {"_w": cfg.rasters["population_u18"]},
        tiles,
        value,
        below=float(spec["poverty_threshold"]),
        scale=float(spec["scale"]),
        max_distance=max_d,
    )
    out = out.rename(
        columns={
            "_w_below": "children_in_poverty",
            "_w_mean": "wealth_index_mean",
            "_w_covered": "children_with_wealth_data",
        }
    )
    uncovered = float(out.pop("_w_uncovered").sum())
    total = uncovered + float(out["children_with_wealth_data"].sum())
    report = {
        "layer": kind,
        "features": len(tiles) if kind != "raster" else None,
        "children_without_wealth_data": uncovered,
        "share_children_without_wealth_data": uncovered / total if total else None,
    }
    return out, report


def _read_value_layer(path: Path, zoom: int | None) -> gpd.GeoDataFrame:
    """Quadkey tiles (Meta RWI, Ookla) through read_tiles; any other polygon layer as it is."""
    from ..io._files import read_vector, to_wgs84
    from ..io.tiles import read_tiles

    try:
        return read_tiles(path, zoom=zoom)
    except MissingColumnError:
        layer = read_vector(Path(path), what="value layer", where="pipeline")
        return to_wgs84(layer, crs=None, path=str(path), where="pipeline")


def add_connectivity(
    units: gpd.GeoDataFrame, cfg: PipelineConfig
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Population-weighted speed, broadband population and children without connectivity."""
    from ..zonal.layers import zonal_layer

    spec = cfg.connectivity
    tiles = _read_value_layer(spec["tiles"], spec.get("zoom"))
    if "tests" in tiles.columns:
        tiles = tiles[
            pd.to_numeric(tiles["tests"], errors="coerce").fillna(0) >= int(spec["min_tests"])
        ]
    rasters = {"_p": cfg.rasters["population_total"]}
    if "population_u18" in cfg.rasters:
        rasters["_c"] = cfg.rasters["population_u18"]
    thr = float(spec["broadband_mbps"])
    out = zonal_layer(
        units, rasters, tiles, spec["value"], scale=float(spec["scale"]), at_least=thr, below=thr
    )
    out = out.rename(
        columns={
            "_p_mean": "download_mbps_mean",
            "_p_at_least": "population_broadband",
            "_p_covered": "population_with_speed_data",
        }
    )
    if "_c_below" in out.columns:
        out["children_without_connectivity"] = out["_c_below"] + out["_c_uncovered"]
    if "tests" in tiles.columns:
        out = _tests_weighted(out, tiles, spec)
    report = {
        "tiles": len(tiles),
        "population_without_speed_data": float(out["_p_uncovered"].sum()),
    }
    out = out.drop(columns=[c for c in out.columns if c.startswith(("_p_", "_c_"))])
    return out, report


def _tests_weighted(
    units: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame, spec: dict[str, Any]
) -> gpd.GeoDataFrame:
    """``speed_tests`` (tests split by area share) and the tests-weighted mean speed per unit."""
    from ..zonal.areal import overlay_table

    pieces = overlay_table(tiles, units)
    tests = pd.to_numeric(tiles["tests"], errors="coerce").fillna(0).to_numpy(dtype=float)
    speed = pd.to_numeric(tiles[spec["value"]], errors="coerce").to_numpy(dtype=float) * float(
        spec["scale"]
    )
    src, unit = pieces["source"].to_numpy(), pieces["unit"].to_numpy()
    w = pieces["area_m2"].to_numpy() / pieces["source_area_m2"].to_numpy() * tests[src]
    ok = np.isfinite(speed[src])
    n = len(units)
    weight = np.bincount(unit[ok], weights=w[ok], minlength=n)
    total = np.bincount(unit[ok], weights=(w * np.nan_to_num(speed[src]))[ok], minlength=n)
    out = units.copy()
    out["speed_tests"] = weight
    with np.errstate(invalid="ignore", divide="ignore"):
        out["download_mbps_tests_mean"] = np.where(weight > 0, total / weight, np.nan)
    return out


def add_service_coverage(units: gpd.GeoDataFrame, cfg: PipelineConfig) -> gpd.GeoDataFrame:
    """Population and children within a distance of the service's facilities; mean distance."""
    from ..io.points import read_points
    from ..zonal.distance import nearest_distance, population_within

    spec = cfg.service
    layer = next(p for p in cfg.points if p.name == spec["facilities"])
    facilities = read_points(layer.source, **layer.options)
    children = cfg.rasters.get("population_u18")
    out = population_within(
        units,
        cfg.rasters["population_total"],
        facilities,
        distance_m=spec["distance_km"] * 1000.0,
        children=children,
        prefix="_pw",
        children_prefix="_cw",
    )
    out = out.rename(
        columns={
            "_pw_within": "population_within_health",
            "_cw_beyond": "children_beyond_5km_health",
        }
    )
    out = nearest_distance(out, facilities, raster=cfg.rasters["population_total"], name="_dist")
    out["distance_to_health_km_mean"] = out["_dist_popweighted"] / 1000.0
    return out.drop(columns=[c for c in out.columns if c.startswith(("_pw_", "_cw_", "_dist"))])


def h3_table(
    admin: gpd.GeoDataFrame,
    resolution: int,
    cfg: PipelineConfig,
    ids: list[str] | None,
    cache: MeasureCache | None = None,
) -> gpd.GeoDataFrame:
    """H3 cell fragments (split at the finest admin edges) with every indicator as a column."""
    import warnings

    from ..errors import GeopipeWarning
    from ..grids.h3 import h3_grid
    from ..indicators.compute import compute_indicators

    cells = h3_grid(admin, resolution, split=True).reset_index(drop=True)
    cells, _ = add_measures(cells, cfg, cache=cache, unitset=f"h3_r{resolution}")
    cells["_row"] = np.arange(len(cells))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)  # already reported for the admin units
        wide = compute_indicators(cells, ids, date=cfg.date, key="_row").wide
    keep = ["cell_id", "ucode", "area_km2", "cell_share"]
    value_cols = [
        c
        for c in wide.columns
        if c not in keep
        and c not in ("_row", "geometry", "admin_level")
        and pd.api.types.is_numeric_dtype(wide[c])
    ]
    wide = wide[[*[c for c in keep if c in wide.columns], *value_cols, "geometry"]]
    wide.insert(len(wide.columns) - 1, "date", cfg.date)
    return gpd.GeoDataFrame(wide, geometry="geometry", crs=cells.crs)


def add_raster_sums(
    units: gpd.GeoDataFrame, rasters: dict[str, Path | str]
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Add one column per raster: its coverage-weighted sum over each unit.

    Returns the new units and a report per raster (raster total, total inside the units, share
    of the raster's total outside the units).

    Examples
    --------
    >>> units, report = add_raster_sums(admin2, {"population_total": "pop.tif"})  # doctest: +SKIP
    """
    if not rasters:
        return units, {}
    from ..zonal.raster import zonal_raster

    prefixed = {name: str(path) for name, path in rasters.items()}
    out = zonal_raster(units, prefixed, stats=("sum",))
    rename = {f"{name}_sum": name for name in rasters}
    out = out.rename(columns=rename)
    report = dict(out.attrs.get("geopipe", {}).get("zonal_raster", {}))
    out.attrs = dict(units.attrs)
    return out, report


def add_age_shares(units: gpd.GeoDataFrame, path: Path | str) -> gpd.GeoDataFrame:
    """Join an age-share table (``share_u18``, ``share_u5`` per unit) onto the units.

    The table is matched on the first key both sides have: ``ucode``, ``pcode``, ``source_id``
    (``shapeID`` / ``GID`` in the table are taken as ``source_id``), then ``name``. Units without a
    share are reported, never silently given one.
    """
    table = pd.read_csv(path, dtype=str)
    table = table.rename(columns={"shapeID": "source_id"})
    key = next(
        (
            k
            for k in ("ucode", "pcode", "source_id", "name")
            if k in table.columns and k in units.columns and units[k].notna().all()
        ),
        None,
    )
    if key is None:
        raise MissingColumnError(
            problem(
                f"age-share table '{path}'",
                "has no ucode/pcode/source_id/shapeID/name column matching the units",
                "add one of them",
                where="add_age_shares",
            )
        )
    shares = [c for c in ("share_u18", "share_u5") if c in table.columns]
    if not shares:
        raise MissingColumnError(
            problem(
                f"age-share table '{path}'",
                "has neither share_u18 nor share_u5",
                "add the share columns (0-1)",
                where="add_age_shares",
            )
        )
    table = table[[key, *shares]].drop_duplicates(key)
    for col in shares:
        table[col] = pd.to_numeric(table[col], errors="coerce")
        bad = table[col].isna() | (table[col] < 0) | (table[col] > 1)
        if bad.any():
            raise InputError(
                problem(
                    f"age-share table '{path}'",
                    f"has {int(bad.sum())} {col} values outside 0-1 or not numbers",
                    "fix the shares",
                    where="add_age_shares",
                )
            )
    out = units.drop(columns=[c for c in shares if c in units.columns]).merge(
        table, on=key, how="left"
    )
    missing = out[shares[0]].isna()
    if missing.any():
        import warnings

        from ..errors import GeopipeWarning

        warnings.warn(
            f"add_age_shares: {int(missing.sum())} units have no age share in '{path}' (e.g. {out.loc[missing, 'name'].iloc[0]!r}); their child counts stay empty",
            GeopipeWarning,
            stacklevel=2,
        )
    return gpd.GeoDataFrame(out, geometry="geometry", crs=units.crs)


def add_point_counts(
    units: gpd.GeoDataFrame, layers: tuple[PointLayer, ...] | list[PointLayer]
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read each point layer and add its count per unit (plus the counts of its subsets)."""
    from ..io.points import read_points
    from ..zonal.points import count_points

    report: dict[str, Any] = {}
    for layer in layers:
        points = read_points(layer.source, **layer.options)
        units = count_points(units, points, name=layer.name)
        info = dict(points.attrs.get("geopipe", {}))
        rejected = info.pop("rejected", [])
        info["rejected_rows"] = len(rejected)
        info["counted"] = int(units[layer.name].sum())
        info["outside_units"] = len(points) - info["counted"]
        for sub, (column, values) in layer.subsets.items():
            if column not in points.columns:
                raise MissingColumnError(
                    problem(
                        f"points '{layer.source}'",
                        f"has no column {column!r} for subset {sub!r}",
                        f"use one of {list(map(str, points.columns))}",
                        where="add_point_counts",
                    )
                )
            wanted = {v.strip().lower() for v in values}
            chosen = points[points[column].astype(str).str.strip().str.lower().isin(wanted)]
            units = count_points(units, chosen, name=sub)
            info[f"subset_{sub}"] = int(units[sub].sum())
        report[layer.name] = info
    return units, report
