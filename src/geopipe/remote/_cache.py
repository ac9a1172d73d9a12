"""On-disk response cache: one JSON file per request, named by a hash (never a URL or a secret)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache"]


class ResponseCache:
    """Response bodies on disk, one JSON file per request under ``sha256(request key)``.

    The key is built from the method, the URL, the sorted parameters and a version string (the
    GeoRepo view's version, for instance); the file name is ``<service>-<hex>.json`` and so never
    holds a URL, a parameter or a credential. Entries older than ``max_age`` seconds are ignored.

    Examples
    --------
    >>> import tempfile
    >>> c = ResponseCache(tempfile.mkdtemp(), service="georepo")
    >>> c.put(("GET", "https://x/api", {}, "v1"), {"body": 1})
    >>> c.get(("GET", "https://x/api", {}, "v1"))
    {'body': 1}
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, service: str, max_age: float | None = None
    ) -> None:
        self.folder = Path(folder)
        self.service = re.sub(r"[^a-z0-9]+", "", service.lower()) or "http"
        self.max_age = max_age
        self.hits = 0

    def path(self, key: Any) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return self.folder / f"{self.service}-{digest[:40]}.json"

    def get(self, key: Any) -> Any:
        path = self.path(key)
        try:
            if self.max_age is not None and time.time() - path.stat().st_mtime > self.max_age:
                return None
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent, unreadable or half-written by a killed run: fetch again
        self.hits += 1
        return value

    def put(self, key: Any, value: Any) -> None:
        from ..io.atomic import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(key), json.dumps(value))
