"""gp.geosight.push against a GeoSight-shaped server on 127.0.0.1: interrupted, resumed, exact."""

from __future__ import annotations

import json
import logging
import re
import threading
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

import geopipe as gp
from geopipe.errors import ConfigError, GeopipeWarning, RemoteAuthError, RemoteError
from remote_server import LocalServer, Reply, Request

TOKEN = "gs-SECRET-key-5e5e5e5e"
USER = "pusher.secret@example.org"
DATASET = "8d6e2c1a-2222-4b3c-8d9e-bbbbbbbbbbbb"
FAST = {"retries": 3, "backoff": 0.001}
SHORTCODES = {"population_total": "POP_TOTAL", "health_facilities": "HF", "tiny_rate": "TINY"}


@pytest.fixture(scope="module")
def sample_fact(sample_dir):
    """The Rwanda sample's fact table (README example: districts -> provinces -> country), plus
    a small-valued indicator whose values Python would print with an exponent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        admin = gp.read_admin({lv: sample_dir / f"rwa_adm{lv}.geojson" for lv in (0, 1, 2)})
        districts = admin[admin.admin_level == 2]
        districts = gp.zonal_raster(
            districts, {"population_total": sample_dir / "rwa_population_2020_modelled_232m.tif"}
        ).rename(columns={"population_total_sum": "population_total"})
        health = gp.read_points(sample_dir / "rwa_who_public_health_facilities.csv")
        districts = gp.count_points(districts, health, name="health_facilities")
        fact, _, _ = gp.compute_indicators(
            districts, ["population_total", "health_facilities"], date="2020-01-01"
        )
        fact = gp.rollup(fact, admin)
    tiny = fact[fact["indicator_id"] == "population_total"].copy()
    tiny["indicator_id"] = "tiny_rate"
    tiny["value"] = 1.0 / tiny["value"] * 0.1  # ~1e-07: repr() gives exponents
    return pd.concat([fact, tiny], ignore_index=True)


class GeoSightApp:
    """POST /api/v1/data-browser/: stores on (indicator, date, geom_id); plain-text 400s."""

    def __init__(self, shortcodes=None) -> None:
        self.shortcodes = set(SHORTCODES.values() if shortcodes is None else shortcodes)
        self.store: dict[tuple[str, str, str], Decimal] = {}
        self.posts = 0
        self.die_after: int | None = None  # stop answering after this many stored values
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("Authorization") != f"Token {TOKEN}" or (
            req.headers.get("GeoSight-User-Key") != USER
        ):
            return Reply(401, {"detail": "Invalid token."})
        if req.method != "POST" or req.path != "/api/v1/data-browser/":
            return Reply(404, {"detail": "Not found."})
        raw = req.body.decode()
        literal = re.search(r'"value":\s*([^,}\s]+)', raw).group(1)
        if re.search(r"[eE]", literal):
            return Reply(
                400,
                f"could not convert string to float: '{literal}'",
                {"Content-Type": "text/html"},
            )
        data = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
        for key in ("date", "geom_id", "dataset_uuid", "admin_level", "value"):
            if key not in data:
                return Reply(400, f"'{key}' is required on payload", {"Content-Type": "text/html"})
        if data.get("indicator_shortcode") not in self.shortcodes:
            return Reply(400, "Indicator does not exist", {"Content-Type": "text/html"})
        with self.lock:
            if self.die_after is not None and len(self.store) >= self.die_after:
                return Reply(drop=True)
            self.posts += 1
            self.store[(data["indicator_shortcode"], data["date"], data["geom_id"])] = data["value"]
        return Reply(200, "201")


def _expected(fact: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    dates = pd.to_datetime(fact["date"]).dt.strftime("%Y-%m-%d")
    return {
        (SHORTCODES[i], d, u): float(v)
        for i, d, u, v in zip(
            fact["indicator_id"], dates, fact["ucode"], fact["value"], strict=True
        )
    }


@pytest.fixture()
def creds(monkeypatch):
    monkeypatch.setenv("GEOSIGHT_TOKEN", TOKEN)
    monkeypatch.setenv("GEOSIGHT_USER", USER)


def test_interrupted_push_resumes_to_exactly_the_sample(sample_fact, creds, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    state = tmp_path / "state" / "geosight.jsonl"
    app = GeoSightApp()
    total = len(sample_fact)
    with LocalServer(app) as srv:
        app.die_after = total // 2  # the server goes away half-way through
        with pytest.raises(
            RemoteError, match=r"stopped with \d+ values sent.*rerun with state_path"
        ) as info:
            gp.geosight.push(sample_fact, srv.url, DATASET, SHORTCODES, state_path=state, **FAST)
        assert len(app.store) == total // 2
        assert len(state.read_text().splitlines()) == total // 2
        app.die_after = None  # back up
        app.posts = 0
        report = gp.geosight.push(
            sample_fact, srv.url, DATASET, SHORTCODES, state_path=state,
            report_path=tmp_path / "report.json", **FAST,
        )  # fmt: skip
        assert (report.sent, report.unchanged, report.failed) == (
            total - total // 2,
            total // 2,
            [],
        )
        assert app.posts == total - total // 2  # only the rest was sent
        # exactly the sample's values: same keys, each value read back bit-for-bit
        want = _expected(sample_fact)
        assert set(app.store) == set(want)
        assert all(float(app.store[k]) == v for k, v in want.items())
        assert any(v < 1e-4 for v in want.values())  # the exponent-prone ones went through
        # a third run sends nothing; a changed value is the only one sent
        app.posts = 0
        again = gp.geosight.push(
            sample_fact, srv.url, DATASET, SHORTCODES, state_path=state, **FAST
        )
        assert (again.sent, again.unchanged, app.posts) == (0, total, 0)
        changed = sample_fact.copy()
        changed.loc[0, "value"] += 1
        one = gp.geosight.push(changed, srv.url, DATASET, SHORTCODES, state_path=state, **FAST)
        assert (one.sent, app.posts) == (1, 1)
        assert float(app.store[next(iter(_expected(changed.iloc[[0]])))]) == changed.loc[0, "value"]
    texts = [str(info.value), state.read_text(), (tmp_path / "report.json").read_text()]
    texts += [r.getMessage() for r in caplog.records]
    for t in texts:
        assert TOKEN not in t and USER not in t


def test_faults_rejections_and_skips(sample_fact, creds):
    fact = sample_fact.copy()
    fact.loc[fact.index[:3], "suppressed"] = True
    fact.loc[fact.index[3], "value"] = np.nan
    fact.loc[fact.index[4:6], "indicator_id"] = "not_in_map"
    mapping = {**SHORTCODES, "not_in_map": "UNKNOWN"}
    del mapping["not_in_map"]
    app = GeoSightApp(shortcodes=["POP_TOTAL", "TINY"])  # "HF" does not exist on the server
    with LocalServer(app) as srv:
        srv.inject(Reply(503, "busy"))
        srv.inject(Reply(429, "", {"Retry-After": "0"}))
        srv.inject(Reply(502, "", cut_after=0))
        report = gp.geosight.push(fact, srv.url, DATASET, mapping, max_workers=3, **FAST)
    n_hf = int(((fact["indicator_id"] == "health_facilities") & ~fact["suppressed"]).sum())
    assert report.skipped == {"suppressed": 3, "no value": 1, "indicator not mapped": 2}
    assert len(report.failed) == n_hf
    assert {f["message"] for f in report.failed} == {"Indicator does not exist"}
    assert {f["status"] for f in report.failed} == {400}
    assert report.sent == len(fact) - 6 - n_hf == len(app.store)
    assert list(report.failed_frame().columns) == [
        "geom_id", "indicator", "date", "value", "status", "message",
    ]  # fmt: skip


def test_auth_and_config_errors(sample_fact, creds, monkeypatch):
    app = GeoSightApp()
    with LocalServer(app) as srv:
        with pytest.raises(RemoteError, match=r"404.*check base_url.*stopped with 0 values sent"):
            gp.geosight.push(sample_fact, srv.url + "/wrong", DATASET, SHORTCODES, **FAST)
        assert len(srv.requests) <= 4
    with LocalServer(app) as srv:
        monkeypatch.setenv("GEOSIGHT_TOKEN", "nope")
        with pytest.raises(RemoteAuthError, match=r"401.*\$GEOSIGHT_TOKEN, \$GEOSIGHT_USER"):
            gp.geosight.push(sample_fact, srv.url, DATASET, SHORTCODES, **FAST)
        assert len(srv.requests) <= 4  # stopped at once, not one refusal per value
        with pytest.raises(ConfigError, match="contains a user, password") as info:
            gp.geosight.push(sample_fact, f"https://me:{TOKEN}@h", DATASET, SHORTCODES)
        assert TOKEN not in str(info.value)
        monkeypatch.delenv("GEOSIGHT_USER")
        with pytest.raises(ConfigError, match=r"\$GEOSIGHT_USER is not set"):
            gp.geosight.push(sample_fact, srv.url, DATASET, SHORTCODES, **FAST)
    with pytest.raises(ConfigError, match="indicator_map"):
        gp.geosight.push(sample_fact, "http://127.0.0.1:9", DATASET, {})


@pytest.mark.parametrize(
    "value", [8.2e-05, 1e-12, 123456789012345.0, 1e22, 0.1 + 0.2, -3.5e-7, 0.0, 2.0**-30]
)
def test_plain_decimal_round_trips(value):
    text = gp.geosight.plain_decimal(value)
    assert "e" not in text.lower()
    assert float(text) == value  # the exact double comes back (checked by Python's own parser)
    assert Decimal(text) == Decimal(repr(value))  # same number as repr's shortest form


def test_check_env_helpers():
    from geopipe.remote import check_env, required_env

    assert required_env({"kind": "geosight"}) == ["GEOSIGHT_TOKEN", "GEOSIGHT_USER"]
    assert (
        check_env(
            {"kind": "georepo", "token_env": "A", "user_env": "B"}, environ={"A": "1", "B": "2"}
        )
        == []
    )
    msgs = check_env({"kind": "dhis2", "token_env": "D2"}, environ={})
    assert msgs == ["dhis2: environment variable $D2 is not set; fix: export D2=... before the run"]
    with pytest.raises(ConfigError, match="entry kind"):
        required_env({"kind": "ftp"})
    assert gp.geosight.check_env_for(environ={}) == ["GEOSIGHT_TOKEN", "GEOSIGHT_USER"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeopipeWarning)
        assert gp.dhis2.check_env_for(user_env="U", password_env="P", environ={"U": "x"}) == ["P"]


def test_import_geopipe_loads_no_http_client():
    import subprocess
    import sys

    code = (
        "import sys, geopipe as gp\n"
        "before = [m for m in ('requests', 'urllib3', 'geopipe.remote') if m in sys.modules]\n"
        "gp.georepo, gp.dhis2, gp.geosight\n"
        "print(before, 'geopipe.remote.geosight' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


def test_a_pipeline_pushes_its_published_values_and_resumes(creds, tmp_path, sample_dir):
    """`geosight:` in a pipeline: the run's published (suppressed) values reach a GeoSight-shaped
    server; a push cut half-way leaves the run not up to date, and the next run sends the rest."""
    from conftest import tiny_world

    cfg = tiny_world(tmp_path)
    app = GeoSightApp()
    with LocalServer(app) as srv:
        cfg["geosight"] = {
            "base_url": srv.url,
            "dataset_uuid": DATASET,
            "indicators": {"population_total": "POP_TOTAL", "health_facilities": "HF"},
            **FAST,
        }
        p = gp.Pipeline.from_dict(cfg)
        app.die_after = 4
        with pytest.raises(RemoteError):
            gp.run_pipeline(p, output=tmp_path / "run")
        assert len(app.store) == 4
        app.die_after = None
        app.posts = 0
        second = gp.run_pipeline(p, output=tmp_path / "run")
        assert not second.up_to_date and app.posts == 2  # 3 units x 2 indicators, 4 were there
        fact = pd.read_parquet(tmp_path / "run" / "fact_indicator.parquet")
        fact = fact[fact["indicator_id"].isin(["population_total", "health_facilities"])]
        assert set(app.store) == set(_expected(fact))
        assert all(float(app.store[k]) == v for k, v in _expected(fact).items())
        assert gp.run_pipeline(p, output=tmp_path / "run").up_to_date
    state = tmp_path / ".run.geopipe-state"
    assert (state / "geosight_push.json").is_file()
    assert not list((tmp_path / "run").glob("geosight_state*"))
