"""Driving a coroutine by hand: one slice at a time, each in a context of one's choosing.

An ``await`` does this implicitly. Doing it explicitly lets the SDK run a function's slices in
context variables of their own without the cost of a task, and learn whether an attempt ever
waits (most replays never do) before paying for anything that only a waiting attempt needs.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__: list[str] = []

T = TypeVar("T")
Runner = Callable[..., Any]


def call(fn: Callable[[T], Any], arg: T) -> Any:
    """The plain runner: the slice runs in the caller's own context."""
    return fn(arg)


def first_slice(coro: Coroutine[Any, Any, Any], run: Runner = call) -> tuple[bool, Any]:
    """Run ``coro`` up to its first wait: ``(True, result)`` if it finished without waiting,
    else ``(False, what it waits on)``, to hand to :func:`resume`."""
    try:
        return False, run(coro.send, None)
    except StopIteration as stop:
        return True, stop.value


@types.coroutine
def resume(
    coro: Coroutine[Any, Any, T], pending: Any, run: Runner = call
) -> Generator[Any, Any, T]:
    """Await the rest of ``coro``, which waits on ``pending``: what the event loop sends or
    throws in goes to ``coro``, each slice through ``run``."""
    while True:
        try:
            value = yield pending
        except GeneratorExit:
            run(coro.close)
            raise
        except BaseException as exc:  # cancellation and the like go into the coroutine
            step: Callable[[Any], Any] = coro.throw
            arg: Any = exc
        else:
            step, arg = coro.send, value
        try:
            pending = run(step, arg)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
