"""gp.dhis2 against a DHIS2-shaped server on 127.0.0.1; org-unit matching against a known truth."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import math
import warnings

import pandas as pd
import pytest
import shapely

import geopipe as gp
from geopipe.errors import FormatError, GeopipeWarning, InputError, RemoteAuthError, RemoteError
from remote_server import LocalServer, Reply, Request

PAT = "d2pat_SECRETsecret0123456789abcdef"
PASSWORD = "district-Secret-pw-42"
FAST = {"retries": 3, "backoff": 0.001}


@pytest.fixture()
def admin(testdata):
    d = testdata / "admin"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        return gp.read_admin(
            {0: d / "georepo_api.json", 1: d / "georepo_api.json", 2: d / "georepo_export.geojson"},
            valid_on="2021-01-01",
        )


def _org_units(admin) -> tuple[list[dict], dict[str, tuple[str, str]]]:
    """DHIS2 org units built from dim_admin, each with the ucode and match method it must get."""
    units: list[dict] = []
    truth: dict[str, tuple[str, str]] = {}
    ids = {u: f"ou{i:09d}" for i, u in enumerate(admin["ucode"])}
    for i, row in enumerate(admin.itertuples()):
        oid = ids[row.ucode]
        parent = ids.get(row.parent_ucode)
        path = "/" + oid if parent is None else None
        unit = {"id": oid, "name": row.name, "code": row.pcode, "level": row.admin_level + 1}
        method = "code"
        geom = None
        if row.admin_level == 1 and row.name.startswith("Southern"):
            unit["code"], unit["name"], method = None, "  SOUTHERN province ", "name"
        elif row.admin_level == 1 and row.name.startswith("Western"):
            unit["code"], unit["name"], method = "XX99", "Ouest", "spatial"
            geom = shapely.buffer(row.geometry, -0.01)  # mostly inside Western
        elif row.admin_level == 2 and i % 5 == 0:
            unit["code"], method = None, "name"
            unit["name"] = row.name.upper().replace("A", "Á")  # accents and case differ
        elif row.admin_level == 2 and i % 7 == 0:
            unit["code"], unit["name"], method = None, f"HF zone {i}", "spatial"
            geom = row.geometry.representative_point()
        if geom is not None:
            unit["geometry"] = json.loads(shapely.to_geojson(geom))
        if parent is not None:
            unit["parent"] = {"id": parent}
        unit["_parent_ucode"] = row.parent_ucode
        unit["path"] = path
        units.append(unit)
        truth[oid] = (row.ucode, method)
    by_id = {u["id"]: u for u in units}
    for u in units:  # DHIS2 paths: /<top id>/.../<own id>
        chain, cur = [u["id"]], u
        while "parent" in cur:
            cur = by_id[cur["parent"]["id"]]
            chain.append(cur["id"])
        u["path"] = "/" + "/".join(reversed(chain))
        u.pop("_parent_ucode")
    units.append({"id": "ouORPHAN001", "name": "Nowhere", "level": 3, "path": "/x/y/ouORPHAN001",
                  "parent": {"id": "ouUNKNOWN01"}})  # fmt: skip
    truth["ouORPHAN001"] = (None, "unmatched")
    return units, truth


def _auth_ok(req: Request) -> bool:
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    return req.headers.get("Authorization") in (f"ApiToken {PAT}", f"Basic {basic}")


class Dhis2App:
    def __init__(self, units: list[dict], values=None, row_cap: int = 50_000) -> None:
        self.units = units
        self.values = values or {}
        self.row_cap = row_cap

    def __call__(self, req: Request) -> Reply:
        if not _auth_ok(req):  # echoes what it got, as some proxies do
            got = req.headers.get("Authorization")
            return Reply(401, {"httpStatusCode": 401, "message": f"Unauthorized: {got}"})
        if req.path == "/api/organisationUnits":
            return self.org_units(req)
        if req.path == "/api/analytics.json":
            return self.analytics(req)
        return Reply(404, {"message": "not found"})

    def org_units(self, req: Request) -> Reply:
        size = int(req.arg("pageSize", "50"))
        rows = self.units
        if req.arg("filter"):
            wanted = json.loads(req.arg("filter").split(":in:")[1])
            rows = [u for u in rows if u["level"] in wanted]
        count = max(1, math.ceil(len(rows) / size))
        page = min(int(req.arg("page", "1")), count)  # past the end: the last page again
        pager = {"page": page, "pageCount": count, "total": len(rows), "pageSize": size}
        return Reply(
            200, {"pager": pager, "organisationUnits": rows[(page - 1) * size : page * size]}
        )

    def analytics(self, req: Request) -> Reply:
        dims = dict(d.split(":", 1) for d in req.query["dimension"])
        if "pe" not in dims:
            return Reply(409, {"httpStatusCode": 409, "status": "ERROR", "errorCode": "E7104",
                               "message": "At least one period must be specified as dimension"})  # fmt: skip
        combos = list(itertools.product(*(dims[k].split(";") for k in ("dx", "ou", "pe"))))
        if len(combos) > self.row_cap:
            return Reply(409, {"httpStatusCode": 409, "status": "ERROR", "errorCode": "E7131",
                               "message": f"Query result set exceeded max limit: `{self.row_cap}`"})  # fmt: skip
        rows = [[dx, ou, pe, self.values.get((dx, ou, pe), "")] for dx, ou, pe in combos]
        headers = [
            {"name": n, "column": n, "valueType": "TEXT"} for n in ("dx", "ou", "pe", "value")
        ]
        items = {ou: {"name": f"Unit {ou}"} for _, ou, _ in combos}
        return Reply(200, {"headers": headers, "rows": rows, "metaData": {"items": items}})


@pytest.fixture()
def pat(monkeypatch):
    monkeypatch.setenv("DHIS2_TOKEN", PAT)


def test_org_units_paged_levels_and_repeated_last_page(admin, pat):
    units, _ = _org_units(admin)
    app = Dhis2App(units)
    with LocalServer(app) as srv, pytest.warns(GeopipeWarning, match="have no geometry"):
        ou = gp.dhis2.read_org_units(srv.url, page_size=4, **FAST)
    assert len(ou) == len(units) and ou["id"].is_unique
    asked = [int(r.arg("page")) for r in srv.requests]
    assert asked == list(range(1, math.ceil(len(units) / 4) + 1))
    # level comes from the path, parents from parent[id]
    expected = {u["id"]: u["path"].count("/") for u in units}
    assert ou.set_index("id")["level"].to_dict() == expected
    assert ou.geometry.isna().sum() == sum("geometry" not in u for u in units)
    assert set(ou.geometry.dropna().geom_type) == {"Polygon", "Point"}
    assert ou.attrs["geopipe"]["without_geometry"] == int(ou.geometry.isna().sum())


def test_stale_page_count_does_not_duplicate(admin, pat):
    """A server whose pageCount overstates the pages answers the extra pages with the last one."""
    units, _ = _org_units(admin)

    class Stale(Dhis2App):
        def org_units(self, req):
            reply = super().org_units(req)
            reply.body["pager"]["pageCount"] += 3
            reply.body["pager"]["page"] = min(
                int(req.arg("page")), reply.body["pager"]["pageCount"] - 3
            )
            return reply

    with LocalServer(Stale(units)) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        ou = gp.dhis2.read_org_units(srv.url, page_size=10, **FAST)
    assert len(ou) == len(units)
    assert len(srv.requests) == math.ceil(len(units) / 10) + 1  # one repeated page, then stop


def test_org_units_faults_and_auth(admin, pat, monkeypatch, caplog):
    units, _ = _org_units(admin)
    caplog.set_level(logging.DEBUG)
    with LocalServer(Dhis2App(units)) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        srv.inject(Reply(503, "maintenance"), match="organisationUnits")
        srv.inject(Reply(429, "", {"Retry-After": "0"}), match="organisationUnits")
        srv.inject(Reply(200, b"x" * 4000, cut_after=100), match="organisationUnits")
        ou = gp.dhis2.read_org_units(srv.url, page_size=10, **FAST)
        assert len(ou) == len(units)
        srv.inject(Reply(200, "<html>login</html>"), match="organisationUnits", times=10)
        with pytest.raises(FormatError, match="not valid JSON.*starts '<html>login"):
            gp.dhis2.read_org_units(srv.url, **FAST)
        srv.clear_faults()
        srv.inject(
            Reply(200, {"pager": {"page": 1, "pageCount": 1}, "organisationUnits": [{"id": "a"}]})
        )
        with pytest.raises(FormatError, match=r"without name \(1 of 1\), path \(1 of 1\)"):
            gp.dhis2.read_org_units(srv.url, **FAST)
        monkeypatch.setenv("DHIS2_TOKEN", "d2pat_wrong")
        with pytest.raises(RemoteAuthError, match=r"401.*ApiToken \*\*\*.*\$DHIS2_TOKEN") as info:
            gp.dhis2.read_org_units(srv.url, **FAST)
        texts = [str(info.value)]
        monkeypatch.setenv("D2_USER", "admin")
        monkeypatch.setenv("D2_PASS", PASSWORD + "x")
        with pytest.raises(RemoteAuthError, match=r"Basic \*\*\*.*\$D2_USER, \$D2_PASS") as info:
            gp.dhis2.read_org_units(srv.url, user_env="D2_USER", password_env="D2_PASS", **FAST)
        texts.append(str(info.value))
        # Basic auth from user_env + password_env
        monkeypatch.setenv("D2_PASS", PASSWORD)
        ou = gp.dhis2.read_org_units(
            srv.url, user_env="D2_USER", password_env="D2_PASS", levels=[1, 2]
        )
        assert sorted(ou["level"].unique()) == [1, 2]
    texts += [r.getMessage() for r in caplog.records]
    secrets = [PAT, "d2pat_wrong", PASSWORD]
    secrets += [
        base64.b64encode(f"admin:{p}".encode()).decode() for p in (PASSWORD, PASSWORD + "x")
    ]
    for t in texts:
        assert not [s for s in secrets if s in t], t


def test_match_org_units_against_truth(admin, pat):
    units, truth = _org_units(admin)
    with LocalServer(Dhis2App(units)) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        ou = gp.dhis2.read_org_units(srv.url, **FAST)
    with pytest.warns(GeopipeWarning, match="1 of 37 org units match no admin unit"):
        m = gp.dhis2.match_org_units(ou, admin)
    assert len(m) == len(ou) and set(m["id"]) == set(truth)  # nobody dropped
    got = {r.id: (r.ucode, r.match_method) for r in m.itertuples()}
    assert got == truth
    methods = pd.Series([v[1] for v in truth.values()]).value_counts().to_dict()
    assert m.attrs["geopipe"]["matched"] == methods
    assert set(methods) == {"code", "name", "spatial", "unmatched"}
    spatial = m[m["match_method"] == "spatial"]
    assert (spatial["match_score"] > 0.5).all()
    # Western Province matched spatially: its districts still match by name under it
    west = admin.loc[admin["name"] == "Western Province", "ucode"].iloc[0]
    kids = m[m["ucode"].isin(admin.loc[admin["parent_ucode"] == west, "ucode"])]
    assert "name" in set(kids["match_method"]) or "code" in set(kids["match_method"])


def _values(dx, ou, pe):
    return {
        (d, o, p): ("" if (i % 11 == 0) else f"{i * 1.25:g}")
        for i, (d, o, p) in enumerate(itertools.product(dx, ou, pe))
    }


def test_analytics_split_and_values(pat):
    dx, ou, pe = ["deAAAAAAAAA", "deBBBBBBBBB"], [f"ou{i:09d}" for i in range(13)], ["2023", "2024"]
    values = _values(dx, ou, pe)
    with LocalServer(Dhis2App([], values, row_cap=10)) as srv:
        got = gp.dhis2.read_analytics(srv.url, dx=dx, ou=";".join(ou), pe=pe, max_rows=20, **FAST)
        parts = len(srv.requests)
    assert parts > 1  # split: pre-split by the estimate (52 > 20) and again on the 409
    want = pd.Series({k: float(v) if v else float("nan") for k, v in values.items()})
    have = got.set_index(["dx", "ou", "pe"])["value"]
    assert have.index.is_unique and len(have) == len(want)
    pd.testing.assert_series_equal(
        have.sort_index(), want.sort_index(), check_names=False, check_index_type=False
    )
    assert got["ou_name"].str.startswith("Unit ").all()


def test_analytics_validation_error(pat):
    with LocalServer(Dhis2App([])) as srv:
        srv.inject(Reply(409, {"httpStatusCode": 409, "errorCode": "E7104",
                               "message": "At least one period must be specified"}))  # fmt: skip
        with pytest.raises(InputError, match="E7104: At least one period"):
            gp.dhis2.read_analytics(srv.url, dx="a", ou="b", pe="2024", **FAST)
        srv.inject(Reply(200, {"headers": [{"name": "dx"}], "rows": []}))
        with pytest.raises(FormatError, match=r"without \['ou', 'pe', 'value'\]"):
            gp.dhis2.read_analytics(srv.url, dx="a", ou="b", pe="2024", **FAST)


def test_org_units_resume_from_cache(admin, pat, tmp_path):
    units, _ = _org_units(admin)
    with LocalServer(Dhis2App(units)) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        srv.inject(Reply(500, {"message": "boom"}), match='"page": ["3"]', times=50)
        with pytest.raises(RemoteError, match=r"organisationUnits page 3.*HTTP 500.*boom"):
            gp.dhis2.read_org_units(srv.url, page_size=5, cache_dir=tmp_path, **FAST)
        srv.clear_faults()
        srv.requests.clear()
        ou = gp.dhis2.read_org_units(srv.url, page_size=5, cache_dir=tmp_path, **FAST)
        asked = [int(r.arg("page")) for r in srv.requests]
    assert asked == list(range(3, math.ceil(len(units) / 5) + 1))  # resumed at page 3
    assert len(ou) == len(units) and ou.attrs["geopipe"]["remote"]["cache_hits"] == 2


def test_analytics_split_keeps_keywords_in_every_part(pat):
    from geopipe.remote.dhis2 import _split

    parts = _split(
        {"dx": ["a"], "ou": ["LEVEL-3", "o1", "o2", "o3"], "pe": ["LAST_12_MONTHS", "2024"]}, 2
    )
    assert all("LEVEL-3" in p["ou"] and "LAST_12_MONTHS" in p["pe"] for p in parts)
    explicit = sorted(o for p in parts for o in p["ou"] if o != "LEVEL-3")
    assert explicit == ["o1", "o2", "o3"]  # each explicit unit asked once
    dx, ou, pe = ["deAAAAAAAAA"], [f"ou{i:09d}" for i in range(6)], ["LAST_12_MONTHS", "2024"]
    with LocalServer(Dhis2App([], _values(dx, ou, pe), row_cap=4)) as srv:
        got = gp.dhis2.read_analytics(srv.url, dx=dx, ou=ou, pe=pe, **FAST)
    # the test server answers LAST_12_MONTHS literally, once per part: read back once
    assert len(got) == len(ou) * len(pe) and not got.duplicated(["dx", "ou", "pe"]).any()


def test_a_pipeline_publishes_dhis2_values_per_district(admin, pat, tmp_path, testdata):
    """`kind: dhis2` + a `table_values` step: analytics values of the org units matched to the
    districts are published per district and rolled up; the credentials reach no file."""
    units, truth = _org_units(admin)
    districts = [oid for oid, (ucode, _) in truth.items() if ucode and ucode.count("_") == 3]
    values = {("deANCVISIT1", oid, "2024"): f"{(i + 1) * 2.5:g}" for i, oid in enumerate(districts)}
    d = testdata / "admin"
    with LocalServer(Dhis2App(units, values)) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        p = gp.Pipeline.from_dict(
            {
                "name": "hmis",
                "date": "2024-12-31",
                "sources": {
                    "admin": {
                        "kind": "admin",
                        "valid_on": "2021-01-01",
                        "path": {
                            0: str(d / "georepo_api.json"),
                            1: str(d / "georepo_api.json"),
                            2: str(d / "georepo_export.geojson"),
                        },
                    },
                    "hmis": {
                        "kind": "dhis2",
                        "base_url": srv.url,
                        "dx": ["deANCVISIT1"],
                        "pe": ["2024"],
                        **FAST,
                    },
                },
                "steps": [
                    {
                        "kind": "table_values",
                        "table": "hmis",
                        "column": "anc_visits",
                        "where": {"dx": "deANCVISIT1"},
                        "unit": "visits",
                    }
                ],
            }
        )
        result = gp.run_pipeline(p, output=tmp_path / "run")
        again = gp.run_pipeline(p, output=tmp_path / "run")
    fact = result.tables["fact_indicator"].set_index(["ucode", "indicator_id"])["value"]
    for (_, oid, _), v in values.items():
        ucode, method = truth[oid]
        assert fact[(ucode, "anc_visits")] == pytest.approx(float(v)), (oid, method)
    country = admin.loc[admin.admin_level == 0, "ucode"].iloc[0]
    assert fact[(country, "anc_visits")] == pytest.approx(sum(float(v) for v in values.values()))
    assert again.up_to_date
    for f in (tmp_path / "run").rglob("*"):
        if f.is_file():
            assert PAT.encode() not in f.read_bytes(), f
