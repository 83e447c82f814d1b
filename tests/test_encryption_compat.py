"""Wire compatibility with the official ``inngest_encryption`` package, both ways.

Runs only where the official package is installed (``nox -s encryption_compat``); skipped
otherwise. The official middleware is driven through its hooks with the official SDK's own
types; ours through the sans-IO handler, so each side sees exactly what the other put on the
wire.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

official = pytest.importorskip("inngest_encryption")
official_sdk = pytest.importorskip("inngest")

# The official SDK exports neither the step-info type of TransformOutputResult nor the memo
# type of StepMemos; both come from its internals (the nox session pins a known version).
from inngest._internal import middleware_lib, server_lib  # noqa: E402
from inngest._internal.step_lib.base import Output  # noqa: E402

import inngest_asgi  # noqa: E402
from inngest_asgi._engine import hash_step_id  # noqa: E402
from inngest_asgi.encryption import EncryptionMiddleware  # noqa: E402

from .conftest import FakeInngestAPI  # noqa: E402
from .core import call, handler, json  # noqa: E402

KEY = "shared secret between both SDKs"
OLD_KEY = "last year's secret"
RAW_KEY = b"8f" * 32
trigger = inngest_asgi.TriggerEvent(event="app/compat")
VALUES: list[Any] = [
    {"card": "4242", "amounts": [1, 2.5, -3], "nested": {"ok": True, "none": None}},
    "héllo ✓",
    0,
    None,
    [],
    {"data": 1},
]


def theirs(key: str | bytes = KEY, **options: Any) -> Any:
    client = official_sdk.Inngest(app_id="official", is_production=False)
    return official.EncryptionMiddleware.factory(key, **options)(client, None)


def their_step_output(value: Any, key: str | bytes = KEY, op: Any = None) -> Any:
    step = middleware_lib.TransformOutputStepInfo(
        id="s", op=op or server_lib.Opcode.STEP_RUN, opts=None
    )
    result = official_sdk.TransformOutputResult(error=None, output=value, step=step)
    theirs(key).transform_output(result)
    return result.output


def their_input(
    event_data: dict[str, Any], memos: dict[str, Any], key: str | bytes = KEY, **options: Any
) -> Any:
    """Run the official transform_input; return (event data, memo data by id)."""
    event = official_sdk.Event(name="app/compat", data=event_data)
    ctx = official_sdk.Context(
        attempt=0,
        event=event,
        events=[event],
        group=None,
        job_id=None,
        logger=logging.getLogger("compat"),
        request_id=None,
        run_id="r",
        step=None,
    )
    steps = official_sdk.StepMemos({k: Output(data=v) for k, v in memos.items()})
    theirs(key, **options).transform_input(ctx, None, steps)
    return ctx.event.data, {k: steps.pop(k).data for k in memos}


def echo_fn(client: inngest_asgi.Inngest, *, async_fn: bool) -> inngest_asgi.Function[Any]:
    """Returns a step's memo and the event data: what our side decrypted."""
    if async_fn:

        @client.create_function(fn_id="echo", trigger=trigger)
        async def echo(ctx: inngest_asgi.Context) -> dict[str, Any]:
            value = await ctx.step.run("value", lambda: "unused on replay")
            return {"step": value, "event": ctx.event.data}

    else:

        @client.create_function(fn_id="echo", trigger=trigger)
        def echo(ctx: inngest_asgi.ContextSync) -> dict[str, Any]:
            value = ctx.step.run("value", lambda: "unused on replay")
            return {"step": value, "event": ctx.event.data}

    return echo


def ours(key: str | bytes = KEY, *, api: FakeInngestAPI | None = None, **options: Any) -> Any:
    return inngest_asgi.Inngest(
        app_id="ours",
        is_production=False,
        event_key="k",
        event_api_base_url=api.url if api else None,
        middleware=[EncryptionMiddleware.factory(key, **options)],
    )


both = pytest.mark.parametrize("async_fn", [True, False], ids=["async-fn", "sync-fn"])


# --- official -> ours -----------------------------------------------------------------------


@both
@pytest.mark.parametrize("value", VALUES)
def test_their_step_output_and_event_decrypt_in_ours(async_fn: bool, value: Any) -> None:
    events = [official_sdk.Event(name="app/compat", data={"encrypted": value, "plain": 1})]
    theirs().before_send_events(events)
    sent_data = events[0].data
    if value is not None:  # both SDKs leave a null field as it is
        assert sent_data["encrypted"]["__ENCRYPTED__"] is True

    client = ours()
    fn = echo_fn(client, async_fn=async_fn)
    memo = {hash_step_id("value"): {"data": their_step_output(value)}}
    event = {"name": "app/compat", "data": sent_data, "id": "e", "ts": 1}
    response = call(handler(client, [fn]), fn.id, event=event, steps=memo)
    output = their_input({}, {"out": json(response)})[1]["out"]
    assert output == {"step": value, "event": {"encrypted": value, "plain": 1}}


