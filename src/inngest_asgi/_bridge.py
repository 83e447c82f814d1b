"""Running the async core from sync hosts (WSGI servers, serverless handlers).

asgiref's ``async_to_sync`` would start a thread and an event loop for every request (about half
a millisecond each) and hop between threads for every sync call. Here each host thread keeps an
event loop of its own and runs the core on it, in place: a sync function is called right there,
on the request thread (so a framework's thread-locals keep working), and async functions run on
that thread's loop, shared with no other request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__: list[str] = []

T = TypeVar("T")


class _ThreadLoop:
    """This thread's event loop, closed when the thread's locals go (the thread ended)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        self.loop.close()


_local = threading.local()


class InlineInvoker:
    """Sync callables run in place: the loop belongs to this request's thread alone."""

    __slots__ = ()

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def run_async_from_thread(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        # Called from sync user code, which holds this thread's loop: an async middleware hook
        # runs on a loop of its own in a helper thread, with the caller's contextvars.
        context = contextvars.copy_context()
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="inngest-hook") as pool:
            return pool.submit(context.run, asyncio.run, fn(*args)).result()


INLINE = InlineInvoker()


def run(make: Callable[[InlineInvoker], Coroutine[Any, Any, T]]) -> T:
    """Run ``make(invoker)`` to its end on this thread's event loop."""
    holder: _ThreadLoop | None = getattr(_local, "holder", None)
    if holder is None:
        holder = _local.holder = _ThreadLoop()
    loop = holder.loop
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "a sync Inngest endpoint (InngestWSGI, digital_ocean.serve) was called from a thread "
            "that runs an event loop; serve InngestASGI from async code instead"
        )
    try:
        return loop.run_until_complete(make(INLINE))
    finally:
        # Step calls that were waiting on a sibling (asyncio.gather) unwind now, not later.
        pending = asyncio.all_tasks(loop)
        if pending:
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
