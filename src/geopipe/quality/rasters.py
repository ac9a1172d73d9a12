"""Checks on a raster (population, wealth, travel time) against the area of interest.

:func:`check_raster` opens the file itself with rasterio: a missing file raises
:class:`~geopipe.errors.MissingFileError`, a file GDAL cannot read or whose data blocks are
truncated raises :class:`~geopipe.errors.FormatError`; everything else (no CRS, no nodata, no
overlap, negative values, uncovered area) is reported as :class:`CheckResult` objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from ..errors import FormatError, InputError, MissingFileError, problem
from ..io.raster import OVERVIEW_CELLS, overview_shape
from .checks import CheckResult, check_levels, make_result

__all__ = ["check_outside_units", "check_raster"]

WHERE = "check_raster"
EQUAL_AREA = "EPSG:6933"
#: read the area of interest in one window up to this size, else decimate
_MAX_CELLS = OVERVIEW_CELLS


def check_raster(
    path: str | os.PathLike[str],
    *,
    admin: gpd.GeoDataFrame | None = None,
    band: int = 1,
    negative_allowed: bool = False,
    coverage_tolerance: float = 0.01,
    levels: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Check a raster: CRS, nodata, overlap with the boundaries, negative values, coverage.

    Parameters
    ----------
    path
        GeoTIFF / COG / VRT (anything GDAL reads).
    admin
        Boundaries (``dim_admin``); their union is the area of interest. Without it only the
        file-level checks run.
    band
        Band to check.
    negative_allowed
        Set True for layers where negative values are meaningful (a wealth index); population
        rasters must not be negative.
    coverage_tolerance
        Share of the area of interest that may lack data (outside the raster or nodata) before
        ``raster.coverage`` flags it.
    levels
        Override a check's level, e.g. ``{"raster.coverage": "fail"}``.

    Returns
    -------
    list of CheckResult

    Raises
    ------
    MissingFileError, FormatError
        The file does not exist, is not a raster or is truncated.

    Examples
    --------
    >>> results = check_raster("population.tif", admin=admin)  # doctest: +SKIP
    >>> [r.check_id for r in results if r.level == "fail"]  # doctest: +SKIP
    []
    """
    import rasterio
    from rasterio.errors import RasterioError

    lv = check_levels(levels, WHERE)
    if not 0 <= coverage_tolerance < 1:
        raise InputError(
            problem(
                "coverage_tolerance",
                f"was {coverage_tolerance}",
                "use a share between 0 and 1",
                where=WHERE,
            )
        )
    from ..io.raster import RasterData

    if isinstance(path, RasterData):  # already read by the run: check it as held
        if not 1 <= band <= path.count:
            raise InputError(problem("band", f"was {band}", f"use 1..{path.count}", where=WHERE))
        return _checks(
            path, band, Path(path.path).name, admin, negative_allowed, coverage_tolerance, lv
        )
    spath = os.fspath(path)
    src = Path(spath).name
    if not Path(spath).exists():
        raise MissingFileError(
            problem(f"raster '{spath}'", "does not exist", "check the path", where=WHERE)
        )
    if Path(spath).is_file() and Path(spath).stat().st_size == 0:
        raise FormatError(
            problem(
                f"raster '{spath}'",
                "is empty (0 bytes)",
                "copy or download the file again",
                where=WHERE,
            )
        )
    try:
        ds = rasterio.open(spath)
    except RasterioError as exc:
        raise FormatError(
            problem(
                f"raster '{spath}'",
                f"cannot be read as a raster ({exc})",
                "pass a GeoTIFF, COG or VRT; re-export it with gdal_translate if it is damaged",
                where=WHERE,
            )
        ) from exc
    try:
        with ds:
            if not 1 <= band <= ds.count:
                raise InputError(
                    problem(
                        "band",
                        f"was {band} but '{spath}' has {ds.count} band(s)",
                        f"use 1..{ds.count}",
                        where=WHERE,
                    )
                )
            return _checks(ds, band, src, admin, negative_allowed, coverage_tolerance, lv)
    except RasterioError as exc:
        raise FormatError(
            problem(
                f"raster '{spath}'",
                f"has unreadable data blocks, the file is probably truncated ({exc})",
                "copy or download the file again",
                where=WHERE,
            )
        ) from exc


