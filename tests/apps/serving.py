"""One Inngest app served every way the serving tests exercise.

Every transport serves the same four endpoints, each backed by its own client:

=========  ======================  ===========================================================
mount      path                    client
=========  ======================  ===========================================================
dev        ``/api/inngest``        dev mode
cloud      ``/cloud/api/inngest``  cloud mode, signing key and fallback key
strict     ``/strict/api/inngest`` cloud mode, signing key only
small      ``/small/api/inngest``  dev mode, ``max_body_size=SMALL_LIMIT``
=========  ======================  ===========================================================

Any other path reaches the host app, which answers ``home``. ``CALLS`` counts handler
invocations (per process) so tests can prove that a refused request ran no user code.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
from typing import Any

import flask
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from inngest_asgi import (
    Context,
    ContextSync,
    Function,
    Inngest,
    InngestASGI,
    InngestWSGI,
    NonRetriableError,
    RetryAfterError,
    StepError,
    TriggerCron,
    TriggerEvent,
)
from tests.protocol import SIGNING_KEY, SIGNING_KEY_FALLBACK

APP_ID = "serving-app"
EVENT_KEY = "test-event-key-123"
SMALL_LIMIT = 1024
MOUNTS = {
    "dev": "/api/inngest",
    "cloud": "/cloud/api/inngest",
    "strict": "/strict/api/inngest",
    "small": "/small/api/inngest",
}
#: Handler invocations in this process, by local function id.
CALLS: collections.Counter[str] = collections.Counter()
RETRY_AT = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def make_clients(api_url: str) -> dict[str, Inngest]:
    """The client behind each mount; all of them sync against ``api_url``."""
    urls = {"api_base_url": api_url, "event_api_base_url": api_url}
    dev = Inngest(app_id=APP_ID, is_production=False, **urls)
    return {
        "dev": dev,
        "cloud": Inngest(
            app_id=APP_ID,
            is_production=True,
            signing_key=SIGNING_KEY,
            signing_key_fallback=SIGNING_KEY_FALLBACK,
            event_key=EVENT_KEY,
            **urls,
        ),
        "strict": Inngest(app_id=APP_ID, is_production=True, signing_key=SIGNING_KEY, **urls),
        "small": dev,
    }


def _boom() -> None:
    raise ValueError("kaboom")


def make_functions(client: Inngest) -> list[Function[Any]]:
    """The functions every mount serves (new objects per client)."""
    fn = client.create_function

    @fn(
        fn_id="hello",
        name="Hello",
        trigger=[
            TriggerEvent(event="app/hello", expression="event.data.n > 0"),
            TriggerCron(cron="0 0 * * *"),
        ],
        retries=3,
    )
    async def hello(ctx: Context) -> str:
        CALLS["hello"] += 1
        await ctx.step.run("my-step", lambda: {"ok": True})
        return "done"

    @fn(fn_id="steps-async", trigger=TriggerEvent(event="app/steps"))
    async def steps_async(ctx: Context) -> dict[str, Any]:
        async def double(n: int) -> int:
            return n * 2

        a = await ctx.step.run("load", double, ctx.event.data.get("n", 1))  # async callable
        b = await ctx.step.run("add", lambda x: x + 1, a)  # sync callable, worker thread
        counted = [await ctx.step.run("count", lambda i=i: i * 10) for i in range(3)]
        return {"a": a, "b": b, "counted": counted, "run_id": ctx.run_id}

    @fn(fn_id="steps-sync", trigger=TriggerEvent(event="app/steps"))
    def steps_sync(ctx: ContextSync) -> dict[str, Any]:
        a = ctx.step.run("load", lambda n: n * 2, ctx.event.data.get("n", 1))
        b = ctx.step.run("add", lambda x: x + 1, a)
        counted = [ctx.step.run("count", lambda i=i: i * 10) for i in range(3)]
        return {"a": a, "b": b, "counted": counted, "run_id": ctx.run_id}

    @fn(fn_id="parallel-async", trigger=TriggerEvent(event="app/parallel"))
    async def parallel_async(ctx: Context) -> list[str]:
        async def a() -> str:
            return "A"

        results = await ctx.group.parallel(
            (lambda: ctx.step.run("step-a", a), lambda: ctx.step.run("step-b", lambda: "B"))
        )
        return list(results)

    @fn(fn_id="parallel-sync", trigger=TriggerEvent(event="app/parallel"))
    def parallel_sync(ctx: ContextSync) -> list[str]:
        results = ctx.group.parallel(
            (
                lambda: ctx.step.run("step-a", lambda: "A"),
                lambda: ctx.step.run("step-b", lambda: "B"),
            )
        )
        return list(results)

    @fn(fn_id="flaky", trigger=TriggerEvent(event="app/flaky"))
    async def flaky(ctx: Context) -> dict[str, int]:
        CALLS["flaky"] += 1
        if ctx.attempt < 1:
            raise RuntimeError("transient failure")
        return {"attempt": ctx.attempt}

    @fn(fn_id="flaky-step", trigger=TriggerEvent(event="app/flaky"))
    def flaky_step(ctx: ContextSync) -> str:
        def work() -> str:
            if ctx.attempt < 2:
                raise ConnectionError("try again")
            return "ok"

        return ctx.step.run("work", work)

    @fn(fn_id="non-retriable", trigger=TriggerEvent(event="app/fail"))
    async def non_retriable(ctx: Context) -> None:
        raise NonRetriableError("do not retry me")

    @fn(fn_id="retry-after", trigger=TriggerEvent(event="app/fail"))
    def retry_after(ctx: ContextSync) -> None:
        raise RetryAfterError("later", RETRY_AT)

    @fn(fn_id="step-fails-caught", trigger=TriggerEvent(event="app/fail"))
    async def step_fails_caught(ctx: Context) -> dict[str, str]:
        try:
            await ctx.step.run("boom", _boom)
        except StepError as err:
            name, message = err.name, err.message
        else:
            return {"caught": "nothing"}
        recovered = await ctx.step.run("recover", lambda: f"recovered from {name}")
        return {"caught": message, "recovered": recovered}

    @fn(fn_id="step-fails-uncaught", trigger=TriggerEvent(event="app/fail"))
    def step_fails_uncaught(ctx: ContextSync) -> str:
        ctx.step.run("boom", _boom)
        return "unreachable"

    @fn(fn_id="sentinel", trigger=TriggerEvent(event="app/sentinel"))
    async def sentinel(ctx: Context) -> str:
        CALLS["sentinel"] += 1
        return "ran"

    return [
        hello,
        steps_async,
        steps_sync,
        parallel_async,
        parallel_sync,
        flaky,
        flaky_step,
        non_retriable,
        retry_after,
        step_fails_caught,
        step_fails_uncaught,
        sentinel,
    ]


def _size(mount: str) -> dict[str, int]:
    return {"max_body_size": SMALL_LIMIT} if mount == "small" else {}


# --- ASGI hosts ------------------------------------------------------------------------------


async def _home(request: Any) -> PlainTextResponse:
    return PlainTextResponse("home")


def starlette_app(api_url: str) -> Starlette:
    """``Mount(path, InngestASGI(...))`` per endpoint, and a home route."""
    clients = make_clients(api_url)
    routes: list[Any] = [
        Mount(path, InngestASGI(clients[m], make_functions(clients[m]), **_size(m)))
        for m, path in MOUNTS.items()
    ]
    return Starlette(routes=[*routes, Route("/", _home)])


def fastapi_app(api_url: str) -> FastAPI:
    """``app.mount(path, InngestASGI(...))`` per endpoint, and a home route."""
    clients = make_clients(api_url)
    app = FastAPI()

    @app.get("/", response_class=PlainTextResponse)
    def home() -> str:
        return "home"

    for m, path in MOUNTS.items():
        app.mount(path, InngestASGI(clients[m], make_functions(clients[m]), **_size(m)))
    return app


class OtherApp:
    """A bare ASGI app: answers ``home`` and records the lifespan messages it receives."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"home"})


