"""Web-mercator tiles given as Bing quadkeys: decoding and a reader for Ookla / Meta RWI tables.

Quadkeys are decoded with numpy over the whole column at once (no loop over rows): each character
of a zoom-``z`` quadkey is one level, its low bit adds to ``x`` and its high bit to ``y``.

Meta's Relative Wealth Index CSVs store the quadkey as a number, and spreadsheet tools or a plain
``pandas.read_csv`` turn it into a float: the leading zeros are lost (``"0231..."`` becomes
``231...``). :func:`read_tiles` restores them from the zoom (given, or inferred as the longest
quadkey in the column).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geopipe.errors import (
    EmptyInputError,
    FormatError,
    GeopipeWarning,
    InputError,
    MissingColumnError,
    MissingFileError,
    problem,
)

__all__ = ["quadkey_to_polygon", "quadkey_to_tile", "read_tiles", "tile_to_quadkey"]

_MAX_ZOOM = 23  # beyond this a float64 can no longer hold the quadkey digits anyway


def quadkey_to_tile(quadkeys: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode quadkey strings to tile ``x``, ``y`` and ``zoom`` arrays (``int64``).

    Invalid quadkeys (empty, characters other than 0-3, longer than 23) give ``-1`` in all three.

    Examples
    --------
    >>> x, y, z = quadkey_to_tile(["0", "3", "213", ""])
    >>> x.tolist(), y.tolist(), z.tolist()
    ([0, 1, 3, -1], [0, 1, 5, -1], [1, 1, 3, -1])
    """
    keys = pd.Series(quadkeys, dtype=object).fillna("").astype(str).to_numpy(dtype="U")
    n = len(keys)
    zoom = np.char.str_len(keys).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    width = int(zoom.max()) if n else 0
    x = np.zeros(n, dtype=np.int64)
    y = np.zeros(n, dtype=np.int64)
    if width == 0:
        bad = np.ones(n, dtype=bool)
    else:
        padded = keys.astype(f"U{width}")
        codes = padded.view(np.uint32).reshape(n, width).astype(np.int64) - ord("0")
        pos = np.arange(width)
        real = pos[None, :] < zoom[:, None]
        bad = (zoom == 0) | (zoom > _MAX_ZOOM) | ((real & ((codes < 0) | (codes > 3))).any(axis=1))
        digits = np.where(real, np.clip(codes, 0, 3), 0)
        # level i (0-based) contributes bit (zoom - 1 - i)
        shift = np.clip(zoom[:, None] - 1 - pos[None, :], 0, None)
        x = ((digits & 1) << shift).sum(axis=1)
        y = (((digits >> 1) & 1) << shift).sum(axis=1)
    x[bad], y[bad] = -1, -1
    zoom = np.where(bad, -1, zoom)
    return x, y, zoom


def tile_to_quadkey(x: Any, y: Any, zoom: Any) -> np.ndarray:
    """Encode tile ``x``, ``y``, ``zoom`` (arrays or scalars) as quadkey strings.

    Examples
    --------
    >>> tile_to_quadkey([3, 1], [5, 1], [3, 1]).tolist()
    ['213', '3']
    """
    x, y, zoom = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (x, y, zoom))
    x, y, zoom = np.broadcast_arrays(x, y, zoom)
    width = int(zoom.max()) if len(zoom) else 0
    pos = np.arange(width)
    shift = np.clip(zoom[:, None] - 1 - pos[None, :], 0, None)
    digits = ((x[:, None] >> shift) & 1) + 2 * ((y[:, None] >> shift) & 1) + ord("0")
    digits = np.where(pos[None, :] < zoom[:, None], digits, 0).astype(np.uint32)
    return np.ascontiguousarray(digits).view(f"U{max(width, 1)}").ravel()


