"""Write the bad-input corpus of tests/data/bad/ (run: .venv/bin/python tests/data/bad/make_bad_inputs.py).

Every file is synthetic (made here, CC0) and tiny. ``CORPUS`` says, for each file, how the test
reads it (``runner``) and what must come out: a check result (check id + level), a GeopipeError
subclass with a message fragment, or a warning. The script writes ``expected.json`` (read by
tests/test_quality_bad_inputs.py) and ``EXPECTED.md`` (the same table for people) from it.

The area of interest for point and raster checks is ``aoi_admin.geojson``: two provinces of a
Rwanda-sized box, 29–31 E, 3–1 S (valid; not a bad input).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RNG = np.random.default_rng(7)


def _write_json(name: str, obj: object) -> None:
    (HERE / name).write_text(
        json.dumps(obj, indent=None, separators=(",", ":")) + "\n", encoding="utf-8"
    )


def _ring(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _feature(props: dict, geom: dict | None) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geom}


def _poly(*rings: list) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def _gb(name: str, sid: str, level: int = 1) -> dict:
    """geoBoundaries-style properties."""
    return {"shapeName": name, "shapeID": sid, "shapeGroup": "XXA", "shapeType": f"ADM{level}"}


def _dim(ucode: str, level: int, parent: str | None, name: str) -> dict:
    """dim_admin-style properties (for the checks run on a table read without read_admin)."""
    return {"ucode": ucode, "admin_level": level, "parent_ucode": parent, "name": name}


def _fc(features: list, crs: str | None = None) -> dict:
    out: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        out["crs"] = {"type": "name", "properties": {"name": crs}}
    return out


def _csv(
    name: str, header: str, rows: list[str], encoding: str = "utf-8", bom: bytes = b""
) -> None:
    text = "\n".join([header, *rows]) + "\n"
    (HERE / name).write_bytes(bom + text.encode(encoding))


def _tif(
    name: str,
    data: np.ndarray,
    *,
    bounds: tuple,
    crs: str | None = "EPSG:4326",
    nodata: float | None = -99999.0,
    tiled: bool = False,
) -> Path:
    import rasterio
    from rasterio.transform import from_bounds

    h, w = data.shape
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": 1,
        "dtype": "float32",
        "transform": from_bounds(*bounds, w, h),
    }
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    path = HERE / name
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype("float32"), 1)
    aux = path.with_name(path.name + ".aux.xml")
    if aux.exists():
        aux.unlink()
    return path


def _population(h: int = 20, w: int = 20) -> np.ndarray:
    return RNG.gamma(2.0, 50.0, size=(h, w)).round(2)


AOI = (29.0, -3.0, 31.0, -1.0)

# (file, runner, options, expectation) — expectation keys: kind (check|error|warning), check_id, level,
# rows (optional), error (class name), fragment (text in the message)
CORPUS: list[dict] = []


def expect(file: str, runner: str, what: str, **kw: object) -> None:
    CORPUS.append({"file": file, "runner": runner, "what": what, **kw})


def boundaries() -> None:
    _write_json(
        "aoi_admin.geojson",
        _fc(
            [
                _feature(_gb("West", "W1"), _poly(_ring(29.0, -3.0, 30.0, -1.0))),
                _feature(_gb("East", "E1"), _poly(_ring(30.0, -3.0, 31.0, -1.0))),
            ]
        ),
    )
    bowtie = [[29.0, -3.0], [30.0, -1.0], [30.0, -3.0], [29.0, -1.0], [29.0, -3.0]]
    _write_json(
        "adm_invalid_bowtie.geojson",
        _fc(
            [
                _feature(_gb("Bowtie", "B1"), _poly(bowtie)),
                _feature(_gb("East", "E1"), _poly(_ring(30.0, -3.0, 31.0, -1.0))),
            ]
        ),
    )
    expect(
        "adm_invalid_bowtie.geojson",
        "read_admin",
        "self-intersecting polygon (repaired by make_valid, counted)",
        kind="check",
        check_id="admin.invalid_geometry",
        level="warn",
        rows=1,
    )
    _write_json(
        "adm_empty_geometry.geojson",
        _fc(
            [
                _feature(_gb("Nowhere", "N1"), None),
                _feature(_gb("East", "E1"), _poly(_ring(30.0, -3.0, 31.0, -1.0))),
            ]
        ),
    )
    expect(
        "adm_empty_geometry.geojson",
        "read_admin",
        "unit with a null geometry (rejected by the reader, counted)",
        kind="check",
        check_id="admin.empty_geometry",
        level="warn",
        rows=1,
    )
    expect(
        "adm_empty_geometry.geojson",
        "admin_raw_gb",
        "the same table checked without read_admin",
        kind="check",
        check_id="admin.empty_geometry",
        level="fail",
        rows=1,
    )
    dup = _fc(
        [
            _feature(_dim("XXA_0001_V1", 1, None, "West"), _poly(_ring(29.0, -3.0, 30.0, -1.0))),
            _feature(_dim("XXA_0001_V1", 1, None, "East"), _poly(_ring(30.0, -3.0, 31.0, -1.0))),
        ]
    )
    _write_json("adm_duplicate_ucode.geojson", dup)
    expect(
        "adm_duplicate_ucode.geojson",
        "admin_raw",
        "two units with the same ucode",
        kind="check",
        check_id="admin.duplicate_ucode",
        level="fail",
        rows=2,
    )
    expect(
        "adm_duplicate_ucode.geojson",
        "read_admin",
        "read_admin refuses duplicate ucodes",
        kind="error",
        error="InputError",
        fragment="is not unique",
        names_file=False,
    )  # reported to the lead
    _write_json(
        "adm_missing_parent.geojson",
        _fc(
            [
                _feature(
                    _dim("XXA_0001_V1", 1, None, "West"), _poly(_ring(29.0, -3.0, 30.0, -1.0))
                ),
                _feature(
                    _dim("XXA_0001_0001_V1", 2, "XXA_0001_V1", "West A"),
                    _poly(_ring(29.0, -3.0, 29.5, -1.0)),
                ),
                _feature(
                    _dim("XXA_0002_0001_V1", 2, "XXA_0002_V1", "Lost"),
                    _poly(_ring(29.5, -3.0, 30.0, -1.0)),
                ),
            ]
        ),
    )
    expect(
        "adm_missing_parent.geojson",
        "admin_raw",
        "parent_ucode that is not in the table",
        kind="check",
        check_id="admin.missing_parent",
        level="fail",
        rows=1,
    )
    _write_json(
        "adm_child_outside_parent.geojson",
        _fc(
            [
                _feature(
                    _dim("XXA_0001_V1", 1, None, "West"), _poly(_ring(29.0, -3.0, 30.0, -1.0))
                ),
                _feature(
                    _dim("XXA_0001_0001_V1", 2, "XXA_0001_V1", "Straddling"),
                    _poly(_ring(29.5, -3.0, 30.5, -2.0)),
                ),
                _feature(
                    _dim("XXA_0001_0002_V1", 2, "XXA_0001_V1", "Inside"),
                    _poly(_ring(29.0, -2.0, 30.0, -1.0)),
                ),
            ]
        ),
    )
    expect(
        "adm_child_outside_parent.geojson",
        "admin_raw",
        "a child half outside its parent",
        kind="check",
        check_id="admin.child_outside_parent",
        level="warn",
        rows=1,
    )
    _write_json(
        "adm_overlap.geojson",
        _fc(
            [
                _feature(_gb("West", "W1"), _poly(_ring(29.0, -3.0, 30.2, -1.0))),
                _feature(_gb("East", "E1"), _poly(_ring(29.8, -3.0, 31.0, -1.0))),
            ]
        ),
    )
    expect(
        "adm_overlap.geojson",
        "read_admin",
        "two units of one level overlapping by 0.4°",
        kind="check",
        check_id="admin.overlap",
        level="warn",
        rows=1,
    )
    _write_json(
        "adm_gap.geojson",
        _fc(
            [
                _feature(_dim("XXA_V1", 0, None, "Country"), _poly(_ring(29.0, -3.0, 31.0, -1.0))),
                _feature(
                    _dim("XXA_0001_V1", 1, "XXA_V1", "West"), _poly(_ring(29.0, -3.0, 29.9, -1.0))
                ),
                _feature(
                    _dim("XXA_0002_V1", 1, "XXA_V1", "East"), _poly(_ring(30.1, -3.0, 31.0, -1.0))
                ),
            ]
        ),
    )
    expect(
        "adm_gap.geojson",
        "admin_raw",
        "a 0.2° strip of the country covered by no province",
        kind="check",
        check_id="admin.gap",
        level="warn",
        rows=1,
    )
    _write_json(
        "adm_projected_as_wgs84.geojson",
        _fc(
            [
                _feature(
                    _gb("Metres", "M1"), _poly(_ring(500000.0, 9700000.0, 510000.0, 9710000.0))
                ),
            ]
        ),
    )
    expect(
        "adm_projected_as_wgs84.geojson",
        "read_admin",
        "UTM metres in a GeoJSON (taken as lon/lat)",
        kind="check",
        check_id="admin.coordinates_out_of_bounds",
        level="fail",
        rows=1,
    )
    _write_json(
        "adm_wrong_crs.geojson",
        _fc(
            [
                _feature(
                    _dim("XXA_0001_V1", 1, None, "West"),
                    _poly(_ring(500000.0, 9700000.0, 510000.0, 9710000.0)),
                ),
            ],
            crs="urn:ogc:def:crs:EPSG::32735",
        ),
    )
    expect(
        "adm_wrong_crs.geojson",
        "admin_raw",
        "a layer in UTM 35S used as is (not EPSG:4326)",
        kind="check",
        check_id="admin.crs",
        level="warn",
        rows=1,
    )
    # Shapefile without .prj
    import geopandas as gpd
    import shapely

    gdf = gpd.GeoDataFrame(
        {"shapeName": ["West"], "shapeID": ["W1"], "shapeGroup": ["XXA"], "shapeType": ["ADM1"]},
        geometry=[shapely.box(29.0, -3.0, 30.0, -1.0)],
        crs=None,
    )
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        (HERE / f"adm_no_prj{ext}").unlink(missing_ok=True)
    gdf.to_file(HERE / "adm_no_prj.shp", engine="pyogrio")
    (HERE / "adm_no_prj.cpg").unlink(missing_ok=True)
    expect(
        "adm_no_prj.shp",
        "read_admin",
        "Shapefile without .prj",
        kind="error",
        error="GeometryError",
        fragment="has no CRS",
    )
    good = json.dumps(_fc([_feature(_gb("West", "W1"), _poly(_ring(29.0, -3.0, 30.0, -1.0)))]))
    (HERE / "adm_truncated.geojson").write_text(good[: len(good) // 2], encoding="utf-8")
    expect(
        "adm_truncated.geojson",
        "read_admin",
        "GeoJSON cut in the middle (a broken download)",
        kind="error",
        error="FormatError",
        fragment="could not be read",
    )
    (HERE / "adm_empty.geojson").write_bytes(b"")
    expect(
        "adm_empty.geojson",
        "read_admin",
        "empty file (0 bytes)",
        kind="error",
        error="FormatError",
        fragment="is empty",
    )
    (HERE / "adm_not_geojson.geojson").write_text(
        "<html><body>404 Not Found</body></html>\n", encoding="utf-8"
    )
    expect(
        "adm_not_geojson.geojson",
        "read_admin",
        "an HTML error page saved as .geojson",
        kind="error",
        error="FormatError",
        fragment="could not be read",
    )
    _write_json(
        "adm_unknown_schema.geojson",
        _fc([_feature({"NOM": "Ouest", "CODE": 1}, _poly(_ring(29.0, -3.0, 30.0, -1.0)))]),
    )
    expect(
        "adm_unknown_schema.geojson",
        "read_admin",
        "columns of no known schema and no mapping",
        kind="error",
        error="MissingColumnError",
        fragment="is not a known boundary schema",
    )
    _write_json("adm_empty_layer.geojson", _fc([]))
    expect(
        "adm_empty_layer.geojson",
        "read_admin",
        "a FeatureCollection with no features",
        kind="error",
        error="FormatError",
        fragment="has no features",
    )
    _write_json(
        "adm_mixed_types.geojson",
        _fc(
            [
                _feature(_gb("West", "W1"), _poly(_ring(29.0, -3.0, 30.0, -1.0))),
                _feature(
                    _gb("A road", "R1"),
                    {"type": "LineString", "coordinates": [[29.0, -2.0], [31.0, -2.0]]},
                ),
                _feature(_gb("A town", "T1"), {"type": "Point", "coordinates": [30.5, -2.0]}),
            ]
        ),
    )
    expect(
        "adm_mixed_types.geojson",
        "read_admin",
        "polygon, line and point in one boundary layer",
        kind="check",
        check_id="admin.empty_geometry",
        level="warn",
        rows=2,
    )
    _write_json(
        "adm_3d.geojson",
        _fc(
            [
                _feature(
                    _dim("XXA_0001_V1", 1, None, "West"),
                    _poly([[x, y, 1500.0] for x, y in _ring(29.0, -3.0, 30.0, -1.0)]),
                ),
            ]
        ),
    )
    expect(
        "adm_3d.geojson",
        "admin_raw",
        "polygons with Z coordinates",
        kind="check",
        check_id="admin.z_coordinates",
        level="warn",
        rows=1,
    )
    expect(
        "adm_3d.geojson",
        "read_admin",
        "read_admin drops Z: the Z check passes",
        kind="check",
        check_id="admin.z_coordinates",
        level="pass",
        rows=0,
    )
    _write_json(
        "adm_antimeridian.geojson",
        _fc(
            [
                _feature(
                    _gb("Across", "A1"),
                    _poly(
                        [
                            [179.0, -17.0],
                            [-179.0, -17.0],
                            [-179.0, -16.0],
                            [179.0, -16.0],
                            [179.0, -17.0],
                        ]
                    ),
                ),
            ]
        ),
    )
    expect(
        "adm_antimeridian.geojson",
        "read_admin",
        "polygon crossing the antimeridian, not split",
        kind="check",
        check_id="admin.antimeridian",
        level="fail",
        rows=1,
    )
    # GeoParquet with a broken footer
    gpd.GeoDataFrame(
        {"shapeName": ["West"], "shapeID": ["W1"], "shapeGroup": ["XXA"], "shapeType": ["ADM1"]},
        geometry=[shapely.box(29.0, -3.0, 30.0, -1.0)],
        crs=4326,
    ).to_parquet(HERE / "adm_broken_footer.parquet")
    data = (HERE / "adm_broken_footer.parquet").read_bytes()
    (HERE / "adm_broken_footer.parquet").write_bytes(data[:-12])
    expect(
        "adm_broken_footer.parquet",
        "read_admin",
        "GeoParquet whose footer is cut off",
        kind="error",
        error="FormatError",
        fragment="could not be read",
    )


def points() -> None:
    rows = [
        f"S{i:03d},School {i},{29.1 + 0.1 * i:.5f},{-2.9 + 0.1 * i:.5f},Yes" for i in range(1, 9)
    ]
    rows += ["S003,School 3 again,29.40000,-2.60000,Yes", "S009,Copy,29.20000,-2.80000,No"]
    _csv("pts_duplicates.csv", "school_id,name,lon,lat,connectivity", rows)
    expect(
        "pts_duplicates.csv",
        "read_points",
        "an id repeated and two points at the same place",
        options={"id_col": "school_id"},
        kind="check",
        check_id="points.duplicate_id",
        level="warn",
        rows=2,
    )
    expect(
        "pts_duplicates.csv",
        "read_points",
        "the same file: duplicate coordinates",
        options={"id_col": "school_id"},
        kind="check",
        check_id="points.duplicate_coordinates",
        level="warn",
        rows=4,
    )
    _csv(
        "pts_zero_null.csv",
        "id,name,lon,lat",
        ["P1,Ok,29.51234,-2.51234", "P2,Zero,0,0", "P3,Blank,,", "P4,Text,abc,-2.1"],
    )
    expect(
        "pts_zero_null.csv",
        "read_points",
        "(0, 0), blank and non-numeric coordinates (left out, quarantined)",
        options={"id_col": "id"},
        kind="check",
        check_id="points.rejected_by_reader",
        level="warn",
        rows=3,
    )
    expect(
        "pts_zero_null.csv",
        "points_raw",
        "the same table checked without read_points: (0, 0)",
        kind="check",
        check_id="points.zero_coordinates",
        level="warn",
        rows=1,
    )
    expect(
        "pts_zero_null.csv",
        "points_raw",
        "the same table checked without read_points: null coordinates",
        kind="check",
        check_id="points.null_coordinates",
        level="warn",
        rows=2,
    )
    _csv(
        "pts_swapped.csv",
        "id,lon,lat",
        ["A,29.51234,-2.51234", "B,-1.51234,30.21234", "C,-2.21234,29.81234"],
    )
    expect(
        "pts_swapped.csv",
        "read_points",
        "lat and lon swapped in two rows",
        options={"id_col": "id"},
        kind="check",
        check_id="points.swapped_lat_lon",
        level="warn",
        rows=2,
    )
    _csv(
        "pts_outside.csv",
        "id,lon,lat",
        ["A,29.51234,-2.51234", "B,33.51234,-2.51234", "C,29.51234,4.51234"],
    )
    expect(
        "pts_outside.csv",
        "read_points",
        "points beyond every boundary",
        options={"id_col": "id"},
        kind="check",
        check_id="points.outside_boundaries",
        level="warn",
        rows=2,
    )
    _csv(
        "pts_low_precision.csv",
        "id,lon,lat",
        ["A,29.5,-2.5", "B,30.12,-1.9", "C,30.12345,-1.98765"],
    )
    expect(
        "pts_low_precision.csv",
        "read_points",
        "coordinates with 1–2 decimals",
        options={"id_col": "id"},
        kind="check",
        check_id="points.low_precision",
        level="warn",
        rows=2,
    )
    _csv(
        "pts_bad_domain.csv",
        "id,lon,lat,connectivity",
        [
            "A,29.51234,-2.51234,Yes",
            "B,29.61234,-2.51234,No",
            "C,29.71234,-2.51234,maybe",
            "D,29.81234,-2.51234,2",
            "E,29.91234,-2.51234,",
        ],
    )
    expect(
        "pts_bad_domain.csv",
        "read_points",
        "connectivity values outside Yes/No",
        options={"id_col": "id"},
        allowed={"connectivity": ["Yes", "No"]},
        kind="check",
        check_id="points.value_domain",
        level="warn",
        rows=2,
    )
    _csv(
        "pts_latin1_bom.csv",
        "name,lon,lat",
        ["École Gitarama,29.75678,-2.07432", "Centre de santé,30.06123,-1.94456"],
        encoding="latin-1",
        bom=b"\xef\xbb\xbf",
    )
    expect(
        "pts_latin1_bom.csv",
        "read_points",
        "Latin-1 text behind a UTF-8 byte-order mark",
        kind="warning",
        fragment="read it as Latin-1",
    )
    _csv("pts_header_only.csv", "id,lon,lat", [])
    expect(
        "pts_header_only.csv",
        "read_points",
        "a header and no rows",
        kind="error",
        error="FormatError",
        fragment="has a header but no rows",
    )
    _csv("pts_no_coordinates.csv", "id,town", ["A,Huye", "B,Musanze"])
    expect(
        "pts_no_coordinates.csv",
        "read_points",
        "no coordinate columns",
        kind="error",
        error="MissingColumnError",
        fragment="has no longitude column",
    )
    _write_json(
        "pts_mixed_types.geojson",
        _fc(
            [
                _feature({"id": "A"}, {"type": "Point", "coordinates": [29.51234, -2.51234]}),
                _feature({"id": "B"}, _poly(_ring(29.0, -3.0, 29.1, -2.9))),
                _feature({"id": "C"}, {"type": "Point", "coordinates": [30.51234, -1.51234]}),
            ]
        ),
    )
    expect(
        "pts_mixed_types.geojson",
        "read_points",
        "points and a polygon in one point layer",
        kind="check",
        check_id="points.rejected_by_reader",
        level="warn",
        rows=1,
    )
    (HERE / "pts_empty.csv").write_bytes(b"")
    expect(
        "pts_empty.csv",
        "read_points",
        "empty file (0 bytes)",
        kind="error",
        error="FormatError",
        fragment="is empty",
    )


def rasters() -> None:
    pop = _population()
    _tif("ras_no_crs.tif", pop, bounds=AOI, crs=None)
    expect(
        "ras_no_crs.tif",
        "raster",
        "GeoTIFF without a CRS",
        kind="check",
        check_id="raster.crs",
        level="fail",
        rows=1,
    )
    # ESRI ASCII grid in UTM metres, no .prj
    lines = [
        "ncols 4",
        "nrows 3",
        "xllcorner 500000",
        "yllcorner 9700000",
        "cellsize 1000",
        "NODATA_value -9999",
        "1 2 3 4",
        "5 6 7 8",
        "9 10 11 -9999",
    ]
    (HERE / "ras_projected_no_prj.asc").write_text("\n".join(lines) + "\n", encoding="ascii")
    expect(
        "ras_projected_no_prj.asc",
        "raster",
        "grid in UTM metres without .prj",
        kind="check",
        check_id="raster.crs",
        level="fail",
        rows=1,
        fragment="look projected",
    )
    _tif("ras_no_nodata.tif", pop, bounds=AOI, nodata=None)
    expect(
        "ras_no_nodata.tif",
        "raster",
        "no nodata value declared",
        kind="check",
        check_id="raster.nodata",
        level="warn",
        rows=1,
    )
    neg = pop.copy()
    neg[0, :3] = -5.0
    _tif("ras_negative.tif", neg, bounds=AOI)
    expect(
        "ras_negative.tif",
        "raster",
        "three negative population pixels",
        kind="check",
        check_id="raster.negative_values",
        level="fail",
        rows=3,
    )
    _tif("ras_no_overlap.tif", pop, bounds=(5.0, 45.0, 7.0, 47.0))
    expect(
        "ras_no_overlap.tif",
        "raster",
        "a raster over the Alps, boundaries in Africa",
        kind="check",
        check_id="raster.overlap",
        level="fail",
        rows=1,
    )
    _tif("ras_half_coverage.tif", pop, bounds=(29.0, -3.0, 30.0, -1.0))
    expect(
        "ras_half_coverage.tif",
        "raster",
        "covers only the western half of the area",
        kind="check",
        check_id="raster.coverage",
        level="warn",
    )
    path = _tif("ras_truncated.tif", _population(64, 64), bounds=AOI, tiled=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect(
        "ras_truncated.tif",
        "raster",
        "GeoTIFF cut in half",
        kind="error",
        error="FormatError",
        fragment="truncated",
    )
    (HERE / "ras_empty.tif").write_bytes(b"")
    expect(
        "ras_empty.tif",
        "raster",
        "empty file (0 bytes)",
        kind="error",
        error="FormatError",
        fragment="is empty",
    )
    (HERE / "ras_not_a_raster.tif").write_text("this is not a GeoTIFF\n", encoding="ascii")
    expect(
        "ras_not_a_raster.tif",
        "raster",
        "text saved as .tif",
        kind="error",
        error="FormatError",
        fragment="cannot be read as a raster",
    )


def facts() -> None:
    head = "ucode,admin_level,indicator_id,date,value,unit,suppressed"

    def row(
        u: str, i: str, v: object, unit: str = "people", s: str = "false", d: str = "2024-01-01"
    ) -> str:
        return f"{u},1,{i},{d},{v},{unit},{s}"

    _csv(
        "fact_share_out_of_range.csv",
        head,
        [
            row("XXA_0001_V1", "schools_connected_share", 1.25, "share"),
            row("XXA_0002_V1", "schools_connected_share", 0.5, "share"),
        ],
    )
    expect(
        "fact_share_out_of_range.csv",
        "fact",
        "a share of 1.25",
        kind="check",
        check_id="indicators.share_out_of_range",
        level="fail",
        rows=1,
    )
    _csv(
        "fact_negative_count.csv",
        head,
        [
            row("XXA_0001_V1", "population_total", -12.0),
            row("XXA_0002_V1", "population_total", 100.0),
        ],
    )
    expect(
        "fact_negative_count.csv",
        "fact",
        "a negative population",
        kind="check",
        check_id="indicators.negative_count",
        level="fail",
        rows=1,
    )
    _csv(
        "fact_numerator_gt_denominator.csv",
        head,
        [
            row("XXA_0001_V1", "schools_connected", 12, "schools"),
            row("XXA_0001_V1", "schools_total", 10, "schools"),
            row("XXA_0002_V1", "schools_connected", 3, "schools"),
            row("XXA_0002_V1", "schools_total", 10, "schools"),
        ],
    )
    expect(
        "fact_numerator_gt_denominator.csv",
        "fact",
        "more connected schools than schools",
        kind="check",
        check_id="indicators.numerator_gt_denominator",
        level="fail",
        rows=1,
    )
    _csv(
        "fact_previous.csv",
        head,
        [
            row("XXA_0001_V1", "population_total", 1000.0, d="2023-01-01"),
            row("XXA_0002_V1", "population_total", 2000.0, d="2023-01-01"),
        ],
    )
    _csv(
        "fact_change.csv",
        head,
        [
            row("XXA_0001_V1", "population_total", 1500.0),
            row("XXA_0002_V1", "population_total", 2100.0),
        ],
    )
    expect(
        "fact_change.csv",
        "fact",
        "a district's population up 50 % since fact_previous.csv",
        options={"previous": "fact_previous.csv"},
        kind="check",
        check_id="indicators.change",
        level="warn",
        rows=1,
    )
    _csv(
        "fact_suppressed_published.csv", head, [row("XXA_0001_V1", "population_u5", 3.0, s="true")]
    )
    expect(
        "fact_suppressed_published.csv",
        "fact",
        "a suppressed row that still carries its value",
        kind="check",
        check_id="indicators.suppressed_value_published",
        level="fail",
        rows=1,
    )


def write_tables() -> None:
    (HERE / "expected.json").write_text(
        json.dumps(CORPUS, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    lines = [
        "# Bad-input corpus: what each file must produce",
        "",
        "Generated by `make_bad_inputs.py` (do not edit by hand). All files are synthetic (CC0).",
        "Runners: `read_admin` = `read_admin(path)` then `check_admin`; `admin_raw` / `admin_raw_gb` = `geopandas.read_file`",
        "then `check_admin`; `read_points` = `read_points(path, ...)` then `check_points(admin=aoi_admin.geojson)`;",
        "`points_raw` = `pandas.read_csv` + `points_from_xy` then `check_points`; `raster` = `check_raster(path, admin=aoi)`;",
        "`fact` = `pandas.read_csv` then `check_indicators`.",
        "",
        "| file | runner | bad because | expected |",
        "|---|---|---|---|",
    ]
    for e in CORPUS:
        if e["kind"] == "check":
            want = f"`{e['check_id']}` = {e['level']}" + (
                f", {e['rows']} rows" if "rows" in e else ""
            )
        elif e["kind"] == "error":
            want = f"`{e['error']}` «{e['fragment']}»"
        else:
            want = f"GeopipeWarning «{e['fragment']}»"
        lines.append(f"| `{e['file']}` | {e['runner']} | {e['what']} | {want} |")
    (HERE / "EXPECTED.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    os.environ.setdefault("GTIFF_WRITE_TOWGS84", "NO")
    boundaries()
    points()
    rasters()
    facts()
    write_tables()
    files = sorted({e["file"] for e in CORPUS})
    size = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    print(
        f"{len(files)} bad input files, {len(CORPUS)} expectations, {size / 1024:.0f} KiB in {HERE}"
    )


if __name__ == "__main__":
    main()
