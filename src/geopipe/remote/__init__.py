"""HTTP sources and sinks: GeoRepo boundaries, DHIS2 org units and values, GeoSight values.

``gp.georepo``, ``gp.dhis2`` and ``gp.geosight`` are these modules, imported on first use. All
three share one HTTP layer (:mod:`geopipe.remote._http`): timeouts, retries with backoff and
jitter on 429 / 5xx honouring ``Retry-After``, resumable paging, an on-disk response cache and
credentials read only from environment variables. :func:`check_env` lets ``geopipe validate``
check a configuration's credentials without touching the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, problem

__all__ = ["DEFAULT_ENV", "check_env", "required_env"]

#: kind -> the credential keys of a config entry and their default variable names
DEFAULT_ENV: dict[str, dict[str, str | None]] = {
    "georepo": {"token_env": "GEOREPO_TOKEN", "user_env": "GEOREPO_USER"},
    "geosight": {"token_env": "GEOSIGHT_TOKEN", "user_env": "GEOSIGHT_USER"},
    # DHIS2: a personal access token, or Basic auth with user_env + password_env
    "dhis2": {"token_env": "DHIS2_TOKEN", "user_env": None, "password_env": None},
}


def required_env(entry: Mapping[str, Any]) -> list[str]:
    """Environment variable names a ``sources:`` / ``outputs:`` entry needs.

    Parameters
    ----------
    entry
        A config entry such as ``{"kind": "georepo", "base_url": ..., "token_env": "T"}``.
        Unset keys take the defaults in :data:`DEFAULT_ENV`; a DHIS2 entry with ``password_env``
        uses Basic auth (``user_env`` + ``password_env``) instead of ``token_env``.

    Returns
    -------
    list of str
        Variable names, in a stable order.

    Examples
    --------
    >>> required_env({"kind": "georepo"})
    ['GEOREPO_TOKEN', 'GEOREPO_USER']
    >>> required_env({"kind": "dhis2", "user_env": "D_USER", "password_env": "D_PASS"})
    ['D_USER', 'D_PASS']
    """
    kind = str(entry.get("kind", "")).lower()
    if kind not in DEFAULT_ENV:
        raise ConfigError(
            problem("entry kind", f"was {entry.get('kind')!r}", f"use one of {sorted(DEFAULT_ENV)}")
        )
    names = {k: entry.get(k, default) for k, default in DEFAULT_ENV[kind].items()}
    if kind == "dhis2" and names.get("password_env"):
        return [str(names["user_env"]), str(names["password_env"])]
    if kind == "dhis2":
        return [str(names["token_env"])]
    return [str(names["token_env"]), str(names["user_env"])]


def check_env(entry: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the credentials of a config entry, without any network call.

    Parameters
    ----------
    entry
        A ``georepo`` / ``dhis2`` source or a ``geosight`` output entry (see :func:`required_env`).
    environ
        Environment to look in (default ``os.environ``).

    Returns
    -------
    list of str
        One message per unset variable (empty when all are set). Values are never read into
        the messages.

    Examples
    --------
    >>> check_env({"kind": "geosight", "token_env": "GS_T", "user_env": "GS_U"},
    ...           environ={"GS_T": "x"})
    ['geosight: environment variable $GS_U is not set; fix: export GS_U=... before the run']
    """
    from ._http import check_env as missing_env

    kind = str(entry.get("kind", "")).lower()
    return [
        problem(
            f"environment variable ${name}",
            "is not set",
            f"export {name}=... before the run",
            where=kind,
        )
        for name in missing_env(*required_env(entry), environ=environ)
    ]