def _checks(
    ds: Any, band: int, src: str, admin: Any, negative_allowed: bool, tol: float, lv: dict[str, str]
) -> list[CheckResult]:
    out: list[CheckResult] = []
    left, bottom, right, top = ds.bounds
    looks_projected = max(abs(left), abs(right)) > 180 or max(abs(bottom), abs(top)) > 90
    if ds.crs is None:
        hint = (
            "the coordinates look projected (metres): assign the projected CRS"
            if looks_projected
            else "assign the CRS the coordinates are in"
        )
        out.append(
            CheckResult(
                "raster.crs",
                lv.get("raster.crs", "fail"),
                src,
                1,  # type: ignore[arg-type]
                f"the raster has no CRS (a .prj/.aux.xml missing?); {hint}, e.g. gdal_edit.py -a_srs EPSG:xxxx",
                (),
                {"bounds": [left, bottom, right, top], "looks_projected": looks_projected},
            )
        )
    else:
        out.append(
            CheckResult(
                "raster.crs",
                "pass",
                src,
                0,
                f"CRS is {ds.crs.to_string()}",
                (),
                {"crs": ds.crs.to_string()},
            )
        )
    nodata = ds.nodatavals[band - 1]
    out.append(
        make_result(
            "raster.nodata",
            src,
            0 if nodata is not None else 1,
            default="warn",
            levels=lv,
            bad="the raster declares no nodata value: fill values (e.g. -9999 or 0) would be counted as data; "
            "set one with gdal_edit.py -a_nodata",
            ok=f"nodata is {nodata}",
            details={"nodata": nodata},
        )
    )
    aoi = _aoi(admin, ds) if admin is not None and ds.crs is not None else None
    values, valid, inside = _read(ds, band, aoi)
    neg = valid & (values < 0)
    if not negative_allowed:
        n = int(np.count_nonzero(neg))
        top = np.inf if values.dtype.kind == "f" else np.iinfo(values.dtype).max
        out.append(
            make_result(
                "raster.negative_values",
                src,
                n,
                default="fail",
                levels=lv,
                bad=f"{n:,} pixels are negative (min {float(values[neg].min()) if n else 0:.6g}); a population or count "
                "cannot be negative — set them to nodata or fix the source",
                ok="no negative values",
                details={
                    "min": float(np.min(values, where=valid, initial=top)) if valid.any() else None
                },
            )
        )
    if aoi is None:
        return out
    aoi_geom, raster_box = aoi
    overlap = shapely.area(shapely.intersection(aoi_geom, raster_box))
    aoi_area = shapely.area(aoi_geom)
    extent_share = overlap / aoi_area if aoi_area else 0.0
    if extent_share <= 0:
        out.append(
            CheckResult(
                "raster.overlap",
                lv.get("raster.overlap", "fail"),
                src,
                1,  # type: ignore[arg-type]
                "the raster does not overlap the boundaries at all; check its CRS and extent "
                f"(raster bounds {tuple(round(v, 4) for v in ds.bounds)} in {ds.crs.to_string()})",
                (),
                {"extent_share": 0.0},
            )
        )
        return out
    out.append(
        CheckResult(
            "raster.overlap",
            "pass",
            src,
            0,
            f"the raster covers {extent_share:.1%} of the boundaries' area by extent",
            (),
            {"extent_share": extent_share},
        )
    )
    n_inside = int(np.count_nonzero(inside))
    valid_share = float(np.count_nonzero(valid & inside)) / n_inside if n_inside else 1.0
    uncovered = 1.0 - extent_share * valid_share
    out.append(
        make_result(
            "raster.coverage",
            src,
            _missing_pixels(valid, inside, extent_share) if uncovered > tol else 0,
            default="warn",
            levels=lv,
            bad=f"{uncovered:.1%} of the area of interest has no data ({1 - extent_share:.1%} outside the raster, "
            f"{1 - valid_share:.1%} of the pixels inside are nodata); results there are missing, not zero",
            ok=f"{1 - uncovered:.2%} of the area of interest has data",
            details={
                "uncovered_share": uncovered,
                "outside_extent_share": 1 - extent_share,
                "nodata_share_inside": 1 - valid_share,
            },
        )
    )
    return out


