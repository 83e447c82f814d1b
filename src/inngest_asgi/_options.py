"""Function options (flow control, cancellation, timeouts) and their registration form.

Each model is a frozen, keyword-only struct named and shaped as in the official SDK. Nothing is
checked when a model is built; :func:`options_config` checks every value when the function is
created and turns the models into the camelCase objects of PROTOCOL.md §9, nulls left out.
Durations are int milliseconds, a ``timedelta`` or a string such as ``"1h30m"``; on the wire
they become the server's time strings (``"90s"``, ``"2h"``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

import msgspec

from ._durations import Duration, to_time_string, to_timedelta

__all__ = [
    "Batch",
    "Cancel",
    "Concurrency",
    "Debounce",
    "Priority",
    "RateLimit",
    "Singleton",
    "Throttle",
    "Timeouts",
]

#: Server limits (PROTOCOL.md §9 and the Inngest reference).
MAX_BATCH_TIMEOUT = _dt.timedelta(seconds=60)
MAX_DEBOUNCE_PERIOD = _dt.timedelta(days=7)
MAX_RATE_LIMIT_PERIOD = _dt.timedelta(hours=24)
MAX_CONCURRENCY_ENTRIES = 2
CONCURRENCY_SCOPES = ("account", "env", "fn")
SINGLETON_MODES = ("skip", "cancel")


class _Option(msgspec.Struct, kw_only=True, frozen=True):
    def to_wire(self, what: str) -> dict[str, Any]:
        """The registration form; raises ValueError or TypeError naming ``what``."""
        raise NotImplementedError  # pragma: no cover


class Batch(_Option, kw_only=True, frozen=True):
    """Run once for a batch of up to ``max_size`` events, or after ``timeout`` (1-60 s).

    ``key`` (CEL) keeps one batch per value; ``if_exp`` (CEL) lets only matching events in.
    The handler reads the batch from ``ctx.events``.
    """

    max_size: int
    timeout: Duration | None = None
    key: str | None = None
    if_exp: str | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        wire: dict[str, Any] = {"maxSize": _count(self.max_size, f"{what}.max_size")}
        if self.timeout is not None:
            wire["timeout"] = _duration(self.timeout, f"{what}.timeout", MAX_BATCH_TIMEOUT)
        _put_expr(wire, "key", self.key, f"{what}.key")
        _put_expr(wire, "if", self.if_exp, f"{what}.if_exp")
        return wire


class Cancel(_Option, kw_only=True, frozen=True):
    """Cancel a run when ``event`` arrives (optionally only within ``timeout`` of its start).

    In ``if_exp``, ``event`` is the run's trigger and ``async`` the cancelling event, e.g.
    ``"async.data.order_id == event.data.order_id"``.
    """

    event: str
    if_exp: str | None = None
    timeout: Duration | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        wire: dict[str, Any] = {"event": _event_name(self.event, f"{what}.event")}
        _put_expr(wire, "if", self.if_exp, f"{what}.if_exp")
        if self.timeout is not None:
            wire["timeout"] = _duration(self.timeout, f"{what}.timeout")
        return wire


class Concurrency(_Option, kw_only=True, frozen=True):
    """At most ``limit`` steps of this function executing at once.

    ``key`` (CEL) makes one limit per value; ``scope`` shares it across this function
    (``"fn"``, the default), the environment (``"env"``) or the account (``"account"``).
    """

    limit: int
    key: str | None = None
    scope: Literal["account", "env", "fn"] | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        wire: dict[str, Any] = {"limit": _count(self.limit, f"{what}.limit")}
        _put_expr(wire, "key", self.key, f"{what}.key")
        if self.scope is not None:
            if self.scope not in CONCURRENCY_SCOPES:
                raise ValueError(
                    f"{what}.scope must be 'account', 'env' or 'fn', not {self.scope!r}"
                )
            wire["scope"] = self.scope
        return wire


class Debounce(_Option, kw_only=True, frozen=True):
    """Start one run ``period`` (1 s to 7 days) after the last of a burst of events.

    ``key`` (CEL) debounces per value; ``timeout`` caps how long a burst can postpone the run.
    The run receives the last event.
    """

    period: Duration
    key: str | None = None
    timeout: Duration | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        _put_expr(wire, "key", self.key, f"{what}.key")
        wire["period"] = _duration(self.period, f"{what}.period", MAX_DEBOUNCE_PERIOD)
        if self.timeout is not None:
            wire["timeout"] = _duration(self.timeout, f"{what}.timeout")
        return wire


class Priority(_Option, kw_only=True, frozen=True):
    """``run``: a CEL expression giving a number of seconds from -600 to 600; runs with a
    higher value start before queued runs with a lower one."""

    run: str

    def to_wire(self, what: str) -> dict[str, Any]:
        return {"run": _expr(self.run, f"{what}.run")}


class RateLimit(_Option, kw_only=True, frozen=True):
    """Start at most ``limit`` runs per ``period`` (1 s to 24 h); events over it are skipped.

    ``key`` (CEL) makes one limit per value.
    """

    limit: int
    period: Duration
    key: str | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        _put_expr(wire, "key", self.key, f"{what}.key")
        wire["limit"] = _count(self.limit, f"{what}.limit")
        wire["period"] = _duration(self.period, f"{what}.period", MAX_RATE_LIMIT_PERIOD)
        return wire


class Throttle(_Option, kw_only=True, frozen=True):
    """Start at most ``limit`` runs per ``period``, plus ``burst`` at once; runs over it wait.

    ``key`` (CEL) makes one throttle per value. ``burst`` defaults to 1, as in the official SDK.
    """

    limit: int
    period: Duration
    key: str | None = None
    burst: int | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "limit": _count(self.limit, f"{what}.limit"),
            "period": _duration(self.period, f"{what}.period"),
            "burst": 1 if self.burst is None else _count(self.burst, f"{what}.burst"),
        }
        _put_expr(wire, "key", self.key, f"{what}.key")
        return wire


class Timeouts(_Option, kw_only=True, frozen=True):
    """Cancel a run not started within ``start`` of being scheduled, or not finished within
    ``finish`` of starting. Set either or both."""

    start: Duration | None = None
    finish: Duration | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        if self.start is None and self.finish is None:
            raise ValueError(f"{what}: set start, finish or both")
        wire: dict[str, Any] = {}
        if self.start is not None:
            wire["start"] = _duration(self.start, f"{what}.start")
        if self.finish is not None:
            wire["finish"] = _duration(self.finish, f"{what}.finish")
        return wire


class Singleton(_Option, kw_only=True, frozen=True):
    """At most one run at a time (per ``key`` value, a CEL expression). A new run is dropped
    (``mode="skip"``) or replaces the running one (``mode="cancel"``)."""

    mode: Literal["skip", "cancel"]
    key: str | None = None

    def to_wire(self, what: str) -> dict[str, Any]:
        if self.mode not in SINGLETON_MODES:
            raise ValueError(f"{what}.mode must be 'skip' or 'cancel', not {self.mode!r}")
        wire: dict[str, Any] = {}
        _put_expr(wire, "key", self.key, f"{what}.key")
        wire["mode"] = self.mode
        return wire


# --- checks ----------------------------------------------------------------------------------


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be an int of at least 1, not {value!r}")
    return value


def _expr(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a CEL expression string, not {value!r}")
    return value


def _put_expr(wire: dict[str, Any], field: str, value: object, what: str) -> None:
    if value is not None:
        wire[field] = _expr(value, what)


def _event_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty event name, not {value!r}")
    return value


def _duration(value: object, what: str, maximum: _dt.timedelta | None = None) -> str:
    if not isinstance(value, (int, str, _dt.timedelta)) or isinstance(value, bool):
        raise ValueError(
            f"{what} must be int milliseconds, a timedelta or a string like '30s', "
            f"not {type(value).__name__}"
        )
    text = to_time_string(value, what)
    if maximum is not None and to_timedelta(value, what) > maximum:
        limit = to_time_string(maximum, what)
        raise ValueError(f"{what} must be at most {limit}, not {text}")
    return text


def _one(value: object, model: type[_Option], what: str) -> dict[str, Any]:
    if not isinstance(value, model):
        raise ValueError(f"{what} must be a {model.__name__}(...), not {type(value).__name__}")
    return value.to_wire(what)


def _many(value: object, model: type[_Option], what: str) -> list[dict[str, Any]]:
    if isinstance(value, model):
        return [value.to_wire(f"{what}[0]")]
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{what} must be a list of {model.__name__}(...), not {type(value).__name__}"
        )
    items: list[object] = list(value)
    if not items:
        raise ValueError(f"{what} must hold at least one {model.__name__}(...); or pass None")
    return [_one(item, model, f"{what}[{i}]") for i, item in enumerate(items)]


def options_config(
    what: str,
    *,
    batch_events: object = None,
    cancel: object = None,
    concurrency: object = None,
    debounce: object = None,
    idempotency: object = None,
    priority: object = None,
    rate_limit: object = None,
    throttle: object = None,
    timeouts: object = None,
    singleton: object = None,
) -> dict[str, Any]:
    """Check ``create_function``'s options; return their registration form (§9), nulls left out.

    ``what`` prefixes every error, e.g. ``create_function(fn_id='f')``; each error then names
    the option (``batch_events.timeout``) and what it must be. Raises ValueError or TypeError.
    """
    config: dict[str, Any] = {}
    single: tuple[tuple[str, str, object, type[_Option]], ...] = (
        ("batchEvents", "batch_events", batch_events, Batch),
        ("debounce", "debounce", debounce, Debounce),
        ("priority", "priority", priority, Priority),
        ("rateLimit", "rate_limit", rate_limit, RateLimit),
        ("throttle", "throttle", throttle, Throttle),
        ("timeouts", "timeouts", timeouts, Timeouts),
        ("singleton", "singleton", singleton, Singleton),
    )
    for key, name, value, model in single:
        if value is not None:
            config[key] = _one(value, model, f"{what}: {name}")
    if cancel is not None:
        config["cancel"] = _many(cancel, Cancel, f"{what}: cancel")
    if concurrency is not None:
        entries = _many(concurrency, Concurrency, f"{what}: concurrency")
        if len(entries) > MAX_CONCURRENCY_ENTRIES:
            raise ValueError(
                f"{what}: concurrency takes at most {MAX_CONCURRENCY_ENTRIES} entries, "
                f"not {len(entries)}"
            )
        config["concurrency"] = entries
    if idempotency is not None:
        config["idempotency"] = _expr(idempotency, f"{what}: idempotency")
    return config
