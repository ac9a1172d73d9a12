"""The DuckDB warehouse: geopipe's tables in one file, with keys and BI views.

``write_duckdb({"dim_admin": admin, "fact_indicator": fact, ...}, "out/run/warehouse.duckdb")``
builds the database in a temporary file next to the target and renames it into place, so a BI
refresh opens the previous warehouse or the new one, never a half-built one.

* Geometry columns become DuckDB ``GEOMETRY`` when the spatial extension loads (offline, by file
  path from the ``duckdb-extension-spatial`` package); otherwise they are stored as WKB ``BLOB``
  and a :class:`~geopipe.errors.GeopipeWarning` says so once. DuckDB 1.5 does not keep a
  GEOMETRY column's CRS in the database file, so the table ``geometry_columns`` records, for every
  geometry column, its storage, CRS (authority code and PROJJSON) and geometry types.
* Keys: ``fact_indicator`` (ucode, indicator_id, date), ``dim_admin`` (ucode), ``dim_indicator``
  (indicator_id), ``fact_lineage`` (run_id, indicator_id, ucode, source_id) get a PRIMARY KEY;
  duplicates or nulls in a key raise :class:`~geopipe.errors.InputError` naming the rows.
* Next to every geometry column ``g``: ``g_wkt`` (WKT text, simplified only where it would reach
  32,000 characters, see :func:`geopipe.io.bi.fit_wkt`) and, after the active geometry, the
  centroid's ``longitude`` / ``latitude`` (EPSG:4326 doubles): Tableau, Superset and Power BI
  read those, not GEOMETRY.
* Views (``views=True``): ``v_indicator_by_admin`` (each value with its unit's name, level,
  parent and the indicator's name, unit and family; ``value`` is NULL where ``suppressed``),
  ``v_indicator_latest`` (latest date per unit and indicator) and ``v_admin`` (``dim_admin``
  without the GEOMETRY column). The views use only DuckDB core functions: plain ``duckdb``
  without geopipe or the extension can query them.
* For BI tools (``views=True``): the tables ``bi_admin``, ``bi_indicator_by_admin`` and
  ``bi_indicator_latest`` (the three views, materialised) and a view ``bi_<table>`` of every
  other geometry table without its GEOMETRY column: nothing a driver maps to binary or leaves
  unmapped.
* Storage format pinned to :data:`STORAGE_VERSION` (``v1.0.0``) so that the DuckDB ODBC and JDBC
  drivers BI tools embed (any release from 1.0 on) can open the file; open it read-only.

Examples
--------
>>> import tempfile, pathlib, pandas as pd, duckdb
>>> dim = pd.DataFrame({"indicator_id": ["population_total"], "name": ["Population"]})
>>> db = write_duckdb({"dim_indicator": dim}, pathlib.Path(tempfile.mkdtemp()) / "w.duckdb")
>>> duckdb.connect(str(db), read_only=True).sql("select name from dim_indicator").fetchall()
[('Population',)]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import shapely

from geopipe.errors import GeopipeWarning, InputError, MissingColumnError, OutputError, problem
from geopipe.io.atomic import atomic_path
from geopipe.io.geoparquet import _frame_to_table, _geometry_types

__all__ = [
    "DEFAULT_KEYS",
    "MEMORY_LIMIT",
    "STORAGE_VERSION",
    "TableParts",
    "WarehouseBuilder",
    "load_spatial",
    "spatial_extension_path",
    "write_duckdb",
]

DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "dim_admin": ("ucode",),
    "dim_indicator": ("indicator_id",),
    "fact_indicator": ("ucode", "indicator_id", "date"),
    "fact_lineage": ("run_id", "indicator_id", "ucode", "source_id"),
}
STORAGE_VERSION = "v1.0.0"
# DuckDB's buffer pool defaults to 80 % of the machine's memory and keeps every page loaded until
# the file is closed, so a warehouse of many countries would hold all of them at once; bounded,
# pages already written to the file are evicted (the file is the same, measured in
# tests/test_warehouse.py)
MEMORY_LIMIT = "256MB"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, GeopipeWarning, stacklevel=3)


def _q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def spatial_extension_path() -> Path | None:
    """Path of the spatial extension shipped by ``duckdb-extension-spatial``, or None.

    Prefers the folder matching the installed ``duckdb`` version.

    Examples
    --------
    >>> p = spatial_extension_path()
    >>> p is None or p.name == "spatial.duckdb_extension"
    True
    """
    try:
        import duckdb_extension_spatial
    except ImportError:
        return None
    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    exact = base / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(base.glob("*/spatial.duckdb_extension"))
    return found[-1] if found else None


def _spatial_loaded(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "select loaded from duckdb_extensions() where extension_name = 'spatial'"
    ).fetchone()
    return bool(row and row[0])


def load_spatial(con: duckdb.DuckDBPyConnection) -> bool:
    """Load DuckDB's spatial extension offline, by file path; False (and one warning) if it fails.

    Never runs ``INSTALL spatial``: the extension comes from the ``duckdb-extension-spatial``
    package, whose version must equal duckdb's. Automatic extension downloads are switched off on
    ``con`` so that nothing touches the network.

    Parameters
    ----------
    con
        An open DuckDB connection.

    Returns
    -------
    bool
        True when the extension is loaded on ``con``.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> load_spatial(con) in (True, False)
    True
    """
    con.execute("SET autoinstall_known_extensions = false")
    if _spatial_loaded(con):
        return True
    path = spatial_extension_path()
    if path is None:
        _warn_once(
            "spatial",
            problem(
                "DuckDB spatial extension",
                "is not available (package duckdb-extension-spatial not installed)",
                f"pip install duckdb-extension-spatial=={duckdb.__version__}; until then "
                "geometry is stored as WKB BLOB",
                where="load_spatial",
            ),
        )
        return False
    try:
        con.execute("LOAD '" + str(path).replace("'", "''") + "'")
    except duckdb.Error as exc:
        _warn_once(
            "spatial",
            problem(
                f"DuckDB spatial extension '{path}'",
                f"could not be loaded ({exc})",
                f"install duckdb-extension-spatial=={duckdb.__version__} (same version as "
                "duckdb); until then geometry is stored as WKB BLOB",
                where="load_spatial",
            ),
        )
        return False
    return True


def _geometry_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(df[c].dtype, gpd.array.GeometryDtype)]


def _has_geometry(df: pd.DataFrame | TableParts) -> bool:
    return df.geometry if isinstance(df, TableParts) else bool(_geometry_columns(df))


def _text_columns(df: pd.DataFrame, geoms: list[str]) -> dict[str, list[tuple[str, pa.Array]]]:
    """Per geometry column, the BI columns that follow it: ``<g>_wkt`` and, after the active
    geometry, centroid ``longitude``/``latitude`` in EPSG:4326 (skipped if already present)."""
    from geopipe.io.bi import fit_wkt

    active = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else geoms[0]
    out: dict[str, list[tuple[str, pa.Array]]] = {}
    for g in geoms:
        series = gpd.GeoSeries(df[g])
        cols = [(f"{g}_wkt", pa.array(fit_wkt(series.to_numpy())[0], pa.string()))]
        if g == active and not {"longitude", "latitude"} & set(df.columns):
            # centroid in the data's own coordinates (degrees for EPSG:4326, as on a map)
            centre = gpd.GeoSeries(shapely.centroid(series.to_numpy()), crs=series.crs)
            centre = centre if series.crs is None else centre.to_crs(4326)
            cols += [
                ("longitude", pa.array(shapely.get_x(centre.to_numpy()), pa.float64())),
                ("latitude", pa.array(shapely.get_y(centre.to_numpy()), pa.float64())),
            ]
        out[g] = [(n, a) for n, a in cols if n not in df.columns]
    return out


def _to_arrow(name: str, df: pd.DataFrame) -> tuple[pa.Table, list[str]]:
    where = f"write_duckdb table '{name}'"
    geoms = _geometry_columns(df)
    plain = pd.DataFrame(df.drop(columns=geoms)) if geoms else df
    if geoms:
        plain = plain.assign(**{g: 0 for g in geoms})[list(df.columns)]
    table = _frame_to_table(plain, where)
    if not geoms:
        return table, geoms
    extra = _text_columns(df, geoms)
    for g in geoms:
        wkb = shapely.to_wkb(df[g].to_numpy(), flavor="iso", byte_order=1)
        i = table.schema.get_field_index(g)
        table = table.set_column(i, g, pa.array(wkb, pa.binary()))
        for k, (col, values) in enumerate(extra[g], start=1):
            table = table.add_column(i + k, col, values)
    return table, geoms


def _crs_record(series: gpd.GeoSeries) -> tuple[str | None, str | None]:
    crs = series.crs
    if crs is None:
        return None, None
    auth = crs.to_authority()
    code = f"{auth[0]}:{auth[1]}" if auth else None
    return code, json.dumps(crs.to_json_dict(), sort_keys=True)


def _check_key(con: duckdb.DuckDBPyConnection, name: str, key: Sequence[str]) -> None:
    where = "write_duckdb"
    cols = ", ".join(_q(k) for k in key)
    null = " OR ".join(f"{_q(k)} IS NULL" for k in key)
    n_null = con.execute(f"SELECT count(*) FROM {_q(name)} WHERE {null}").fetchone()[0]
    if n_null:
        raise InputError(
            problem(
                f"table '{name}' key ({', '.join(key)})",
                f"is null in {n_null} rows",
                "fill the key columns (e.g. the run's reference date) or pass keys= without them",
                where=where,
            )
        )
    dups = con.execute(
        f"SELECT {cols}, count(*) AS n FROM {_q(name)} GROUP BY ALL HAVING n > 1 "
        f"ORDER BY n DESC, {cols} LIMIT 3"
    ).fetchall()
    if dups:
        raise InputError(
            problem(
                f"table '{name}' key ({', '.join(key)})",
                f"is not unique, e.g. {[tuple(map(str, d[:-1])) for d in dups]} repeat",
                "drop or aggregate the duplicate rows before writing",
                where=where,
            )
        )
    con.execute(f"ALTER TABLE {_q(name)} ADD PRIMARY KEY ({cols})")


@dataclasses.dataclass(frozen=True)
class TableParts:
    """A table given as files read one at a time (a multi-country warehouse's countries), so
    that :func:`write_duckdb` holds one part in memory, not the whole table.

    Examples
    --------
    >>> TableParts(("out/XXA/adm1.parquet", "out/XXB/adm1.parquet"), geometry=True)  # doctest: +SKIP
    """

    paths: tuple[str | os.PathLike[str], ...]
    geometry: bool = False

    def __iter__(self) -> Iterator[pd.DataFrame]:
        from geopipe.io.geoparquet import read_geoparquet

        for path in self.paths:
            yield read_geoparquet(path) if self.geometry else pd.read_parquet(path)

    @property
    def columns(self) -> list[str]:
        """The columns of every part, in order of first appearance."""
        import pyarrow.parquet as pq

        seen: dict[str, None] = {}
        for path in self.paths:
            seen.update(dict.fromkeys(pq.read_schema(path).names))
        return [c for c in seen if c != "bbox" or not self.geometry]


def _load_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    df: pd.DataFrame | TableParts,
    spatial: bool,
    append: bool = False,
) -> list[tuple[Any, ...]]:
    """Create table ``name`` from ``df`` (or from each part of it in turn, by column name);
    ``append``: the table exists, the rows are added to it."""
    records: dict[str, list[Any]] = {}
    for k, part in enumerate(df if isinstance(df, TableParts) else (df,), start=int(append)):
        table, geoms = _to_arrow(name, part)
        con.register("_geopipe_src", table)
        try:
            select = ", ".join(
                (f"ST_GeomFromWKB({_q(c)}) AS {_q(c)}" if c in geoms and spatial else _q(c))
                for c in table.column_names
            )
            if k == 0:
                con.execute(f"CREATE TABLE {_q(name)} AS SELECT {select} FROM _geopipe_src")
            else:  # a part may lack columns (NULL there) or bring new ones
                have = set(_columns(con, name))
                for col, kind in con.execute(
                    f"SELECT column_name, column_type FROM (DESCRIBE SELECT {select} FROM _geopipe_src)"
                ).fetchall():
                    if col not in have:
                        con.execute(f"ALTER TABLE {_q(name)} ADD COLUMN {_q(col)} {kind}")
                con.execute(f"INSERT INTO {_q(name)} BY NAME SELECT {select} FROM _geopipe_src")
        finally:
            con.unregister("_geopipe_src")
        for g in geoms:
            code, projjson = _crs_record(part[g])
            types = _geometry_types(part[g].to_numpy())
            rec = records.setdefault(
                g, [name, g, "GEOMETRY" if spatial else "WKB BLOB", code, projjson, []]
            )
            rec[5] = sorted({*rec[5], *types})
    return [tuple(r) for r in records.values()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def _create_views(con: duckdb.DuckDBPyConnection, names: set[str], spatial: bool) -> None:
    if "dim_admin" in names:
        cols = _columns(con, "dim_admin")
        geo = set(
            r[0]
            for r in con.execute(
                "SELECT column_name FROM geometry_columns WHERE table_name = 'dim_admin'"
            ).fetchall()
        )
        items = [_q(c) for c in cols if c not in geo]
        con.execute(f"CREATE VIEW v_admin AS SELECT {', '.join(items)} FROM dim_admin")
    if not {"fact_indicator", "dim_admin", "dim_indicator"} <= names:
        return
    fact, adm, ind = (
        set(_columns(con, t)) for t in ("fact_indicator", "dim_admin", "dim_indicator")
    )

    def pick(alias: str, have: set[str], col: str, as_: str | None = None) -> str:
        expr = f"{alias}.{_q(col)}" if col in have else "NULL"
        return f"{expr} AS {_q(as_ or col)}"

    level = "f.admin_level" if "admin_level" in fact else "a.admin_level"
    unit = (
        "coalesce(f.unit, i.unit)"
        if "unit" in fact and "unit" in ind
        else ("f.unit" if "unit" in fact else ("i.unit" if "unit" in ind else "NULL"))
    )
    parent_join = (
        "LEFT JOIN dim_admin p ON p.ucode = a.parent_ucode" if "parent_ucode" in adm else ""
    )
    items = [
        pick("a", adm, "iso3"),
        "f.ucode AS ucode",
        pick("a", adm, "name", "admin_name"),
        f"{level} AS admin_level",
        pick("a", adm, "parent_ucode"),
        (pick("p", adm, "name", "parent_name") if parent_join else "NULL AS parent_name"),
        "f.indicator_id AS indicator_id",
        pick("i", ind, "name", "indicator_name"),
        pick("i", ind, "family"),
        f"{unit} AS unit",
        pick("f", fact, "date"),
        # a suppressed value never reaches a BI user
        (
            "CASE WHEN f.suppressed THEN NULL ELSE f.value END AS value"
            if "suppressed" in fact and "value" in fact
            else pick("f", fact, "value")
        ),
        pick("f", fact, "suppressed"),
    ]
    con.execute(
        "CREATE VIEW v_indicator_by_admin AS SELECT "
        + ", ".join(items)
        + " FROM fact_indicator f LEFT JOIN dim_admin a ON a.ucode = f.ucode "
        + parent_join
        + " LEFT JOIN dim_indicator i ON i.indicator_id = f.indicator_id"
    )
    con.execute(
        "CREATE VIEW v_indicator_latest AS SELECT * FROM v_indicator_by_admin QUALIFY "
        "row_number() OVER (PARTITION BY ucode, indicator_id ORDER BY date DESC) = 1"
    )


def _create_bi_objects(con: duckdb.DuckDBPyConnection, names: set[str]) -> None:
    """``bi_*``: what BI tools read, without GEOMETRY, BLOB, STRUCT or MAP columns.

    The three objects a BI model is built on are materialised tables (a refresh reads stored rows,
    no join): ``bi_admin`` (= ``v_admin``), ``bi_indicator_by_admin`` and ``bi_indicator_latest``.
    Every other geometry table ``T`` gets a view ``bi_T`` of its other columns (a plain projection;
    materialising it would store each wide table twice).
    """
    sql = "SELECT view_name FROM duckdb_views() WHERE NOT internal"
    views = {r[0] for r in con.execute(sql).fetchall()}
    for view in ("v_admin", "v_indicator_by_admin", "v_indicator_latest"):
        if view in views:
            con.execute(f"CREATE TABLE {_q('bi_' + view[2:])} AS SELECT * FROM {_q(view)}")
    geo: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM geometry_columns"
    ).fetchall():
        geo.setdefault(table, set()).add(column)
    for table in sorted(geo):
        if table == "dim_admin" or table not in names:
            continue
        cols = ", ".join(_q(c) for c in _columns(con, table) if c not in geo[table])
        con.execute(f"CREATE VIEW {_q('bi_' + table)} AS SELECT {cols} FROM {_q(table)}")


def write_duckdb(
    tables: Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    *,
    views: bool = True,
    keys: Mapping[str, Sequence[str]] | None = None,
    spatial: bool = True,
    storage_version: str = STORAGE_VERSION,
    memory_limit: str = MEMORY_LIMIT,
) -> Path:
    """Write tables into a new DuckDB database file, atomically, with keys and BI views.

    Parameters
    ----------
    tables
        Table name -> DataFrame, GeoDataFrame or :class:`TableParts` (files loaded one at a
        time and appended by column name). Names must be SQL identifiers
        (letters, digits, underscore). Usual names: ``dim_admin``, ``dim_indicator``,
        ``fact_indicator``, ``fact_lineage``, ``adm1`` ..., ``h3_r7`` ...
    path
        The database file to create or replace (folder must exist).
    views
        Create ``v_admin``, ``v_indicator_by_admin`` and ``v_indicator_latest`` where their tables
        are present.
    keys
        Primary keys per table; merged over :data:`DEFAULT_KEYS` (a table mapped to ``()`` gets no
        key). Keys of tables not in ``tables`` are ignored.
    spatial
        Store geometry as ``GEOMETRY`` via the spatial extension (default). ``False``, or an
        extension that cannot load, stores WKB ``BLOB`` and warns once.
    storage_version
        DuckDB storage format of the file (default :data:`STORAGE_VERSION`, ``"v1.0.0"``: read by
        every DuckDB, ODBC and JDBC driver from 1.0 on; a newer format locks older drivers out).
    memory_limit
        DuckDB's ``memory_limit`` while the file is built (default :data:`MEMORY_LIMIT`,
        256 MB): what is loaded beyond it is written to the file and evicted, so the memory
        this takes does not grow with the warehouse.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        A table name is not an identifier, a value is not a DataFrame, or a key is null/duplicated.
    MissingColumnError
        A key column is missing from its table.
    OutputError
        The folder does not exist.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> fact = pd.DataFrame({"ucode": ["RWA_V1"], "indicator_id": ["population_total"],
    ...                      "date": [pd.Timestamp("2024-01-01")], "value": [13.2e6]})
    >>> p = write_duckdb({"fact_indicator": fact}, pathlib.Path(tempfile.mkdtemp()) / "w.duckdb")
    >>> p.name
    'w.duckdb'
    """
    where = "write_duckdb"
    bad = [n for n in tables if not isinstance(n, str) or not _IDENT.match(n)]
    if bad:
        raise InputError(
            problem(
                f"table names {bad}",
                "are not SQL identifiers",
                "use letters, digits and underscores, not starting with a digit",
                where=where,
            )
        )
    for n, df in tables.items():
        if not isinstance(df, pd.DataFrame | TableParts):
            raise InputError(
                problem(
                    f"tables['{n}']", f"is a {type(df).__name__}", "pass a DataFrame", where=where
                )
            )
    all_keys = {**DEFAULT_KEYS, **{k: tuple(v) for k, v in (keys or {}).items()}}
    for n, key in all_keys.items():
        if n in tables and key:
            missing = [k for k in key if k not in tables[n].columns]
            if missing:
                raise MissingColumnError(
                    problem(
                        f"table '{n}'",
                        f"has no key columns {missing}",
                        f"add them or pass keys={{'{n}': (...)}}",
                        where=where,
                    )
                )
    geo_tables = sorted(n for n, df in tables.items() if _has_geometry(df))
    builder = WarehouseBuilder(
        path,
        geometry_tables=geo_tables,
        spatial=spatial,
        storage_version=storage_version,
        memory_limit=memory_limit,
    )
    for name in sorted(tables):
        builder.add(name, tables[name])
    return builder.finish(keys=keys, views=views)


class WarehouseBuilder:
    """A warehouse built a table or a part at a time, then finished (what :func:`write_duckdb`
    does in one call): a multi-country run loads each country as soon as it is computed, while
    the others still are, instead of loading every country after the last one.

    The file is built at a temporary path next to ``path`` and renamed onto it by
    :meth:`finish`; :meth:`abort` (or an error) removes it. ``geometry_tables`` names the tables
    with geometry (the spatial extension is loaded for them; without it they are stored as WKB
    BLOB, with a warning). The other parameters are :func:`write_duckdb`'s.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> fact = pd.DataFrame({"ucode": ["A", "B"], "indicator_id": ["x", "x"],
    ...                      "date": [pd.Timestamp("2024-01-01")] * 2, "value": [1.0, 2.0]})
    >>> b = WarehouseBuilder(pathlib.Path(tempfile.mkdtemp()) / "w.duckdb")
    >>> b.add("fact_indicator", fact.iloc[:1])
    >>> b.add("fact_indicator", fact.iloc[1:])  # appended, by column name
    >>> b.finish().name
    'w.duckdb'
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        geometry_tables: Sequence[str] = (),
        spatial: bool = True,
        storage_version: str = STORAGE_VERSION,
        memory_limit: str = MEMORY_LIMIT,
    ) -> None:
        self.path = Path(path)
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._config = {
            "storage_compatibility_version": storage_version,
            "memory_limit": memory_limit,
        }
        self._live, self._con = True, None
        self._records: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._tables: dict[str, None] = {}
        self.spatial = bool(spatial and geometry_tables)
        self._guarded(self._start, list(geometry_tables), spatial)

    def _start(self, geo_tables: list[str], spatial: bool) -> None:
        self._connection()  # loads the extension, or finds it cannot be loaded
        if geo_tables and not self.spatial:
            _warn_once(
                "blob",
                problem(
                    f"geometry in {geo_tables}",
                    "is stored as WKB BLOB, not GEOMETRY (spatial extension "
                    + ("switched off" if not spatial else "not loaded")
                    + ")",
                    "query it with ST_GeomFromWKB(geometry) once the extension is loaded",
                    where="write_duckdb",
                ),
            )

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if not self._live:
            raise OutputError(
                problem(f"warehouse '{self.path}'", "is finished or aborted", "start a new one")
            )
        if self._con is None:
            self._con = duckdb.connect(str(self._tmp), config=self._config)
            self._con.execute("SET autoinstall_known_extensions = false")
            self.spatial = bool(self.spatial and load_spatial(self._con))
        return self._con

    def suspend(self) -> None:
        """Close the database until the next :meth:`add` (what is loaded is in the file): its
        buffer pool and the spatial extension are not held between a multi-country run's
        countries (about 650 MB on the 10,000² synthetic countries)."""
        con, self._con = self._con, None
        if con is not None:
            self._guarded(con.close)

    def _guarded(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)``; on any error the temporary file is removed and a DuckDB error becomes
        an :class:`~geopipe.errors.OutputError`."""
        try:
            return fn(*args)
        except duckdb.Error as exc:
            self.abort()
            raise OutputError(
                problem(
                    f"'{self.path}'",
                    f"could not be built ({exc})",
                    "see the DuckDB error above",
                    where="write_duckdb",
                )
            ) from exc
        except BaseException:
            self.abort()
            raise

    def add(self, name: str, df: pd.DataFrame | TableParts) -> None:
        """Load ``df`` (a DataFrame, GeoDataFrame or :class:`TableParts`) into table ``name``:
        created by the first call, appended to (by column name) by the next ones."""
        self._guarded(self._add, name, df)

    def _add(self, name: str, df: pd.DataFrame | TableParts) -> None:
        con = self._connection()
        for rec in _load_table(con, name, df, self.spatial, append=name in self._tables):
            old = self._records.get((rec[0], rec[1]))
            types = sorted({*rec[5], *(old[5] if old else ())})
            self._records[(rec[0], rec[1])] = (*rec[:5], types)
        self._tables[name] = None

    def finish(
        self, keys: Mapping[str, Sequence[str]] | None = None, *, views: bool = True
    ) -> Path:
        """Keys (merged over :data:`DEFAULT_KEYS`), ``geometry_columns``, views and BI objects;
        then the file is renamed onto ``path``, which is returned. Raises
        :class:`~geopipe.errors.MissingColumnError` for a key column a table lacks and
        :class:`~geopipe.errors.InputError` for a null or duplicated key."""
        self._guarded(self._finish, keys, views)
        self._live, self._con = False, None
        self._stack.close()  # the temporary file renamed onto path
        return self.path

    def _finish(self, keys: Mapping[str, Sequence[str]] | None, views: bool) -> None:
        con = self._connection()
        all_keys = {**DEFAULT_KEYS, **{k: tuple(v) for k, v in (keys or {}).items()}}
        for name in sorted(self._tables):
            key = all_keys.get(name)
            if not key:
                continue
            missing = [k for k in key if k not in _columns(con, name)]
            if missing:
                raise MissingColumnError(
                    problem(
                        f"table '{name}'",
                        f"has no key columns {missing}",
                        f"add them or pass keys={{'{name}': (...)}}",
                        where="write_duckdb",
                    )
                )
            _check_key(con, name, key)
        con.execute(
            "CREATE TABLE geometry_columns (table_name VARCHAR, column_name VARCHAR, "
            "storage VARCHAR, crs VARCHAR, crs_projjson VARCHAR, geometry_types VARCHAR[], "
            "PRIMARY KEY (table_name, column_name))"
        )
        if self._records:
            con.executemany(
                "INSERT INTO geometry_columns VALUES (?, ?, ?, ?, ?, ?)",
                [self._records[k] for k in sorted(self._records)],
            )
        if views:
            _create_views(con, set(self._tables), self.spatial)
            _create_bi_objects(con, set(self._tables))
        con.execute("CHECKPOINT")
        con.close()

    def abort(self) -> None:
        """Drop the warehouse being built: the temporary file is removed, ``path`` untouched."""
        con, self._con, self._live = self._con, None, False
        if con is not None:
            con.close()
        with contextlib.suppress(OutputError):
            self._stack.__exit__(OutputError, OutputError("aborted"), None)
