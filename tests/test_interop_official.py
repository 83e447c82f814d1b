"""The executor drives apps written with the official ``inngest`` SDK, served by its own FastAPI
adapter: proof that the executor speaks the protocol, not a dialect of our SDK.

Only ``nox -s interop`` installs the official package; without it this module is skipped.
Each test gets an executor on a virtual clock with its HTTP API served by uvicorn on
127.0.0.1 (the official client sends its events there, and syncs there in dev mode) and the
FastAPI app mounted in-process. Cloud mode (signed requests and responses, in-band sync) and
dev mode (out-of-band sync through ``POST /fn/register``) are both covered.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

inngest = pytest.importorskip("inngest")
fastapi = pytest.importorskip("fastapi")
inngest_fast_api = pytest.importorskip("inngest.fast_api")

from inngest_asgi.executor import (  # noqa: E402
    Executor,
    Run,
    RunStatus,
    StepStatus,
    UvicornServer,
    VirtualClock,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

SK = "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
EVENT_KEY = "interop-event-key"
APP_ORIGIN = "http://official.test"
APP_URL = f"{APP_ORIGIN}/api/inngest"
HOUR = dt.timedelta(hours=1)

#: Attempts per (function, run id), for steps and functions that fail before they succeed.
ATTEMPTS: collections.Counter[tuple[str, str]] = collections.Counter()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def build_app(client: Any) -> Any:
    """A FastAPI app serving a few multi-step workflows written with the official SDK."""

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="interop/child"))
    def child(ctx: Any) -> int:
        return int(ctx.step.run("double", lambda: ctx.event.data["x"] * 2))

    @client.create_function(fn_id="workflow", trigger=inngest.TriggerEvent(event="interop/order"))
    async def workflow(ctx: Any) -> dict[str, Any]:
        price = await ctx.step.run("price", lambda: ctx.event.data["qty"] * 5)
        await ctx.step.sleep("cool-down", dt.timedelta(minutes=30))
        approval = await ctx.step.wait_for_event(
            "approval",
            event="interop/approved",
            if_exp="async.data.order_id == event.data.order_id",
            timeout=HOUR,
        )
        left, right = await ctx.group.parallel(
            (
                lambda: ctx.step.run("left", lambda: "L"),
                lambda: ctx.step.run("right", lambda: "R"),
            )
        )
        doubled = await ctx.step.invoke("call-child", function=child, data={"x": price})
        ids = await ctx.step.send_event(
            "notify",
            inngest.Event(name="interop/notified", data={"order_id": ctx.event.data["order_id"]}),
        )
        return {
            "price": price,
            "approved_by": approval.data["by"] if approval else None,
            "pair": [left, right],
            "doubled": doubled,
            "sent": len(ids),
        }

    @client.create_function(
        fn_id="flaky-step", trigger=inngest.TriggerEvent(event="interop/flaky"), retries=3
    )
    def flaky_step(ctx: Any) -> str:
        def fetch() -> str:
            ATTEMPTS[("flaky-step", ctx.run_id)] += 1
            if ATTEMPTS[("flaky-step", ctx.run_id)] < 3:
                raise ConnectionError("upstream down")
            return "fetched"

        return str(ctx.step.run("fetch", fetch))

    @client.create_function(
        fn_id="flaky-fn", trigger=inngest.TriggerEvent(event="interop/flaky-fn"), retries=2
    )
    async def flaky_fn(ctx: Any) -> int:
        ATTEMPTS[("flaky-fn", ctx.run_id)] += 1
        if ctx.attempt < 1:
            raise RuntimeError("first attempt fails")
        return int(ctx.attempt)

    @client.create_function(
        fn_id="doomed", trigger=inngest.TriggerEvent(event="interop/doomed"), retries=5
    )
    async def doomed(ctx: Any) -> None:
        await ctx.step.run("ok", lambda: 1)
        raise inngest.NonRetriableError("give up at once")

    @client.create_function(
        fn_id="step-fails", trigger=inngest.TriggerEvent(event="interop/step-fails"), retries=1
    )
    async def step_fails(ctx: Any) -> str:
        def boom() -> None:
            raise ValueError("always")

        try:
            await ctx.step.run("boom", boom)
        except inngest.StepError as exc:
            return f"caught {exc.name}: {exc.message}"
        return "unreachable"

    app = fastapi.FastAPI()
    inngest_fast_api.serve(app, client, [child, workflow, flaky_step, flaky_fn, doomed, step_fails])
    return app


@contextlib.asynccontextmanager
async def running(mode: str) -> AsyncIterator[Executor]:
    """An executor in ``mode`` with its API on 127.0.0.1, the official app mounted and synced."""
    signing_key = SK if mode == "cloud" else None
    async with (
        Executor(clock=VirtualClock(), signing_key=signing_key, event_key=EVENT_KEY) as ex,
        UvicornServer(ex.api) as api,
    ):
        client = inngest.Inngest(
            app_id="official",
            is_production=mode == "cloud",
            signing_key=signing_key,
            event_key=EVENT_KEY,
            api_base_url=api.url,
            event_api_base_url=api.url,
        )
        ex.mount(APP_ORIGIN, build_app(client))
        app = await ex.sync(APP_URL)
        assert app.framework == "fast_api"
        assert set(app.functions) >= {"official-workflow", "official-child"}
        yield ex


async def finish(ex: Executor, event: dict[str, Any], function_id: str) -> Run:
    ex.send(event)
    await ex.run_until_idle()
    await ex.advance(HOUR)
    [run] = ex.runs_for(function_id)
    return run


@pytest.mark.parametrize("mode", ["cloud", "dev"])
async def test_multi_step_workflow(mode: str) -> None:
    async with running(mode) as ex:
        ex.send({"name": "interop/order", "data": {"order_id": 7, "qty": 3}})
        await ex.run_until_idle()
        [run] = ex.runs_for("official-workflow")
        assert run.step("cool-down").status is StepStatus.SLEEPING
        await ex.advance(dt.timedelta(minutes=30))
        assert run.step("approval").status is StepStatus.WAITING
        ex.send({"name": "interop/approved", "data": {"order_id": 8, "by": "mallory"}})
        await ex.run_until_idle()
        assert run.step("approval").status is StepStatus.WAITING
        ex.send({"name": "interop/approved", "data": {"order_id": 7, "by": "alice"}})
        await ex.run_until_idle()
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output == {
            "price": 15,
            "approved_by": "alice",
            "pair": ["L", "R"],
            "doubled": 30,
            "sent": 1,
        }
        kinds = {s.name: s.kind for s in run.steps}
        assert kinds == {
            "price": "run",
            "cool-down": "sleep",
            "approval": "wait_for_event",
            "left": "run",
            "right": "run",
            "call-child": "invoke",
            "notify": "run",
        }
        assert all(s.status is StepStatus.COMPLETED for s in run.steps)
        [child_run] = ex.runs_for("official-child")
        assert child_run.output == 30
        # step.send_event reached the executor's event API.
        assert "interop/notified" in [e["name"] for e in ex.events]


async def test_wait_times_out() -> None:
    async with running("cloud") as ex:
        ex.send({"name": "interop/order", "data": {"order_id": 1, "qty": 1}})
        await ex.run_until_idle()
        await ex.advance(dt.timedelta(minutes=30))
        await ex.advance(HOUR)
        [run] = ex.runs_for("official-workflow")
        assert run.step("approval").status is StepStatus.TIMED_OUT
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output["approved_by"] is None


@pytest.mark.parametrize("mode", ["cloud", "dev"])
async def test_step_error_is_retried(mode: str) -> None:
    async with running(mode) as ex:
        run = await finish(ex, {"name": "interop/flaky"}, "official-flaky-step")
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output == "fetched"
        step = run.step("fetch")
        assert step.attempts == 2
        assert ATTEMPTS[("flaky-step", run.id)] == 3


async def test_function_error_is_retried() -> None:
    async with running("cloud") as ex:
        run = await finish(ex, {"name": "interop/flaky-fn"}, "official-flaky-fn")
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output == 1
        assert ATTEMPTS[("flaky-fn", run.id)] == 2


async def test_non_retriable_error_fails_at_once() -> None:
    async with running("cloud") as ex:
        run = await finish(ex, {"name": "interop/doomed"}, "official-doomed")
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert run.error["message"] == "give up at once"
        # One request for the step, one that raised: no retry of the failing one.
        assert run.requests == 2


async def test_step_fails_after_its_retries() -> None:
    async with running("cloud") as ex:
        run = await finish(ex, {"name": "interop/step-fails"}, "official-step-fails")
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output == "caught ValueError: always"
        step = run.step("boom")
        assert step.status is StepStatus.FAILED
        assert step.attempts == 1
