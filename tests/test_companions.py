"""on_failure and on_cancel: companion functions registered, served and run like any other."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

import inngest_asgi as inngest
from inngest_asgi._handler import ServeHandler
from inngest_asgi.executor import Executor, RunStatus, UvicornServer, VirtualClock

from .conftest import FakeInngestAPI
from .core import call, handler, json, send
from .protocol import drive, step_id

APP = "my-app"
ORIGINAL = {"name": "app/hello", "data": {"n": 1}, "id": "01HEVT", "ts": 1700000000000}
ERROR = {"name": "ValueError", "message": "kaboom", "stack": "Traceback ..."}


def failed_event(function_id: str = "my-app-hello") -> dict[str, Any]:
    """The ``inngest/function.failed`` event the server sends (PROTOCOL.md §9)."""
    data = {
        "function_id": function_id,
        "run_id": "01HRUN",
        "error": ERROR,
        "event": ORIGINAL,
        "events": [ORIGINAL],
    }
    return {"name": "inngest/function.failed", "data": data, "id": "01HFAIL", "ts": 1700000000001}


def cancelled_event(function_id: str = "my-app-hello") -> dict[str, Any]:
    data = {"function_id": function_id, "run_id": "01HRUN", "event": ORIGINAL, "events": [ORIGINAL]}
    return {"name": "inngest/function.cancelled", "data": data, "id": "01HCANC", "ts": 1}


# Handlers in both spellings. Each records what it saw in a step, so the step must replay.


async def failure_async(ctx: inngest.Context) -> dict[str, Any]:
    seen = await ctx.step.run(
        "note", lambda: {"fn": ctx.event.data["function_id"], "error": ctx.event.data["error"]}
    )
    return {"handled": seen, "event": ctx.event.name, "original": ctx.event.data["event"]["name"]}


def failure_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
    seen = ctx.step.run(
        "note", lambda: {"fn": ctx.event.data["function_id"], "error": ctx.event.data["error"]}
    )
    return {"handled": seen, "event": ctx.event.name, "original": ctx.event.data["event"]["name"]}


async def cancel_async(ctx: inngest.Context) -> str:
    run_id = await ctx.step.run("note", lambda: ctx.event.data["run_id"])
    return f"cleaned up after {run_id}"


def cancel_sync(ctx: inngest.ContextSync) -> str:
    run_id = ctx.step.run("note", lambda: ctx.event.data["run_id"])
    return f"cleaned up after {run_id}"


async def main_async(ctx: inngest.Context) -> str:
    await ctx.step.run("my-step", lambda: {"ok": True})
    return "done"


def main_sync(ctx: inngest.ContextSync) -> str:
    ctx.step.run("my-step", lambda: {"ok": True})
    return "done"


Mix = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]

#: (main, on_failure, on_cancel): every mix of sync and async.
MIXES: dict[str, Mix] = {
    "async-async-async": (main_async, failure_async, cancel_async),
    "async-sync-async": (main_async, failure_sync, cancel_async),
    "sync-async-sync": (main_sync, failure_async, cancel_sync),
    "sync-sync-async": (main_sync, failure_sync, cancel_async),
}


def hello_with(client: inngest.Inngest, mix: Mix, **options: Any) -> inngest.Function[Any]:
    main, on_failure, on_cancel = mix
    return client.create_function(
        fn_id="hello",
        name="Hello",
        trigger=inngest.TriggerEvent(event="app/hello"),
        on_failure=on_failure,
        on_cancel=on_cancel,
        **options,
    )(main)


def dev_client(**kwargs: Any) -> inngest.Inngest:
    return inngest.Inngest(app_id=APP, is_production=False, **kwargs)


@pytest.fixture(params=list(MIXES.values()), ids=list(MIXES))
def mix(request: pytest.FixtureRequest) -> Mix:
    value: Mix = request.param
    return value


# --- the Function objects ---------------------------------------------------------------------


def test_companions_are_functions_of_their_own(mix: Mix) -> None:
    hello = hello_with(dev_client(), mix)
    failure, cancel = hello.companions
    assert (hello.failure_fn, hello.cancel_fn) == (failure, cancel)
    assert hello.on_failure_fn_id == failure.id == "my-app-hello-failure"
    assert hello.on_cancel_fn_id == cancel.id == "my-app-hello-cancel"
    assert (failure.name, cancel.name) == ("Hello (failure)", "Hello (cancel)")
    assert (failure.local_id, cancel.local_id) == ("hello-failure", "hello-cancel")
    assert failure.retries == cancel.retries == 0
    assert failure.companions == cancel.companions == ()
    # Sync or async is decided for each handler on its own.
    main, on_failure, on_cancel = mix
    assert hello.is_handler_async is (main is main_async)
    assert failure.is_handler_async is (on_failure is failure_async)
    assert cancel.is_handler_async is (on_cancel is cancel_async)


def test_only_the_handlers_given_make_companions() -> None:
    client = dev_client()
    only_failure = client.create_function(
        fn_id="a", trigger=inngest.TriggerEvent(event="a"), on_failure=failure_sync
    )(main_sync)
    only_cancel = client.create_function(
        fn_id="b", trigger=inngest.TriggerEvent(event="b"), on_cancel=cancel_async
    )(main_async)
    assert [fn.id for fn in only_failure.companions] == ["my-app-a-failure"]
    assert only_failure.on_cancel_fn_id is None
    assert [fn.id for fn in only_cancel.companions] == ["my-app-b-cancel"]
    assert only_cancel.on_failure_fn_id is None


def test_companions_share_function_level_middleware() -> None:
    class Mw(inngest.Middleware):
        pass

    hello = hello_with(dev_client(), MIXES["async-sync-async"], middleware=[Mw])
    assert all(fn.middleware == [Mw] for fn in hello.companions)


def test_companions_do_not_inherit_flow_control() -> None:
    hello = hello_with(
        dev_client(),
        MIXES["async-async-async"],
        retries=5,
        concurrency=[inngest.Concurrency(limit=1)],
        throttle=inngest.Throttle(limit=1, period="1m"),
    )
    for companion in hello.companions:
        assert companion.options == {"cancel": [], "concurrency": []}
        assert companion.retries == 0


# --- registration and introspection -----------------------------------------------------------


def expected_companion(kind: str, event: str) -> dict[str, Any]:
    fn_id = f"my-app-hello-{kind}"
    return {
        "id": fn_id,
        "name": f"Hello ({kind})",
        "cancel": [],
        "concurrency": [],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "retries": {"attempts": 0},
                "runtime": {
                    "type": "http",
                    "url": f"http://testserver/api/inngest?fnId={fn_id}&stepId=step",
                },
            }
        },
        "triggers": [{"event": event, "expression": "event.data.function_id == 'my-app-hello'"}],
    }


def test_sync_registers_both_companions(mix: Mix, inngest_api: FakeInngestAPI) -> None:
    client = dev_client(api_base_url=inngest_api.url)
    serve = handler(client, [hello_with(client, mix)])
    assert send(serve, "PUT").status == 200
    (sent,) = inngest_api.registrations
    hello, failure, cancel = sent.json()["functions"]
    assert hello["id"] == "my-app-hello"
    assert "cancel" not in hello  # the main function's options are its own
    assert failure == expected_companion("failure", "inngest/function.failed")
    assert cancel == expected_companion("cancel", "inngest/function.cancelled")


def test_function_count_excludes_companions(mix: Mix) -> None:
    client = dev_client()
    other = client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="o"))(
        main_async
    )
    serve = handler(client, [hello_with(client, mix), other])
    assert json(send(serve, "GET"))["function_count"] == 2
    assert set(serve.functions) == {
        "my-app-hello",
        "my-app-hello-failure",
        "my-app-hello-cancel",
        "my-app-other",
    }


def test_a_companion_id_cannot_clash_with_a_function() -> None:
    client = dev_client()
    clash = client.create_function(fn_id="hello-failure", trigger=inngest.TriggerEvent(event="x"))(
        main_async
    )
    hello = hello_with(client, MIXES["async-async-async"])
    with pytest.raises(inngest.ConfigError, match="'my-app-hello-failure' is used twice"):
        handler(client, [clash, hello])


def test_quotes_in_ids_stay_inside_the_expression() -> None:
    client = inngest.Inngest(app_id="it's", is_production=False)
    fn = client.create_function(
        fn_id="f", trigger=inngest.TriggerEvent(event="e"), on_failure=failure_async
    )(main_async)
    (failure,) = fn.companions
    assert failure.triggers[0].expression == "event.data.function_id == 'it\\'s-f'"


# --- execution through the sans-IO handler ----------------------------------------------------


@pytest.fixture
def serve(mix: Mix) -> ServeHandler:
    client = dev_client()
    return handler(client, [hello_with(client, mix)])


def test_on_failure_runs_with_the_failure_event(serve: ServeHandler) -> None:
    fn_id = "my-app-hello-failure"
    first = call(serve, fn_id, event=failed_event())
    assert first.status == 206
    (op,) = json(first)
    assert (op["op"], op["id"]) == ("StepRun", step_id("note"))
    assert op["data"] == {"fn": "my-app-hello", "error": ERROR}

    done = call(serve, fn_id, event=failed_event(), steps={op["id"]: {"data": op["data"]}})
    assert done.status == 200
    assert json(done) == {
        "handled": {"fn": "my-app-hello", "error": ERROR},
        "event": "inngest/function.failed",
        "original": "app/hello",
    }


def test_on_cancel_runs_with_the_cancellation_event(serve: ServeHandler) -> None:
    fn_id = "my-app-hello-cancel"
    first = call(serve, fn_id, event=cancelled_event())
    (op,) = json(first)
    assert (first.status, op["data"]) == (206, "01HRUN")
    done = call(serve, fn_id, event=cancelled_event(), steps={op["id"]: {"data": "01HRUN"}})
    assert (done.status, json(done)) == (200, "cleaned up after 01HRUN")


def test_the_main_function_still_runs(serve: ServeHandler) -> None:
    first = call(serve, "my-app-hello")
    assert json(first)[0]["data"] == {"ok": True}
    done = call(serve, "my-app-hello", steps={step_id("my-step"): {"data": {"ok": True}}})
    assert (done.status, json(done)) == (200, "done")


def test_a_failing_companion_is_reported_like_any_function() -> None:
    def broken(ctx: inngest.ContextSync) -> None:
        raise inngest.NonRetriableError("cannot notify")

    client = dev_client()
    fn = client.create_function(
        fn_id="hello", trigger=inngest.TriggerEvent(event="app/hello"), on_failure=broken
    )(main_async)
    response = call(handler(client, [fn]), "my-app-hello-failure", event=failed_event())
    assert response.status == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    assert json(response)["code"] == "non_retriable_error"


def test_no_companion_without_a_handler() -> None:
    client = dev_client()
    fn = client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="app/hello"))(
        main_async
    )
    response = call(handler(client, [fn]), "my-app-hello-failure", event=failed_event())
    assert response.status == 404  # a request at fault (docs/protocol-choices.md)
    assert json(response)["code"] == "function_not_found"


def test_function_level_middleware_runs_for_companions() -> None:
    seen: list[str] = []

    class Record(inngest.Middleware):
        def before_execution(self) -> None:
            seen.append("before")

        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if result.step is None:
                result.output = {"wrapped": result.output}

    client = dev_client()
    fn = client.create_function(
        fn_id="hello",
        trigger=inngest.TriggerEvent(event="app/hello"),
        on_cancel=lambda ctx: "cancelled",
        middleware=[Record],
    )(main_async)
    response = call(handler(client, [fn]), "my-app-hello-cancel", event=cancelled_event())
    assert (response.status, json(response)) == (200, {"wrapped": "cancelled"})
    assert seen == ["before"]


# --- through the ASGI app (starlette's TestClient) and the WSGI bridge ------------------------


@contextlib.contextmanager
def asgi(client: inngest.Inngest, functions: list[Any]) -> Iterator[httpx.Client]:
    with TestClient(inngest.InngestASGI(client, functions)) as http:
        yield http


@contextlib.contextmanager
def wsgi(client: inngest.Inngest, functions: list[Any]) -> Iterator[httpx.Client]:
    app = inngest.InngestWSGI(client, functions)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.mark.parametrize("shell", [asgi, wsgi], ids=["asgi", "wsgi"])
def test_companions_through_the_shells(mix: Mix, shell: Any) -> None:
    client = dev_client()
    with shell(client, [hello_with(client, mix)]) as http:
        assert http.get("/api/inngest").json()["function_count"] == 1

        failure = drive(http, "my-app-hello-failure", event=failed_event())
        assert (failure.status, failure.requests) == (200, 2)
        assert failure.output["handled"] == {"fn": "my-app-hello", "error": ERROR}

        cancel = drive(http, "my-app-hello-cancel", event=cancelled_event())
        assert (cancel.status, cancel.output) == (200, "cleaned up after 01HRUN")

        main = drive(http, "my-app-hello")
        assert (main.status, main.output) == (200, "done")


# --- end to end with the local executor -------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def executor_with(
    functions: Callable[[inngest.Inngest], list[Any]],
) -> AsyncIterator[Executor]:
    async with (
        Executor(clock=VirtualClock()) as ex,
        UvicornServer(ex.api) as api,
    ):
        client = dev_client(api_base_url=api.url, event_api_base_url=api.url)
        ex.mount("http://app.test", inngest.InngestASGI(client, functions(client)))
        await ex.sync("http://app.test/api/inngest")
        yield ex


def _executor_functions(client: inngest.Inngest) -> list[Any]:
    async def fails(ctx: inngest.Context) -> None:
        await ctx.step.run("work", lambda: None)
        raise ValueError(f"bad input {ctx.event.data['n']}")

    def waits(ctx: inngest.ContextSync) -> None:
        ctx.step.sleep("nap", dt.timedelta(hours=1))

    return [
        client.create_function(
            fn_id="fails",
            trigger=inngest.TriggerEvent(event="app/fails"),
            retries=0,
            on_failure=failure_sync,
            on_cancel=cancel_async,
        )(fails),
        client.create_function(
            fn_id="waits",
            trigger=inngest.TriggerEvent(event="app/waits"),
            cancel=[inngest.Cancel(event="app/stop", if_exp="async.data.id == event.data.id")],
            on_failure=failure_async,
            on_cancel=cancel_sync,
        )(waits),
    ]


@pytest.mark.anyio
async def test_executor_runs_on_failure_after_the_last_attempt() -> None:
    async with executor_with(_executor_functions) as ex:
        ex.send({"name": "app/fails", "data": {"n": 7}})
        await ex.run_until_idle()
        [run] = ex.runs_for("my-app-fails")
        assert run.status is RunStatus.FAILED
        [handled] = ex.runs_for("my-app-fails-failure")
        assert handled.status is RunStatus.COMPLETED
        assert handled.output["handled"]["fn"] == "my-app-fails"
        assert handled.output["handled"]["error"]["message"] == "bad input 7"
        assert ex.runs_for("my-app-fails-cancel") == []
        assert ex.runs_for("my-app-waits-failure") == []  # filtered by function_id


@pytest.mark.anyio
async def test_executor_runs_on_cancel_when_a_cancel_event_matches() -> None:
    async with executor_with(_executor_functions) as ex:
        ex.send({"name": "app/waits", "data": {"id": 1}})
        await ex.run_until_idle()
        ex.send({"name": "app/stop", "data": {"id": 1}})
        await ex.run_until_idle()
        [run] = ex.runs_for("my-app-waits")
        assert run.status is RunStatus.CANCELLED
        [cleanup] = ex.runs_for("my-app-waits-cancel")
        assert cleanup.status is RunStatus.COMPLETED
        assert cleanup.output == f"cleaned up after {run.id}"
        assert ex.runs_for("my-app-waits-failure") == []
