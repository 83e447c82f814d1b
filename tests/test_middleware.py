"""Middleware: hook order, sync and async hooks, sync and async functions, output transforms."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import inngest_asgi as inngest
from inngest_asgi._engine import hash_step_id

from .core import call, handler, json
from .protocol import drive

trigger = inngest.TriggerEvent(event="app/hello")


def _recorder(log: list[str], tag: str, *, async_hooks: bool) -> type[inngest.Middleware]:
    """A middleware class that records each hook call as ``"<tag>.<hook>"``."""

    class Sync(inngest.Middleware):
        def transform_input(self, ctx: Any, function: Any, steps: Any) -> None:
            log.append(f"{tag}.transform_input")

        def before_execution(self) -> None:
            log.append(f"{tag}.before_execution")

        def after_execution(self) -> None:
            log.append(f"{tag}.after_execution")

        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            log.append(f"{tag}.transform_output")

        def before_response(self) -> None:
            log.append(f"{tag}.before_response")

    class Async(inngest.Middleware):
        async def transform_input(self, ctx: Any, function: Any, steps: Any) -> None:
            log.append(f"{tag}.transform_input")

        async def before_execution(self) -> None:
            log.append(f"{tag}.before_execution")

        async def after_execution(self) -> None:
            log.append(f"{tag}.after_execution")

        async def transform_output(self, result: inngest.TransformOutputResult) -> None:
            log.append(f"{tag}.transform_output")

        async def before_response(self) -> None:
            log.append(f"{tag}.before_response")

    return Async if async_hooks else Sync


@pytest.mark.parametrize("async_fn", [True, False], ids=["async-fn", "sync-fn"])
@pytest.mark.parametrize("async_hooks", [True, False], ids=["async-hooks", "sync-hooks"])
def test_hook_order(async_fn: bool, async_hooks: bool) -> None:
    log: list[str] = []
    client = inngest.Inngest(
        app_id="mw",
        is_production=False,
        middleware=[_recorder(log, "client", async_hooks=async_hooks)],
    )
    client.add_middleware(_recorder(log, "second", async_hooks=not async_hooks))

    if async_fn:

        @client.create_function(fn_id="f", trigger=trigger)
        async def fn(ctx: inngest.Context) -> str:
            await ctx.step.run("a", lambda: 1)
            log.append("user code after a")
            await ctx.step.run("b", lambda: 2)
            return "done"

    else:

        @client.create_function(fn_id="f", trigger=trigger)
        def fn(ctx: inngest.ContextSync) -> str:
            ctx.step.run("a", lambda: 1)
            log.append("user code after a")
            ctx.step.run("b", lambda: 2)
            return "done"

    serve = handler(client, [fn])
    response = call(serve, fn.id, steps={hash_step_id("a"): {"data": 1}})
    assert response.status == 206
    assert log == [
        "client.transform_input",
        "second.transform_input",
        # memo "a" was the last one: new code starts right after it is returned
        "client.before_execution",
        "second.before_execution",
        "user code after a",
        "second.after_execution",
        "client.after_execution",
        "second.transform_output",
        "client.transform_output",
        "client.before_response",
        "second.before_response",
    ]


def test_transform_output_changes_step_and_function_outputs() -> None:
    class Upper(inngest.Middleware):
        async def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if isinstance(result.output, str):
                result.output = result.output.upper()
            if result.step is not None:
                assert result.step.op == "StepRun"

    client = inngest.Inngest(app_id="mw", is_production=False, middleware=[Upper])

    @client.create_function(fn_id="shout", trigger=trigger)
    async def shout(ctx: inngest.Context) -> str:
        word = await ctx.step.run("word", lambda: "hello")
        return f"{word} world"

    serve = handler(client, [shout])
    (op,) = json(call(serve, shout.id))
    assert op["data"] == "HELLO"
    done = call(serve, shout.id, steps={op["id"]: {"data": "HELLO"}})
    assert json(done) == "HELLO WORLD"


def test_transform_output_may_recover_from_an_error() -> None:
    class Recover(inngest.Middleware):
        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if isinstance(result.error, KeyError):
                result.error, result.output = None, "recovered"

    client = inngest.Inngest(app_id="mw", is_production=False, middleware=[Recover])

    @client.create_function(fn_id="fails", trigger=trigger)
    def fails(ctx: inngest.ContextSync) -> None:
        raise KeyError("missing")

    response = call(handler(client, [fails]), fails.id)
    assert (response.status, json(response)) == (200, "recovered")


def test_transform_input_can_rewrite_the_event_and_memos() -> None:
    class Decode(inngest.Middleware):
        def transform_input(
            self, ctx: inngest.Context, function: Any, steps: inngest.StepMemos
        ) -> None:
            ctx.event.data["seen_by"] = type(self).__name__
            for key, memo in steps.items():
                steps[key] = {"data": memo["data"][::-1]}

    client = inngest.Inngest(app_id="mw", is_production=False, middleware=[Decode])

    @client.create_function(fn_id="read", trigger=trigger)
    async def read(ctx: inngest.Context) -> list[Any]:
        secret = await ctx.step.run("secret", lambda: "unused")
        return [ctx.event.data["seen_by"], secret]

    memo = {hash_step_id("secret"): {"data": "terces"}}
    assert json(call(handler(client, [read]), read.id, steps=memo)) == ["Decode", "secret"]


def test_middleware_factories_receive_client_and_request() -> None:
    seen: list[Any] = []

    class Probe(inngest.Middleware):
        def before_response(self) -> None:
            seen.append((self.client.app_id, self.raw_request.method if self.raw_request else None))

    def factory(client: inngest.Inngest, raw_request: Any) -> inngest.Middleware:
        return Probe(client, raw_request)

    client = inngest.Inngest(app_id="mw", is_production=False, middleware=[factory])

    @client.create_function(fn_id="noop", trigger=trigger)
    def noop(ctx: inngest.ContextSync) -> None:
        return None

    assert call(handler(client, [noop]), noop.id).status == 200
    assert seen == [("mw", "POST")]


def test_bad_middleware_is_rejected() -> None:
    with pytest.raises(inngest.ConfigError, match="middleware"):
        inngest.Inngest(app_id="mw", middleware=["not callable"])  # type: ignore[list-item]


def test_middleware_sync_is_an_alias() -> None:
    assert inngest.MiddlewareSync is inngest.Middleware


@pytest.mark.parametrize("async_fn", [True, False], ids=["async-fn", "sync-fn"])
def test_async_and_sync_hooks_under_wsgi(async_fn: bool) -> None:
    """Under InngestWSGI the function may run on the request thread while async hooks need an
    event loop: both kinds still run, in order."""
    log: list[str] = []
    client = inngest.Inngest(
        app_id="mw-wsgi",
        is_production=False,
        middleware=[
            _recorder(log, "a", async_hooks=True),
            _recorder(log, "s", async_hooks=False),
        ],
    )
    if async_fn:

        @client.create_function(fn_id="f", trigger=trigger)
        async def fn(ctx: inngest.Context) -> int:
            return await ctx.step.run("one", lambda: 1)

    else:

        @client.create_function(fn_id="f", trigger=trigger)
        def fn(ctx: inngest.ContextSync) -> int:
            return ctx.step.run("one", lambda: 1)

    app = inngest.InngestWSGI(client, [fn])
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as http:
        run = drive(http, fn.id)
    assert (run.status, run.output, run.requests) == (200, 1, 2)
    # Request 1 runs the step; request 2 replays it and returns.
    assert log.count("a.before_execution") == 2
    assert log.count("s.before_execution") == 2
    assert log.index("a.before_execution") < log.index("s.before_execution")


def test_a_failing_hook_fails_the_attempt_with_a_json_error() -> None:
    class Broken(inngest.Middleware):
        def after_execution(self) -> None:
            raise RuntimeError("metrics backend down")

    client = inngest.Inngest(app_id="mw", is_production=False, middleware=[Broken])

    @client.create_function(fn_id="ok", trigger=trigger)
    def ok(ctx: inngest.ContextSync) -> str:
        return "fine"

    response = call(handler(client, [ok]), ok.id)
    assert response.status == 500
    assert "x-inngest-no-retry" not in response.headers  # retried: the hook may work next time
    body = json(response)
    assert (body["name"], body["message"]) == ("RuntimeError", "metrics backend down")


def test_transform_output_may_rewrite_an_invoke_payload() -> None:
    class Tag(inngest.Middleware):
        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if result.step is not None and result.step.op == "InvokeFunction":
                assert result.step.opts is not None
                result.step.opts["payload"]["data"]["tagged"] = True

    client = inngest.Inngest(app_id="mw", is_production=False, middleware=[Tag])

    @client.create_function(fn_id="caller", trigger=trigger)
    async def caller(ctx: inngest.Context) -> Any:
        return await ctx.step.invoke_by_id("call", function_id="child", data={"x": 1})

    (op,) = json(call(handler(client, [caller]), caller.id))
    assert op["op"] == "InvokeFunction"
    assert op["opts"]["payload"]["data"] == {"x": 1, "tagged": True}
