"""The local executor driving real InngestASGI apps: every opcode, retries, events, virtual time.

Each test gets an executor on a virtual clock with its HTTP API served by uvicorn on
127.0.0.1 (the app syncs and sends events there), and an app reached either in-process
(``asgi``) or through its own uvicorn server (``http``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest

import inngest_asgi as inngest
from inngest_asgi.executor import (
    Executor,
    Run,
    RunStatus,
    StepStatus,
    SyncError,
    UvicornServer,
    VirtualClock,
)
from inngest_asgi.executor._registry import BatchConfig, CancelConfig, RegisterRequest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SK = "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
OTHER_SK = "signkey-test-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
APP_ID = "exec-app"
HOUR = dt.timedelta(hours=1)

#: Attempts seen per (function, run id), for functions that fail a few times then succeed.
ATTEMPTS: collections.Counter[tuple[str, str]] = collections.Counter()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def build_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """One app with a function per scenario; events named ``t/<scenario>`` trigger them."""

    def on(name: str, **kw: Any) -> Callable[[Callable[..., Any]], inngest.Function[Any]]:
        return client.create_function(
            fn_id=name, trigger=inngest.TriggerEvent(event=f"t/{name}"), **kw
        )

    @on("steps")
    async def steps(ctx: inngest.Context) -> dict[str, Any]:
        a = await ctx.step.run("a", lambda: ctx.event.data["n"] + 1)
        b = await ctx.step.run("b", lambda: a * 10)
        return {"a": a, "b": b, "attempt": ctx.attempt}

    @on("steps-sync")
    def steps_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
        a = ctx.step.run("a", lambda: ctx.event.data["n"] + 1)
        b = ctx.step.run("b", lambda: a * 10)
        return {"a": a, "b": b}

    @on("workflow")
    async def workflow(ctx: inngest.Context) -> dict[str, Any]:
        first = await ctx.step.run("first", lambda: "one")
        await ctx.step.sleep("nap", dt.timedelta(minutes=30))
        event = await ctx.step.wait_for_event(
            "approval",
            event="t/approve",
            if_exp="async.data.id == event.data.id",
            timeout=HOUR,
        )
        left, right = await ctx.group.parallel(
            (lambda: ctx.step.run("left", lambda: "L"), lambda: ctx.step.run("right", lambda: "R"))
        )
        kid = await ctx.step.invoke("call", function=child, data={"x": 4})
        return {
            "first": first,
            "approved_by": event.data["by"] if event else None,
            "parallel": [left, right],
            "kid": kid,
        }

    @on("workflow-sync")
    def workflow_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
        first = ctx.step.run("first", lambda: "one")
        ctx.step.sleep("nap", dt.timedelta(minutes=30))
        event = ctx.step.wait_for_event(
            "approval",
            event="t/approve",
            if_exp="async.data.id == event.data.id",
            timeout=HOUR,
        )
        left, right = ctx.group.parallel(
            (lambda: ctx.step.run("left", lambda: "L"), lambda: ctx.step.run("right", lambda: "R"))
        )
        kid = ctx.step.invoke("call", function=child, data={"x": 4})
        return {
            "first": first,
            "approved_by": event.data["by"] if event else None,
            "parallel": [left, right],
            "kid": kid,
        }

    @on("child")
    def child(ctx: inngest.ContextSync) -> int:
        return ctx.step.run("double", lambda: ctx.event.data["x"] * 2)

    @on("child-fails", retries=0)
    def child_fails(ctx: inngest.ContextSync) -> None:
        raise inngest.NonRetriableError("child gave up")

    @on("invoke-fails")
    async def invoke_fails(ctx: inngest.Context) -> str:
        try:
            await ctx.step.invoke("call", function=child_fails)
        except inngest.StepError as exc:
            return f"caught {exc.name}: {exc.message}"
        return "no error"

    @on("invoke-missing")
    async def invoke_missing(ctx: inngest.Context) -> str:
        try:
            await ctx.step.invoke_by_id("call", function_id="nope")
        except inngest.StepError as exc:
            return f"caught: {exc.message}"
        return "no error"

    @on("race")
    async def race(ctx: inngest.Context) -> list[str]:
        results = await ctx.group.parallel(
            tuple(
                (lambda i=i: ctx.step.run(f"r{i}", lambda: f"v{i}"))  # type: ignore[misc]
                for i in range(3)
            ),
            parallel_mode=inngest.ParallelMode.RACE,
        )
        return list(results)

    @on("waiter")
    async def waiter(ctx: inngest.Context) -> Any:
        event = await ctx.step.wait_for_event(
            "wait", event="t/resume", if_exp="async.data.code == 'ok'", timeout=600_000
        )
        return None if event is None else event.data

    @on("flaky-step", retries=3)
    async def flaky_step(ctx: inngest.Context) -> str:
        def attempt() -> str:
            ATTEMPTS["flaky-step", ctx.run_id] += 1
            if ATTEMPTS["flaky-step", ctx.run_id] < 3:
                raise ValueError(f"boom {ATTEMPTS['flaky-step', ctx.run_id]}")
            return "ok"

        return await ctx.step.run("flaky", attempt)

    @on("step-exhausted", retries=1)
    def step_exhausted(ctx: inngest.ContextSync) -> str:
        def fail() -> None:
            raise KeyError("always")

        try:
            ctx.step.run("doomed", fail)
        except inngest.StepError as exc:
            return f"recovered from {exc.name}"
        return "no error"

    @on("fn-error", retries=2)
    async def fn_error(ctx: inngest.Context) -> None:
        await ctx.step.run("before", lambda: 1)
        raise RuntimeError(f"attempt {ctx.attempt} failed")

    @client.create_function(
        fn_id="fn-error-handler",
        trigger=inngest.TriggerEvent(
            event="inngest/function.failed",
            expression=f"event.data.function_id == '{APP_ID}-fn-error'",
        ),
    )
    async def fn_error_handler(ctx: inngest.Context) -> str:
        return f"handled {ctx.event.data['error']['message']}"

    @on("no-retry", retries=4)
    async def no_retry(ctx: inngest.Context) -> None:
        raise inngest.NonRetriableError("stop")

    @on("retry-after", retries=2)
    async def retry_after(ctx: inngest.Context) -> str:
        if ctx.attempt == 0:
            raise inngest.RetryAfterError("later", dt.timedelta(minutes=10))
        return f"attempt {ctx.attempt}"

    @client.create_function(
        fn_id="filtered",
        trigger=inngest.TriggerEvent(event="t/filtered", expression="event.data.n > 5"),
    )
    async def filtered(ctx: inngest.Context) -> int:
        return int(ctx.event.data["n"])

    @client.create_function(fn_id="cron", trigger=inngest.TriggerCron(cron="*/15 * * * *"))
    async def cron(ctx: inngest.Context) -> str:
        return str(ctx.event.name)

    @on("long")
    async def long(ctx: inngest.Context) -> str:
        await ctx.step.run("start", lambda: None)
        await ctx.step.sleep("wait-a-day", dt.timedelta(days=1))
        return "woke"

    async def guarded_failed(ctx: inngest.Context) -> str:
        return f"failure of {ctx.event.data['event']['data']['id']}"

    def guarded_cancelled(ctx: inngest.ContextSync) -> str:
        return f"cancel of {ctx.event.data['event']['data']['id']}"

    @client.create_function(
        fn_id="guarded",
        trigger=inngest.TriggerEvent(event="t/guarded"),
        retries=0,
        cancel=[inngest.Cancel(event="t/abort", if_exp="async.data.id == event.data.id")],
        on_failure=guarded_failed,
        on_cancel=guarded_cancelled,
    )
    async def guarded(ctx: inngest.Context) -> str:
        await ctx.step.sleep("hold", HOUR)
        if ctx.event.data.get("fail"):
            raise ValueError("guarded failed")
        return "ok"

    @client.create_function(
        fn_id="batched",
        trigger=inngest.TriggerEvent(event="t/batched"),
        batch_events=inngest.Batch(max_size=3, timeout=dt.timedelta(seconds=10)),
    )
    def batched(ctx: inngest.ContextSync) -> list[int]:
        return [int(e.data["n"]) for e in ctx.events]

    @client.create_function(
        fn_id="once-per-user",
        trigger=inngest.TriggerEvent(event="t/once"),
        idempotency="event.data.user",
    )
    async def once_per_user(ctx: inngest.Context) -> str:
        return str(ctx.event.data["user"])

    return [
        guarded,
        batched,
        once_per_user,
        steps,
        steps_sync,
        workflow,
        workflow_sync,
        child,
        child_fails,
        invoke_fails,
        invoke_missing,
        race,
        waiter,
        flaky_step,
        step_exhausted,
        fn_error,
        fn_error_handler,
        no_retry,
        retry_after,
        filtered,
        cron,
        long,
    ]


@dataclasses.dataclass
class Harness:
    ex: Executor
    client: inngest.Inngest
    api_url: str
    app_url: str

    def send(self, name: str, data: dict[str, Any] | None = None, **extra: Any) -> str:
        [event_id] = self.ex.send({"name": name, "data": data or {}, **extra})
        return event_id

    def only_run(self, fn: str) -> Run:
        runs = self.ex.runs_for(f"{APP_ID}-{fn}")
        assert len(runs) == 1, runs
        return runs[0]


@contextlib.asynccontextmanager
async def harness(
    transport: str = "asgi", *, signing_key: str | None = None, **options: Any
) -> AsyncIterator[Harness]:
    async with (
        Executor(clock=VirtualClock(), signing_key=signing_key, **options) as ex,
        UvicornServer(ex.api) as api,
    ):
        client = inngest.Inngest(
            app_id=APP_ID,
            is_production=signing_key is not None,
            signing_key=signing_key,
            api_base_url=api.url,
            event_api_base_url=api.url,
        )
        app = inngest.InngestASGI(client, build_functions(client))
        if transport == "asgi":
            ex.mount("http://app.test", app)
            url = "http://app.test/api/inngest"
            await ex.sync(url)
            yield Harness(ex, client, api.url, url)
        else:
            async with UvicornServer(app) as served:
                url = f"{served.url}/api/inngest"
                await ex.sync(url)
                yield Harness(ex, client, api.url, url)


@pytest.fixture(params=["asgi", "http"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with harness(request.param) as value:
        yield value


@pytest.fixture
async def hp() -> AsyncIterator[Harness]:
    """In-process only, for scenarios whose transport does not matter."""
    async with harness("asgi") as value:
        yield value


# --- sync ------------------------------------------------------------------------------------


async def test_sync_registers_every_function(h: Harness) -> None:
    app = h.ex.apps[APP_ID]
    assert app.url == h.app_url
    assert f"{APP_ID}-workflow" in app.functions
    fn = app.functions[f"{APP_ID}-flaky-step"]
    assert fn.max_attempts == 4
    assert fn.url("abc").endswith(f"fnId={APP_ID}-flaky-step&stepId=abc")


async def test_register_endpoint_rejects_bad_expressions(hp: Harness) -> None:
    body = {
        "appName": "other",
        "url": "http://x.test/api",
        "functions": [
            {
                "id": "other-f",
                "triggers": [{"event": "a", "expression": "event.data.n >"}],
                "steps": {"step": {"runtime": {"url": "http://x.test/api?fnId=other-f"}}},
            }
        ],
    }
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"{hp.api_url}/fn/register", json=body)
        assert reply.status_code == 400
        assert "invalid expression" in reply.json()["error"]
        body["functions"][0]["triggers"] = [{"cron": "not a cron"}]  # type: ignore[index]
        reply = await http.post(f"{hp.api_url}/fn/register", json=body)
        assert reply.status_code == 400
        assert "cron" in reply.json()["error"]
        reply = await http.post(
            f"{hp.api_url}/fn/register",
            json=body,
            headers={"x-inngest-expected-server-kind": "cloud"},
        )
        assert reply.status_code == 400
        assert "cloud" in reply.json()["error"]


async def test_unsupported_options_are_logged(
    hp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fn = hp.ex.apps[APP_ID].functions[f"{APP_ID}-steps"]
    changed = msgspec.structs.replace(fn, throttle={"limit": 1, "period": "1s"})
    request = RegisterRequest(url=hp.app_url, functions=[changed], appName="another")
    with caplog.at_level(logging.WARNING, logger="inngest_asgi.executor"):
        _, modified = hp.ex.register(request)
    assert modified
    assert "sets throttle, which the local executor does not enforce" in caplog.text


# --- steps, sync and async ---------------------------------------------------------------------


@pytest.mark.parametrize("fn", ["steps", "steps-sync"])
async def test_steps_run_in_order(h: Harness, fn: str) -> None:
    h.send(f"t/{fn}", {"n": 1})
    await h.ex.run_until_idle()
    run = h.only_run(fn)
    assert run.status is RunStatus.COMPLETED
    assert run.output["a"] == 2
    assert run.output["b"] == 20
    assert [(s.name, s.kind, s.status) for s in run.steps] == [
        ("a", "run", StepStatus.COMPLETED),
        ("b", "run", StepStatus.COMPLETED),
    ]
    assert run.steps[0].output == 2
    assert run.requests == 3


@pytest.mark.parametrize("fn", ["workflow", "workflow-sync"])
async def test_workflow_sleep_wait_parallel_invoke(h: Harness, fn: str) -> None:
    h.send(f"t/{fn}", {"id": 7})
    await h.ex.run_until_idle()
    run = h.only_run(fn)
    assert run.status is RunStatus.RUNNING
    assert run.step("nap").status is StepStatus.SLEEPING

    await h.ex.advance(dt.timedelta(minutes=29))
    assert run.step("nap").status is StepStatus.SLEEPING
    await h.ex.advance(dt.timedelta(minutes=2))
    assert run.step("nap").status is StepStatus.COMPLETED
    assert run.step("approval").status is StepStatus.WAITING

    h.send("t/approve", {"id": 8, "by": "wrong run"})  # `if` does not match
    await h.ex.run_until_idle()
    assert run.step("approval").status is StepStatus.WAITING
    h.send("t/approve", {"id": 7, "by": "ada"})
    await h.ex.run_until_idle()

    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"first": "one", "approved_by": "ada", "parallel": ["L", "R"], "kid": 8}
    assert [s.name for s in run.steps] == ["first", "nap", "approval", "left", "right", "call"]
    [kid] = h.ex.runs_for(f"{APP_ID}-child")
    assert kid.parent_run_id == run.id
    assert kid.event["name"] == "inngest/function.invoked"
    assert kid.output == 8


async def test_client_send_over_the_event_api(h: Harness) -> None:
    ids = await h.client.send(
        [inngest.Event(name="t/steps", data={"n": 2}), inngest.Event(name="t/nothing")]
    )
    assert len(ids) == 2
    await h.ex.run_until_idle()
    assert h.only_run("steps").output["b"] == 30
    assert [e["id"] for e in h.ex.events[:2]] == ids


async def test_event_api_shapes(hp: Harness) -> None:
    async with httpx.AsyncClient(base_url=hp.api_url) as http:
        one = await http.post("/e/any-key", json={"name": "t/nothing", "data": {"a": 1}})
        assert one.status_code == 200
        assert one.json()["status"] == 200
        assert len(one.json()["ids"]) == 1
        many = await http.post("/e/any-key", json=[{"name": "t/x"}, {"name": "t/y", "id": "k"}])
        assert many.json()["ids"][1] == "k"
        bad = await http.post("/e/any-key", json={"data": {}})
        assert bad.status_code == 400
        assert bad.json()["ids"] == []
        missing = await http.get("/v0/runs/nope/actions")
        assert missing.status_code == 404


# --- parallel ----------------------------------------------------------------------------------


async def test_race_group_runs_every_branch(hp: Harness) -> None:
    hp.send("t/race")
    await hp.ex.run_until_idle()
    run = hp.only_run("race")
    assert run.status is RunStatus.COMPLETED
    assert run.output == ["v0", "v1", "v2"]
    assert sorted(s.name for s in run.steps) == ["r0", "r1", "r2"]


# --- waits -------------------------------------------------------------------------------------


async def test_wait_times_out_with_virtual_time(hp: Harness) -> None:
    hp.send("t/waiter")
    await hp.ex.run_until_idle()
    hp.send("t/resume", {"code": "nope"})
    await hp.ex.advance(dt.timedelta(minutes=9))
    run = hp.only_run("waiter")
    assert run.status is RunStatus.RUNNING
    await hp.ex.advance(dt.timedelta(minutes=2))
    assert run.status is RunStatus.COMPLETED
    assert run.output is None
    assert run.step("wait").status is StepStatus.TIMED_OUT


async def test_wait_is_fulfilled_by_matching_event(hp: Harness) -> None:
    hp.send("t/waiter")
    await hp.ex.run_until_idle()
    assert hp.ex.settled  # only waiting for an event
    hp.send("t/resume", {"code": "ok", "extra": [1, 2]})
    await hp.ex.run_until_idle()
    assert hp.only_run("waiter").output == {"code": "ok", "extra": [1, 2]}


# --- invoke ------------------------------------------------------------------------------------


async def test_invoked_function_failure_is_a_step_error(hp: Harness) -> None:
    hp.send("t/invoke-fails")
    hp.send("t/invoke-missing")
    await hp.ex.run_until_idle()
    assert hp.only_run("invoke-fails").output == "caught NonRetriableError: child gave up"
    assert hp.only_run("child-fails").status is RunStatus.FAILED
    assert hp.only_run("invoke-missing").output == "caught: could not find function 'exec-app-nope'"


# --- errors and retries ------------------------------------------------------------------------


async def test_app_dates_follow_the_virtual_clock(hp: Harness) -> None:
    # Apps compute sleep and retry-after dates from wall time; a clock already advanced by a
    # day must not cut them short.
    await hp.ex.advance(dt.timedelta(days=2))
    hp.send("t/long")
    hp.send("t/retry-after")
    await hp.ex.advance(dt.timedelta(hours=23))
    assert hp.only_run("long").step("wait-a-day").status is StepStatus.SLEEPING
    assert hp.only_run("retry-after").status is RunStatus.COMPLETED
    await hp.ex.advance(dt.timedelta(hours=2))
    assert hp.only_run("long").output == "woke"


async def test_retry_after_waits_on_an_advanced_clock(hp: Harness) -> None:
    await hp.ex.advance(dt.timedelta(days=1))
    hp.send("t/retry-after")
    await hp.ex.advance(dt.timedelta(minutes=9))
    assert hp.only_run("retry-after").status is RunStatus.RUNNING
    await hp.ex.advance(dt.timedelta(minutes=2))
    assert hp.only_run("retry-after").output == "attempt 1"


async def test_step_error_is_retried_with_backoff(h: Harness) -> None:
    h.send("t/flaky-step")
    await h.ex.run_until_idle()
    run = h.only_run("flaky-step")
    assert run.status is RunStatus.RUNNING
    assert run.step("flaky").status is StepStatus.ERRORED
    assert run.step("flaky").error == {
        "name": "ValueError",
        "message": "boom 1",
        "stack": run.step("flaky").error["stack"],  # type: ignore[index]
    }
    await h.ex.advance(1)  # first backoff: 1 s
    assert run.step("flaky").attempts == 2
    await h.ex.advance(2)  # second: 2 s
    assert run.status is RunStatus.COMPLETED
    assert run.output == "ok"
    assert run.step("flaky").attempts == 2
    assert ATTEMPTS["flaky-step", run.id] == 3


async def test_step_failed_is_memoized_as_error(hp: Harness) -> None:
    hp.send("t/step-exhausted")
    await hp.ex.advance(60)
    run = hp.only_run("step-exhausted")
    assert run.output == "recovered from KeyError"
    assert run.step("doomed").status is StepStatus.FAILED
    assert run.step("doomed").error["name"] == "KeyError"  # type: ignore[index]


async def test_function_error_retries_then_fails_and_emits_failed_event(hp: Harness) -> None:
    hp.send("t/fn-error")
    await hp.ex.advance(60)
    run = hp.only_run("fn-error")
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error["name"] == "RuntimeError"
    assert run.error["message"] == "attempt 2 failed"
    handler = hp.only_run("fn-error-handler")
    assert handler.event["data"]["run_id"] == run.id
    assert handler.event["data"]["event"]["name"] == "t/fn-error"
    assert handler.output == "handled attempt 2 failed"
    names = [e["name"] for e in hp.ex.events]
    assert "inngest/function.failed" in names
    assert "inngest/function.finished" in names


async def test_no_retry_header_fails_at_once(hp: Harness) -> None:
    hp.send("t/no-retry")
    await hp.ex.run_until_idle()
    run = hp.only_run("no-retry")
    assert run.status is RunStatus.FAILED
    assert run.requests == 1
    assert run.error is not None
    assert run.error["name"] == "NonRetriableError"


async def test_retry_after_is_respected(hp: Harness) -> None:
    hp.send("t/retry-after")
    await hp.ex.advance(dt.timedelta(minutes=9))
    run = hp.only_run("retry-after")
    assert run.status is RunStatus.RUNNING
    await hp.ex.advance(dt.timedelta(minutes=2))
    assert run.output == "attempt 1"


async def test_unreachable_app_is_retried_then_failed(hp: Harness) -> None:
    fn = hp.ex.apps[APP_ID].functions[f"{APP_ID}-steps"]
    gone = msgspec.structs.replace(
        fn,
        id="gone-steps",
        steps={
            "step": msgspec.structs.replace(
                fn.step,
                runtime=msgspec.structs.replace(
                    fn.step.runtime, url="http://127.0.0.1:9/api?fnId=x"
                ),
            )
        },
    )
    hp.ex.register(RegisterRequest(url="http://127.0.0.1:9/api", functions=[gone], appName="gone"))
    hp.send("t/steps", {"n": 1})
    await hp.ex.advance(60)
    [run] = hp.ex.runs_for("gone-steps")
    assert run.status is RunStatus.FAILED
    assert run.requests == 5  # default: 4 retries
    assert run.error is not None
    assert "could not reach app" in run.error["message"]


# --- triggers ----------------------------------------------------------------------------------


async def test_trigger_expression_filters_events(hp: Harness) -> None:
    hp.send("t/filtered", {"n": 3})
    hp.send("t/filtered", {"n": 9})
    await hp.ex.run_until_idle()
    assert [r.output for r in hp.ex.runs_for(f"{APP_ID}-filtered")] == [9]


async def test_cron_fires_on_schedule(hp: Harness) -> None:
    await hp.ex.advance(dt.timedelta(minutes=31))
    runs = hp.ex.runs_for(f"{APP_ID}-cron")
    assert len(runs) in (2, 3)  # depends on where in the quarter hour we started
    assert all(r.output == "inngest/scheduled.timer" for r in runs)
    assert runs[0].event["data"] == {"cron": "*/15 * * * *"}


async def test_event_id_is_an_idempotency_key(hp: Harness) -> None:
    hp.send("t/steps", {"n": 1}, id="same")
    hp.send("t/steps", {"n": 2}, id="same")
    await hp.ex.run_until_idle()
    assert hp.only_run("steps").event["data"] == {"n": 1}


async def test_function_idempotency_expression(hp: Harness) -> None:
    fn = hp.ex.apps[APP_ID].functions[f"{APP_ID}-steps"]
    hp.ex.register(
        RegisterRequest(
            url=hp.app_url,
            functions=[msgspec.structs.replace(fn, idempotency="event.data.user")],
            appName=APP_ID,
        )
    )
    for n, user in ((1, "a"), (2, "a"), (3, "b")):
        hp.send("t/steps", {"n": n, "user": user})
    await hp.ex.run_until_idle()
    assert [r.event["data"]["n"] for r in hp.ex.runs_for(fn.id)] == [1, 3]


async def test_cancel_on_event(hp: Harness) -> None:
    fn = hp.ex.apps[APP_ID].functions[f"{APP_ID}-long"]
    cancel = CancelConfig(event="t/stop", if_exp="async.data.id == event.data.id")
    hp.ex.register(
        RegisterRequest(
            url=hp.app_url, functions=[msgspec.structs.replace(fn, cancel=[cancel])], appName=APP_ID
        )
    )
    hp.send("t/long", {"id": 1})
    hp.send("t/long", {"id": 2})
    await hp.ex.run_until_idle()
    hp.send("t/stop", {"id": 2})
    await hp.ex.advance(dt.timedelta(days=1, minutes=1))
    first, second = hp.ex.runs_for(fn.id)
    assert first.status is RunStatus.COMPLETED
    assert first.output == "woke"
    assert second.status is RunStatus.CANCELLED
    assert any(e["name"] == "inngest/function.cancelled" for e in hp.ex.events)


async def test_batch_events(hp: Harness) -> None:
    fn = hp.ex.apps[APP_ID].functions[f"{APP_ID}-filtered"]
    batched = msgspec.structs.replace(fn, batchEvents=BatchConfig(maxSize=2, timeout="5s"))
    hp.ex.register(RegisterRequest(url=hp.app_url, functions=[batched], appName=APP_ID))
    for n in (6, 7, 8):
        hp.send("t/filtered", {"n": n})
    await hp.ex.run_until_idle()
    runs = hp.ex.runs_for(fn.id)
    assert [len(r.events) for r in runs] == [2]
    await hp.ex.advance(5)
    runs = hp.ex.runs_for(fn.id)
    assert [len(r.events) for r in runs] == [2, 1]
    assert [r.output for r in runs] == [6, 8]


async def test_sdk_options_cancel_on_failure_on_cancel(hp: Harness) -> None:
    for data in ({"id": 1}, {"id": 2, "fail": True}, {"id": 3}):
        hp.send("t/guarded", data)
    await hp.ex.run_until_idle()
    hp.send("t/abort", {"id": 1})
    await hp.ex.advance(dt.timedelta(hours=2))
    runs = {r.event["data"]["id"]: r for r in hp.ex.runs_for(f"{APP_ID}-guarded")}
    assert runs[1].status is RunStatus.CANCELLED
    assert runs[2].status is RunStatus.FAILED
    assert runs[3].output == "ok"
    assert hp.only_run("guarded-failure").output == "failure of 2"
    assert hp.only_run("guarded-cancel").output == "cancel of 1"


async def test_sdk_options_batch_and_idempotency(hp: Harness) -> None:
    for n in range(4):
        hp.send("t/batched", {"n": n})
    for user in ("a", "a", "b"):
        hp.send("t/once", {"user": user})
    await hp.ex.run_until_idle()
    assert [r.output for r in hp.ex.runs_for(f"{APP_ID}-batched")] == [[0, 1, 2]]
    await hp.ex.advance(10)
    assert [r.output for r in hp.ex.runs_for(f"{APP_ID}-batched")] == [[0, 1, 2], [3]]
    assert [r.output for r in hp.ex.runs_for(f"{APP_ID}-once-per-user")] == ["a", "b"]


# --- large payloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("signing_key", [None, SK])
async def test_use_api_loads_steps_from_the_api(signing_key: str | None) -> None:
    async with harness(signing_key=signing_key, use_api_threshold=0) as h:
        h.send("t/steps", {"n": 4})
        await h.ex.run_until_idle()
        run = h.only_run("steps")
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output["b"] == 50
        async with httpx.AsyncClient(base_url=h.api_url) as http:
            denied = await http.get(f"/v0/runs/{run.id}/actions")
            assert denied.status_code == (401 if signing_key else 200)
            summary = await http.get(
                f"/v0/runs/{run.id}",
                headers={"authorization": f"Bearer {h.client.settings.signing_key}"},
            )
            if not signing_key:
                assert summary.json()["status"] == "Completed"


# --- cloud mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["asgi", "http"])
async def test_cloud_mode_signs_and_verifies(transport: str) -> None:
    async with harness(transport, signing_key=SK) as h:
        h.send("t/workflow", {"id": 1})
        await h.ex.advance(dt.timedelta(minutes=31))
        h.send("t/approve", {"id": 1, "by": "grace"})
        await h.ex.run_until_idle()
        run = h.only_run("workflow")
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output["approved_by"] == "grace"


async def test_cloud_mode_sync_with_the_wrong_key_fails() -> None:
    async with Executor(clock=VirtualClock(), signing_key=OTHER_SK) as ex:
        client = inngest.Inngest(app_id=APP_ID, is_production=True, signing_key=SK)
        ex.mount("http://app.test", inngest.InngestASGI(client, build_functions(client)))
        with pytest.raises(SyncError, match="HTTP 401"):
            await ex.sync("http://app.test/api/inngest")


async def test_unsigned_responses_are_refused_in_cloud_mode(hp: Harness) -> None:
    # The app is in dev mode and never signs; an executor with a key must not trust it.
    async with Executor(clock=VirtualClock(), signing_key=SK) as ex:
        ex.mount("http://app.test", inngest.InngestASGI(hp.client, build_functions(hp.client)))
        with pytest.raises(SyncError):
            await ex.sync("http://app.test/api/inngest")  # 400 server_kind_mismatch
        ex.register(
            RegisterRequest(
                url=hp.app_url,
                functions=list(hp.ex.apps[APP_ID].functions.values()),
                appName=APP_ID,
            )
        )
        ex.send({"name": "t/steps", "data": {"n": 1}})
        await ex.advance(60)
        [run] = ex.runs_for(f"{APP_ID}-steps")
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert run.error["name"] == "SignatureError"


async def test_the_app_records_its_sdk_whatever_the_sync_kind(hp: Harness) -> None:
    """Out-of-band registrations name the SDK in ``sdk``; in-band replies do not, and the
    app records the reply's ``x-inngest-sdk`` header instead: the same value."""
    expected = f"inngest-asgi:v{inngest.__version__}"
    assert hp.ex.apps[APP_ID].sdk == expected
    async with Executor(clock=VirtualClock(), signing_key=SK) as ex:
        client = inngest.Inngest(app_id=APP_ID, is_production=True, signing_key=SK)
        ex.mount("http://app.test", inngest.InngestASGI(client, build_functions(client)))
        app = await ex.sync("http://app.test/api/inngest")
        assert app.sdk == expected
