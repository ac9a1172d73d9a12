"""read_points: tables and vector files of facilities/schools, profiles, coordinate checks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geopipe as gp
from geopipe.errors import FormatError, GeometryError, MissingColumnError, MissingFileError


def test_who_csv_and_geojson_agree(sample_dir, shared_real):
    csv = gp.read_points(sample_dir / "rwa_who_public_health_facilities.csv")
    geo = gp.read_points(shared_real / "rwa" / "rwa_who_public_health_facilities.geojson")
    assert csv.attrs["geopipe"]["profile"] == "who_facilities" == geo.attrs["geopipe"]["profile"]
    assert len(csv) == 572 == len(geo)
    raw = pd.read_csv(sample_dir / "rwa_who_public_health_facilities.csv")
    assert np.allclose(csv.geometry.x, raw["Long"]) and np.allclose(csv.geometry.y, raw["Lat"])
    assert np.allclose(csv.geometry.x, geo.geometry.x) and np.allclose(
        csv.geometry.y, geo.geometry.y
    )
    assert csv["name"].tolist() == raw["Facility name"].tolist()
    assert csv["category"].value_counts()["Health Centre"] == 486
    assert csv["point_id"].is_unique and csv["point_id"].iloc[0].startswith(
        "rwa-who-public-health-facilities-"
    )
    assert (
        list(csv.columns[:3]) == ["point_id", "name", "category"] and csv.columns[-1] == "geometry"
    )
    assert csv.crs.to_epsg() == 4326


def test_healthsites_and_osm_profiles(sample_dir):
    hs = gp.read_points(sample_dir / "rwa_healthsites_2020.geojson")
    assert hs.attrs["geopipe"]["profile"] == "healthsites" and len(hs) == 119
    assert hs["category"].value_counts().to_dict() == {
        "hospital": 75,
        "pharmacy": 24,
        "clinic": 16,
        "doctors": 2,
        "dentist": 2,
    }
    assert not hs["point_id"].str.contains(r"\.0$").any()  # "491234029.0" -> "491234029"
    osm = gp.read_points(sample_dir / "rwa_osm_education_nodes_2019.geojson")
    assert osm.attrs["geopipe"]["profile"] == "osm_nodes" and len(osm) == 71
    assert osm["category"].value_counts()["school"] == 60


def test_giga_duplicates_reported(shared_real):
    with pytest.warns(gp.GeopipeWarning, match="occur more than once"):
        giga = gp.read_points(shared_real / "rwa" / "rwa_giga_schools_connectivity.csv")
    assert giga.attrs["geopipe"]["profile"] == "giga"
    assert len(giga) == 3370  # all rows kept ...
    raw = pd.read_csv(shared_real / "rwa" / "rwa_giga_schools_connectivity.csv")
    dup = giga.attrs["geopipe"]["duplicate_ids"]
    counts = raw["giga_id_school"].value_counts()
    assert dup["ids"] == int((counts > 1).sum()) and dup["rows"] == int(counts[counts > 1].sum())


def test_giga_layout_duplicates_reported(tmp_path):
    """Repo-only twin: the Giga layout with repeated ids (made from the modelled schools)."""
    from conftest import giga_layout_schools

    raw = giga_layout_schools()
    raw.to_csv(tmp_path / "giga.csv", index=False)
    with pytest.warns(gp.GeopipeWarning, match="occur more than once"):
        giga = gp.read_points(tmp_path / "giga.csv")
    assert giga.attrs["geopipe"]["profile"] == "giga"
    assert len(giga) == len(raw) == 406  # all rows kept ...
    dup = giga.attrs["geopipe"]["duplicate_ids"]
    counts = raw["giga_id_school"].value_counts()
    assert dup["ids"] == int((counts > 1).sum()) == 3
    assert dup["rows"] == int(counts[counts > 1].sum()) == 9


def test_who_geojson_matches_the_csv(sample_dir, tmp_path):
    """Repo-only twin: the WHO table as GeoJSON (points from Long/Lat, as ../shared's file was
    made) is read with the same profile, rows and coordinates as the CSV."""
    raw = pd.read_csv(sample_dir / "rwa_who_public_health_facilities.csv")
    gpd.GeoDataFrame(raw, geometry=gpd.points_from_xy(raw["Long"], raw["Lat"]), crs=4326).to_file(
        tmp_path / "who.geojson"
    )
    csv = gp.read_points(sample_dir / "rwa_who_public_health_facilities.csv")
    geo = gp.read_points(tmp_path / "who.geojson")
    assert geo.attrs["geopipe"]["profile"] == "who_facilities" and len(geo) == 572
    assert np.allclose(csv.geometry.x, geo.geometry.x) and np.allclose(
        csv.geometry.y, geo.geometry.y
    )
    assert geo["name"].tolist() == csv["name"].tolist()
    assert geo["category"].tolist() == csv["category"].tolist()


def test_modelled_schools(sample_dir):
    schools = gp.read_points(sample_dir / "rwa_schools_modelled.csv")
    assert schools.attrs["geopipe"]["profile"] == "giga"
    assert schools["point_id"].is_unique
    assert set(schools["connectivity"]) == {"Yes", "No"}


def test_bad_coordinates_reported_not_dropped_silently(tmp_path):
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "Longitude": ["30.1", "", "200", "0", "abc", "29.9"],
            "Latitude": ["-1.9", "-2.0", "-1.5", "0", "-1.0", "-2.1"],
        }
    )
    path = tmp_path / "pts.csv"
    table.to_csv(path, index=False)
    with pytest.warns(gp.GeopipeWarning, match="4 of 6 rows left out"):
        pts = gp.read_points(path, id_col="id")
    assert pts["point_id"].tolist() == ["a", "f"]
    rejected = {r["point_id"]: r["reason"] for r in pts.attrs["geopipe"]["rejected"]}
    assert rejected == {
        "b": "missing coordinates",
        "c": "coordinates outside lon -180..180 / lat -90..90",
        "d": "coordinates are (0, 0)",
        "e": "coordinates are not numbers",
    }
    row = next(r for r in pts.attrs["geopipe"]["rejected"] if r["point_id"] == "c")
    assert row["row"] == 3 and row["Longitude"] == "200"  # original values kept for quarantine


def test_latin1_bom_excel_json_and_projected(tmp_path):
    frame = pd.DataFrame(
        {"nom": ["École A", "Poste de santé"], "x": [30.06, 29.74], "y": [-1.95, -2.60]}
    )
    latin = tmp_path / "latin.csv"
    latin.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    with pytest.warns(gp.GeopipeWarning, match="Latin-1"):
        pts = gp.read_points(latin, name_col="nom")
    assert pts["name"].tolist() == ["École A", "Poste de santé"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode("utf-8"))
    assert gp.read_points(bom)["nom"].tolist() == ["École A", "Poste de santé"]
    xlsx = tmp_path / "pts.xlsx"
    frame.to_excel(xlsx, index=False)
    assert np.allclose(gp.read_points(xlsx).geometry.x, frame["x"])
    js = tmp_path / "pts.json"
    frame.to_json(js, orient="records")
    assert np.allclose(gp.read_points(js).geometry.y, frame["y"])
    # a table in UTM 35S: coordinates are reprojected to lon/lat
    utm = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.x, frame.y), crs=4326).to_crs(
        32735
    )
    table = pd.DataFrame({"E": utm.geometry.x, "N": utm.geometry.y})
    back = gp.read_points(table, lon="E", lat="N", crs="EPSG:32735")
    assert np.allclose(back.geometry.x, frame["x"], atol=1e-7) and np.allclose(
        back.geometry.y, frame["y"], atol=1e-7
    )


def test_vector_points_reprojected_and_checked(tmp_path):
    pts = gpd.GeoDataFrame(
        {"id": [1, 2]}, geometry=[shapely.Point(30.0, -2.0), shapely.Point(0, 0)], crs=4326
    )
    with pytest.warns(
        gp.GeopipeWarning, match=r"1 of 2 rows left out \(1 coordinates are \(0, 0\)\)"
    ):
        out = gp.read_points(pts.to_crs(3857))
    assert np.allclose([out.geometry.x.item(), out.geometry.y.item()], [30.0, -2.0])
    polys = gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(GeometryError, match="not points"):
        gp.read_points(polys)


def test_errors(tmp_path):
    with pytest.raises(MissingFileError):
        gp.read_points(tmp_path / "missing.csv")
    no_coords = tmp_path / "nocoords.csv"
    no_coords.write_text("name,value\na,1\n")
    with pytest.raises(MissingColumnError, match="no longitude column.*lon="):
        gp.read_points(no_coords)
    with pytest.raises(MissingColumnError, match="'E'"):
        gp.read_points(no_coords, lon="E", lat="N")
    header_only = tmp_path / "header.csv"
    header_only.write_text("lon,lat\n")
    with pytest.raises(FormatError, match="no rows"):
        gp.read_points(header_only)


def test_drop_personal_columns(tmp_path):
    frame = pd.DataFrame(
        {"lon": [30.0], "lat": [-2.0], "phone": ["+250 788 000 000"], "head_name": ["X"]}
    )
    out = gp.read_points(frame, drop_columns=["phone", "head_name"])
    assert "phone" not in out.columns and "head_name" not in out.columns


def test_delimiters_sniffed(tmp_path):
    frame = pd.DataFrame({"name": ["a", "b"], "lon": [30.1, 29.9], "lat": [-1.9, -2.1]})
    for sep in (";", "\t", "|"):
        path = tmp_path / "pts.csv"
        frame.to_csv(path, index=False, sep=sep)
        out = gp.read_points(path)
        assert out["name"].tolist() == ["a", "b"], sep
        assert np.allclose(out.geometry.x, frame["lon"])
