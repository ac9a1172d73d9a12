"""gp.georepo.read_view against a GeoRepo-shaped server on 127.0.0.1, compared with read_admin."""

from __future__ import annotations

import json
import logging
import math
import time
import warnings

import geopandas as gpd
import pandas as pd
import pytest

import geopipe as gp
from geopipe.errors import ConfigError, FormatError, GeopipeWarning, RemoteAuthError, RemoteError
from remote_server import LocalServer, Reply, Request

TOKEN = "grk-7f3a-SECRET-token-91"
USER = "analyst.secret@example.org"
VIEW = "5b1c0a4e-1111-4c2d-9e0f-aaaaaaaaaaaa"
FAST = {"retries": 3, "backoff": 0.001}


def _entities(testdata) -> dict[int, list[dict]]:
    """The fixture units by level, as GeoRepo API entities (levels 0/1 JSON, level 2 GeoJSON)."""
    api = json.loads((testdata / "admin" / "georepo_api.json").read_text())["results"]
    export = json.loads((testdata / "admin" / "georepo_export.geojson").read_text())["features"]
    by_level: dict[int, list[dict]] = {0: [], 1: [], 2: []}
    for e in api:
        by_level[e["admin_level"]].append(e)
    for f in export:
        by_level[2].append({**f["properties"], "geometry": f["geometry"]})
    return by_level


class GeoRepoApp:
    """GeoRepo's search API: paging capped at ``cap``, FeatureCollection or JSON pages, auth."""

    def __init__(self, entities: dict[int, list[dict]], cap: int = 50, version: str = "1") -> None:
        self.entities = entities
        self.cap = cap
        self.version = version

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("Authorization") != f"Token {TOKEN}" or (
            req.headers.get("GeoRepo-User-Key") != USER
        ):
            return Reply(401, {"detail": "Invalid token."})
        parts = req.path.strip("/").split("/")
        if parts[:4] != ["api", "v1", "search", "view"] or parts[4] != VIEW:
            return Reply(404, {"detail": "Not found."})
        if len(parts) == 5:
            return Reply(200, {"uuid": VIEW, "version": self.version, "last_update": "2024-05-02"})
        level = int(parts[7])
        if level not in self.entities:
            return Reply(404, {"detail": f"Level {level} not found"})
        size = min(int(req.arg("page_size", "50")), self.cap)  # silently capped
        page = int(req.arg("page", "1"))
        rows = self.entities[level]
        total = math.ceil(len(rows) / size)
        chunk = rows[(page - 1) * size : page * size] if page <= total else []
        paging = {"page": page, "total_page": total, "page_size": size}
        if req.arg("format") == "geojson":
            feats = [
                {
                    "type": "Feature",
                    "properties": {k: v for k, v in e.items() if k != "geometry"},
                    "geometry": e["geometry"],
                }
                for e in chunk
            ]
            headers = {k: str(v) for k, v in paging.items()}
            return Reply(200, {"type": "FeatureCollection", "features": feats}, headers)
        return Reply(200, {**paging, "results": chunk})


@pytest.fixture()
def creds(monkeypatch):
    monkeypatch.setenv("GEOREPO_TOKEN", TOKEN)
    monkeypatch.setenv("GEOREPO_USER", USER)


@pytest.fixture()
def reference(testdata):
    d = testdata / "admin"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        return gp.read_admin({0: d / "georepo_api.json", 1: d / "georepo_api.json",
                              2: d / "georepo_export.geojson"})  # fmt: skip


def _same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    cols = [c for c in a.columns if c not in ("source", "geometry")]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=1e-9).all()


@pytest.mark.parametrize("fmt", ["geojson", "json"])
def test_equals_file_reader_with_capped_pages(testdata, creds, reference, fmt):
    app = GeoRepoApp(_entities(testdata), cap=4)  # asks 50, gets 4: 30 districts = 8 pages
    with LocalServer(app) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        got = gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], format=fmt, **FAST)
    _same(got, reference)
    assert got["source"].str.contains(VIEW).all()
    pages = [r for r in srv.requests if "/level/2/" in r.path]
    assert [r.arg("page") for r in pages] == [str(p) for p in range(1, 9)]
    assert all(r.arg("geom") == "full_geom" and r.arg("page_size") == "50" for r in pages)
    assert got.attrs["geopipe"]["remote"]["pages"] == {0: 1, 1: 2, 2: 8}


def test_valid_on_matches_file_reader(testdata, creds):
    app = GeoRepoApp(_entities(testdata))
    with LocalServer(app) as srv:
        got = gp.georepo.read_view(srv.url, VIEW, levels=[0, 1], valid_on="2019-06-01", **FAST)
    ref = gp.read_admin(testdata / "admin" / "georepo_api.json", valid_on="2019-06-01")
    _same(got, ref)
    assert "City of Kigali (old)" in set(got["name"])