def quadkey_to_polygon(quadkeys: Any) -> np.ndarray:
    """Tile polygons (EPSG:4326 lon/lat boxes) for quadkey strings; ``None`` where invalid.

    Examples
    --------
    >>> quadkey_to_polygon(["3"])[0].bounds
    (0.0, -85.0511287798066, 180.0, 0.0)
    """
    x, y, zoom = quadkey_to_tile(quadkeys)
    ok = zoom >= 0
    n = np.where(ok, 2.0**zoom, 1.0)

    def lon(v: np.ndarray) -> np.ndarray:
        return v / n * 360.0 - 180.0

    def lat(v: np.ndarray) -> np.ndarray:
        return np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * v / n))))

    polys = shapely.box(lon(x), lat(y + 1.0), lon(x + 1.0), lat(y))
    polys = np.asarray(polys, dtype=object)
    polys[~ok] = None
    return polys


def _restore_quadkeys(values: pd.Series, zoom: int | None, where: str) -> tuple[pd.Series, int]:
    """Quadkeys as strings; numbers (ints or floats) get their leading zeros back."""
    s = values.copy()
    numeric = pd.api.types.is_numeric_dtype(s)
    if numeric:
        num = pd.to_numeric(s, errors="coerce")
        frac = num.notna() & (num != np.floor(num))
        if frac.any():
            raise FormatError(
                problem(
                    f"quadkey column {values.name!r}",
                    "holds non-integer numbers",
                    "read it as text (dtype=str)",
                    where=where,
                )
            )
        if (num.dropna() > 2**53).any():
            raise FormatError(
                problem(
                    f"quadkey column {values.name!r}",
                    "holds numbers too large for a float (digits were lost)",
                    "read the source again with the quadkey column as text (dtype=str)",
                    where=where,
                )
            )
        txt = num.map(lambda v: "" if pd.isna(v) else str(int(v)), na_action=None)
    else:
        txt = s.astype("string").str.strip()
        # "12301.0" written from a float column: drop the decimal part
        txt = txt.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
        txt = txt.fillna("")
    lens = txt.str.len()
    inferred = int(lens.max()) if len(lens) else 0
    z = zoom if zoom is not None else inferred
    if numeric or (txt.str.len() < z).any():
        short = (lens > 0) & (lens < z)
        if short.any() and not numeric:
            warnings.warn(
                f"{where}: {int(short.sum())} quadkeys are shorter than zoom {z}; their leading "
                "zeros were restored (the column was probably read as a number)",
                GeopipeWarning,
                stacklevel=3,
            )
        txt = txt.where(lens == 0, txt.str.zfill(z))
    return txt.astype(object), z


