"""asyncio.gather of steps, rich typed outputs, typed events, send_event, the replay filter."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools
import logging
import uuid
from typing import Any

import msgspec
import pydantic
import pytest

import inngest_asgi as inngest
from inngest_asgi._engine import hash_step_id

from .conftest import FakeInngestAPI
from .core import call, handler, json

client = inngest.Inngest(app_id="kinds", is_production=False)
trigger = inngest.TriggerEvent(event="app/hello")
A, B = hash_step_id("step-a"), hash_step_id("step-b")


@client.create_function(fn_id="gather", trigger=trigger)
async def gather(ctx: inngest.Context) -> list[str]:
    first = await ctx.step.run("first", lambda: "1")
    a, b = await asyncio.gather(
        ctx.step.run("step-a", lambda: "A"), ctx.step.run("step-b", lambda: "B")
    )
    return [first, a, b]


def test_gather_plans_concurrent_steps_together() -> None:
    serve = handler(client, [gather])
    first = {hash_step_id("first"): {"data": "1"}}
    discovery = json(call(serve, gather.id, steps=dict(first)))
    assert [(op["op"], op["id"]) for op in discovery] == [("StepPlanned", A), ("StepPlanned", B)]
    # Each targeted request runs only its own step, while the sibling waits and unwinds.
    ran_b = json(
        call(serve, gather.id, step=B, steps=dict(first), disable_immediate_execution=True)
    )
    assert [(op["op"], op["id"], op["data"]) for op in ran_b] == [("StepRun", B, "B")]
    ran_a = json(
        call(serve, gather.id, step=A, steps=dict(first), disable_immediate_execution=True)
    )
    assert [(op["op"], op["data"]) for op in ran_a] == [("StepRun", "A")]
    done = call(serve, gather.id, steps={**first, A: {"data": "A"}, B: {"data": "B"}})
    assert (done.status, json(done)) == (200, ["1", "A", "B"])
    # One step memoized, one new: the new one runs at once.
    (op,) = json(call(serve, gather.id, steps={**first, A: {"data": "A"}}))
    assert (op["op"], op["id"]) == ("StepRun", B)
    # A target in neither branch is an error, not a silent success.
    assert json(call(serve, gather.id, step="beef", steps=dict(first)))["code"] == "step_unexpected"


def test_gather_mixes_sleeps_and_runs() -> None:
    @client.create_function(fn_id="gather-mixed", trigger=trigger)
    async def mixed(ctx: inngest.Context) -> None:
        await asyncio.gather(ctx.step.sleep("nap", 5_000), ctx.step.run("work", lambda: 1))

    ops = json(call(handler(client, [mixed]), mixed.id))
    assert [op["op"] for op in ops] == ["Sleep", "StepPlanned"]


class Colour(enum.Enum):
    RED = "red"


class Order(msgspec.Struct):
    id: int
    placed: dt.datetime


@dataclasses.dataclass
class Receipt:
    order: int
    colour: Colour


class Customer(pydantic.BaseModel):
    name: str
    since: dt.date


def load_order() -> Order:
    return Order(id=7, placed=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))


def make_receipt() -> Receipt:
    return Receipt(order=7, colour=Colour.RED)


def find_customer() -> Customer:
    return Customer(name="Ada", since=dt.date(2020, 5, 1))


def new_ids() -> list[uuid.UUID]:
    return [uuid.UUID(int=1)]


def run_steps_to_the_end(fn: inngest.Function[Any], calls: int) -> dict[str, Any]:
    """Call ``fn`` as the server would, one new step per call, until it returns "ok"; the
    memos it built up."""
    serve = handler(client, [fn])
    steps: dict[str, Any] = {}
    for _ in range(calls):
        response = call(serve, fn.id, steps=dict(steps))
        if response.status == 200:
            break
        (op,) = json(response)
        steps[op["id"]] = {"data": op["data"]}
    assert json(response) == "ok"
    return steps


@pytest.mark.parametrize("async_fn", [True, False], ids=["async", "sync"])
def test_annotated_outputs_come_back_typed(async_fn: bool) -> None:
    seen: list[Any] = []
    if async_fn:

        @client.create_function(fn_id="typed", trigger=trigger)
        async def typed(ctx: inngest.Context) -> str:
            seen.extend(
                [
                    await ctx.step.run("order", load_order),
                    await ctx.step.run("receipt", make_receipt),
                    await ctx.step.run("customer", find_customer),
                    await ctx.step.run("ids", new_ids),
                    await ctx.step.run("raw", lambda: {"placed": "2030-01-01"}),
                    await ctx.step.run("forced", lambda: "2030-01-01", output_type=dt.date),
                ]
            )
            return "ok"

        fn = typed
    else:

        @client.create_function(fn_id="typed", trigger=trigger)
        def typed_sync(ctx: inngest.ContextSync) -> str:
            seen.extend(
                [
                    ctx.step.run("order", load_order),
                    ctx.step.run("receipt", make_receipt),
                    ctx.step.run("customer", find_customer),
                    ctx.step.run("ids", new_ids),
                    ctx.step.run("raw", lambda: {"placed": "2030-01-01"}),
                    ctx.step.run("forced", lambda: "2030-01-01", output_type=dt.date),
                ]
            )
            return "ok"

        fn = typed_sync
    steps = run_steps_to_the_end(fn, 7)
    # The wire carried JSON...
    assert steps[hash_step_id("order")] == {"data": {"id": 7, "placed": "2030-01-01T00:00:00Z"}}
    assert steps[hash_step_id("customer")] == {"data": {"name": "Ada", "since": "2020-05-01"}}
    # ...and the last replay got the declared types back.
    assert seen[-6:] == [
        load_order(),
        make_receipt(),
        find_customer(),
        [uuid.UUID(int=1)],
        {"placed": "2030-01-01"},
        dt.date(2030, 1, 1),
    ]


def logged(fn: Any) -> Any:
    """A decorator of the usual kind: every function it wraps shares one wrapper code object."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        return fn(*args)

    return wrapper