def test_transient_faults_are_retried(testdata, creds, reference):
    app = GeoRepoApp(_entities(testdata), cap=10)
    with LocalServer(app) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        srv.inject(Reply(503, "busy"), match="/level/2/")
        srv.inject(Reply(429, {"detail": "slow down"}, {"Retry-After": "1"}), match="/level/1/")
        srv.inject(Reply(200, b"{}" * 5000, cut_after=700), match="/level/0/")  # dropped
        srv.inject(Reply(400, "Server Error (500)"), match="/level/2/")  # GeoRepo's 500-as-400
        srv.inject(Reply(200, '{"page": 1, "resu'), match="/level/1/")  # malformed JSON
        t0 = time.monotonic()
        got = gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], format="json", **FAST)
        elapsed = time.monotonic() - t0
    _same(got, reference)
    assert elapsed >= 1.0  # Retry-After: 1 was honoured


def test_bad_token_is_a_clear_error(testdata, monkeypatch):
    monkeypatch.setenv("GEOREPO_TOKEN", "wrong-" + TOKEN)
    monkeypatch.setenv("GEOREPO_USER", USER)
    with LocalServer(GeoRepoApp(_entities(testdata))) as srv:
        with pytest.raises(RemoteAuthError, match=r"401.*Invalid token.*\$GEOREPO_TOKEN"):
            gp.georepo.read_view(srv.url, VIEW, levels=[0], **FAST)
        n = len(srv.requests)
    assert n == 1  # a 401 is not retried


def test_missing_env_and_unknown_view(testdata, creds, monkeypatch):
    with LocalServer(GeoRepoApp(_entities(testdata))) as srv:
        with pytest.raises(RemoteError, match=r"view 'nope' level 0.*404"):
            gp.georepo.read_view(srv.url, "nope", levels=[0], **FAST)
        with pytest.raises(RemoteError, match=r"level 7.*404.*has level 7"):
            gp.georepo.read_view(srv.url, VIEW, levels=[7], **FAST)
        monkeypatch.delenv("GEOREPO_USER")
        with pytest.raises(ConfigError, match=r"\$GEOREPO_USER is not set"):
            gp.georepo.read_view(srv.url, VIEW, levels=[0], **FAST)
    assert gp.georepo.check_env_for(environ={"GEOREPO_TOKEN": "x"}) == ["GEOREPO_USER"]


def test_redirect_is_not_followed(testdata, creds):
    """A redirect would carry the GeoRepo-User-Key header to another host: refuse it."""
    with LocalServer(GeoRepoApp(_entities(testdata))) as srv:
        srv.inject(Reply(301, "", {"Location": "https://elsewhere.example.org/api/?k=1"}))
        with pytest.raises(
            RemoteError, match=r"redirected \(HTTP 301\) to https://elsewhere.example.org/api/;"
        ):
            gp.georepo.read_view(srv.url, VIEW, levels=[0], **FAST)
        assert len(srv.requests) == 1


def test_schema_drift_names_missing_fields(testdata, creds):
    ents = _entities(testdata)
    for e in ents[1]:
        e.pop("ucode")
    with LocalServer(GeoRepoApp(ents)) as srv:
        with pytest.raises(
            FormatError, match=r"level 1 page 1 has entities without the fields ucode \(6 of 6\)"
        ):
            gp.georepo.read_view(srv.url, VIEW, levels=[1], format="json", **FAST)
        srv.inject(Reply(200, {"type": "FeatureCollection", "features": []}), match="/level/0/")
        with pytest.raises(FormatError, match="no 'total_page' response header"):
            gp.georepo.read_view(srv.url, VIEW, levels=[0], **FAST)


def test_cache_skips_unchanged_view_and_resumes(testdata, creds, tmp_path, reference):
    app = GeoRepoApp(_entities(testdata), cap=4)
    cache = tmp_path / "cache"
    with LocalServer(app) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        # page 5 of level 2 keeps failing: the run stops there ...
        srv.inject(Reply(503, "down"), match='/level/2/?{"page": ["5"]', times=10)
        with pytest.raises(RemoteError, match=r"level 2 page 5.*HTTP 503"):
            gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], cache_dir=cache, **FAST)
        srv.clear_faults()
        # ... and the rerun asks only for pages 5-8 of level 2 (plus the view's version)
        srv.requests.clear()
        got = gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], cache_dir=cache, **FAST)
        asked = [(r.path.split("/")[-2], r.arg("page")) for r in srv.requests]
        assert asked == [(VIEW, None)] + [("2", str(p)) for p in range(5, 9)]
        _same(got, reference)
        # unchanged view: nothing but the version is downloaded
        srv.requests.clear()
        gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], cache_dir=cache, **FAST)
        assert len(srv.requests) == 1
        # a new view version downloads everything again
        app.version = "2"
        srv.requests.clear()
        gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], cache_dir=cache, **FAST)
        assert len(srv.requests) == 1 + 1 + 2 + 8