def _missing_pixels(valid: np.ndarray, inside: np.ndarray, extent_share: float) -> int:
    """Pixels of the area of interest without data: nodata pixels inside the raster plus an
    estimate of the pixels the area would need beyond the raster's extent (at least 1)."""
    n_inside = int(np.count_nonzero(inside))
    beyond = n_inside / extent_share - n_inside if extent_share > 0 else 0.0
    return max(1, int((~valid & inside).sum()) + round(beyond))


_UNIONS: dict[int, tuple[Any, Any]] = {}


def _equal_area_union(admin: gpd.GeoDataFrame) -> Any:
    """Union of the boundaries in the equal-area CRS, computed once per boundaries table (a run
    checks several rasters against the same one)."""
    hit = _UNIONS.get(id(admin))
    if hit is not None and hit[0] is admin:
        return hit[1]
    geoms = admin.geometry.to_numpy()
    keep = ~shapely.is_empty(geoms) & shapely.is_valid(geoms)
    union = shapely.union_all(
        gpd.GeoSeries(geoms[keep], crs=admin.crs).to_crs(EQUAL_AREA).to_numpy()
    )
    _UNIONS.clear()  # keep one: the boundaries of the current run
    _UNIONS[id(admin)] = (admin, union)
    return union


def _aoi(admin: gpd.GeoDataFrame, ds: Any) -> tuple[Any, Any]:
    """The boundaries' union and the raster's footprint, both in an equal-area CRS."""
    if admin.crs is None:
        raise InputError(problem("admin", "has no CRS", "read it with gp.read_admin", where=WHERE))
    union = _equal_area_union(admin)
    footprint = gpd.GeoSeries([shapely.box(*ds.bounds)], crs=ds.crs)
    footprint = footprint.set_crs(ds.crs, allow_override=True).segmentize(max(ds.res) * 10)
    with np.errstate(all="ignore"):
        box_ea = footprint.to_crs(EQUAL_AREA).make_valid().to_numpy()[0]
    return union, box_ea


