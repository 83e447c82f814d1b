"""``ctx.step`` and ``ctx.group``: thin facades over the replay engine.

Each method asks :class:`~inngest_asgi._engine.Replay` what the call means. The async and sync
facades differ only where user code runs: :class:`Step` awaits the callable (a sync callable goes
to a worker thread), :class:`StepSync` calls it on the current thread.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec

from ._durations import Duration, iso_utc, to_time_string, to_timedelta
from ._engine import RUN_NOW, Replay
from ._invoke import Invoker, call_user
from ._wire import Event

if TYPE_CHECKING:
    from ._function import Function

__all__ = ["Group", "GroupSync", "ParallelMode", "Step", "StepSync"]

T = TypeVar("T")


class _Empty(enum.Enum):
    EMPTY = enum.auto()


#: Default of ``output_type``: decode memoized values as plain JSON.
EMPTY = _Empty.EMPTY


class ParallelMode(enum.Enum):
    """How a parallel group resumes: after every branch (``WAIT``) or after each (``RACE``)."""

    WAIT = "wait"
    RACE = "race"


def _typed(value: Any, output_type: Any) -> Any:
    if output_type is EMPTY or output_type is None:
        return value
    return msgspec.convert(value, output_type, strict=False)


class _StepBase:
    __slots__ = ("_app_id", "_invoker", "_replay")

    def __init__(self, replay: Replay, invoker: Invoker, app_id: str) -> None:
        self._replay = replay
        self._invoker = invoker
        self._app_id = app_id

    # The operations the server performs: no user code runs, so both facades share them.

    def _sleep(self, step_id: str, duration: Duration) -> None:
        delta = to_timedelta(duration, f'step.sleep("{step_id}")')
        self._sleep_until(step_id, _dt.datetime.now(_dt.timezone.utc) + delta)

    def _sleep_until(self, step_id: str, until: _dt.datetime) -> None:
        if not isinstance(until, _dt.datetime):
            raise TypeError(f'step.sleep_until("{step_id}"): until must be a datetime')
        if until.tzinfo is None:
            raise ValueError(
                f'step.sleep_until("{step_id}"): until is a naive datetime; pass an aware one, '
                "e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
            )
        self._replay.begin_op(step_id, "Sleep", name=iso_utc(until))

    def _wait_for_event(
        self, step_id: str, event: str, timeout: Duration, if_exp: str | None
    ) -> Event | None:
        what = f'step.wait_for_event("{step_id}")'
        opts = {"event": event, "if": if_exp, "timeout": to_time_string(timeout, what)}
        memo = self._replay.begin_op(step_id, "WaitForEvent", name=event, opts=opts)
        return None if memo is None else msgspec.convert(memo, Event, strict=False)

    def _invoke_by_id(
        self,
        step_id: str,
        app_id: str | None,
        function_id: str,
        data: Mapping[str, Any] | None,
        user: Mapping[str, Any] | None,
        timeout: Duration | None,
        v: str | None,
    ) -> Any:
        what = f'step.invoke("{step_id}")'
        payload: dict[str, Any] = {"data": dict(data or {}), "v": v}
        if user is not None:
            payload["user"] = dict(user)
        opts = {
            "function_id": f"{app_id or self._app_id}-{function_id}",
            "payload": payload,
            "timeout": None if timeout is None else to_time_string(timeout, what),
        }
        return self._replay.begin_op(step_id, "InvokeFunction", opts=opts)


class Step(_StepBase):
    """``ctx.step`` of an async function. Every method is awaited."""

    __slots__ = ()

    async def run(
        self,
        step_id: str,
        handler: Callable[..., Awaitable[T]] | Callable[..., T],
        *handler_args: Any,
        output_type: Any = EMPTY,
    ) -> T:
        """Run ``handler(*handler_args)`` once per run and memoize its JSON result.

        ``handler`` may be ``async`` or sync (a sync one runs in a worker thread).
        """
        value = self._replay.begin_run(step_id)
        if value is not RUN_NOW:
            return cast(T, _typed(value, output_type))
        try:
            output = await call_user(handler, handler_args, self._invoker)
        except Exception as exc:
            self._replay.step_failed(exc)
        self._replay.step_done(output)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for ``duration`` (int ms, timedelta, or a string like ``"1h30m"``)."""
        self._sleep(step_id, duration)

    async def sleep_until(self, step_id: str, until: _dt.datetime) -> None:
        """Pause the run until the aware datetime ``until``."""
        self._sleep_until(step_id, until)

    async def wait_for_event(
        self, step_id: str, *, event: str, timeout: Duration, if_exp: str | None = None
    ) -> Event | None:
        """Wait for an event named ``event`` (matching ``if_exp``); None on timeout."""
        return self._wait_for_event(step_id, event, timeout, if_exp)

    async def invoke(
        self,
        step_id: str,
        *,
        function: Function[Any],
        data: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        v: str | None = None,
    ) -> Any:
        """Run another function of this app and return its output."""
        return self._invoke_by_id(step_id, None, function.local_id, data, user, timeout, v)

    async def invoke_by_id(
        self,
        step_id: str,
        *,
        app_id: str | None = None,
        function_id: str,
        data: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        v: str | None = None,
    ) -> Any:
        """Run a function by id (of this app unless ``app_id`` is given); return its output."""
        return self._invoke_by_id(step_id, app_id, function_id, data, user, timeout, v)


