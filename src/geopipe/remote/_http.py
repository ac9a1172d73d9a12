"""The one HTTP layer the GeoRepo, DHIS2 and GeoSight clients share.

* **requests + urllib3 ``Retry``** do the transport: connection pooling, timeouts, retries with
  exponential backoff and jitter on 429 / 5xx, ``Retry-After`` honoured (capped). We chose them over
  httpx + tenacity because urllib3's ``Retry`` already implements backoff, jitter and
  ``Retry-After`` (tenacity would need that written by hand) and it is one package pair instead of
  two (optional extra ``geopipe[remote]``).
* One thing urllib3 cannot retry is a body cut off *after* the status line (requests reads the body
  once urllib3 has returned); :meth:`HttpClient.request` retries those (and truncated JSON) itself
  with the same backoff.
* Credentials: :mod:`geopipe.remote._credentials`; every log line and error message passes through
  :meth:`Credentials.redact`. Cache: :mod:`geopipe.remote._cache`.
* Redirects are not followed (the ``*-User-Key`` headers would go to another host).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from ..errors import FormatError, RemoteAuthError, RemoteError, problem
from ._cache import ResponseCache
from ._credentials import Credentials, check_env, clean_base_url, credentials, safe_url

__all__ = [
    "Credentials",
    "HttpClient",
    "Page",
    "ResponseCache",
    "check_env",
    "clean_base_url",
    "credentials",
    "paginate",
]

LOG = logging.getLogger("geopipe.remote")
RETRY_STATUS = (429, 500, 502, 503, 504)
_SNIPPET = 300  # characters of a server's error body quoted in messages


def _requests() -> Any:
    """The ``requests`` module, or a DependencyError saying how to install it."""
    try:
        import requests
    except ImportError:  # pragma: no cover - requests ships with the geospatial stack
        from ..errors import DependencyError

        raise DependencyError(
            problem(
                "the HTTP clients (gp.georepo, gp.dhis2, gp.geosight)",
                "need the 'requests' package",
                "pip install 'geopipe[remote]'",
            )
        ) from None
    return requests


# --------------------------------------------------------------------------- client
@functools.lru_cache(maxsize=1)
def _retry_class() -> type:
    from urllib3.util.retry import Retry

    class _CappedRetry(Retry):  # type: ignore[misc]
        """urllib3 Retry whose Retry-After wait is capped (a server asking for an hour)."""

        max_retry_after: float = 300.0

        def parse_retry_after(self, retry_after: str) -> float:
            return min(float(super().parse_retry_after(retry_after)), self.max_retry_after)

        def new(self, **kw: Any) -> Retry:
            new = super().new(**kw)
            new.max_retry_after = self.max_retry_after
            return new

    return _CappedRetry


@dataclasses.dataclass
class Response:
    """What :meth:`HttpClient.request` returns: status, headers (lower-case keys) and body."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    def json(self, *, what: str, credentials: Credentials | None = None) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            text = self.body[:120].decode("utf-8", "replace")
            if credentials is not None:
                text = credentials.redact(text)
            raise FormatError(
                problem(
                    f"the answer to {what} ({self.url})",
                    f"is not valid JSON ({exc.__class__.__name__}: {exc}; starts {text!r})",
                    "check base_url points at the API (not a login page or a proxy error)",
                )
            ) from None


