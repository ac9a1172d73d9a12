"""Push indicator values to GeoSight: one ``POST /api/v1/data-browser/`` per value, resumable.

GeoSight stores a value on (indicator, date, geom_id), so sending a value again overwrites it: a
push can be repeated or resumed safely. :func:`push` sends the rows of ``fact_indicator`` (mapped
with :func:`geopipe.io.geosight.to_geosight`, the same mapping as the CSV export) with a bounded
number of concurrent requests, records every value the server accepted in a state file, and on a
rerun sends only what is new, changed or failed before.

Values are written as JSON numbers in plain decimal notation (``0.000082``, never ``8.2e-05``).
Suppressed rows (``suppressed`` true) are not sent.

Examples
--------
>>> import geopipe as gp
>>> report = gp.geosight.push(fact, "https://geosight.unicef.org", "3f2e...",
...                           {"population_u18": "POP_U18"}, state_path="state/geosight.jsonl")
... # doctest: +SKIP
>>> report.sent, report.unchanged, len(report.failed)  # doctest: +SKIP
(72, 0, 0)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputError, RemoteAuthError, RemoteError, problem
from ._http import HttpClient, check_env, credentials

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PushReport", "check_env_for", "plain_decimal", "push"]

WHERE = "geosight.push"
USER_HEADER = "GeoSight-User-Key"
ENDPOINT = "api/v1/data-browser/"


def check_env_for(
    *,
    token_env: str = "GEOSIGHT_TOKEN",
    user_env: str = "GEOSIGHT_USER",
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Environment variables a GeoSight output needs that are not set (no network call).

    Parameters
    ----------
    token_env, user_env
        Variables holding the API key and the user's e-mail.
    environ
        Environment to check (default ``os.environ``).

    Returns
    -------
    list of str
        Missing variable names.

    Examples
    --------
    >>> check_env_for(environ={"GEOSIGHT_TOKEN": "k", "GEOSIGHT_USER": "me@example.org"})
    []
    """
    return check_env(token_env, user_env, environ=environ)


def plain_decimal(value: float) -> str:
    """The shortest decimal text that reads back as ``value``, without an exponent.

    Parameters
    ----------
    value
        A finite number.

    Returns
    -------
    str
        E.g. ``"0.000082"`` for ``8.2e-05``, ``"1132686"`` for ``1132686.0``.

    Examples
    --------
    >>> plain_decimal(8.2e-05), plain_decimal(1132686.0), plain_decimal(-2.5)
    ('0.000082', '1132686', '-2.5')
    """
    import numpy as np

    text = np.format_float_positional(float(value), unique=True, trim="-")
    return "0" if text == "-0" else text


