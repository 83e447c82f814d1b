"""A caller that goes away mid-request: the async function it started is cancelled, not left
running, under a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable

import anyio
import httpx
import msgspec
import pytest

import inngest_asgi as inngest

from .conftest import uvicorn_server
from .protocol import call_body

client = inngest.Inngest(app_id="disconnect", is_production=False)
started = threading.Event()
cancelled = threading.Event()


@client.create_function(fn_id="hang", trigger=inngest.TriggerEvent(event="app/hang"))
async def hang(ctx: inngest.Context) -> None:
    async def forever() -> None:
        started.set()
        try:
            await anyio.sleep(60)
        except BaseException:
            cancelled.set()
            raise

    await ctx.step.run("forever", forever)


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streaming"])
def test_disconnect_cancels_the_running_function(streaming: bool) -> None:
    started.clear()
    cancelled.clear()
    app = inngest.InngestASGI(client, [hang], streaming=streaming, keepalive_interval=0.1)
    with uvicorn_server(app) as url, httpx.Client(base_url=url, timeout=0.5) as http:
        request = http.build_request(
            "POST",
            "/api/inngest",
            params={"fnId": hang.id, "stepId": "step"},
            content=msgspec.json.encode(call_body()),
        )
        if streaming:
            # Keepalive bytes keep arriving: hang up after the first one.
            response = http.send(request, stream=True)
            try:
                assert response.status_code == 201
                next(response.iter_raw())
            finally:
                response.close()
        else:
            with pytest.raises(httpx.ReadTimeout):
                http.send(request)
        assert started.wait(5)
        deadline = time.monotonic() + 5
        while not cancelled.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cancelled.is_set(), "the function kept running after its caller left"


#: Called by hang_twice right after it swallowed its first cancellation.
on_swallowed: list[Callable[[], object]] = []


@client.create_function(fn_id="hang-twice", trigger=inngest.TriggerEvent(event="app/hang"))
async def hang_twice(ctx: inngest.Context) -> None:
    """Swallows its first cancellation and waits again, so the host's cancellation can arrive
    while the attempt is still running."""

    async def twice() -> None:
        started.set()
        try:
            await anyio.sleep(60)
        except BaseException:  # the mistake under test
            for hook in on_swallowed:
                hook()
            cancelled.set()
        await anyio.sleep(60)

    await ctx.step.run("twice", twice)


async def _call_and_leave(app: inngest.InngestASGI, fn_id: str, *, host_cancels: bool) -> bool:
    """Call ``fn_id`` as an ASGI server would and report a disconnect once it runs; with
    ``host_cancels``, cancel the request's task as well right after the function swallowed the
    watch's cancellation. Whether the request's task ended cancelled."""
    sent: list[object] = []
    left = asyncio.Event()
    messages = [{"type": "http.request", "body": msgspec.json.encode(call_body())}]

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop(0)
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message["type"])

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/api/inngest",
        "raw_path": b"/api/inngest",
        "root_path": "",
        "query_string": f"fnId={fn_id}&stepId=step".encode(),
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 8000),
    }
    task = asyncio.ensure_future(app(scope, receive, send))  # type: ignore[arg-type]
    on_swallowed[:] = [task.cancel] if host_cancels else []
    while not started.is_set():
        await asyncio.sleep(0.01)
    left.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    assert sent == []  # the caller left: nothing is answered
    return task.cancelled()


@pytest.mark.parametrize(
    ("fn_id", "host_cancels"),
    [(hang.id, False), (hang_twice.id, False), (hang_twice.id, True)],
    ids=["caller-left", "caller-left-swallowed-once", "host-cancels-too"],
)
def test_the_watch_takes_back_only_its_own_cancellation(fn_id: str, host_cancels: bool) -> None:
    """The watch cancels the attempt and nothing is answered; the request's task then ends
    normally, unless the host cancelled it as well: that cancellation stands. (Python 3.10 keeps
    no count of a task's cancellations, so there the host's is taken back too.)"""
    started.clear()
    cancelled.clear()
    app = inngest.InngestASGI(client, [hang, hang_twice])

    async def main() -> bool:
        ended_cancelled = await _call_and_leave(app, fn_id, host_cancels=host_cancels)
        current = asyncio.current_task()
        assert current is not None
        if sys.version_info >= (3, 11):
            assert current.cancelling() == 0
        return ended_cancelled

    assert asyncio.run(main()) is (host_cancels and sys.version_info >= (3, 11))
