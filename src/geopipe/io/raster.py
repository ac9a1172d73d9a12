"""Open rasters (GeoTIFF, COG, VRT), build VRT mosaics offline, describe rasters for the manifest.

Every function here raises geopipe errors with the file name, the problem and the fix:
:class:`~geopipe.errors.MissingFileError` (no such file), :class:`~geopipe.errors.FormatError`
(not a raster, truncated, unreadable blocks) and :class:`~geopipe.errors.RasterError` (no CRS,
tiles that do not fit together).
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from geopipe.errors import FormatError, MissingFileError, RasterError, problem

__all__ = [
    "RasterData",
    "bounded_block_cache",
    "build_vrt",
    "iter_blocks",
    "load_raster",
    "open_raster",
    "raster_info",
    "read_block",
    "read_block_raw",
    "row_blocks",
]

PathLike = str | os.PathLike[str]
# GDAL's block cache defaults to 5 % of the machine's memory (1.2 GB here) and keeps blocks of
# every raster read until it is full: in a run of many countries, up to that much of blocks no
# step reads again. geopipe reads each raster once per run or partition, so a small cache loses
# nothing (docs/engines.md); a GDAL_CACHEMAX set by the user wins.
BLOCK_CACHE_BYTES = 64 * 2**20


def bounded_block_cache(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` with GDAL's block cache at :data:`BLOCK_CACHE_BYTES` (unless the environment
    sets ``GDAL_CACHEMAX``), so that the memory of a long run does not grow with what it read.

    Examples
    --------
    >>> from rasterio.env import get_gdal_config
    >>> bounded_block_cache(lambda: get_gdal_config("GDAL_CACHEMAX"))() == BLOCK_CACHE_BYTES
    True
    """

    @functools.wraps(fn)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if "GDAL_CACHEMAX" in os.environ:
            return fn(*args, **kwargs)
        with rasterio.Env(GDAL_CACHEMAX=BLOCK_CACHE_BYTES):
            return fn(*args, **kwargs)

    return bounded


def _is_remote_or_virtual(path: str) -> bool:
    return path.startswith(("/vsi", "<VRTDataset")) or "://" in path


def open_raster(path: PathLike, *, check: bool = True) -> rasterio.DatasetReader:
    """Open a raster for reading and check that geopipe can use it.

    Parameters
    ----------
    path
        GeoTIFF / COG / VRT (or any GDAL raster) path.
    check
        Also read the first and the last block of band 1, so that a truncated or corrupt file
        fails here with a clear message rather than halfway through a computation.

    Returns
    -------
    rasterio.DatasetReader
        The open dataset; close it (or use it in a ``with`` block).

    Raises
    ------
    MissingFileError
        The file does not exist.
    FormatError
        The file is not a readable raster, or its data blocks are truncated.
    RasterError
        The raster has no CRS or no bands.

    Examples
    --------
    >>> with open_raster("pop.tif") as ds:  # doctest: +SKIP
    ...     ds.crs
    """
    if isinstance(path, RasterData):
        return path  # already read: the run context holds it
    spath = os.fspath(path)
    if not _is_remote_or_virtual(spath) and not Path(spath).exists():
        raise MissingFileError(
            problem(f"raster '{spath}'", "does not exist", "check the path", where="open_raster")
        )
    try:
        ds = rasterio.open(spath)
    except RasterioIOError as exc:
        if Path(spath).is_dir():  # a folder GDAL cannot read as a grid (e.g. not an ESRI grid)
            inside = sorted(p.name for p in Path(spath).glob("*.tif"))[:5]
            raise FormatError(
                problem(
                    f"raster '{spath}'",
                    "is a folder, not a raster file"
                    + (f" (it holds {', '.join(inside)})" if inside else ""),
                    "name the raster file inside it (or build one with gp.build_vrt)",
                    where="open_raster",
                )
            ) from exc
        raise FormatError(
            problem(
                f"raster '{spath}'",
                f"cannot be read as a raster ({exc})",
                "pass a GeoTIFF, COG or VRT file; re-export it with gdal_translate if it is damaged",
                where="open_raster",
            )
        ) from exc
    try:
        if ds.count < 1:
            raise RasterError(
                problem(
                    f"raster '{spath}'",
                    "has no bands",
                    "pass a raster with data",
                    where="open_raster",
                )
            )
        if ds.crs is None:
            raise RasterError(
                problem(
                    f"raster '{spath}'",
                    "has no CRS",
                    "assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 file.tif`",
                    where="open_raster",
                )
            )
        if check:
            _check_blocks(ds, spath)
    except BaseException:
        ds.close()
        raise
    return ds


