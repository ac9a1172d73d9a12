"""Make the boundary-format fixtures in this folder from the Rwanda sample (geoBoundaries).

The same 1 + 5 + 30 Rwanda units are written in the layouts of other sources, so tests can check
that every reader maps onto one dim_admin schema:

* ``georepo_api.json`` — GeoRepo API JSON (``results`` with ucode, concept_ucode, admin_level,
  parents[], ext_codes, start/end dates, GeoJSON geometry); includes two versions of one province
  (an old one ending 2019-12-31 and the current one) to test ``valid_on``.
* ``georepo_export.geojson`` — GeoRepo GeoJSON export (``adm{N}_ucode`` parent columns).
* ``codab_rwa.gpkg`` — OCHA COD-AB style GeoPackage, layers ``rwa_adm0``/``rwa_adm1``/``rwa_adm2``
  with ``ADMn_PCODE``/``ADMn_EN`` (ADM0_PCODE is the ISO alpha-2 ``RW``).
* ``gadm_rwa.gpkg`` — GADM style, layers ``ADM_ADM_0``/``ADM_ADM_1``/``ADM_ADM_2`` with GID_n/NAME_n.

Geometries are simplified (0.005°) to keep the files small. Codes and dates are invented for the
fixture; names and shapes are geoBoundaries' (CC BY 4.0 / ODbL, see data/sample/SOURCES.md).
Run from the repo root: ``python tests/data/admin/make_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import shapely

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[2] / "data" / "sample"


def _load() -> dict[int, gpd.GeoDataFrame]:
    out = {}
    for lv in (0, 1, 2):
        g = gpd.read_file(SAMPLE / f"rwa_adm{lv}.geojson")
        g["geometry"] = shapely.simplify(g.geometry.to_numpy(), 0.005, preserve_topology=True)
        out[lv] = g
    return out


def main() -> None:
    lv = _load()
    adm1 = lv[1].sort_values("shapeName").reset_index(drop=True)
    adm1["p"] = [f"RW{i:02d}" for i in range(1, len(adm1) + 1)]
    adm2 = lv[2].merge(
        adm1[["shapeID", "p"]].rename(columns={"shapeID": "ADM1_shapeID", "p": "p1"}),
        on="ADM1_shapeID",
    )
    adm2 = adm2.sort_values(["p1", "shapeName"]).reset_index(drop=True)
    adm2["p"] = adm2["p1"] + adm2.groupby("p1").cumcount().add(1).map("{:02d}".format)

    # ---- COD-AB
    path = HERE / "codab_rwa.gpkg"
    path.unlink(missing_ok=True)
    gpd.GeoDataFrame(
        {"ADM0_EN": ["Rwanda"], "ADM0_PCODE": ["RW"]}, geometry=lv[0].geometry, crs=4326
    ).to_file(path, layer="rwa_adm0", driver="GPKG")
    gpd.GeoDataFrame(
        {
            "ADM1_EN": adm1["shapeName"],
            "ADM1_PCODE": adm1["p"],
            "ADM0_EN": "Rwanda",
            "ADM0_PCODE": "RW",
        },
        geometry=adm1.geometry,
        crs=4326,
    ).to_file(path, layer="rwa_adm1", driver="GPKG")
    gpd.GeoDataFrame(
        {
            "ADM2_EN": adm2["shapeName"],
            "ADM2_PCODE": adm2["p"],
            "ADM1_PCODE": adm2["p1"],
            "ADM0_PCODE": "RW",
        },
        geometry=adm2.geometry,
        crs=4326,
    ).to_file(path, layer="rwa_adm2", driver="GPKG")

    # ---- GADM
    path = HERE / "gadm_rwa.gpkg"
    path.unlink(missing_ok=True)
    gpd.GeoDataFrame(
        {"GID_0": ["RWA"], "COUNTRY": ["Rwanda"]}, geometry=lv[0].geometry, crs=4326
    ).to_file(path, layer="ADM_ADM_0", driver="GPKG")
    g1 = "RWA." + adm1.index.map(lambda i: str(i + 1)) + "_1"
    gpd.GeoDataFrame(
        {"GID_0": "RWA", "NAME_0": "Rwanda", "GID_1": g1, "NAME_1": adm1["shapeName"]},
        geometry=adm1.geometry,
        crs=4326,
    ).to_file(path, layer="ADM_ADM_1", driver="GPKG")
    parent_gid = dict(zip(adm1["p"], g1, strict=True))
    g2 = [f"{parent_gid[p1][:-2]}.{i + 1}_1" for i, p1 in enumerate(adm2["p1"])]
    gpd.GeoDataFrame(
        {
            "GID_0": "RWA",
            "GID_1": adm2["p1"].map(parent_gid),
            "NAME_1": "",
            "GID_2": g2,
            "NAME_2": adm2["shapeName"],
        },
        geometry=adm2.geometry,
        crs=4326,
    ).to_file(path, layer="ADM_ADM_2", driver="GPKG")

    # ---- GeoRepo (ucodes in GeoRepo form; the parent's code + a 4-digit sequence)
    u0 = "RWA_V1"
    u1 = {p: f"RWA_{i:04d}_V1" for i, p in enumerate(adm1["p"], start=1)}
    seq2 = adm2.groupby("p1").cumcount().add(1)
    u2 = [f"{u1[p1][:-3]}_{s:04d}_V1" for p1, s in zip(adm2["p1"], seq2, strict=True)]
    entities = [
        {
            "ucode": u0,
            "concept_ucode": "#RWA_1",
            "name": "Rwanda",
            "admin_level": 0,
            "type": "Country",
            "start_date": "2020-01-01T00:00:00+00:00",
            "end_date": None,
            "ext_codes": {"PCode": "RWA", "default": "RWA"},
            "parents": [],
            "geometry": json.loads(shapely.to_geojson(lv[0].geometry.iloc[0])),
        }
    ]
    for i, row in adm1.iterrows():
        entities.append(
            {
                "ucode": u1[row["p"]],
                "concept_ucode": f"#RWA_{i + 2}",
                "name": row["shapeName"],
                "admin_level": 1,
                "type": "Province",
                "start_date": "2020-01-01T00:00:00+00:00",
                "end_date": None,
                "ext_codes": {"PCode": row["p"], "default": row["p"]},
                "parents": [{"default": "RWA", "ucode": u0, "admin_level": 0, "type": "Country"}],
                "geometry": json.loads(shapely.to_geojson(row.geometry)),
            }
        )
    # an older version of the first province, replaced on 2020-01-01
    old = dict(entities[1])
    old.update(
        {
            "ucode": old["ucode"].replace("_V1", "_V0"),
            "name": old["name"] + " (old)",
            "start_date": "2015-01-01T00:00:00+00:00",
            "end_date": "2020-01-01T00:00:00+00:00",
        }
    )
    entities.append(old)
    with open(HERE / "georepo_api.json", "w", encoding="utf-8") as fh:
        json.dump({"page": 1, "total_page": 1, "page_size": 50, "results": entities}, fh, indent=1)

    feats = gpd.GeoDataFrame(
        {
            "ucode": u2,
            "concept_ucode": [f"#RWA_{i + 10}" for i in range(len(u2))],
            "name": adm2["shapeName"],
            "admin_level": 2,
            "adm0_ucode": u0,
            "adm1_ucode": adm2["p1"].map(u1),
            "PCode": adm2["p"],
            "start_date": "2020-01-01",
            "end_date": None,
        },
        geometry=adm2.geometry,
        crs=4326,
    )
    path = HERE / "georepo_export.geojson"
    path.unlink(missing_ok=True)
    feats.to_file(path, driver="GeoJSON", COORDINATE_PRECISION=5)


# --------------------------------------------------------------------------- issue 12
def field_fixtures() -> None:
    """Single finest-level files that name their whole hierarchy in code columns (issue 12).

    From the unsimplified Rwanda districts (a clean coverage), lightly simplified *as a coverage*
    (``shapely.coverage_simplify``) so that shared borders stay shared, and each district split
    into two invented "sectors" west and east of its centroid (a 4-level hierarchy):

    * ``codab_rwa_adm3.gpkg`` — one COD-AB layer of 60 sectors with ``ADM3/2/1/0_PCODE`` and ``_EN``.
    * ``gadm_rwa_adm2.gpkg`` — one GADM level-2 layer (30 districts) with ``GID_2/1/0``, ``NAME_2/1``,
      ``COUNTRY``.
    * ``georepo_rwa_adm2.geojson`` — a GeoRepo level-2 export (30 districts) with GeoRepo ucodes
      in an order that is *not* name order (so kept-as-given is visible), ``adm1_ucode``,
      ``adm0_ucode`` and ``adm1_name``/``adm0_name``.
    """
    adm1 = (
        gpd.read_file(SAMPLE / "rwa_adm1.geojson").sort_values("shapeName").reset_index(drop=True)
    )
    adm2 = gpd.read_file(SAMPLE / "rwa_adm2.geojson")
    adm2["geometry"] = shapely.coverage_simplify(adm2.geometry.to_numpy(), 0.002)
    adm1["p"] = [f"RW{i:02d}" for i in range(1, len(adm1) + 1)]
    adm2 = adm2.merge(
        adm1[["shapeID", "p", "shapeName"]].rename(
            columns={"shapeID": "ADM1_shapeID", "p": "p1", "shapeName": "n1"}
        ),
        on="ADM1_shapeID",
    )
    adm2 = adm2.sort_values(["p1", "shapeName"]).reset_index(drop=True)
    adm2["p"] = adm2["p1"] + adm2.groupby("p1").cumcount().add(1).map("{:02d}".format)

    # ---- COD-AB level 3: each district cut in two at its centroid's longitude
    rows = []
    for _, d in adm2.iterrows():
        cx = d.geometry.centroid.x
        minx, miny, maxx, maxy = d.geometry.bounds
        halves = (
            shapely.box(minx - 1, miny - 1, cx, maxy + 1),
            shapely.box(cx, miny - 1, maxx + 1, maxy + 1),
        )
        for i, (half, side) in enumerate(zip(halves, ("West", "East"), strict=True), start=1):
            part = shapely.intersection(d.geometry, half)
            rows.append(
                {
                    "ADM3_EN": f"{d['shapeName']} {side}",
                    "ADM3_PCODE": f"{d['p']}{i:02d}",
                    "ADM2_EN": d["shapeName"],
                    "ADM2_PCODE": d["p"],
                    "ADM1_EN": d["n1"],
                    "ADM1_PCODE": d["p1"],
                    "ADM0_EN": "Rwanda",
                    "ADM0_PCODE": "RW",
                    "geometry": part,
                }
            )
    path = HERE / "codab_rwa_adm3.gpkg"
    path.unlink(missing_ok=True)
    gpd.GeoDataFrame(rows, crs=4326).to_file(path, layer="rwa_adm3", driver="GPKG")

    # ---- GADM level 2
    g1 = {p: f"RWA.{i}_1" for i, p in enumerate(adm1["p"], start=1)}
    seq = adm2.groupby("p1").cumcount().add(1)
    path = HERE / "gadm_rwa_adm2.gpkg"
    path.unlink(missing_ok=True)
    gpd.GeoDataFrame(
        {
            "GID_0": "RWA",
            "COUNTRY": "Rwanda",
            "GID_1": adm2["p1"].map(g1),
            "NAME_1": adm2["n1"],
            "GID_2": [f"{g1[p][:-2]}.{s}_1" for p, s in zip(adm2["p1"], seq, strict=True)],
            "NAME_2": adm2["shapeName"],
        },
        geometry=adm2.geometry,
        crs=4326,
    ).to_file(path, layer="ADM_ADM_2", driver="GPKG")

    # ---- GeoRepo level-2 export: sequences in reverse name order, as a real export may have
    u1 = {p: f"RWA_{i:04d}_V1" for i, p in enumerate(adm1["p"], start=1)}
    rev = adm2.groupby("p1")["shapeName"].rank(ascending=False).astype(int)
    path = HERE / "georepo_rwa_adm2.geojson"
    path.unlink(missing_ok=True)
    gpd.GeoDataFrame(
        {
            "ucode": [f"{u1[p][:-3]}_{r:04d}_V1" for p, r in zip(adm2["p1"], rev, strict=True)],
            "concept_ucode": [f"#RWA_{i + 10}" for i in range(len(adm2))],
            "name": adm2["shapeName"],
            "admin_level": 2,
            "adm0_ucode": "RWA_V1",
            "adm0_name": "Rwanda",
            "adm1_ucode": adm2["p1"].map(u1),
            "adm1_name": adm2["n1"],
            "PCode": adm2["p"],
            "start_date": "2020-01-01",
            "end_date": None,
        },
        geometry=adm2.geometry,
        crs=4326,
    ).to_file(path, driver="GeoJSON", COORDINATE_PRECISION=7)


if __name__ == "__main__":
    main()
    field_fixtures()
