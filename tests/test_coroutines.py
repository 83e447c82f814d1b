"""Driving coroutines by hand (``_coroutines``): what an ``await`` or a task would do, slice by
slice, under a real asyncio event loop."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from inngest_asgi._coroutines import first_slice, resume

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="outside")


async def no_wait(value: int) -> int:
    return value * 2


async def waits(times: int, log: list[str]) -> str:
    seen.set("inside")
    for _ in range(times):
        await asyncio.sleep(0)
        log.append(seen.get())
    return "done"


def drive(coro: Any, run: Any = None) -> Any:
    async def main() -> Any:
        done, value = first_slice(coro) if run is None else first_slice(coro, run)
        if done:
            return value
        return await (resume(coro, value) if run is None else resume(coro, value, run))

    return asyncio.run(main())


def test_a_coroutine_that_never_waits_finishes_in_its_first_slice() -> None:
    coro = no_wait(21)
    assert first_slice(coro) == (True, 42)


@pytest.mark.parametrize("times", [1, 3])
def test_resume_finishes_what_the_first_slice_started(times: int) -> None:
    log: list[str] = []
    assert drive(waits(times, log)) == "done"
    assert log == ["inside"] * times


def test_each_slice_runs_in_the_given_context() -> None:
    """With a context's ``run``, what the coroutine sets stays in that context, across waits."""
    context = contextvars.copy_context()
    log: list[str] = []
    assert drive(waits(2, log), context.run) == "done"
    assert log == ["inside", "inside"]
    assert context[seen] == "inside"
    assert seen.get() == "outside"


def test_errors_and_cancellation_reach_the_coroutine() -> None:
    notes: list[str] = []

    async def victim() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            notes.append("cancelled")
            raise
        finally:
            notes.append("finally")

    async def main() -> None:
        coro = victim()

        async def driver() -> Any:
            done, value = first_slice(coro)
            assert not done
            return await resume(coro, value)

        task = asyncio.ensure_future(driver())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert notes == ["cancelled", "finally"]


def test_an_exception_after_a_wait_propagates() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        drive(fails())
