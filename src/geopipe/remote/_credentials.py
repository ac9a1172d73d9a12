"""Credentials from environment variables, kept out of reprs, logs and messages; base URL checks.

:func:`credentials` builds a service's auth headers from the variables the caller names; the
values live in a :class:`Credentials` whose ``repr`` shows only the variable names, and
:meth:`Credentials.redact` blanks them out of any text (log lines, error messages).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..errors import ConfigError, problem

__all__ = ["Credentials", "check_env", "clean_base_url", "credentials", "safe_url"]


def check_env(*names: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of the environment variables in ``names`` that are unset or empty (no network).

    Parameters
    ----------
    *names
        Environment variable names; ``None`` entries are ignored.
    environ
        The environment to look in (default ``os.environ``).

    Returns
    -------
    list of str
        The missing names, in the order given.

    Examples
    --------
    >>> check_env("GEOPIPE_SURELY_UNSET_VAR", None, environ={})
    ['GEOPIPE_SURELY_UNSET_VAR']
    """
    env = os.environ if environ is None else environ
    return [n for n in names if n and not env.get(n)]


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Request headers built from environment variables; never shows the values.

    ``env`` holds the variable names (safe to print); ``headers`` and the secret values are kept out
    of ``repr`` and ``str``. :meth:`redact` replaces every secret (and its Basic-auth encoding)
    in a text by ``***``.
    """

    service: str
    env: tuple[str, ...]
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    secrets: tuple[str, ...] = dataclasses.field(repr=False)

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret value replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"Credentials({self.service} from ${', $'.join(self.env)})"

    __str__ = __repr__


def credentials(
    service: str,
    *,
    scheme: str,
    token_env: str | None = None,
    user_env: str | None = None,
    password_env: str | None = None,
    user_header: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Build a service's auth headers from environment variables.

    ``scheme`` is ``"Token"`` (GeoRepo, GeoSight: ``Authorization: Token <key>`` plus
    ``user_header: <email>`` from ``user_env``), ``"ApiToken"`` (DHIS2 personal access token) or
    ``"Basic"`` (``user_env`` + ``password_env``). Raises :class:`ConfigError` naming every unset
    variable (never a value).
    """
    import base64

    env = os.environ if environ is None else environ
    needed = [token_env] if scheme in ("Token", "ApiToken") else [user_env, password_env]
    if scheme == "Token" and user_header:
        needed.append(user_env)
    if any(n is None for n in needed):
        keys = {"Token": "token_env and user_env", "ApiToken": "token_env"}
        raise ConfigError(
            problem(
                f"{service} credentials",
                f"need {keys.get(scheme, 'user_env and password_env')}",
                "name the environment variables that hold them (never the values)",
            )
        )
    names = tuple(n for n in needed if n)
    missing = check_env(*names, environ=env)
    if missing:
        raise ConfigError(
            problem(
                f"environment variable{'s' if len(missing) > 1 else ''} ${', $'.join(missing)}",
                f"{'are' if len(missing) > 1 else 'is'} not set ({service} credentials)",
                f"export {missing[0]}=... before the run (credentials are read from the "
                "environment only, never from config files)",
            )
        )
    values = [env[n] for n in names]
    headers: dict[str, str]
    secrets = list(values)
    if scheme == "Basic":
        token = base64.b64encode(f"{values[0]}:{values[1]}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        secrets = [values[1], token]  # the user name alone is not secret, the password is
    else:
        headers = {"Authorization": f"{scheme} {values[0]}"}
        if scheme == "Token" and user_header:
            headers[user_header] = values[1]
    return Credentials(service, names, headers, tuple(secrets))


def clean_base_url(base_url: str, *, where: str) -> str:
    """``base_url`` without a trailing slash; refuses URLs with credentials or no scheme/host.

    Examples
    --------
    >>> clean_base_url("https://georepo.example.org/", where="x")
    'https://georepo.example.org'
    """
    parts = urlsplit(str(base_url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            problem(
                "base_url",
                f"was {safe_url(str(base_url))!r}",
                "use the server's address, e.g. 'https://georepo.unicef.org'",
                where=where,
            )
        )
    if parts.username or parts.password or parts.query:
        raise ConfigError(
            problem(
                "base_url",
                "contains a user, password or query string",
                "give the bare server address and put credentials in environment variables "
                "(token_env=, user_env=)",
                where=where,
            )
        )
    return str(base_url).rstrip("/")


def safe_url(url: str) -> str:
    """The URL without user info or query string (for messages about a rejected URL)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else "<not a URL>"