@dataclasses.dataclass
class PushReport:
    """What a push did.

    Attributes
    ----------
    sent
        Values the server accepted in this run.
    unchanged
        Values not sent because the state file says the server already has exactly them.
    failed
        One row per value the server refused or that could not be sent: ``geom_id,
        indicator, date, value, status, message`` (the server's own message, redacted).
    skipped
        Rows not sent, by reason (``suppressed``, ``no value``, ``indicator not mapped``).
    state_path
        The state file (``None`` when the push kept no state).
    """

    sent: int = 0
    unchanged: int = 0
    failed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    state_path: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written by ``push(report_path=...)``)."""
        return dataclasses.asdict(self)

    def failed_frame(self) -> pd.DataFrame:
        """``failed`` as a DataFrame."""
        import pandas as pd

        cols = ["geom_id", "indicator", "date", "value", "status", "message"]
        return pd.DataFrame(self.failed, columns=cols)


def push(
    fact: pd.DataFrame,
    base_url: str,
    dataset_uuid: str,
    indicator_map: Mapping[str, str | int],
    *,
    token_env: str = "GEOSIGHT_TOKEN",
    user_env: str = "GEOSIGHT_USER",
    max_workers: int = 4,
    state_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
) -> PushReport:
    """Send ``fact_indicator`` values to a GeoSight instance.

    Parameters
    ----------
    fact
        Long indicator rows (``ucode, admin_level, indicator_id, date, value``, optional
        ``suppressed``).
    base_url
        GeoSight server, e.g. ``"https://geosight.unicef.org"``.
    dataset_uuid
        The GeoRepo view (GeoSight "reference dataset") the ucodes belong to.
    indicator_map
        ``{indicator_id: GeoSight indicator}``: an ``int`` is sent as ``indicator_id``, a string
        as ``indicator_shortcode``. Indicators of ``fact`` not in the map are skipped (counted).
    token_env, user_env
        Variables holding the API key (``Authorization: Token``) and the user's e-mail
        (``GeoSight-User-Key``).
    max_workers
        Concurrent requests (1–32).
    state_path
        JSON-lines file of the values the server accepted, appended as they are accepted. A
        rerun with the same file sends only values that are new, changed or failed (resuming an
        interrupted push); keep it beside the published folder, not in it.
    report_path
        Where to write the :class:`PushReport` as JSON (atomically).
    force
        Send every value even when the state says the server has it.
    timeout, retries, backoff
        Seconds per read, retries on 429 / 5xx / dropped connections, first backoff in seconds.

    Returns
    -------
    PushReport
        Counts of sent / unchanged values, the failures with the server's message, skips.

    Raises
    ------
    RemoteAuthError
        The server refused the credentials; nothing more is sent (the state keeps what was).
    RemoteError
        The server became unreachable; the state keeps what was sent, rerun to resume.

    Examples
    --------
    >>> import geopipe as gp
    >>> r = gp.geosight.push(fact, "https://geosight.example.org", "3f2e...",
    ...                      {"population_total": "POP"}, state_path="geosight.jsonl")
    ... # doctest: +SKIP
    >>> r.ok  # doctest: +SKIP
    True
    """
    from ..io.geosight import to_geosight

    if not 1 <= int(max_workers) <= 32:
        raise ConfigError(problem("max_workers", f"was {max_workers}", "use 1 to 32", where=WHERE))
    if not str(dataset_uuid).strip():
        raise ConfigError(
            problem("dataset_uuid", "is empty", "give the GeoRepo view's UUID", where=WHERE)
        )
    _check_map(indicator_map)
    creds = credentials(
        "GeoSight", scheme="Token", token_env=token_env, user_env=user_env, user_header=USER_HEADER
    )
    client = HttpClient(
        base_url, creds, where=WHERE, timeout=timeout, retries=retries, backoff=backoff,
        pool=int(max_workers),
    )  # fmt: skip
    rows = to_geosight(fact)
    report = PushReport(state_path=str(state_path) if state_path else None)
    payloads = _payloads(rows, fact, dataset_uuid, indicator_map, report)
    state = _State(Path(state_path) if state_path else None, dataset_uuid)
    todo = [p for p in payloads if force or not state.has(p)]
    report.unchanged = len(payloads) - len(todo)
    client.log(
        logging.INFO, "%s: %d values to send, %d unchanged", WHERE, len(todo), report.unchanged
    )
    try:
        _send_all(client, todo, state, report, int(max_workers))
    finally:
        state.close()
        if report_path:
            from ..io.atomic import atomic_write_text

            atomic_write_text(report_path, json.dumps(report.to_dict(), indent=1))
    client.log(
        logging.INFO,
        "%s: %d sent, %d unchanged, %d failed",
        WHERE, report.sent, report.unchanged, len(report.failed),
    )  # fmt: skip
    return report


def _check_map(indicator_map: Mapping[str, str | int]) -> None:
    if not isinstance(indicator_map, Mapping) or not indicator_map:
        raise ConfigError(
            problem(
                "indicator_map",
                f"was {indicator_map!r}",
                "map each indicator_id to a GeoSight shortcode (str) or id (int), "
                "e.g. {'population_u18': 'POP_U18'}",
                where=WHERE,
            )
        )
    bad = [
        k for k, v in indicator_map.items() if isinstance(v, bool) or not isinstance(v, str | int)
    ]
    if bad:
        raise ConfigError(
            problem(
                "indicator_map",
                f"has values that are neither a shortcode nor an id for {bad}",
                "use a string shortcode or an integer id",
                where=WHERE,
            )
        )


@dataclasses.dataclass(frozen=True)
class _Payload:
    key: tuple[str, str, str, str]  # indicator ref, date, geom_id, admin_level
    value: str  # plain decimal text
    body: bytes


def _payloads(
    rows: pd.DataFrame,
    fact: pd.DataFrame,
    dataset_uuid: str,
    indicator_map: Mapping[str, str | int],
    report: PushReport,
) -> list[_Payload]:
    import numpy as np

    mapped = rows["indicator_shortcode"].isin(list(indicator_map)).to_numpy()
    suppressed = (
        fact["suppressed"].fillna(False).astype(bool).to_numpy()
        if "suppressed" in fact.columns
        else np.zeros(len(rows), dtype=bool)
    )
    values = rows["value"].astype("float64").to_numpy(na_value=np.nan)
    finite = np.isfinite(values)
    report.skipped = {
        k: int(v)
        for k, v in {
            "indicator not mapped": (~mapped).sum(),
            "suppressed": (mapped & suppressed).sum(),
            "no value": (mapped & ~suppressed & ~finite).sum(),
        }.items()
        if v
    }
    keep = mapped & ~suppressed & finite
    out = []
    for geom, ind, date, level, value in zip(
        rows["geom_id"].to_numpy()[keep],
        rows["indicator_shortcode"].to_numpy()[keep],
        rows["date"].to_numpy()[keep],
        rows["admin_level"].to_numpy()[keep],
        values[keep],
        strict=True,
    ):
        ref = indicator_map[ind]
        field = "indicator_id" if isinstance(ref, int) else "indicator_shortcode"
        text = plain_decimal(value)
        head = json.dumps(
            {
                field: ref,
                "date": str(date),
                "geom_id": str(geom),
                "dataset_uuid": str(dataset_uuid),
                "admin_level": int(level),
            }
        )
        body = f'{head[:-1]}, "value": {text}}}'.encode()
        out.append(_Payload((str(ref), str(date), str(geom), str(int(level))), text, body))
    return out


class _State:
    """Append-only JSON lines of accepted values; the last line for a key wins."""

    def __init__(self, path: Path | None, dataset_uuid: str) -> None:
        self.path = path
        self.dataset = str(dataset_uuid)
        self.known: dict[tuple[str, ...], str] = {}
        self.lock = threading.Lock()
        self.fh = None
        if path is None:
            return
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            for n, line in enumerate(lines, start=1):
                try:
                    rec = json.loads(line)
                    self.known[(rec["dataset"], *rec["key"])] = rec["value"]
                except (ValueError, KeyError, TypeError):
                    if n < len(lines):
                        raise InputError(
                            problem(
                                f"state file '{path}' line {n}",
                                "is not a push record",
                                "delete the file (the next push then sends every value)",
                                where=WHERE,
                            )
                        ) from None
                    # a last line cut off by a killed run: ignore it
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a", encoding="utf-8")

    def has(self, p: _Payload) -> bool:
        return self.known.get((self.dataset, *p.key)) == p.value

    def add(self, p: _Payload) -> None:
        if self.fh is None:
            return
        line = json.dumps({"dataset": self.dataset, "key": list(p.key), "value": p.value})
        with self.lock:
            self.fh.write(line + "\n")
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.fh = None


def _send_all(
    client: HttpClient, todo: list[_Payload], state: _State, report: PushReport, workers: int
) -> None:
    stop = threading.Event()
    lock = threading.Lock()
    fatal: list[BaseException] = []

    def send(p: _Payload) -> None:
        if stop.is_set():
            return
        what = f"GeoSight value {p.key[0]} {p.key[2]} {p.key[1]}"
        try:
            resp = client.request(
                "POST",
                ENDPOINT,
                what=what,
                data=p.body,
                handle=(400,),
                not_found="check base_url: it should be the GeoSight server (the API is at "
                "/api/v1/data-browser/)",
            )
        except RemoteAuthError as exc:
            stop.set()
            fatal.append(exc)
            return
        except RemoteError as exc:
            status = getattr(exc, "status", None)
            if status in (None, 404) or 300 <= (status or 0) < 400:
                # unreachable after the retries, or not a GeoSight API at base_url: stop
                stop.set()
                fatal.append(exc)
                return
            with lock:
                report.failed.append(_failure(p, status, str(exc)))
            return
        if resp.status == 400:  # GeoSight answers every refused value with a plain-text 400
            with lock:
                report.failed.append(_failure(p, 400, client.server_message(resp)))
            return
        state.add(p)
        with lock:
            report.sent += 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(send, todo))
    if fatal:
        exc = fatal[0]
        left = len(todo) - report.sent - len(report.failed)
        raise type(exc)(
            f"{exc}; the push stopped with {report.sent} values sent and {left} not sent"
            + (
                f"; rerun with state_path='{state.path}' to send only the rest"
                if state.path
                else "; pass state_path= so that a rerun sends only the rest"
            )
        ) from None


def _failure(p: _Payload, status: int | None, message: str) -> dict[str, Any]:
    ref, date, geom, _ = p.key
    value = float(p.value) if math.isfinite(float(p.value)) else None
    return {"geom_id": geom, "indicator": ref, "date": date, "value": value,
            "status": status, "message": message}  # fmt: skip
