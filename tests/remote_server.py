"""A real HTTP server on 127.0.0.1 for the remote-client tests, with injectable faults.

``LocalServer(app)`` runs ``app(Request) -> Reply`` in a ``http.server`` thread. Faults are
queued with :meth:`LocalServer.inject`: the next ``times`` requests whose path contains ``match``
get the given reply instead of the app's (a 503, a 429 with ``Retry-After``, a body cut off
mid-way, malformed JSON, ...). Every request is logged in ``server.requests``.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: Any = b""  # bytes, str or a JSON value
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    cut_after: int | None = None  # send this many body bytes, then drop the connection
    drop: bool = False  # close the connection without answering (a server going away)
    delay: float = 0.0  # seconds to wait before answering (a slow server)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class LocalServer:
    def __init__(self, app: Callable[[Request], Reply]) -> None:
        self.app = app
        self.requests: list[Request] = []
        self._faults: list[list[Any]] = []  # [match, reply, times_left]
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def inject(self, reply: Reply, *, match: str = "", times: int = 1) -> None:
        with self._lock:
            self._faults.append([match, reply, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _reply_for(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            for fault in self._faults:
                if fault[2] > 0 and fault[0] in req.path + "?" + json.dumps(req.query):
                    fault[2] -= 1
                    return fault[1]
        return self.app(req)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k: v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                reply = server._reply_for(req)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = reply.payload()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if reply.cut_after is not None:
                    self.wfile.write(body[: reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            do_GET = _serve
            do_POST = _serve

        return Handler


def json_body(obj: Any) -> bytes:
    return json.dumps(obj).encode()
