"""The one place that decides how a user callable is invoked: awaited, or run in a thread.

Shells choose the thread: under ASGI a bounded pool of worker threads; under WSGI the request's
own thread (see ``_bridge``), so thread-locals of Flask or Django keep working.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import threading
import types
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import anyio.from_thread
import anyio.to_thread

__all__: list[str] = []

T = TypeVar("T")

#: Worker threads of an :class:`InngestASGI` app when ``max_threads`` is not given.
DEFAULT_MAX_THREADS = 40


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


class _Worker(threading.local):
    #: The event loop that handed this worker thread its current call.
    loop: asyncio.AbstractEventLoop | None = None


_worker = _Worker()


def _in_worker(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    _worker.loop = loop
    try:
        return fn(*args)
    finally:
        _worker.loop = None


class ThreadPoolInvoker:
    """Runs sync callables in worker threads, at most ``max_threads`` at a time.

    On asyncio the threads are a :class:`~concurrent.futures.ThreadPoolExecutor` of this app's
    own (a call costs one hand-over each way); on other event loops (trio) calls go to anyio's
    worker threads. Either way the caller's context variables go with the call, and a call that
    has started is waited for even when its caller is cancelled: a thread cannot be interrupted.
    """

    __slots__ = ("_limiter", "_max_threads", "_pool")

    def __init__(self, max_threads: int | None = None) -> None:
        self._max_threads = max_threads or DEFAULT_MAX_THREADS
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self._max_threads)
            return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        pool = self._pool
        if pool is None:
            pool = self._pool = concurrent.futures.ThreadPoolExecutor(
                self._max_threads, thread_name_prefix="inngest-asgi"
            )
        context = contextvars.copy_context()
        call = pool.submit(context.run, _in_worker, loop, fn, args)
        try:
            return await asyncio.wrap_future(call, loop=loop)
        except asyncio.CancelledError:
            if not call.cancelled():  # it runs: wait for its end, then be cancelled
                await _wait_uncancellable(asyncio.wrap_future(call, loop=loop))
            raise

    def run_async_from_thread(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        loop = _worker.loop
        if loop is None:  # one of anyio's worker threads
            return anyio.from_thread.run(fn, *args)
        return asyncio.run_coroutine_threadsafe(fn(*args), loop).result()


async def _wait_uncancellable(future: asyncio.Future[Any]) -> None:
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait((future,))
    if not future.cancelled():
        future.exception()  # its outcome is dropped: mark it seen


async def call_user(fn: Callable[..., Any], args: tuple[Any, ...], invoker: Invoker) -> Any:
    """Call a user callable from async code, whatever its kind."""
    if (type(fn) is types.FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE) or (
        is_async_callable(fn)
    ):
        return await fn(*args)
    result = await invoker.run_sync(fn, *args)
    if inspect.isawaitable(result):  # a sync lambda returning a coroutine
        result = await result
    return result