def test_no_secret_in_logs_errors_cache_or_manifest(testdata, creds, tmp_path, caplog):
    """Every log line, exception text, cache file (name and content) and manifest: no credential."""
    app = GeoRepoApp(_entities(testdata), cap=10)
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    with LocalServer(app) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        srv.inject(Reply(503, f"echo {TOKEN} {USER}"), match="/level/1/")
        # a server that echoes the credentials in its error bodies
        srv.inject(
            Reply(500, {"detail": f"bad Token {TOKEN} for {USER}"}), match="/level/2/", times=9
        )
        with pytest.raises(RemoteError) as info:
            gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], cache_dir=tmp_path / "c", **FAST)
        texts += [str(info.value), repr(info.value)]
        srv.inject(Reply(401, {"detail": f"Invalid token {TOKEN}"}), match="/level/0/", times=9)
        with pytest.raises(RemoteAuthError) as info:
            gp.georepo.read_view(srv.url, VIEW, levels=[0], **FAST)
        texts += [str(info.value), repr(info.value)]
        srv.clear_faults()
        got = gp.georepo.read_view(
            srv.url, VIEW, levels=[0, 1, 2], cache_dir=tmp_path / "c", **FAST
        )
    manifest = gp.RunManifest.start(run="t")
    manifest.parameters["admin"] = got.attrs["geopipe"]
    manifest.write(tmp_path / "manifest.json")
    texts.append((tmp_path / "manifest.json").read_text())
    texts += [r.getMessage() for r in caplog.records]
    files = list((tmp_path / "c").iterdir())
    assert files
    texts += [p.name for p in files] + [p.read_text() for p in files]
    from geopipe.remote import georepo

    texts.append(repr(georepo._client("http://x", "GEOREPO_TOKEN", "GEOREPO_USER")))
    assert any("retry" in t.lower() for t in texts)  # the logs did record the retries
    for t in texts:
        assert TOKEN not in t and USER not in t


def test_timeout_and_unreachable_server(testdata, creds, reference):
    app = GeoRepoApp(_entities(testdata), cap=10)
    with LocalServer(app) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        srv.inject(Reply(200, {}, delay=1.0), match="/level/1/")  # slower than the timeout
        got = gp.georepo.read_view(srv.url, VIEW, levels=[0, 1, 2], timeout=0.3, **FAST)
        url = srv.url
    _same(got, reference)
    # the server is gone: a clear error after the retries
    with pytest.raises(
        RemoteError, match=r"level 0 page 1.*failed after 3 retries: ConnectionError"
    ):
        gp.georepo.read_view(url, VIEW, levels=[0], **FAST)


def test_a_pipeline_reads_its_boundaries_from_georepo(
    testdata, creds, tmp_path, sample_dir, reference
):
    """A `kind: georepo` source as the pipeline's admin units: same dim_admin as the file reader,
    fingerprinted by content (rerun: up to date), credentials checked offline and never written."""
    cfg = {
        "name": "remote",
        "date": "2020-01-01",
        "sources": {
            "admin": {
                "kind": "georepo",
                "base_url": None,
                "view_uuid": VIEW,
                "levels": [0, 1, 2],
                "format": "json",
                **FAST,
            },
            "population_total": {
                "kind": "raster",
                "path": str(sample_dir / "rwa_population_2020_modelled_232m.tif"),
            },
        },
        "steps": [{"kind": "raster_stats", "raster": "population_total"}],
    }
    app = GeoRepoApp(_entities(testdata), cap=10)
    with LocalServer(app) as srv, warnings.catch_warnings():
        warnings.simplefilter("ignore", GeopipeWarning)
        cfg["sources"]["admin"]["base_url"] = srv.url
        p = gp.Pipeline.from_dict(cfg)
        first = gp.run_pipeline(p, output=tmp_path / "run")
        again = gp.run_pipeline(p, output=tmp_path / "run")
        app.version = "2"  # a new version of the view: one district renamed
        app.entities[2][0] = {**app.entities[2][0], "name": "Renamed district"}
        changed = gp.run_pipeline(p, output=tmp_path / "run")
    assert not changed.up_to_date
    assert "Renamed district" in set(changed.tables["dim_admin"]["name"])
    _same(first.tables["dim_admin"], reference)
    assert again.up_to_date
    rows = first.tables["fact_indicator"].query(
        "indicator_id == 'population_total' and admin_level == 0"
    )
    assert rows["value"].iloc[0] > 1e6
    for f in (tmp_path / "run").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert TOKEN.encode() not in data and USER.encode() not in data, f
    for f in tmp_path.rglob("*"):
        assert TOKEN not in f.name and USER not in f.name


def test_validate_names_unset_credentials_without_the_network(monkeypatch):
    monkeypatch.delenv("GEOREPO_TOKEN", raising=False)
    monkeypatch.setenv("GEOREPO_USER", USER)
    p = gp.Pipeline.from_dict(
        {
            "name": "x",
            "date": "2020-01-01",
            "sources": {
                "admin": {
                    "kind": "georepo",
                    "base_url": "http://127.0.0.1:9",
                    "view_uuid": VIEW,
                    "levels": [0],
                }
            },
            "steps": [],
        }
    )
    problems = p.environment_problems()
    assert len(problems) == 1 and "GEOREPO_TOKEN" in problems[0] and USER not in problems[0]
    with pytest.raises(ConfigError, match="GEOREPO_TOKEN"):
        gp.run_pipeline(p, output="/nonexistent/never-written")
