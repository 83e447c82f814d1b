"""The one place that decides how a user callable is invoked: awaited, or run in a thread.

Shells choose the thread: under ASGI a bounded anyio worker pool; under WSGI the request's own
thread (see ``_bridge``), so thread-locals of Flask or Django keep working.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import anyio.from_thread
import anyio.to_thread

__all__: list[str] = []

T = TypeVar("T")


def is_async_callable(obj: object) -> bool:
    """True for ``async def`` functions, also behind ``functools.partial`` or ``__call__``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004
    )


class Invoker(Protocol):
    """How sync user code is run from the async request path, and how that code gets back."""

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T: ...

    def run_async_from_thread(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T: ...


class ThreadPoolInvoker:
    """Runs sync callables in anyio's worker threads, at most ``limiter`` at a time."""

    __slots__ = ("_limiter",)

    def __init__(self, max_threads: int | None = None) -> None:
        self._limiter = anyio.CapacityLimiter(max_threads) if max_threads else None

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        # anyio copies the caller's contextvars into the worker thread.
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def run_async_from_thread(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return anyio.from_thread.run(fn, *args)


async def call_user(fn: Callable[..., Any], args: tuple[Any, ...], invoker: Invoker) -> Any:
    """Call a user callable from async code, whatever its kind."""
    if is_async_callable(fn):
        return await fn(*args)
    result = await invoker.run_sync(fn, *args)
    if inspect.isawaitable(result):  # a sync lambda returning a coroutine
        result = await result
    return result