def _check_blocks(ds: rasterio.DatasetReader, spath: str) -> None:
    bh, bw = ds.block_shapes[0]
    h, w = ds.height, ds.width
    last = Window(((w - 1) // bw) * bw, ((h - 1) // bh) * bh, 1, 1)
    try:
        ds.read(1, window=Window(0, 0, 1, 1))
        ds.read(1, window=last)
    except RasterioError as exc:
        raise FormatError(
            problem(
                f"raster '{spath}'",
                f"has unreadable data blocks, the file is probably truncated ({exc})",
                "copy or download the file again",
                where="open_raster",
            )
        ) from exc


def _crs_string(crs: Any) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def raster_info(path: PathLike) -> dict[str, Any]:
    """Describe a raster for the run manifest (a JSON-able dict).

    Parameters
    ----------
    path
        Raster path.

    Returns
    -------
    dict
        ``path, driver, crs, width, height, count, res, bounds, transform, dtype, nodata, scale,
        offset, block_shape``.

    Examples
    --------
    >>> raster_info("pop.tif")["crs"]  # doctest: +SKIP
    'EPSG:4326'
    """
    with open_raster(path, check=False) as ds:
        nodata = ds.nodata
        return {
            "path": os.fspath(path),
            "driver": ds.driver,
            "crs": _crs_string(ds.crs),
            "width": int(ds.width),
            "height": int(ds.height),
            "count": int(ds.count),
            "res": [float(ds.res[0]), float(ds.res[1])],
            "bounds": [float(b) for b in ds.bounds],
            "transform": [float(t) for t in tuple(ds.transform)[:6]],
            "dtype": str(ds.dtypes[0]),
            "nodata": None
            if nodata is None or (isinstance(nodata, float) and math.isnan(nodata))
            else float(nodata),
            "scale": float(ds.scales[0]),
            "offset": float(ds.offsets[0]),
            "block_shape": [int(b) for b in ds.block_shapes[0]],
        }


def build_vrt(tiles: Sequence[PathLike], out_path: PathLike) -> Path:
    """Write a VRT mosaic of several raster tiles on one grid (offline, no gdalbuildvrt needed).

    The tiles must share CRS, resolution, data type, band count and nodata, and lie on one pixel
    grid (their origins differ by whole pixels). Where tiles overlap, the later tile wins.

    Parameters
    ----------
    tiles
        Paths of the tiles.
    out_path
        Path of the ``.vrt`` file to write; the tiles are referenced by absolute path.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    RasterError
        The tiles do not fit together; the message names the first tile that differs and how.

    Examples
    --------
    >>> build_vrt(["n00e000.tif", "n00e001.tif"], "mosaic.vrt")  # doctest: +SKIP
    PosixPath('mosaic.vrt')
    """
    if not tiles:
        raise RasterError(
            problem("tiles", "is empty", "pass at least one raster", where="build_vrt")
        )
    infos = [raster_info(t) for t in tiles]
    ref = infos[0]
    for info in infos[1:]:
        for key in ("crs", "res", "dtype", "count", "nodata"):
            if info[key] != ref[key]:
                raise RasterError(
                    problem(
                        f"tile '{info['path']}'",
                        f"has {key} {info[key]!r} but '{ref['path']}' has {ref[key]!r}",
                        "warp the tiles to one grid first (gdalwarp) or mosaic them separately",
                        where="build_vrt",
                    )
                )
    xres, yres = ref["res"]
    left = min(i["bounds"][0] for i in infos)
    top = max(i["bounds"][3] for i in infos)
    right = max(i["bounds"][2] for i in infos)
    bottom = min(i["bounds"][1] for i in infos)
    width = round((right - left) / xres)
    height = round((top - bottom) / yres)
    placements = []
    for info in infos:
        xoff = (info["bounds"][0] - left) / xres
        yoff = (top - info["bounds"][3]) / yres
        if abs(xoff - round(xoff)) > 1e-6 or abs(yoff - round(yoff)) > 1e-6:
            raise RasterError(
                problem(
                    f"tile '{info['path']}'",
                    "is not aligned with the other tiles' pixel grid",
                    "resample the tiles to one grid first (gdalwarp -tap)",
                    where="build_vrt",
                )
            )
        placements.append((info, round(xoff), round(yoff)))
    with rasterio.open(os.fspath(tiles[0])) as ds:
        crs_wkt = ds.crs.to_wkt()
        colorinterp = [c.name.capitalize() for c in ds.colorinterp]
    xml = _vrt_xml(ref, placements, crs_wkt, colorinterp, left, top, width, height)
    out = Path(out_path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(xml, encoding="utf-8")
    tmp.replace(out)
    return out


def _vrt_xml(ref, placements, crs_wkt, colorinterp, left, top, width, height) -> str:
    xres, yres = ref["res"]
    gdal_type = {
        "uint8": "Byte",
        "int8": "Int8",
        "uint16": "UInt16",
        "int16": "Int16",
        "uint32": "UInt32",
        "int32": "Int32",
        "uint64": "UInt64",
        "int64": "Int64",
        "float32": "Float32",
        "float64": "Float64",
    }[ref["dtype"]]
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{escape(crs_wkt)}</SRS>",
        f"  <GeoTransform>{left!r}, {xres!r}, 0.0, {top!r}, 0.0, {-yres!r}</GeoTransform>",
    ]
    for band in range(1, ref["count"] + 1):
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{band}">')
        if ref["nodata"] is not None:
            lines.append(f"    <NoDataValue>{ref['nodata']!r}</NoDataValue>")
        if ref["scale"] != 1.0 or ref["offset"] != 0.0:
            lines.append(f"    <Offset>{ref['offset']!r}</Offset>")
            lines.append(f"    <Scale>{ref['scale']!r}</Scale>")
        if band <= len(colorinterp):
            lines.append(f"    <ColorInterp>{colorinterp[band - 1]}</ColorInterp>")
        src_tag = "ComplexSource" if ref["nodata"] is not None else "SimpleSource"
        for info, xoff, yoff in placements:
            src = escape(str(Path(info["path"]).resolve()))
            w, h = info["width"], info["height"]
            bh, bw = info["block_shape"]
            lines += [
                f"    <{src_tag}>",
                f'      <SourceFilename relativeToVRT="0">{src}</SourceFilename>',
                f"      <SourceBand>{band}</SourceBand>",
                f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" '
                f'DataType="{gdal_type}" BlockXSize="{bw}" BlockYSize="{bh}"/>',
                f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                f'      <DstRect xOff="{xoff}" yOff="{yoff}" xSize="{w}" ySize="{h}"/>',
            ]
            if ref["nodata"] is not None:
                lines.append(f"      <NODATA>{ref['nodata']!r}</NODATA>")
            lines.append(f"    </{src_tag}>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"


def read_block_raw(
    ds: rasterio.DatasetReader,
    row_start: int,
    row_stop: int,
    band: int = 1,
    cols: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read rows ``[row_start, row_stop)`` of a band in its own data type (no scale/offset);
    with ``cols=(start, stop)`` only those columns.

    Returns ``(raw, valid)``: the pixel values with invalid pixels (nodata, NaN, inf) set to 0,
    and the validity mask. Cheaper than :func:`read_block` (no float64 copy); apply
    ``ds.scales`` / ``ds.offsets`` to what you compute from it.
    """
    c0, c1 = (0, ds.width) if cols is None else cols
    window = Window(c0, row_start, c1 - c0, row_stop - row_start)
    try:
        raw = ds.read(band, window=window)
    except RasterioError as exc:
        raise FormatError(
            problem(
                f"raster '{ds.name}'",
                f"rows {row_start}-{row_stop} cannot be read ({exc})",
                "the file is probably truncated or corrupt; copy it again",
                where="read_block",
            )
        ) from exc
    nodata = ds.nodatavals[band - 1]
    if nodata is not None and not np.isnan(nodata):
        valid = raw != raw.dtype.type(nodata)
    else:
        valid = np.ones(raw.shape, dtype=bool)
    if raw.dtype.kind == "f":
        valid &= np.isfinite(raw)
    np.copyto(raw, 0, where=~valid)
    return raw, valid


def read_block(
    ds: rasterio.DatasetReader,
    row_start: int,
    row_stop: int,
    band: int = 1,
    cols: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read rows ``[row_start, row_stop)`` of a band (with ``cols=(start, stop)`` only those
    columns) as float64 with scale/offset applied.

    Returns ``(values, valid)``: values with invalid pixels set to 0, and the validity mask
    (not nodata, finite).
    """
    raw, valid = read_block_raw(ds, row_start, row_stop, band, cols)
    values = raw.astype(np.float64)
    scale, offset = ds.scales[band - 1], ds.offsets[band - 1]
    if scale != 1.0:
        values *= scale
    if offset != 0.0:
        values += offset
    if scale != 1.0 or offset != 0.0:
        valid &= np.isfinite(values)
        np.copyto(values, 0.0, where=~valid)
    return values, valid


def row_blocks(ds: rasterio.DatasetReader, max_bytes: int = 64 * 2**20) -> list[tuple[int, int]]:
    """Row ranges to read a raster in blocks of at most ~``max_bytes`` (float64), block-aligned."""
    bh = ds.block_shapes[0][0]
    rows = max(1, int(max_bytes) // (8 * max(ds.width, 1)))
    rows = max(bh, (rows // bh) * bh) if bh < ds.height else ds.height
    return [(r, min(r + rows, ds.height)) for r in range(0, ds.height, rows)]


def _read_range(
    path: PathLike, r0: int, r1: int, band: int, raw: bool, cols: tuple[int, int] | None = None
):
    reader = read_block_raw if raw else read_block
    with rasterio.Env(GDAL_NUM_THREADS=_decode_threads()), rasterio.open(os.fspath(path)) as ds:
        return reader(ds, r0, r1, band, cols)


def _decode_threads() -> str:
    """GDAL's decoding threads: every core in the main process, one in an engine's worker
    process (:func:`geopipe._threads.in_worker`)."""
    from geopipe._threads import in_worker

    return "1" if in_worker() else "ALL_CPUS"


def iter_blocks(
    path: PathLike,
    rows: list[tuple[int, int]],
    band: int = 1,
    *,
    raw: bool = False,
    cols: tuple[int, int] | None = None,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(row_start, row_stop, values, valid)`` for each row range, memory bounded.

    The dataset is reopened for every range: closing it drops its blocks from GDAL's global
    block cache, so reading a raster of any size never holds more than two ranges of it (GDAL's
    default cache would otherwise grow to 5 % of RAM). The next range is read in a background
    thread while the caller works on the current one; decoding uses all CPUs. With
    ``raw=True`` the values come from :func:`read_block_raw` (native type, no scale/offset),
    otherwise from :func:`read_block`. With ``cols=(start, stop)`` the blocks hold only those
    columns.
    """
    if not rows:
        return
    if isinstance(path, RasterData) and cols is None:
        yield from path.blocks(rows, raw=raw)
        return
    path = os.fspath(path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_read_range, path, rows[0][0], rows[0][1], band, raw, cols)
        for i, (r0, r1) in enumerate(rows):
            values, valid = pending.result()
            if i + 1 < len(rows):
                n0, n1 = rows[i + 1]
                pending = pool.submit(_read_range, path, n0, n1, band, raw, cols)
            yield r0, r1, values, valid


#: rasters up to this many bytes (native type) are held in memory by :func:`load_raster`
MAX_IN_MEMORY_BYTES = 512 * 2**20


#: pixels of the nearest sample the input checks read of a large raster
#: (:func:`overview_shape`, :meth:`RasterData.read`)
OVERVIEW_CELLS = 50_000_000
_SCAN_LOCK = threading.Lock()


def overview_shape(height: int, width: int, cells: int = OVERVIEW_CELLS) -> tuple[int, int]:
    """The shape of a raster decimated by the smallest whole step that leaves at most about
    ``cells`` pixels (itself when it has no more).

    Examples
    --------
    >>> overview_shape(10_000, 10_000)
    (5000, 5000)
    """
    step = max(1, int(np.ceil(np.sqrt(height * width / cells))))
    return int(np.ceil(height / step)), int(np.ceil(width / step))


def nearest_rows(size: int, out: int) -> np.ndarray:
    """The rows (or columns) of ``size`` that GDAL's nearest-neighbour read picks for ``out``
    rows: the one under each output pixel's centre, ``floor((i + 0.5) * size / out)``
    (GDAL 3.10's ``GDALRasterBand::IRasterIO``; ``tests/test_raster_io.py`` compares the two).

    Examples
    --------
    >>> nearest_rows(10, 4).tolist()
    [1, 3, 6, 8]
    """
    return np.floor((np.arange(out) + 0.5) * (size / out)).astype(np.int64)


class RasterData:
    """A raster opened once: its header, and band 1 held in memory when it fits a budget.

    It stands in for the file everywhere geopipe takes a raster path (``zonal_raster``,
    ``pixel_weights``, ``zonal_layer``, ``check_raster`` ...): :func:`open_raster` returns it
    as it is and :func:`iter_blocks` serves its rows from memory, so a pipeline run reads each
    raster's pixels once however many steps use it. A raster larger than the budget keeps only
    its header and is read by row blocks from ``path`` as before (memory stays bounded).
    Build it with :func:`load_raster`.

    Examples
    --------
    >>> data = load_raster("pop.tif")  # doctest: +SKIP
    >>> gp.zonal_raster(districts, {"pop": data})  # doctest: +SKIP
    """

    def __init__(
        self,
        path: PathLike,
        header: dict[str, Any],
        raw: np.ndarray | None,
        valid: np.ndarray | None,
        row0: int = 0,
        col0: int = 0,
    ) -> None:
        self.path = os.fspath(path)
        self.name = self.path
        # first row and column held (the window of a partition), 0 for the whole raster
        self._row0, self._col0 = row0, col0
        for key, value in header.items():
            setattr(self, key, value)
        self._raw, self._valid = raw, valid

    # --- the part of rasterio's DatasetReader geopipe uses
    @property
    def in_memory(self) -> bool:
        """True when band 1 is held in memory."""
        return self._raw is not None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def whole(self) -> bool:
        """True when every pixel of band 1 is held (not a window)."""
        return self._raw is not None and self._raw.shape == (self.height, self.width)

    @property
    def nodata(self) -> float | None:
        return self.nodatavals[0]

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        where = "in memory" if self.in_memory else "read by blocks"
        return f"RasterData({Path(self.path).name!r}, {self.height}x{self.width}, {where})"

    def __enter__(self) -> RasterData:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        """Nothing to close: the file is not held open."""

    def read(
        self,
        band: int = 1,
        *,
        masked: bool = False,
        out_shape: Any = None,
        resampling: Any = None,
        window: Any = None,
    ) -> np.ndarray:
        """A band as rasterio's ``read`` returns it. Band 1 decimated to ``out_shape`` by
        nearest neighbour (the pixels GDAL's decimated read picks, :func:`nearest_rows`) comes
        from memory when held whole, else (masked) from the one pass that also gives
        :meth:`total`: the input checks of a large raster do not decode it again."""
        nearest = resampling in (None, rasterio.enums.Resampling.nearest)
        decimated = band == 1 and window is None and nearest and out_shape is not None
        if decimated and masked and not self.whole:  # masked pixels hold 0, not the nodata
            raw, valid = self._scan((int(out_shape[-2]), int(out_shape[-1])))[1]
            return np.ma.masked_array(raw, mask=~valid)
        if not self.whole or band != 1 or window is not None or not nearest:
            with rasterio.open(self.path) as ds:
                return ds.read(
                    band,
                    masked=masked,
                    out_shape=out_shape,
                    resampling=resampling or rasterio.enums.Resampling.nearest,
                    window=window,
                )
        raw, valid = self._raw, self._valid
        if out_shape is not None:
            at = np.ix_(
                nearest_rows(self.height, int(out_shape[-2])),
                nearest_rows(self.width, int(out_shape[-1])),
            )
            raw, valid = raw[at], valid[at]
        if masked:
            return np.ma.masked_array(raw, mask=~valid)
        return raw

    def values_at(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, valid)`` at pixel (row, col) pairs: scale/offset applied, invalid -> 0."""
        held = self._raw is not None and (
            len(rows) == 0
            or (
                rows.min() >= self._row0
                and rows.max() < self._row0 + self._raw.shape[0]
                and cols.min() >= self._col0
                and cols.max() < self._col0 + self._raw.shape[1]
            )
        )
        if not held:
            from geopipe.zonal.layers import _read_cells

            return _read_cells(self.path, rows, cols, row_blocks(self))
        r, c = rows - self._row0, cols - self._col0
        if self._raw.flags.c_contiguous and self._valid.flags.c_contiguous:
            # one flat index for both arrays: np.take is about twice as fast as indexing by
            # (row, column) pairs, which the pixel steps do for every pair of every batch
            at = r.astype(np.int64, copy=False) * self._raw.shape[1]
            at += c
            valid = self._valid.reshape(-1).take(at)
            values = self._raw.reshape(-1).take(at).astype(np.float64)
        else:
            valid = self._valid[r, c]
            values = self._raw[r, c].astype(np.float64)
        scale, offset = self.scales[0], self.offsets[0]
        if scale != 1.0 or offset != 0.0:
            values = values * scale + offset
            valid &= np.isfinite(values)
            values[~valid] = 0.0
        return values, valid

    def total(self) -> float:
        """Sum of the valid pixel values (scale/offset applied) over the whole raster.

        A raster not held whole is read once by row blocks for this and for its nearest
        sample at :func:`overview_shape` (the input checks' read, see :meth:`read`), whichever
        is asked for first: a partitioned run decodes it once for both, not twice.
        """
        if self.whole:
            return float(
                sum(v.sum(dtype=np.float64) for _, _, v, _ in self.blocks(row_blocks(self)))
            )
        return self._scan(overview_shape(self.height, self.width), keep=True)[0]

    def _scan(self, shape: tuple[int, int], *, keep: bool = False) -> tuple[float, Any]:
        """``(total, (raw, valid) sampled at shape)`` from one pass over the file. The total is
        kept; the sample only with ``keep`` (for the :meth:`read` that will ask for it) and
        until that read takes it."""
        with _SCAN_LOCK:
            done = self.__dict__.setdefault("_scans", {})
            if "total" in done and (keep or shape in done):
                return done["total"], (done.pop(shape) if not keep else done.get(shape))
            rows, cols = nearest_rows(self.height, shape[0]), nearest_rows(self.width, shape[1])
            total, raws, valids = 0, [], []
            scale, offset = self.scales[0], self.offsets[0]
            blocks = row_blocks(self)
            # the values as read_block gives them (float64), for the same sum, in one buffer:
            # a fresh one per block would be a fresh mapping on this thread, zeroed page by page
            buf = np.empty((max(b - a for a, b in blocks), self.width))
            for r0, r1, raw, ok in iter_blocks(self.path, blocks, raw=True):
                values = buf[: r1 - r0]
                np.copyto(values, raw)
                if scale != 1.0 or offset != 0.0:
                    values = values * scale + offset
                    valid = ok & np.isfinite(values)
                    values[~valid] = 0.0
                total += values.sum(dtype=np.float64)
                at = rows[(rows >= r0) & (rows < r1)] - r0
                raws.append(raw[at][:, cols])
                valids.append(ok[at][:, cols])
            sample = (np.concatenate(raws), np.concatenate(valids))
            done["total"] = float(total)
            if keep:
                done[shape] = sample
            return done["total"], sample

    def blocks(
        self, rows: list[tuple[int, int]], *, raw: bool = False
    ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """``(row_start, row_stop, values, valid)`` per row range, like :func:`iter_blocks`."""
        stop = self._row0 + (0 if self._raw is None else len(self._raw))
        full_width = self._raw is not None and self._raw.shape[1] == self.width
        if not full_width or any(r0 < self._row0 or r1 > stop for r0, r1 in rows):
            yield from iter_blocks(self.path, rows, raw=raw)
            return
        scale, offset = self.scales[0], self.offsets[0]
        for r0, r1 in rows:
            block, ok = (
                self._raw[r0 - self._row0 : r1 - self._row0],
                self._valid[r0 - self._row0 : r1 - self._row0],
            )
            if raw:
                yield r0, r1, block, ok
                continue
            values = block.astype(np.float64)
            if scale != 1.0 or offset != 0.0:
                values = values * scale + offset
                ok = ok & np.isfinite(values)
                values[~ok] = 0.0
            yield r0, r1, values, ok


_HEADER = (
    "driver",
    "crs",
    "transform",
    "height",
    "width",
    "count",
    "res",
    "bounds",
    "nodatavals",
    "scales",
    "offsets",
    "dtypes",
    "block_shapes",
)


def load_raster(
    path: PathLike,
    *,
    max_bytes: int = MAX_IN_MEMORY_BYTES,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> RasterData:
    """Open a raster once (checked like :func:`open_raster`) and hold band 1 when it fits.

    Parameters
    ----------
    path
        GeoTIFF / COG / VRT.
    max_bytes
        Hold band 1 in memory when ``height x width x itemsize`` is at most this; larger rasters
        keep only their header and are read by row blocks on use.
    rows, cols
        Hold only rows / columns ``[start, stop)`` (the window of a partition); pixels outside
        are read from the file if ever asked for.

    Returns
    -------
    RasterData

    Examples
    --------
    >>> data = load_raster("pop.tif")  # doctest: +SKIP
    >>> data.in_memory, data.shape  # doctest: +SKIP
    (True, (1010, 1100))
    """
    with open_raster(path) as ds:
        header = {k: getattr(ds, k) for k in _HEADER}
        r0, r1 = (0, ds.height) if rows is None else (max(0, rows[0]), min(ds.height, rows[1]))
        c0, c1 = (0, ds.width) if cols is None else (max(0, cols[0]), min(ds.width, cols[1]))
        blocks = [(a, b) for a, b in ((max(a, r0), min(b, r1)) for a, b in row_blocks(ds)) if a < b]
        fits = (r1 - r0) * (c1 - c0) * np.dtype(ds.dtypes[0]).itemsize <= max_bytes
    raw = valid = None
    if fits and blocks and c0 < c1:
        parts = list(iter_blocks(path, blocks, raw=True, cols=(c0, c1)))
        raw = np.concatenate([p[2] for p in parts]) if len(parts) > 1 else parts[0][2]
        valid = np.concatenate([p[3] for p in parts]) if len(parts) > 1 else parts[0][3]
    held = raw is not None
    return RasterData(path, header, raw, valid, row0=r0 if held else 0, col0=c0 if held else 0)