class StepSync(_StepBase):
    """``ctx.step`` of a sync function: the same methods as :class:`Step`, without ``await``."""

    __slots__ = ()

    def run(
        self, step_id: str, handler: Callable[..., T], *handler_args: Any, output_type: Any = EMPTY
    ) -> T:
        """Run ``handler(*handler_args)`` once per run and memoize its JSON result."""
        value = self._replay.begin_run(step_id)
        if value is not RUN_NOW:
            return cast(T, _typed(value, output_type))
        try:
            output = handler(*handler_args)
        except Exception as exc:
            self._replay.step_failed(exc)
        self._replay.step_done(output)

    def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for ``duration`` (int ms, timedelta, or a string like ``"1h30m"``)."""
        self._sleep(step_id, duration)

    def sleep_until(self, step_id: str, until: _dt.datetime) -> None:
        """Pause the run until the aware datetime ``until``."""
        self._sleep_until(step_id, until)

    def wait_for_event(
        self, step_id: str, *, event: str, timeout: Duration, if_exp: str | None = None
    ) -> Event | None:
        """Wait for an event named ``event`` (matching ``if_exp``); None on timeout."""
        return self._wait_for_event(step_id, event, timeout, if_exp)

    def invoke(
        self,
        step_id: str,
        *,
        function: Function[Any],
        data: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        v: str | None = None,
    ) -> Any:
        """Run another function of this app and return its output."""
        return self._invoke_by_id(step_id, None, function.local_id, data, user, timeout, v)

    def invoke_by_id(
        self,
        step_id: str,
        *,
        app_id: str | None = None,
        function_id: str,
        data: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        v: str | None = None,
    ) -> Any:
        """Run a function by id (of this app unless ``app_id`` is given); return its output."""
        return self._invoke_by_id(step_id, app_id, function_id, data, user, timeout, v)


class Group:
    """``ctx.group`` of an async function."""

    __slots__ = ("_invoker", "_replay")

    def __init__(self, replay: Replay, invoker: Invoker) -> None:
        self._replay = replay
        self._invoker = invoker

    async def parallel(
        self,
        callables: Sequence[Callable[[], Awaitable[T]]],
        parallel_mode: ParallelMode = ParallelMode.WAIT,
    ) -> tuple[T, ...]:
        """Run the steps inside ``callables`` in parallel; return their results in order."""
        results: list[T] = []
        with self._replay.parallel(ParallelMode(parallel_mode).value):
            for fn in callables:
                with self._replay.branch():
                    results.append(await call_user(fn, (), self._invoker))
        return tuple(results)


class GroupSync:
    """``ctx.group`` of a sync function."""

    __slots__ = ("_replay",)

    def __init__(self, replay: Replay) -> None:
        self._replay = replay

    def parallel(
        self,
        callables: Sequence[Callable[[], T]],
        parallel_mode: ParallelMode = ParallelMode.WAIT,
    ) -> tuple[T, ...]:
        """Run the steps inside ``callables`` in parallel; return their results in order."""
        results: list[T] = []
        with self._replay.parallel(ParallelMode(parallel_mode).value):
            for fn in callables:
                with self._replay.branch():
                    results.append(fn())
        return tuple(results)