def _read_source(source: Any, quadkey: str, where: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.exists():
        raise MissingFileError(
            problem(f"file {str(path)!r}", "does not exist", "check the path", where=where)
        )
    suffix = path.suffix.lower()
    try:
        if suffix in {".csv", ".txt", ".gz"}:
            return pd.read_csv(path, dtype={quadkey: str})
        if suffix in {".parquet", ".geoparquet"}:
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            if b"geo" in meta:
                return gpd.read_parquet(path)
            return pd.read_parquet(path)
        frame = gpd.read_file(path)
    except (OSError, ValueError) as exc:
        raise FormatError(
            problem(
                f"file {str(path)!r}",
                f"could not be read ({exc})",
                "pass an Ookla/RWI parquet, CSV or GeoJSON",
                where=where,
            )
        ) from exc
    return frame


def read_tiles(
    source: Any,
    *,
    quadkey: str = "quadkey",
    zoom: int | None = None,
    tile: str = "tile",
) -> gpd.GeoDataFrame:
    """Read tile tables (Ookla open data, Meta RWI) into tile polygons in EPSG:4326.

    Parameters
    ----------
    source
        Path to a parquet, CSV or GeoJSON/GeoPackage file, or a (Geo)DataFrame already read.
    quadkey
        Name of the quadkey column. When absent, the tile WKT column ``tile`` (Ookla) is used
        and the quadkey is computed from the tile centre at ``zoom`` (inferred from the width).
    zoom
        Tile zoom. Default: the length of the longest quadkey (RWI: 14, Ookla: 16). Quadkeys
        stored as numbers are left-padded with zeros to this length.
    tile
        Name of the WKT tile column used when there is no quadkey column.

    Returns
    -------
    geopandas.GeoDataFrame
        ``quadkey`` (string), the value columns of the source, and the tile polygon as geometry.
        Rows with an invalid quadkey are dropped with a :class:`~geopipe.errors.GeopipeWarning`
        giving their number and examples; duplicated quadkeys are reported the same way (kept).

    Examples
    --------
    >>> import pandas as pd
    >>> rwi = pd.DataFrame({"quadkey": [1.2e1, 3.0], "rwi": [0.1, -0.2]})
    >>> read_tiles(rwi, zoom=3)["quadkey"].tolist()
    ['012', '003']
    """
    where = "read_tiles"
    frame = _read_source(source, quadkey, where)
    name = str(source) if not isinstance(source, pd.DataFrame) else "`source`"
    if zoom is not None and not (1 <= int(zoom) <= _MAX_ZOOM):
        raise InputError(problem("`zoom`", f"was {zoom!r}", f"pass 1 .. {_MAX_ZOOM}", where=where))
    data = (
        pd.DataFrame(frame.drop(columns=frame.geometry.name))
        if isinstance(frame, gpd.GeoDataFrame)
        else frame.copy()
    )
    if quadkey in data.columns:
        keys, _ = _restore_quadkeys(data[quadkey], zoom, where)
    elif tile in data.columns:
        geoms = shapely.from_wkt(data[tile].to_numpy(dtype=object), on_invalid="ignore")
        b = shapely.bounds(geoms)
        width = b[:, 2] - b[:, 0]
        z = zoom if zoom is not None else int(np.nanmedian(np.round(np.log2(360.0 / width))))
        cen = shapely.centroid(geoms)
        cx, cy = shapely.get_x(cen), shapely.get_y(cen)
        nn = 2.0**z
        tx = np.floor((cx + 180.0) / 360.0 * nn)
        lat = np.radians(cy)
        ty = np.floor((1.0 - np.arcsinh(np.tan(lat)) / np.pi) / 2.0 * nn)
        ok = np.isfinite(tx) & np.isfinite(ty)
        keys = pd.Series("", index=data.index, dtype=object)
        if ok.any():
            keys[ok] = tile_to_quadkey(tx[ok].astype(np.int64), ty[ok].astype(np.int64), z)
        data = data.drop(columns=[tile])
    else:
        raise MissingColumnError(
            problem(
                f"{name}",
                f"has neither a {quadkey!r} nor a {tile!r} column",
                "pass quadkey='<column>' (or tile='<WKT column>')",
                where=where,
            )
        )
    polys = quadkey_to_polygon(keys.to_numpy(dtype=object))
    bad = pd.isna(pd.Series(polys, index=data.index))
    if len(bad) and bad.all():
        examples = keys.head(3).tolist()
        numeric = quadkey in data.columns and pd.api.types.is_numeric_dtype(data[quadkey])
        cause = (
            "the quadkey column holds numbers that are not quadkeys (digits other than 0-3)"
            if numeric
            else f"column {quadkey!r} is not a quadkey column (values like {examples})"
        )
        raise EmptyInputError(
            problem(
                f"tiles {name}",
                f"contribute nothing: all {len(bad):,} rows have an invalid quadkey; likely "
                f"cause: {cause}",
                "pass quadkey='<the column of 0-3 digit strings>' (or tile='<WKT column>')",
                where=where,
            )
        )
    if bad.any():
        examples = keys[bad].head(3).tolist()
        warnings.warn(
            f"{where}: {int(bad.sum())} of {len(bad)} rows of {name} have an invalid quadkey "
            f"(e.g. {examples}) and were dropped",
            GeopipeWarning,
            stacklevel=2,
        )
    data[quadkey if quadkey in data.columns else "quadkey"] = keys.astype("str")
    if quadkey != "quadkey" and quadkey in data.columns:
        data = data.rename(columns={quadkey: "quadkey"})
    dup = data.loc[~bad, "quadkey"].duplicated()
    if dup.any():
        warnings.warn(
            f"{where}: {int(dup.sum())} rows of {name} repeat a quadkey (kept; e.g. "
            f"{data.loc[~bad, 'quadkey'][dup].head(3).tolist()})",
            GeopipeWarning,
            stacklevel=2,
        )
    cols = ["quadkey", *[c for c in data.columns if c != "quadkey"]]
    out = gpd.GeoDataFrame(data.loc[~bad, cols], geometry=polys[~bad.to_numpy()], crs=4326)
    return out.reset_index(drop=True)