def test_their_function_output_is_our_invoke_result() -> None:
    client = ours()

    @client.create_function(fn_id="parent", trigger=trigger)
    async def parent(ctx: inngest_asgi.Context) -> Any:
        return await ctx.step.invoke_by_id("kid", app_id="official", function_id="child")

    result = official_sdk.TransformOutputResult(error=None, output={"kid": "ok"}, step=None)
    theirs().transform_output(result)
    response = call(
        handler(client, [parent]), parent.id, steps={hash_step_id("kid"): {"data": result.output}}
    )
    assert their_input({}, {"out": json(response)})[1]["out"] == {"kid": "ok"}


def test_their_invoke_payload_is_our_trigger_event() -> None:
    opts = {"function_id": "ours-echo", "payload": {"data": {"encrypted": {"pin": 1}, "x": 2}}}
    step = middleware_lib.TransformOutputStepInfo(id="s", op=server_lib.Opcode.INVOKE, opts=opts)
    theirs().transform_output(
        official_sdk.TransformOutputResult(error=None, output=None, step=step)
    )
    data = opts["payload"]["data"]

    client = ours()
    fn = echo_fn(client, async_fn=True)
    memo = {hash_step_id("value"): {"data": None}}
    event = {"name": "inngest/function.invoked", "data": data, "id": "e", "ts": 1}
    response = call(handler(client, [fn]), fn.id, event=event, steps=memo)
    assert their_input({}, {"o": json(response)})[1]["o"]["event"] == {
        "encrypted": {"pin": 1},
        "x": 2,
    }


@pytest.mark.parametrize(("key", "fallbacks"), [(RAW_KEY, []), ("new key", [OLD_KEY])])
def test_keys_mean_the_same_in_both(key: str | bytes, fallbacks: list[Any]) -> None:
    encrypt_with = fallbacks[0] if fallbacks else key
    client = ours(key, fallback_decryption_keys=fallbacks)
    fn = echo_fn(client, async_fn=True)
    memo = {hash_step_id("value"): {"data": their_step_output("v", encrypt_with)}}
    response = call(handler(client, [fn]), fn.id, steps=memo)
    # Our output is encrypted with the primary key, which the official package then opens.
    assert their_input({}, {"o": json(response)}, key)[1]["o"]["step"] == "v"


# --- ours -> official -----------------------------------------------------------------------


@both
@pytest.mark.parametrize("value", VALUES)
def test_our_step_output_decrypts_in_theirs(async_fn: bool, value: Any) -> None:
    client = ours()

    if async_fn:

        @client.create_function(fn_id="emit", trigger=trigger)
        async def emit(ctx: inngest_asgi.Context) -> None:
            await ctx.step.run("value", lambda: value)

    else:

        @client.create_function(fn_id="emit", trigger=trigger)
        def emit(ctx: inngest_asgi.ContextSync) -> None:
            ctx.step.run("value", lambda: value)

    (op,) = json(call(handler(client, [emit]), emit.id))
    assert their_input({}, {op["id"]: op["data"]})[1][op["id"]] == value


@pytest.mark.parametrize("value", VALUES)
def test_our_sent_events_decrypt_in_theirs(inngest_api: FakeInngestAPI, value: Any) -> None:
    inngest_api.reply(200, {"ids": ["a"], "status": 200})
    ours(api=inngest_api).send_sync(
        inngest_asgi.Event(name="app/compat", data={"encrypted": value, "plain": 1})
    )
    sent = inngest_api.requests[0].json()[0]["data"]
    assert their_input(sent, {})[0] == {"encrypted": value, "plain": 1}


def test_our_invoke_payload_decrypts_in_theirs() -> None:
    client = ours()

    @client.create_function(fn_id="parent", trigger=trigger)
    def parent(ctx: inngest_asgi.ContextSync) -> Any:
        return ctx.step.invoke_by_id(
            "kid", app_id="official", function_id="child", data={"encrypted": [1, "two"]}
        )

    (op,) = json(call(handler(client, [parent]), parent.id))
    data = op["opts"]["payload"]["data"]
    assert their_input(data, {})[0] == {"encrypted": [1, "two"]}


@pytest.mark.parametrize(("key", "fallbacks"), [(RAW_KEY, []), ("new key", [OLD_KEY])])
def test_our_keys_open_in_theirs(key: str | bytes, fallbacks: list[Any]) -> None:
    encrypt_with = fallbacks[0] if fallbacks else key
    client = ours(encrypt_with)
    fn = echo_fn(client, async_fn=False)
    (op,) = json(call(handler(client, [fn]), fn.id))
    opened = their_input({}, {op["id"]: op["data"]}, key, fallback_decryption_keys=fallbacks)
    assert opened[1][op["id"]] == "unused on replay"
