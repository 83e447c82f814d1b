"""``ctx.step`` and ``ctx.group``: thin facades over the replay engine.

Each method asks :class:`~inngest_asgi._engine.Replay` what the call means (the protocol is in
its ``lookup`` / ``plan_*`` docstrings). The async and sync facades differ only where user code
runs: :class:`Step` awaits the callable (a sync callable goes to a worker thread) and lets
concurrent calls from ``asyncio.gather`` meet in ``settle``; :class:`StepSync` calls the
callable on the current thread.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._durations import Duration, iso_utc, to_time_string, to_timedelta
from ._engine import Replay, _StepInfo
from ._invoke import Invoker, call_user
from ._middleware import MiddlewareRunner
from ._types import EMPTY, declared_output_type
from ._wire import Event, Op

if TYPE_CHECKING:
    from ._client import Inngest
    from ._function import Function

__all__ = ["EMPTY", "Group", "GroupSync", "ParallelMode", "Step", "StepSync"]

T = TypeVar("T")


class ParallelMode(enum.Enum):
    """How a parallel group resumes: after every branch (``WAIT``) or after each (``RACE``)."""

    WAIT = "wait"
    RACE = "race"


@dataclasses.dataclass(frozen=True, slots=True)
class _OpSpec:
    """A step the server performs: what to report, and how to read its memo back."""

    user_id: str
    opcode: str
    name: str | None
    opts: dict[str, Any] | None
    output_type: Any = None

    def op(self, info: _StepInfo) -> Op:
        return info.op(self.opcode, name=self.name, opts=self.opts)


class _StepBase:
    __slots__ = ("_client", "_invoker", "_mw", "_mw_on", "_replay")

    def __init__(
        self, replay: Replay, invoker: Invoker, client: Inngest, middleware: MiddlewareRunner
    ) -> None:
        self._replay = replay
        self._invoker = invoker
        self._client = client
        self._mw = middleware
        self._mw_on = bool(middleware)

    # What each server-side step reports; both facades share these.

    def _sleep_spec(self, step_id: str, duration: Duration) -> _OpSpec:
        delta = to_timedelta(duration, f'step.sleep("{step_id}")')
        return self._sleep_until_spec(step_id, _dt.datetime.now(_dt.timezone.utc) + delta)

    def _sleep_until_spec(self, step_id: str, until: _dt.datetime) -> _OpSpec:
        if not isinstance(until, _dt.datetime):
            raise TypeError(f'step.sleep_until("{step_id}"): until must be a datetime')
        if until.tzinfo is None:
            raise ValueError(
                f'step.sleep_until("{step_id}"): until is a naive datetime; pass an aware one, '
                "e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
            )
        return _OpSpec(step_id, "Sleep", iso_utc(until), None)

    def _wait_spec(
        self, step_id: str, event: str, timeout: Duration, if_exp: str | None
    ) -> _OpSpec:
        what = f'step.wait_for_event("{step_id}")'
        opts = {"event": event, "if": if_exp, "timeout": to_time_string(timeout, what)}
        return _OpSpec(step_id, "WaitForEvent", event, opts, Event | None)

    def _invoke_spec(
        self,
        step_id: str,
        app_id: str | None,
        function_id: str,
        data: Mapping[str, Any] | None,
        user: Mapping[str, Any] | None,
        timeout: Duration | None,
        v: str | None,
        output_type: Any = None,
    ) -> _OpSpec:
        what = f'step.invoke("{step_id}")'
        payload: dict[str, Any] = {"data": dict(data or {}), "v": v}
        if user is not None:
            payload["user"] = dict(user)
        opts = {
            "function_id": f"{app_id or self._client.app_id}-{function_id}",
            "payload": payload,
            "timeout": None if timeout is None else to_time_string(timeout, what),
        }
        return _OpSpec(step_id, "InvokeFunction", None, opts, output_type)

    def _function_spec(self, step_id: str, function: Function[Any], **kwargs: Any) -> _OpSpec:
        return self._invoke_spec(
            step_id,
            function.app_id,
            function.local_id,
            output_type=declared_output_type(function.handler),
            **kwargs,
        )


class Step(_StepBase):
    """``ctx.step`` of an async function. Every method is awaited."""

    __slots__ = ()

    async def _server_op(self, spec: _OpSpec) -> Any:
        info = self._replay.lookup(spec.user_id, spec.output_type)
        if self._mw_on and not self._replay.replaying:
            await self._mw.start()
        if type(info) is not _StepInfo:  # memoized: its value
            return info
        op = spec.op(info)
        await self._replay.settle(info, op)
        self._replay.plan_op(info, op)

    async def run(
        self,
        step_id: str,
        handler: Callable[..., Awaitable[T]] | Callable[..., T],
        *handler_args: Any,
        output_type: Any = EMPTY,
    ) -> T:
        """Run ``handler(*handler_args)`` once per run and memoize its JSON result.

        ``handler`` may be ``async`` or sync (a sync one runs in a worker thread). Its return
        annotation (or ``output_type``) decides the type a memoized value is decoded to.
        """
        # The hot path of every replay: keep it lean.
        info = self._replay.lookup(step_id, output_type, handler)
        if self._mw_on and not self._replay.replaying:
            await self._mw.start()
        if type(info) is not _StepInfo:  # memoized: its value, typed
            return info  # type: ignore[no-any-return]
        await self._replay.settle(info, None)
        self._replay.plan_run(info)
        try:
            output = await call_user(handler, handler_args, self._invoker)
        except Exception as exc:
            self._replay.step_failed(exc)
        self._replay.step_done(output)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for ``duration`` (int ms, timedelta, or a string like ``"1h30m"``)."""
        await self._server_op(self._sleep_spec(step_id, duration))

    async def sleep_until(self, step_id: str, until: _dt.datetime) -> None:
        """Pause the run until the aware datetime ``until``."""
        await self._server_op(self._sleep_until_spec(step_id, until))

    async def wait_for_event(
        self, step_id: str, *, event: str, timeout: Duration, if_exp: str | None = None
    ) -> Event | None:
        """Wait for an event named ``event`` (matching ``if_exp``); None on timeout."""
        return cast(
            "Event | None", await self._server_op(self._wait_spec(step_id, event, timeout, if_exp))
        )

    async def invoke(
        self,
        step_id: str,
        *,
        function: Function[T],
        data: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        v: str | None = None,
    ) -> T:
        """Run another function and return its output (decoded to its return annotation)."""
        spec = self._function_spec(step_id, function, data=data, user=user, timeout=timeout, v=v)
        return cast(T, await self._server_op(spec))

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
        return await self._server_op(
            self._invoke_spec(step_id, app_id, function_id, data, user, timeout, v)
        )

    async def send_event(self, step_id: str, events: Event | Sequence[Event]) -> list[str]:
        """Send events once per run (a memoized step); return their ids."""
        return await self.run(step_id, self._client.send, events)