def asgi_wrap(api_url: str) -> tuple[InngestASGI, OtherApp]:
    """``InngestASGI(..., app=other)`` chained once per endpoint around a bare ASGI app."""
    clients = make_clients(api_url)
    other = OtherApp()
    app: Any = other
    for m, path in reversed(MOUNTS.items()):
        app = InngestASGI(clients[m], make_functions(clients[m]), app=app, path=path, **_size(m))
    return app, other


# --- WSGI hosts ------------------------------------------------------------------------------


def wsgi_chain(api_url: str, host: Any) -> InngestWSGI:
    """``InngestWSGI(..., app=host)`` chained once per endpoint."""
    clients = make_clients(api_url)
    app = host
    for m, path in reversed(MOUNTS.items()):
        app = InngestWSGI(clients[m], make_functions(clients[m]), app=app, path=path, **_size(m))
    return app


def flask_app(api_url: str) -> flask.Flask:
    """``flask_app.wsgi_app = InngestWSGI(..., app=flask_app.wsgi_app)``."""
    app = flask.Flask("serving_flask")

    @app.get("/")
    def home() -> str:
        return "home"

    app.wsgi_app = wsgi_chain(api_url, app.wsgi_app)  # type: ignore[method-assign]
    return app


def plain_home(environ: Any, start_response: Any) -> list[bytes]:
    """A bare WSGI app answering ``home``."""
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"home"]


def wsgi_from_env() -> InngestWSGI:
    """Factory for gunicorn: ``gunicorn 'tests.apps.serving:wsgi_from_env()'``."""
    return wsgi_chain(os.environ["SERVING_API_URL"], plain_home)