@logged
def load_order_logged() -> Order:
    return load_order()


@logged
def make_receipt_logged() -> Receipt:
    return make_receipt()


@pytest.mark.parametrize("async_fn", [True, False], ids=["async", "sync"])
def test_decorated_step_handlers_keep_their_own_output_types(async_fn: bool) -> None:
    seen: list[Any] = []
    if async_fn:

        @client.create_function(fn_id="decorated", trigger=trigger)
        async def decorated(ctx: inngest.Context) -> str:
            seen.append(await ctx.step.run("order", load_order_logged))
            seen.append(await ctx.step.run("receipt", make_receipt_logged))
            return "ok"

        fn = decorated
    else:

        @client.create_function(fn_id="decorated", trigger=trigger)
        def decorated_sync(ctx: inngest.ContextSync) -> str:
            seen.append(ctx.step.run("order", load_order_logged))
            seen.append(ctx.step.run("receipt", make_receipt_logged))
            return "ok"

        fn = decorated_sync
    run_steps_to_the_end(fn, 3)
    assert seen[-2:] == [load_order(), make_receipt()]


class Signup(msgspec.Struct):
    email: str
    plan: str = "free"


def test_event_data_as_a_typed_model() -> None:
    event = inngest.Event(name="app/signup", data={"email": "a@example.com"})
    assert event.data_as(Signup) == Signup(email="a@example.com")
    ada = inngest.Event(name="app/customer", data={"name": "Ada", "since": "2020-05-01"})
    assert ada.data_as(Customer) == Customer(name="Ada", since=dt.date(2020, 5, 1))
    with pytest.raises(msgspec.ValidationError, match="email"):
        inngest.Event(name="app/signup", data={}).data_as(Signup)


def test_send_event_is_a_memoized_step(inngest_api: FakeInngestAPI) -> None:
    sender = inngest.Inngest(
        app_id="kinds", is_production=False, event_api_base_url=inngest_api.url
    )

    @sender.create_function(fn_id="send", trigger=trigger)
    async def send(ctx: inngest.Context) -> list[str]:
        return await ctx.step.send_event(
            "send",
            inngest.Event(name="app/sent", data={"a": 1}, id="my-idem-id", ts=1700000000000),
        )

    inngest_api.reply(200, {"ids": ["01HQ0000000000000000000001"], "status": 200})
    serve = handler(sender, [send])
    (op,) = json(call(serve, send.id))
    assert (op["op"], op["id"], op["data"]) == (
        "StepRun",
        "37ed539c0cef13959abd980bebf30f4922f606e3",
        ["01HQ0000000000000000000001"],
    )
    (request,) = inngest_api.requests
    assert request.path == "/e/NO_EVENT_KEY_SET"
    assert request.json() == [
        {"data": {"a": 1}, "name": "app/sent", "ts": 1700000000000, "id": "my-idem-id"}
    ]
    assert request.headers["x-inngest-event-id-seed"]
    # Replayed, it is not sent again.
    done = call(serve, send.id, steps={op["id"]: {"data": op["data"]}})
    assert json(done) == ["01HQ0000000000000000000001"]
    assert len(inngest_api.requests) == 1


def test_send_failure_is_a_step_error_with_the_reason(inngest_api: FakeInngestAPI) -> None:
    sender = inngest.Inngest(
        app_id="kinds", is_production=False, event_api_base_url=inngest_api.url
    )

    @sender.create_function(fn_id="send-sync", trigger=trigger)
    def send_sync(ctx: inngest.ContextSync) -> list[str]:
        return ctx.step.send_event("send", [inngest.Event(name="app/sent")])

    inngest_api.reply(401, {"error": "event key not found"})
    (op,) = json(call(handler(sender, [send_sync]), send_sync.id))
    assert op["op"] == "StepError"
    assert op["error"]["name"] == "SendEventsError"
    assert "event key not found" in op["error"]["message"]


def test_replay_filter_drops_replayed_records(caplog: pytest.LogCaptureFixture) -> None:
    app_log = logging.getLogger("tests.app")
    replay_filter = inngest.ReplayFilter()
    app_log.addFilter(replay_filter)

    @client.create_function(fn_id="filtered", trigger=trigger)
    def filtered(ctx: inngest.ContextSync) -> None:
        app_log.warning("start")
        ctx.step.run("my-step", lambda: 1)
        app_log.warning("end")

    serve = handler(client, [filtered])
    try:
        with caplog.at_level("WARNING", logger="tests.app"):
            call(serve, filtered.id)
            call(serve, filtered.id, steps={hash_step_id("my-step"): {"data": 1}})
            app_log.warning("outside a run")
    finally:
        app_log.removeFilter(replay_filter)
    assert [r.getMessage() for r in caplog.records] == ["start", "end", "outside a run"]