class StepSync(_StepBase):
    """``ctx.step`` of a sync function: the same methods as :class:`Step`, without ``await``."""

    __slots__ = ()

    def _lookup(self, step_id: str, output_type: Any = None, handler: Any = None) -> Any:
        info = self._replay.lookup(step_id, output_type, handler)
        if self._mw_on and not self._replay.replaying:
            self._mw.start_from_thread()
        return info

    def _server_op(self, spec: _OpSpec) -> Any:
        info = self._lookup(spec.user_id, spec.output_type)
        if type(info) is not _StepInfo:  # memoized: its value
            return info
        self._replay.plan_op(info, spec.op(info))

    def run(
        self, step_id: str, handler: Callable[..., T], *handler_args: Any, output_type: Any = EMPTY
    ) -> T:
        """Run ``handler(*handler_args)`` once per run and memoize its JSON result."""
        info = self._lookup(step_id, output_type, handler)
        if type(info) is not _StepInfo:  # memoized: its value, typed
            return info  # type: ignore[no-any-return]
        self._replay.plan_run(info)
        try:
            output = handler(*handler_args)
        except Exception as exc:
            self._replay.step_failed(exc)
        self._replay.step_done(output)

    def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for ``duration`` (int ms, timedelta, or a string like ``"1h30m"``)."""
        self._server_op(self._sleep_spec(step_id, duration))

    def sleep_until(self, step_id: str, until: _dt.datetime) -> None:
        """Pause the run until the aware datetime ``until``."""
        self._server_op(self._sleep_until_spec(step_id, until))

    def wait_for_event(
        self, step_id: str, *, event: str, timeout: Duration, if_exp: str | None = None
    ) -> Event | None:
        """Wait for an event named ``event`` (matching ``if_exp``); None on timeout."""
        return cast(
            "Event | None", self._server_op(self._wait_spec(step_id, event, timeout, if_exp))
        )

    def invoke(
        self,
        step_id: str,
        *,
        function: Function[T],
        data: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        v: str | None = None,
    ) -> T:
        """Run another function and return its output (decoded to its return annotation)."""
        spec = self._function_spec(step_id, function, data=data, user=user, timeout=timeout, v=v)
        return cast(T, self._server_op(spec))

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
        return self._server_op(
            self._invoke_spec(step_id, app_id, function_id, data, user, timeout, v)
        )

    def send_event(self, step_id: str, events: Event | Sequence[Event]) -> list[str]:
        """Send events once per run (a memoized step); return their ids."""
        return self.run(step_id, self._client.send_sync, events)


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
