"""Middleware: hooks around a function's execution and around event sends.

One base class. Any hook may be a plain method or ``async def``: the runner awaits what returns
an awaitable. Order: client-level middleware first, then function-level; the "after" hooks
(``after_execution``, ``after_send_events``) and ``transform_output`` run in reverse order, so
the first middleware wraps all the others.

Hook timeline of one request::

    transform_input(ctx, function, steps)   before the function is called
    before_execution()                      once per request, when memoized steps run out
    after_execution()                       after new code ran (a step, or the function's end)
    transform_output(result)                for a step's output, or the function's output/error
    before_response()                       just before the response is returned

and ``before_send_events(events)`` / ``after_send_events(result)`` around ``client.send``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from ._invoke import Invoker

if TYPE_CHECKING:
    from ._client import Inngest
    from ._context import Context, ContextSync
    from ._function import Function
    from ._messages import Request
    from ._wire import Event

__all__ = [
    "Middleware",
    "MiddlewareSync",
    "SendEventsResult",
    "StepMemos",
    "TransformOutputResult",
    "TransformOutputStepInfo",
]


@dataclasses.dataclass
class TransformOutputStepInfo:
    """The step whose output is being transformed."""

    id: str
    op: str
    opts: dict[str, Any] | None


@dataclasses.dataclass
class TransformOutputResult:
    """What ``transform_output`` receives. Changes to ``output`` and ``error`` are kept."""

    error: BaseException | None
    output: Any
    step: TransformOutputStepInfo | None


@dataclasses.dataclass
class SendEventsResult:
    """What ``after_send_events`` receives: the ids sent, and the error if sending failed."""

    ids: list[str]
    error: str | None = None


class StepMemos(MutableMapping[str, Any]):
    """The memoized step results of this request, by hashed step id.

    Each value is the memo as the server sent it (``{"data": ...}``, ``{"error": ...}``, an
    event, or None). ``transform_input`` may rewrite values, e.g. to decrypt them.
    """

    __slots__ = ("_memos",)

    def __init__(self, memos: dict[str, Any]) -> None:
        self._memos = memos

    def __getitem__(self, key: str) -> Any:
        return self._memos[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._memos[key] = value

    def __delitem__(self, key: str) -> None:
        del self._memos[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._memos)

    def __len__(self) -> int:
        return len(self._memos)


class Middleware:
    """Base class for middleware; override the hooks you need, sync or ``async``.

    Constructed once per request as ``cls(client, raw_request)`` (``raw_request`` is None around
    ``client.send``); pass the class itself, or any factory with that signature.
    """

    def __init__(self, client: Inngest, raw_request: Request | None) -> None:
        self.client = client
        self.raw_request = raw_request

    def transform_input(
        self, ctx: Context | ContextSync, function: Function[Any], steps: StepMemos
    ) -> Any:
        """Before the function runs: may change ``ctx.event`` data or the memos."""

    def before_execution(self) -> Any:
        """Once per request, when the function starts running code that has not run before."""

    def after_execution(self) -> Any:
        """After the new code of this request ran."""

    def transform_output(self, result: TransformOutputResult) -> Any:
        """May change the output (or error) of a step or of the function."""

    def before_response(self) -> Any:
        """Just before the SDK answers the request."""

    def before_send_events(self, events: list[Event]) -> Any:
        """Before ``client.send``; may change the events in place."""

    def after_send_events(self, result: SendEventsResult) -> Any:
        """After ``client.send``, with the ids sent or the error."""


#: Compatibility alias: with inngest-asgi one class takes sync and async hooks alike.
MiddlewareSync = Middleware

MiddlewareFactory = Callable[["Inngest", "Request | None"], Middleware]


def _overrides(instance: Middleware, hook: str) -> bool:
    return getattr(type(instance), hook, None) is not getattr(Middleware, hook)


async def _await(value: Any) -> Any:
    return await value


class MiddlewareRunner:
    """The middleware instances of one request, and how to call their hooks."""

    __slots__ = ("_invoker", "_items", "active", "started")

    def __init__(self, items: Sequence[Middleware], invoker: Invoker) -> None:
        self._items = list(items)
        self._invoker = invoker
        #: Whether there is any middleware (hooks have something to call).
        self.active = bool(self._items)
        self.started = False

    @classmethod
    def build(
        cls,
        factories: Sequence[MiddlewareFactory],
        client: Inngest,
        request: Request | None,
        invoker: Invoker,
    ) -> MiddlewareRunner:
        if not factories:
            return _NO_MIDDLEWARE  # never started: hooks run only when there is middleware
        return cls([factory(client, request) for factory in factories], invoker)

    def __bool__(self) -> bool:
        return bool(self._items)

    def _targets(self, hook: str, reverse: bool) -> list[Middleware]:
        items = reversed(self._items) if reverse else self._items
        return [item for item in items if _overrides(item, hook)]

    async def call(self, hook: str, *args: Any, reverse: bool = False) -> None:
        """Call ``hook`` on every middleware from the event loop."""
        for item in self._targets(hook, reverse):
            result = getattr(item, hook)(*args)
            if inspect.isawaitable(result):
                await result

    def call_from_thread(self, hook: str, *args: Any) -> None:
        """Call ``hook`` from sync user code running in a worker thread; async hooks are sent
        back to the event loop through the invoker."""
        for item in self._targets(hook, reverse=False):
            result = getattr(item, hook)(*args)
            if inspect.isawaitable(result):
                self._invoker.run_async_from_thread(_await, result)

    async def start(self) -> None:
        """``before_execution``, once."""
        if not self.started:
            self.started = True
            await self.call("before_execution")

    def start_from_thread(self) -> None:
        if not self.started:
            self.started = True
            self.call_from_thread("before_execution")


class _NoInvoker:
    async def run_sync(self, fn: Any, *args: Any) -> Any:  # pragma: no cover - never called
        raise RuntimeError("no middleware, nothing to invoke")

    def run_async_from_thread(self, fn: Any, *args: Any) -> Any:  # pragma: no cover
        raise RuntimeError("no middleware, nothing to invoke")


_NO_MIDDLEWARE = MiddlewareRunner([], _NoInvoker())
