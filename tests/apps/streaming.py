"""Functions slower than the keepalive interval, served with streaming on.

``gunicorn 'tests.apps.streaming:wsgi_app()'`` serves the WSGI form; ``asgi_app()`` the ASGI one.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from inngest_asgi import (
    Context,
    ContextSync,
    Function,
    Inngest,
    InngestASGI,
    InngestWSGI,
    TriggerEvent,
)
from tests.protocol import SIGNING_KEY

#: Seconds between keepalive bytes; every slow step takes several of them.
KEEPALIVE = 0.1
SLOW = 0.6


def make_client(cloud: bool = False) -> Inngest:
    if cloud:
        return Inngest(app_id="streaming", is_production=True, signing_key=SIGNING_KEY)
    return Inngest(app_id="streaming", is_production=False)


def make_functions(client: Inngest) -> list[Function[Any]]:
    trigger = TriggerEvent(event="app/slow")

    @client.create_function(fn_id="slow-async", trigger=trigger)
    async def slow_async(ctx: Context) -> str:
        async def work() -> str:
            await anyio.sleep(SLOW)
            return "slept"

        await ctx.step.run("nap", work)
        return "done"

    @client.create_function(fn_id="slow-sync", trigger=trigger)
    def slow_sync(ctx: ContextSync) -> str:
        def work() -> str:
            time.sleep(SLOW)
            return "slept"

        ctx.step.run("nap", work)
        return "done"

    return [slow_async, slow_sync]


def asgi_app(cloud: bool = False) -> InngestASGI:
    client = make_client(cloud)
    return InngestASGI(
        client,
        make_functions(client),
        streaming=True,
        keepalive_interval=KEEPALIVE,
    )


def wsgi_app(cloud: bool = False) -> InngestWSGI:
    client = make_client(cloud)
    return InngestWSGI(
        client,
        make_functions(client),
        streaming=True,
        keepalive_interval=KEEPALIVE,
    )


#: For servers started from the command line (hypercorn, gunicorn with uvicorn workers).
asgi = asgi_app()
