"""A caller that goes away mid-request: the async function it started is cancelled, not left
running, under a real uvicorn server."""

from __future__ import annotations

import threading
import time

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
