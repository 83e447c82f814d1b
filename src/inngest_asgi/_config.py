"""Client settings: options given in code, then ``INNGEST_*`` environment variables.

Precedence (PROTOCOL.md §2): a value passed in code wins; then the specific variable; then
``INNGEST_BASE_URL``; then a URL given as ``INNGEST_DEV``; then the mode's default.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
from collections.abc import Mapping
from typing import Literal

from ._errors import ConfigError
from ._signing import hash_signing_key

__all__: list[str] = []

Mode = Literal["dev", "cloud"]

DEV_SERVER_ORIGIN = "http://127.0.0.1:8288"
CLOUD_API_ORIGIN = "https://api.inngest.com"
CLOUD_EVENT_API_ORIGIN = "https://inn.gs"
#: Event key used in dev mode when none is configured; the dev server accepts any key.
DEV_EVENT_KEY = "NO_EVENT_KEY_SET"
_BRANCH_VARS = ("INNGEST_ENV", "RAILWAY_GIT_BRANCH", "RENDER_GIT_BRANCH", "VERCEL_GIT_COMMIT_REF")


@dataclasses.dataclass(frozen=True, repr=False)
class Settings:
    mode: Mode
    signing_key: str | None
    signing_key_fallback: str | None
    event_key: str | None
    env: str | None
    api_origin: str
    event_api_origin: str
    serve_origin: str | None
    serve_path: str | None
    request_timeout: float

    @functools.cached_property
    def signing_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.signing_key, self.signing_key_fallback) if k)

    def __repr__(self) -> str:
        # Keys never appear in reprs or logs.
        return (
            f"Settings(mode={self.mode!r}, api_origin={self.api_origin!r}, "
            f"event_api_origin={self.event_api_origin!r}, env={self.env!r})"
        )


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false")


def _url(value: str, mode: Mode) -> str:
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = ("http://" if mode == "dev" else "https://") + value
    return value


def resolve(
    environ: Mapping[str, str],
    *,
    is_production: bool | None,
    signing_key: str | None,
    signing_key_fallback: str | None,
    event_key: str | None,
    env: str | None,
    api_base_url: str | None,
    event_api_base_url: str | None,
    serve_origin: str | None,
    serve_path: str | None,
    request_timeout: int | _dt.timedelta | None,
) -> Settings:
    dev_var = environ.get("INNGEST_DEV")
    mode: Mode
    if is_production is not None:
        mode = "cloud" if is_production else "dev"
    else:
        mode = "dev" if _flag(dev_var) else "cloud"

    def origin(code: str | None, names: tuple[str, ...], default: str) -> str:
        if code:
            return _url(code, mode)
        for name in (*names, "INNGEST_BASE_URL"):
            if environ.get(name):
                return _url(environ[name], mode)
        if dev_var and ("." in dev_var or ":" in dev_var):
            return _url(dev_var, mode)
        return DEV_SERVER_ORIGIN if mode == "dev" else default

    key = signing_key or environ.get("INNGEST_SIGNING_KEY") or None
    fallback = signing_key_fallback or environ.get("INNGEST_SIGNING_KEY_FALLBACK") or None
    for label, value in (("signing_key", key), ("signing_key_fallback", fallback)):
        if value is not None:
            try:
                hash_signing_key(value)
            except ValueError as exc:
                raise ConfigError(f"{label}: {exc}") from None

    if request_timeout is None:
        timeout = 30.0
    elif isinstance(request_timeout, _dt.timedelta):
        timeout = request_timeout.total_seconds()
    elif isinstance(request_timeout, int) and not isinstance(request_timeout, bool):
        timeout = request_timeout / 1000
    else:
        raise ConfigError("request_timeout must be int milliseconds or a timedelta")
    if timeout <= 0:
        raise ConfigError("request_timeout must be positive")

    branch = env or next((environ[n] for n in _BRANCH_VARS if environ.get(n)), None)
    return Settings(
        mode=mode,
        signing_key=key,
        signing_key_fallback=fallback,
        event_key=event_key
        or environ.get("INNGEST_EVENT_KEY")
        or (DEV_EVENT_KEY if mode == "dev" else None),
        env=branch,
        api_origin=origin(
            api_base_url, ("INNGEST_API_BASE_URL", "INNGEST_API_ORIGIN"), CLOUD_API_ORIGIN
        ),
        event_api_origin=origin(
            event_api_base_url,
            ("INNGEST_EVENT_API_BASE_URL", "INNGEST_EVENT_API_ORIGIN"),
            CLOUD_EVENT_API_ORIGIN,
        ),
        serve_origin=serve_origin or environ.get("INNGEST_SERVE_ORIGIN") or None,
        serve_path=serve_path or environ.get("INNGEST_SERVE_PATH") or None,
        request_timeout=timeout,
    )
