"""Synced apps and their function configurations (PROTOCOL.md §8-9).

A sync (``POST /fn/register`` or an in-band PUT reply) replaces every function of that app.
Expressions and cron schedules are checked at sync time, so a typo fails the sync instead of
silently never matching. Options the executor does not implement are logged once per function.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from . import _cron
from ._durations import parse_duration
from ._expressions import ExpressionError, compile_expression

__all__: list[str] = []

log = logging.getLogger("inngest_asgi.executor")

#: Default number of retries when a function does not say (so 5 attempts).
DEFAULT_RETRIES = 4

#: Function options the executor accepts but does not enforce.
UNSUPPORTED_OPTIONS = (
    "concurrency",
    "rateLimit",
    "throttle",
    "debounce",
    "priority",
    "timeouts",
    "singleton",
)


class SyncError(ValueError):
    """A registration the executor refuses; the message is sent back to the SDK."""


class TriggerConfig(msgspec.Struct, omit_defaults=True):
    event: str | None = None
    expression: str | None = None
    cron: str | None = None
    jitter: str | None = None


class Runtime(msgspec.Struct):
    url: str
    type: str = "http"


class Retries(msgspec.Struct):
    attempts: int = DEFAULT_RETRIES


class StepConfig(msgspec.Struct):
    runtime: Runtime
    id: str = "step"
    name: str = "step"
    retries: Retries | None = None


class CancelConfig(msgspec.Struct):
    event: str
    if_exp: str | None = msgspec.field(default=None, name="if")
    timeout: str | None = None


class BatchConfig(msgspec.Struct):
    maxSize: int
    timeout: str = "60s"
    key: str | None = None
    if_exp: str | None = msgspec.field(default=None, name="if")


class FunctionConfig(msgspec.Struct):
    """One entry of ``functions`` in a registration."""

    id: str
    steps: dict[str, StepConfig]
    name: str | None = None
    triggers: list[TriggerConfig] = []
    cancel: list[CancelConfig] | None = None
    idempotency: str | None = None
    batchEvents: BatchConfig | None = None
    concurrency: Any = None
    rateLimit: Any = None
    throttle: Any = None
    debounce: Any = None
    priority: Any = None
    timeouts: Any = None
    singleton: Any = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def step(self) -> StepConfig:
        return self.steps.get("step") or next(iter(self.steps.values()))

    @property
    def max_attempts(self) -> int:
        retries = self.step.retries
        return (DEFAULT_RETRIES if retries is None else retries.attempts) + 1

    def url(self, step_id: str) -> str:
        """The runtime URL with ``stepId`` set to ``step_id``."""
        parts = urlsplit(self.step.runtime.url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        query = [(k, v) for k, v in query if k != "stepId"] + [("stepId", step_id)]
        return urlunsplit(parts._replace(query=urlencode(query)))


class RegisterRequest(msgspec.Struct):
    """Body of ``POST /fn/register`` (both the spec's and the Python SDK's key names)."""

    url: str
    functions: list[FunctionConfig] = []
    appName: str | None = None
    appname: str | None = None
    app_id: str | None = None
    framework: str | None = None
    sdk: str | None = None
    appVersion: str | None = None
    # In-band sync replies name the SDK in two fields instead of ``sdk``.
    sdk_language: str | None = None
    sdk_version: str | None = None

    @property
    def sdk_ident(self) -> str | None:
        """``<language>:v<version>``, from ``sdk`` or the in-band reply's two fields."""
        if self.sdk or not self.sdk_language:
            return self.sdk
        return f"{self.sdk_language}:v{self.sdk_version}" if self.sdk_version else self.sdk_language

    @property
    def app_name(self) -> str:
        name = self.appName or self.appname or self.app_id
        if not name:
            raise SyncError("registration has no appName")
        return name


register_decoder = msgspec.json.Decoder(RegisterRequest)


class App(msgspec.Struct):
    """A synced app: its name, URL, SDK and functions by composite id."""

    name: str
    url: str
    sdk: str | None
    framework: str | None
    functions: dict[str, FunctionConfig]


def check_function(fn: FunctionConfig) -> None:
    """Compile every expression and cron of ``fn``; :class:`SyncError` on the first bad one."""
    if not fn.steps:
        raise SyncError(f"function {fn.id}: no steps (runtime URL) given")
    if not fn.step.runtime.url.startswith(("http://", "https://")):
        raise SyncError(f"function {fn.id}: runtime URL {fn.step.runtime.url!r} is not http(s)")
    expressions: list[str | None] = [fn.idempotency]
    for trigger in fn.triggers:
        if trigger.cron is not None:
            try:
                _cron.validate(trigger.cron)
            except _cron.CronError as exc:
                raise SyncError(f"function {fn.id}: {exc}") from None
        elif not trigger.event:
            raise SyncError(f"function {fn.id}: a trigger needs an event or a cron")
        expressions.append(trigger.expression)
    for cancel in fn.cancel or ():
        expressions.append(cancel.if_exp)
        _check_duration(fn, cancel.timeout)
    if fn.batchEvents is not None:
        expressions += [fn.batchEvents.key, fn.batchEvents.if_exp]
        _check_duration(fn, fn.batchEvents.timeout)
    for text in expressions:
        if text:
            try:
                compile_expression(text)
            except ExpressionError as exc:
                raise SyncError(f"function {fn.id}: {exc}") from None


def _check_duration(fn: FunctionConfig, text: str | None) -> None:
    if text:
        try:
            parse_duration(text)
        except ValueError as exc:
            raise SyncError(f"function {fn.id}: {exc}") from None


def warn_unsupported(fn: FunctionConfig) -> None:
    for option in UNSUPPORTED_OPTIONS:
        value = getattr(fn, option)
        if value not in (None, [], {}):
            log.warning(
                "function %s sets %s, which the local executor does not enforce; ignored",
                fn.id,
                option,
            )


def event_matches_name(pattern: str, name: str) -> bool:
    """Trigger names match exactly, or by prefix when they end with ``*`` (``app/*``)."""
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return pattern == name