class HttpClient:
    """Sessions with retries, timeouts, auth headers, redaction and an optional cache.

    Parameters
    ----------
    base_url
        Server address (checked by :func:`clean_base_url`).
    creds
        From :func:`credentials`.
    timeout
        Seconds to connect and to wait for each read.
    retries
        Attempts after the first one, for 429 / 5xx, connection errors and cut-off bodies.
    backoff
        First backoff in seconds; doubles each attempt, plus up to ``backoff`` of random jitter,
        never more than ``backoff_max``.
    max_retry_after
        Cap on a server's ``Retry-After``.
    retry_status
        Extra statuses treated as transient (GeoRepo turns server errors into 400).
    pool
        Connection pool size (the number of concurrent requests).
    """

    def __init__(
        self,
        base_url: str,
        creds: Credentials,
        *,
        where: str,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        max_retry_after: float = 300.0,
        retry_status: Collection[int] = (),
        pool: int = 4,
    ) -> None:
        self.base_url = clean_base_url(base_url, where=where)
        self.creds = creds
        self.where = where
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.retry_status = frozenset(retry_status)
        self.pool = pool
        self.requests = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r}, {self.creds!r})"

    # ---- sessions (one per thread: requests.Session is not thread-safe)
    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            requests = _requests()
            from requests.adapters import HTTPAdapter

            retry = _retry_class()(
                total=self.retries,
                connect=self.retries,
                read=self.retries,
                status=self.retries,
                backoff_factor=self.backoff,
                backoff_max=self.backoff_max,
                backoff_jitter=self.backoff,
                status_forcelist=RETRY_STATUS,
                allowed_methods=frozenset({"GET", "POST"}),  # GeoSight writes are idempotent
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            retry.max_retry_after = self.max_retry_after
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=self.pool)
            session = requests.Session()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(self.creds.headers)
            session.headers["User-Agent"] = "geopipe"
            self._local.session = session
        return session

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def log(self, level: int, msg: str, *args: Any) -> None:
        LOG.log(level, self.creds.redact(msg % args if args else msg))

    def sleep_before(self, attempt: int) -> None:
        wait = min(self.backoff_max, self.backoff * 2**attempt) + random.uniform(0, self.backoff)
        time.sleep(wait)

    # ---- one request, retried
    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        data: bytes | None = None,
        handle: Collection[int] = (),
        not_found: str | None = None,
    ) -> Response:
        """Send a request; return a 2xx (or a status in ``handle``) response, else raise.

        ``what`` names the request in messages ("GeoRepo view 'x' level 2 page 3"); ``not_found``
        is the fix suggested on a 404.
        """
        requests = _requests()
        url = self.url(path)
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.log(logging.INFO, "%s: retry %d of %s (%s)", self.where, attempt, what, last)
                self.sleep_before(attempt - 1)
            with self._count_lock:
                self.requests += 1
            try:
                r = self._session().request(
                    method,
                    url,
                    params=params,
                    data=data,
                    timeout=self.timeout,
                    headers={"Content-Type": "application/json"} if data is not None else None,
                    allow_redirects=False,  # never send the user-key headers to another host
                )
                body = r.content  # may raise when the connection drops mid-body
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout) as exc:
                last = f"connection dropped while reading: {exc.__class__.__name__}"
                continue
            except requests.exceptions.RequestException as exc:
                raise RemoteError(
                    problem(
                        f"{what} ({url})",
                        f"failed after {self.retries} retries: "
                        f"{self.creds.redact(exc.__class__.__name__ + ': ' + str(exc))[:_SNIPPET]}",
                        "check the server address and the network, then rerun "
                        "(finished pages and values are kept)",
                        where=self.where,
                    )
                ) from None
            resp = Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, body, url)
            self.log(
                logging.DEBUG, "%s %s -> %d (%d bytes)", method, r.url, r.status_code, len(body)
            )
            if 200 <= resp.status < 300 or resp.status in handle:
                if "content-length" in resp.headers and len(body) < int(
                    resp.headers["content-length"]
                ):
                    last = "body shorter than Content-Length"
                    continue
                return resp
            if resp.status in self.retry_status and attempt < self.retries:
                last = f"HTTP {resp.status}"
                continue
            raise self.error(resp, what=what, not_found=not_found, attempts=attempt + 1)
        raise RemoteError(
            problem(
                f"{what} ({url})",
                f"failed after {self.retries} retries ({last})",
                "check the server, then rerun (finished pages and values are kept)",
                where=self.where,
            )
        )

    def get_json(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        handle: Collection[int] = (),
        not_found: str | None = None,
    ) -> tuple[Any, Response]:
        """GET and parse JSON; a body that is not JSON is retried, then a FormatError."""
        for attempt in range(self.retries + 1):
            resp = self.request(
                "GET", path, what=what, params=params, handle=handle, not_found=not_found
            )
            try:
                return resp.json(what=what, credentials=self.creds), resp
            except FormatError:
                if attempt == self.retries:
                    raise
                self.log(logging.INFO, "%s: %s was not JSON; retrying", self.where, what)
                self.sleep_before(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def server_message(self, resp: Response) -> str:
        """The server's error text (DRF ``detail``, DHIS2 ``message``), redacted and shortened."""
        text = resp.body.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("detail", "message", "error", "errors"):
                if key in data:
                    text = data[key] if isinstance(data[key], str) else json.dumps(data[key])
                    if data.get("errorCode"):
                        text = f"{data['errorCode']}: {text}"
                    break
            else:
                text = json.dumps(data)
        text = " ".join(self.creds.redact(text).split())
        return text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")

    def error(
        self, resp: Response, *, what: str, not_found: str | None = None, attempts: int = 1
    ) -> RemoteError:
        """The GeopipeError for a non-2xx answer (its ``status`` attribute is the HTTP status)."""
        exc = self._error(resp, what=what, not_found=not_found, attempts=attempts)
        exc.status = resp.status  # type: ignore[attr-defined]
        return exc

    def _error(
        self, resp: Response, *, what: str, not_found: str | None, attempts: int
    ) -> RemoteError:
        message = self.server_message(resp)
        said = f" (server said: {message})" if message else ""
        if resp.status in (401, 403):
            return RemoteAuthError(
                problem(
                    f"{what} ({resp.url})",
                    f"was refused with HTTP {resp.status}{said}",
                    f"check the credentials in ${', $'.join(self.creds.env)}"
                    + (" (401: missing or invalid; 403: valid but without access to this object)"),
                    where=self.where,
                )
            )
        if 300 <= resp.status < 400:
            target = safe_url(resp.headers.get("location", ""))
            return RemoteError(
                problem(
                    f"{what} ({resp.url})",
                    f"was redirected (HTTP {resp.status}) to {target}",
                    "use the address it redirects to as base_url (credentials are not sent "
                    "across redirects)",
                    where=self.where,
                )
            )
        if resp.status == 404:
            return RemoteError(
                problem(
                    f"{what} ({resp.url})",
                    f"does not exist on the server (HTTP 404){said}",
                    not_found or "check the id in the configuration",
                    where=self.where,
                )
            )
        if resp.status in RETRY_STATUS:  # urllib3 retried these already
            attempts += self.retries
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        return RemoteError(
            problem(
                f"{what} ({resp.url})",
                f"failed with HTTP {resp.status}{tried}{said}",
                "rerun later if the server is overloaded; otherwise fix the request parameters",
                where=self.where,
            )
        )


# --------------------------------------------------------------------------- paging
@dataclasses.dataclass
class Page:
    """One page of results: its items and how many pages the server says there are."""

    items: list[Any]
    page_count: int


def paginate(
    fetch: Callable[[int], Page], *, what: str, where: str, max_pages: int = 100_000
) -> Iterator[tuple[int, Page]]:
    """Yield ``(page_number, Page)`` from page 1 until ``page >= page_count`` or an empty page.

    The stop rule follows the server's page count, never the page size that was asked for (servers
    cap it silently), and never asks past the last page (DHIS2 returns the last page again).
    """
    page = 1
    while True:
        result = fetch(page)
        yield page, result
        if not result.items or page >= result.page_count:
            return
        page += 1
        if page > max_pages:
            raise FormatError(
                problem(
                    what,
                    f"reports more than {max_pages} pages",
                    "check the server's paging (page_count) or narrow the request",
                    where=where,
                )
            )


def int_field(value: Any, *, name: str, what: str, where: str) -> int:
    """An integer paging field, or a FormatError naming it (schema drift)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FormatError(
            problem(
                what,
                f"has no usable {name!r} ({value!r})",
                "the server's API has changed or base_url is not the API; check the server version",
                where=where,
            )
        ) from None