def _read(ds: Any, band: int, aoi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, valid mask and "pixel centre in the area of interest" mask (all pixels when no AOI)."""
    from rasterio.enums import Resampling
    from rasterio.features import geometry_mask

    h, w = ds.height, ds.width
    shape = overview_shape(h, w, _MAX_CELLS)
    if shape == (h, w):
        arr = ds.read(band, masked=True)
    else:
        arr = ds.read(band, out_shape=shape, resampling=Resampling.nearest, masked=True)
    # the values in their own type (what is asked of them is their sign and minimum)
    values = np.ma.getdata(arr)
    valid = ~np.ma.getmaskarray(arr) & np.isfinite(values)
    if aoi is None:
        return values, valid, np.ones_like(valid)
    union, _ = aoi
    aoi_native = gpd.GeoSeries([union], crs=EQUAL_AREA).to_crs(ds.crs).to_numpy()[0]
    transform = ds.transform @ ds.transform.scale(w / shape[1], h / shape[0])
    inside = geometry_mask([aoi_native], out_shape=shape, transform=transform, invert=True)
    return values, valid, inside


def check_outside_units(
    units: gpd.GeoDataFrame,
    raster: str | os.PathLike[str],
    *,
    edge: str = "fraction",
    warn_share: float = 0.01,
    source: str | None = None,
    levels: Mapping[str, str] | None = None,
    report: Mapping[str, Any] | None = None,
) -> CheckResult:
    """``raster.outside_units``: the share of a raster's total (the population) outside every unit.

    Computed with exact coverage weights (:func:`geopipe.zonal_raster`, ``edge="fraction"``):
    pixels outside every unit and the parts of coastal / border pixels outside the units. With
    ``edge="renormalize"`` the message and details also say what was moved into the border units
    (the outside part of the pixels they touch) and what stays outside (pixels touching no unit).

    Parameters
    ----------
    units
        The units the run aggregates to (one admin level or grid fragments, not overlapping).
    raster
        The population (or any additive) raster.
    edge
        The edge rule the run uses (``"fraction"`` or ``"renormalize"``).
    warn_share
        Share of the raster total outside the units above which the check warns (default 1 %).
        Set per run with ``levels={"raster.outside_units": "fail"}`` to stop instead.
    source
        Name in the result (default: the raster's file name).
    levels
        Override the level, e.g. ``{"raster.outside_units": "fail"}``.
    report
        Optional: the ``attrs["geopipe"]["zonal_raster"][...]`` entry of a ``zonal_raster`` call
        with ``edge="fraction"`` over the same units and raster (as in ``manifest.json``), to reuse
        its totals instead of reading the raster again.

    Returns
    -------
    CheckResult
        ``details`` holds ``raster_total``, ``inside_total``, ``outside_total``,
        ``outside_share``, ``warn_share`` and, with ``edge="renormalize"``, ``moved_total``,
        ``moved_share`` and ``left_outside_share``.

    Examples
    --------
    >>> r = check_outside_units(adm1, "worldpop.tif", warn_share=0.01)  # doctest: +SKIP
    >>> r.level, round(r.details["outside_share"], 4)  # doctest: +SKIP
    ('warn', 0.0107)
    """
    from ..zonal.raster import zonal_raster

    lv = check_levels(levels, WHERE)
    if edge not in ("fraction", "renormalize"):
        raise InputError(
            problem("edge", f"was {edge!r}", "use 'fraction' or 'renormalize'", where=WHERE)
        )
    if not 0 <= warn_share < 1:
        raise InputError(
            problem("warn_share", f"was {warn_share!r}", "use a share from 0 to 1", where=WHERE)
        )
    if report is not None and report.get("edge") == "fraction":
        rep = report
    else:
        out = zonal_raster(units, raster, stats=("sum",), edge="fraction")
        rep = next(iter(out.attrs["geopipe"]["zonal_raster"].values()))
    total, inside, touched = rep["raster_total"], rep["assigned_total"], rep["touched_total"]
    share = (1.0 - inside / total) if total else 0.0
    details: dict[str, Any] = {
        "raster_total": total,
        "inside_total": inside,
        "outside_total": total - inside,
        "outside_share": share,
        "warn_share": warn_share,
        "edge": edge,
    }
    text = f"{share:.2%} of the raster total ({total - inside:,.0f} of {total:,.0f}) lies outside every unit"
    if edge == "renormalize":
        moved = touched - inside
        details.update(
            moved_total=moved,
            moved_share=moved / total if total else 0.0,
            left_outside_share=(1.0 - touched / total) if total else 0.0,
        )
        text += (
            f"; edge='renormalize' moved {moved:,.0f} ({details['moved_share']:.2%}) from the "
            f"outside parts of border pixels into the units, {details['left_outside_share']:.2%} "
            "stays outside (pixels touching no unit)"
        )
    src = source or Path(os.fspath(raster)).name
    affected = max(int(round(total - inside)), 1) if share > warn_share else 0
    return make_result(
        "raster.outside_units",
        src,
        affected,
        default="warn",
        levels=lv,
        bad=f"{text}, above the {warn_share:.1%} threshold: coastal or border pixels outside the "
        "official outline, or a raster larger than the area; check the boundaries' coastline "
        "or use edge='renormalize' for a per-country raster",
        ok=f"{text} (threshold {warn_share:.1%})",
        details=details,
    )
