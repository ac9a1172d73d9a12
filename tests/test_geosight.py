"""GeoSight CSV export, read back with the csv module."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geopipe.errors import InputError, MissingColumnError
from geopipe.io.geosight import write_geosight


@pytest.fixture
def fact() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ucode": ["RWA_V1", "RWA_0001_V1", "RWA_0001_0001_V1", "RWA_0002_V1"],
            "admin_level": [0, 1, 2, 1],
            "indicator_id": ["population_u18", "child_poverty_rate", "schools_total", "x"],
            "date": [
                pd.Timestamp("2024-01-01"),
                pd.Timestamp("2024-02-01 00:00"),
                pd.Timestamp("2024-03-01"),
                pd.Timestamp("2024-03-01"),
            ],
            "value": [6_512_345.5, 0.3821, 3.0, np.nan],
            "unit": ["people", "share", "count", "x"],
            "suppressed": [False, False, True, False],
        }
    )


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_columns_values_and_suppression(tmp_path: Path, fact: pd.DataFrame) -> None:
    path = write_geosight(fact, tmp_path / "geosight.csv")
    rows = _read(path)
    assert list(rows[0]) == ["geom_id", "indicator_shortcode", "date", "value", "admin_level"]
    assert [r["geom_id"] for r in rows] == fact["ucode"].tolist()
    assert [r["indicator_shortcode"] for r in rows] == fact["indicator_id"].tolist()
    assert [r["date"] for r in rows] == [d.strftime("%Y-%m-%d") for d in fact["date"]]
    assert [r["admin_level"] for r in rows] == [str(v) for v in fact["admin_level"]]
    # suppressed and missing values are left empty; others round-trip exactly
    assert rows[2]["value"] == "" and rows[3]["value"] == ""
    assert float(rows[0]["value"]) == fact["value"][0]
    assert float(rows[1]["value"]) == fact["value"][1]
    assert b"\r\n" not in path.read_bytes()


def test_string_and_date_objects_are_normalised(tmp_path: Path, fact: pd.DataFrame) -> None:
    f = fact.assign(date=["2024-01-01", "2024-02-01", "2024-03-01", "2024-03-01"])
    a = write_geosight(f, tmp_path / "a.csv")
    g = fact.assign(date=fact["date"].dt.date)
    b = write_geosight(g, tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes() == write_geosight(fact, tmp_path / "c.csv").read_bytes()


def test_errors(tmp_path: Path, fact: pd.DataFrame) -> None:
    with pytest.raises(MissingColumnError, match=r"\['date', 'admin_level'\]"):
        write_geosight(fact.drop(columns=["admin_level", "date"]), tmp_path / "g.csv")
    with pytest.raises(InputError, match="not dates"):
        write_geosight(fact.assign(date="soon"), tmp_path / "g.csv")
    with pytest.raises(InputError, match="admin_level"):
        write_geosight(fact.assign(admin_level=1.5), tmp_path / "g.csv")
    assert not (tmp_path / "g.csv").exists()
