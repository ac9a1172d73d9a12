"""Map data for report.html: simplified, quantised geometry per level and quantile classes."""

from __future__ import annotations

from typing import Any

import numpy as np

#: largest side of the map's coordinate grid (geometry is quantised to integers in 0..GRID)
GRID = 1000
#: quantile classes of a choropleth, light to dark (viridis, reversed so that more is darker)
PALETTE = ("#fde725", "#90d743", "#35b779", "#21918c", "#31688e", "#443983", "#440154")
NO_DATA = "#d9d9d9"


def encode_geometry(geoms: Any) -> dict[str, Any]:
    """Flat integer coordinates + ring and unit offsets, for the page's script to draw.

    The geometry (EPSG:4326) is projected plate carrée with x scaled by cos(mid latitude) so
    shapes look right at the country's latitude, simplified to about half a grid step, and
    quantised to integers on a ``GRID``-sized grid (y down, as on screen). Vectorised: Shapely's
    ragged arrays, no loop over units.

    Returns
    -------
    dict
        ``w``, ``h`` (grid size), ``xy`` (flat ints x0, y0, x1, y1, ...), ``rings`` (start of each
        ring in points, plus the end), ``units`` (start of each unit in rings, plus the end).
    """
    import shapely

    arr = np.asarray(geoms, dtype=object)
    arr = np.where(shapely.is_missing(arr), shapely.Polygon(), arr)
    x0, y0, x1, y1 = shapely.total_bounds(arr)
    if not np.isfinite([x0, y0, x1, y1]).all():
        return {"w": 1, "h": 1, "xy": [], "rings": [0], "units": [0] * (len(arr) + 1)}
    kx = float(np.cos(np.radians((y0 + y1) / 2)))
    width, height = max((x1 - x0) * kx, 1e-9), max(y1 - y0, 1e-9)
    scale = GRID / max(width, height)
    simple = shapely.simplify(arr, 0.5 / scale, preserve_topology=True)
    polys = shapely.get_parts(simple, return_index=True)
    parts, owner = polys
    keep = shapely.get_type_id(parts) == 3  # polygons only (simplify keeps the type)
    parts, owner = parts[keep], owner[keep]
    _, coords_off = _ragged(parts)
    coords, (ring_off, poly_off) = coords_off
    px = np.rint((coords[:, 0] - x0) * kx * scale).astype(np.int32)
    py = np.rint((y1 - coords[:, 1]) * scale).astype(np.int32)
    # rings of unit u: from the first ring of its first polygon to that of the next unit
    poly_count = np.bincount(owner, minlength=len(arr))
    unit_poly = np.concatenate([[0], np.cumsum(poly_count)])
    units = poly_off[unit_poly]
    return {
        "w": int(np.ceil(width * scale)) + 1,
        "h": int(np.ceil(height * scale)) + 1,
        "xy": np.column_stack([px, py]).ravel().tolist(),
        "rings": ring_off.tolist(),
        "units": units.tolist(),
    }


def _ragged(parts: Any) -> tuple[Any, tuple[Any, tuple[Any, Any]]]:
    """Polygons -> (type, (coords, (ring offsets, polygon offsets))) with the offsets as int64."""
    import shapely

    if len(parts) == 0:
        return None, (np.zeros((0, 2)), (np.zeros(1, np.int64), np.zeros(1, np.int64)))
    kind, coords, offsets = shapely.to_ragged_array(parts)
    ring_off, poly_off = (np.asarray(o, dtype=np.int64) for o in offsets)
    return kind, (coords, (ring_off, poly_off))


def classify(values: Any, k: int = len(PALETTE)) -> dict[str, Any]:
    """Quantile classes of ``values`` (NaN = no data): class per unit, breaks and colours.

    Returns
    -------
    dict
        ``classes`` (a string, one character per unit: ``"0"``.. or ``"-"`` for no data),
        ``breaks`` (class edges, low to high) and ``colors``.

    Examples
    --------
    >>> classify([1.0, 2.0, 3.0, float("nan")], k=2)["classes"]
    '011-'
    """
    v = np.asarray(values, dtype="float64")
    ok = np.isfinite(v)
    if not ok.any():
        return {"classes": "-" * len(v), "breaks": [], "colors": []}
    edges = np.unique(np.nanquantile(v[ok], np.linspace(0, 1, k + 1)))
    n = max(len(edges) - 1, 1)
    cls = np.searchsorted(edges[1:-1], v, side="right") if n > 1 else np.zeros(len(v), int)
    # spread the classes over the palette so that few classes still range light to dark
    pick = np.rint(np.linspace(0, len(PALETTE) - 1, n)).astype(int) if n > 1 else np.array([3])
    codes = np.where(ok, np.clip(cls, 0, n - 1) + ord("0"), ord("-")).astype(np.uint8)
    breaks = edges.tolist() if len(edges) > 1 else [float(edges[0]), float(edges[0])]
    return {
        "classes": codes.tobytes().decode("ascii"),
        "breaks": breaks,
        "colors": [PALETTE[i] for i in pick],
    }


def significant(values: Any, digits: int = 4) -> list[float | None]:
    """``values`` rounded to ``digits`` significant digits, NaN as None (for compact JSON).

    Examples
    --------
    >>> significant([1234567.0, 0.000123456, float("nan"), 0.0])
    [1235000.0, 0.0001235, None, 0.0]
    """
    v = np.asarray(values, dtype="float64")
    ok = np.isfinite(v) & (v != 0)
    mag = np.zeros_like(v)
    mag[ok] = np.floor(np.log10(np.abs(v[ok])))
    factor = 10.0 ** (digits - 1 - mag)
    out = np.where(ok, np.round(v * factor) / factor, v)
    return [None if x != x else x for x in out.tolist()]
