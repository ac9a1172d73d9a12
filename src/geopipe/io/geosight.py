"""GeoSight export: the long indicator rows in GeoSight's CSV import form.

GeoSight (UNICEF's indicator platform on GeoRepo boundaries) imports indicator values as rows of
``geom_id`` (the GeoRepo ucode), ``indicator_shortcode``, ``date`` (YYYY-MM-DD), ``value`` and
``admin_level``. :func:`write_geosight` maps ``fact_indicator`` onto exactly that, leaves the value
empty where ``suppressed`` is true, and writes the CSV atomically (UTF-8, ``\\n`` line ends).

Examples
--------
>>> import tempfile, pathlib, pandas as pd
>>> fact = pd.DataFrame({"ucode": ["RWA_0001_V1"], "admin_level": [1],
...                      "indicator_id": ["population_total"], "date": ["2024-01-01"],
...                      "value": [1132686.0]})
>>> p = write_geosight(fact, pathlib.Path(tempfile.mkdtemp()) / "geosight.csv")
>>> print(p.read_text(), end="")
geom_id,indicator_shortcode,date,value,admin_level
RWA_0001_V1,population_total,2024-01-01,1132686.0,1
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from geopipe.errors import InputError, MissingColumnError, problem
from geopipe.io.atomic import atomic_path

__all__ = ["GEOSIGHT_COLUMNS", "to_geosight", "write_geosight"]

#: GeoSight import column -> fact_indicator column
GEOSIGHT_COLUMNS: dict[str, str] = {
    "geom_id": "ucode",
    "indicator_shortcode": "indicator_id",
    "date": "date",
    "value": "value",
    "admin_level": "admin_level",
}


def to_geosight(fact: pd.DataFrame) -> pd.DataFrame:
    """Return ``fact_indicator`` rows renamed and formatted for GeoSight (no I/O).

    Parameters
    ----------
    fact
        Long indicator table with ``ucode, admin_level, indicator_id, date, value`` and optionally
        ``suppressed`` (bool; true rows keep an empty value).

    Returns
    -------
    pandas.DataFrame
        Columns ``geom_id, indicator_shortcode, date, value, admin_level``; ``date`` as
        YYYY-MM-DD text, ``value`` float (NA where suppressed), ``admin_level`` integer.

    Raises
    ------
    MissingColumnError
        Required columns are absent (all of them are listed).
    InputError
        A date cannot be read or ``admin_level`` is not an integer.

    Examples
    --------
    >>> import pandas as pd
    >>> fact = pd.DataFrame({"ucode": ["A_V1"], "admin_level": [1], "indicator_id": ["x"],
    ...                      "date": [pd.Timestamp("2024-03-01")], "value": [2.5],
    ...                      "suppressed": [True]})
    >>> to_geosight(fact).value.isna().tolist()
    [True]
    """
    where = "write_geosight"
    missing = [c for c in GEOSIGHT_COLUMNS.values() if c not in fact.columns]
    if missing:
        raise MissingColumnError(
            problem(
                f"fact table columns {missing}",
                "are missing",
                "pass the fact_indicator table (ucode, admin_level, indicator_id, date, value)",
                where=where,
            )
        )
    try:
        dates = pd.to_datetime(fact["date"], format="mixed")
    except (ValueError, TypeError) as exc:
        raise InputError(
            problem(
                "column 'date'",
                f"has values that are not dates ({exc})",
                "use YYYY-MM-DD dates",
                where=where,
            )
        ) from exc
    if dates.isna().any():
        raise InputError(
            problem(
                "column 'date'",
                f"is empty in {int(dates.isna().sum())} rows",
                "give every value a date (GeoSight requires one)",
                where=where,
            )
        )
    value = pd.to_numeric(fact["value"], errors="coerce").astype("Float64")
    if "suppressed" in fact.columns:
        value = value.mask(fact["suppressed"].fillna(False).astype(bool).to_numpy())
    level = pd.to_numeric(fact["admin_level"], errors="coerce")
    if level.isna().any() or (level.dropna() % 1 != 0).any():
        raise InputError(
            problem(
                "column 'admin_level'",
                "has missing or non-integer values",
                "use 0 for countries, 1, 2, ... below",
                where=where,
            )
        )
    return pd.DataFrame(
        {
            "geom_id": fact["ucode"].astype("string").to_numpy(),
            "indicator_shortcode": fact["indicator_id"].astype("string").to_numpy(),
            "date": dates.dt.strftime("%Y-%m-%d").to_numpy(),
            "value": value.to_numpy(),
            "admin_level": level.astype("Int64").to_numpy(),
        }
    )


def write_geosight(fact: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``fact_indicator`` as a GeoSight import CSV, atomically.

    Parameters
    ----------
    fact
        The long indicator table (see :func:`to_geosight`).
    path
        Output CSV; its folder must exist. Replaced atomically.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> fact = pd.DataFrame({"ucode": ["A_V1"], "admin_level": [0], "indicator_id": ["x"],
    ...                      "date": ["2024-01-01"], "value": [1.0], "suppressed": [True]})
    >>> p = write_geosight(fact, pathlib.Path(tempfile.mkdtemp()) / "g.csv")
    >>> p.read_text().splitlines()[1]
    'A_V1,x,2024-01-01,,0'
    """
    rows = to_geosight(fact)
    path = Path(path)
    with atomic_path(path) as tmp:
        rows.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8", na_rep="")
    return path
