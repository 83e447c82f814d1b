"""EncryptionMiddleware: what goes on the wire is ciphertext, what user code sees is plaintext.

Requests go through the sans-IO handler (``tests.core``); event sends go to the fake Inngest API;
one scenario runs end to end under the local executor. Compatibility with the official
``inngest_encryption`` package is checked here against fixed vectors it produced, and by live
round trips in ``test_encryption_compat.py`` (nox session ``encryption_compat``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import importlib
import logging
import sys
from typing import Any

import anyio
import msgspec
import pytest

import inngest_asgi as inngest
from inngest_asgi._engine import hash_step_id
from inngest_asgi.encryption import DecryptionError, EncryptionMiddleware, _Keyring, derive_key
from inngest_asgi.executor import Executor, RunStatus, UvicornServer, VirtualClock

from .conftest import FakeInngestAPI
from .core import call, handler, json, send
from .protocol import call_body

KEY = "correct horse battery staple"
OLD_KEY = "the key we used last year"
trigger = inngest.TriggerEvent(event="app/secret")

#: Produced by the official inngest_encryption 0.1.0 with the str key "vector-key".
VECTOR = {
    "__ENCRYPTED__": True,
    "__STRATEGY__": "inngest/libsodium",
    "data": "X5EQRIi2Ejy9Rw3Etg9GmfUazzMry1N2UXo3psSmAkeoiAVtHwzpcEtEo+jhesG+8lXXKL2Z9vPobmcdk3F5V"
    "fONFK7dZslNKRBiOg+jLAmk8uCLY3q0TpidkQ4=",
}
VECTOR_PLAINTEXT = {"card": "4242", "amount": 12.5, "tags": ["é"]}
#: Produced by the same package with the bytes key b"00112233...eeff" * 2 (a hex raw key).
RAW_KEY = b"00112233445566778899aabbccddeeff" * 2
RAW_VECTOR = {
    "__ENCRYPTED__": True,
    "__STRATEGY__": "inngest/libsodium",
    "data": "6vEzteLmXT06urS6ZxLsErPMl/hbvRV2+SYtUDnN1LKEwcu7+MX1C6NWPg/RJpztyA==",
}


def seal(value: Any, key: str | bytes = KEY) -> dict[str, Any]:
    return _Keyring(key, []).encrypt(msgspec.json.encode(value))


def opened(marker: Any, key: str | bytes = KEY) -> Any:
    assert isinstance(marker, dict), marker
    assert marker.keys() == {"__ENCRYPTED__", "__STRATEGY__", "data"}
    assert marker["__ENCRYPTED__"] is True
    assert marker["__STRATEGY__"] == "inngest/libsodium"
    return _Keyring(key, []).decrypt(marker, "test value")


def client_with(
    *, fn_level: bool = False, api: FakeInngestAPI | None = None, **options: Any
) -> inngest.Inngest:
    mw = [EncryptionMiddleware.factory(options.pop("key", KEY), **options)]
    return inngest.Inngest(
        app_id="enc",
        is_production=False,
        event_key="test-key",
        event_api_base_url=api.url if api else None,
        middleware=None if fn_level else mw,
    )


def secret_fn(client: inngest.Inngest, *, async_fn: bool, **kw: Any) -> inngest.Function[Any]:
    """Reads the event, runs one step, returns both: the memo and output paths in one."""
    if async_fn:

        @client.create_function(fn_id="secret", trigger=trigger, **kw)
        async def fn(ctx: inngest.Context) -> dict[str, Any]:
            card = await ctx.step.run("card", lambda: {"number": "4242", "data": 1})
            return {"event": ctx.event.data, "card": card, "n": len(ctx.events)}

    else:

        @client.create_function(fn_id="secret", trigger=trigger, **kw)
        def fn(ctx: inngest.ContextSync) -> dict[str, Any]:
            card = ctx.step.run("card", lambda: {"number": "4242", "data": 1})
            return {"event": ctx.event.data, "card": card, "n": len(ctx.events)}

    return fn


def event(data: dict[str, Any]) -> dict[str, Any]:
    return {"name": "app/secret", "data": data, "id": "01HEVT", "ts": 1700000000000}


both = pytest.mark.parametrize("async_fn", [True, False], ids=["async-fn", "sync-fn"])


# --- the format -----------------------------------------------------------------------------


def test_vectors_from_the_official_package_decrypt() -> None:
    assert _Keyring("vector-key", []).decrypt(VECTOR, "vector") == VECTOR_PLAINTEXT
    assert _Keyring(RAW_KEY, []).decrypt(RAW_VECTOR, "vector") == "raw key"


def test_marker_layout_and_key_derivation() -> None:
    marker = seal({"a": 1})
    sealed = base64.b64decode(marker["data"], validate=True)
    # 24-byte nonce, 16-byte Poly1305 tag, then the JSON text (7 bytes for {"a":1})
    assert len(sealed) == 24 + 16 + len(b'{"a":1}')
    assert opened(marker) == {"a": 1}
    assert seal({"a": 1})["data"] != marker["data"]  # a fresh nonce every time
    assert len(derive_key("x")) == 32
    assert derive_key(RAW_KEY) == bytes.fromhex(RAW_KEY.decode())


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("", "empty"),
        (b"not hex at all", "hex spelling"),
        (b"abcd", "hex spelling"),
        (1234, "str or bytes"),
    ],
)
def test_bad_keys_fail_at_set_up(key: Any, match: str) -> None:
    with pytest.raises(inngest.ConfigError, match=match):
        EncryptionMiddleware.factory(key)
    with pytest.raises(inngest.ConfigError, match=match):
        EncryptionMiddleware.factory(KEY, fallback_decryption_keys=[key])


def test_bad_field_name_fails() -> None:
    with pytest.raises(inngest.ConfigError, match="event_encryption_field"):
        EncryptionMiddleware.factory(KEY, event_encryption_field="")


def test_without_pynacl_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("nacl", "nacl.exceptions", "nacl.secret", "nacl.utils"):
        monkeypatch.setitem(sys.modules, name, None)  # None makes the import fail
    monkeypatch.delitem(sys.modules, "inngest_asgi.encryption")
    with pytest.raises(ImportError, match=r'pip install "inngest-asgi\[encryption\]"'):
        importlib.import_module("inngest_asgi.encryption")


# --- steps and function output --------------------------------------------------------------


@both
def test_step_output_is_encrypted_and_decrypted_on_replay(async_fn: bool) -> None:
    client = client_with()
    fn = secret_fn(client, async_fn=async_fn)
    serve = handler(client, [fn])

    (op,) = json(call(serve, fn.id, event=event({"plain": 1})))
    assert op["op"] == "StepRun"
    assert "4242" not in str(op)
    assert opened(op["data"]) == {"number": "4242", "data": 1}

    done = call(serve, fn.id, event=event({"plain": 1}), steps={op["id"]: {"data": op["data"]}})
    assert done.status == 200
    assert b"4242" not in done.body
    # The step returned {"data": ...}: it comes back as the whole dict, not unwrapped.
    assert opened(json(done)) == {
        "event": {"plain": 1},
        "card": {"number": "4242", "data": 1},
        "n": 1,
    }


@both
def test_function_level_middleware(async_fn: bool) -> None:
    client = client_with(fn_level=True)
    fn = secret_fn(client, async_fn=async_fn, middleware=[EncryptionMiddleware.factory(KEY)])
    (op,) = json(call(handler(client, [fn]), fn.id))
    assert opened(op["data"]) == {"number": "4242", "data": 1}


@both
def test_trigger_events_are_decrypted(async_fn: bool) -> None:
    client = client_with()
    fn = secret_fn(client, async_fn=async_fn)
    memo = {hash_step_id("card"): {"data": seal("memo")}}
    data = {"encrypted": seal({"ssn": "123"}), "plain": 2, "other": seal([1, 2])}
    response = call(handler(client, [fn]), fn.id, event=event(data), steps=memo)
    # Every encrypted top-level field is decrypted (as the official package does), not only
    # the configured one: an app may have used another field name before.
    assert opened(json(response))["event"] == {
        "encrypted": {"ssn": "123"},
        "plain": 2,
        "other": [1, 2],
    }


def test_every_event_of_a_batch_is_decrypted() -> None:
    client = client_with()

    @client.create_function(fn_id="batch", trigger=trigger)
    async def batch(ctx: inngest.Context) -> list[Any]:
        return [e.data for e in ctx.events]

    payload = call_body(event=event({"encrypted": seal(1)}))
    payload["events"] = [event({"encrypted": seal(1)}), event({"encrypted": seal(2)}), event({})]
    body = msgspec.json.encode(payload)
    response = send(handler(client, [batch]), "POST", f"fnId={batch.id}&stepId=step", body)
    assert opened(json(response)) == [{"encrypted": 1}, {"encrypted": 2}, {}]


@both
def test_on_failure_sees_the_trigger_event_decrypted(async_fn: bool) -> None:
    client = client_with()

    async def on_failure_async(ctx: inngest.Context) -> Any:
        return ctx.event.data["event"]["data"]

    def on_failure_sync(ctx: inngest.ContextSync) -> Any:
        return ctx.event.data["event"]["data"]

    @client.create_function(
        fn_id="fails",
        trigger=trigger,
        on_failure=on_failure_async if async_fn else on_failure_sync,
    )
    async def fails(ctx: inngest.Context) -> None:
        raise ValueError("boom")

    (failure,) = fails.companions
    failed = {
        "name": "inngest/function.failed",
        "data": {
            "error": {"name": "ValueError", "message": "boom"},
            "event": event({"encrypted": seal({"card": "4242"}), "plain": 1}),
            "function_id": fails.id,
            "run_id": "r",
        },
        "id": "f",
        "ts": 2,
    }
    response = call(handler(client, [fails]), failure.id, event=failed)
    assert opened(json(response)) == {"encrypted": {"card": "4242"}, "plain": 1}


def test_plaintext_memos_and_events_pass_through() -> None:
    """Turning encryption on in the middle of a run: older memos are plaintext."""
    client = client_with()
    fn = secret_fn(client, async_fn=True)
    memo = {hash_step_id("card"): {"data": {"number": "old"}}}
    response = call(handler(client, [fn]), fn.id, event=event({"encrypted": "x"}), steps=memo)
    assert opened(json(response))["card"] == {"number": "old"}
    assert opened(json(response))["event"] == {"encrypted": "x"}


def test_wait_for_event_result_is_decrypted() -> None:
    client = client_with()

    @client.create_function(fn_id="waiter", trigger=trigger)
    async def waiter(ctx: inngest.Context) -> Any:
        got = await ctx.step.wait_for_event("approval", event="app/approved", timeout=60_000)
        return got.data if got else None

    approved = {
        "name": "app/approved",
        "data": {"encrypted": seal({"by": "ada"})},
        "id": "e2",
        "ts": 1,
    }
    for memo in (approved, {"data": approved}):
        steps = {hash_step_id("approval"): memo}
        response = call(handler(client, [waiter]), waiter.id, steps=steps)
        assert opened(json(response)) == {"encrypted": {"by": "ada"}}


@both
def test_invoke_payload_is_encrypted_and_its_result_decrypted(async_fn: bool) -> None:
    client = client_with()

    if async_fn:

        @client.create_function(fn_id="parent", trigger=trigger)
        async def parent(ctx: inngest.Context) -> Any:
            return await ctx.step.invoke_by_id(
                "call", function_id="child", data={"encrypted": {"pin": 1234}, "route": "a"}
            )

    else:

        @client.create_function(fn_id="parent", trigger=trigger)
        def parent(ctx: inngest.ContextSync) -> Any:
            return ctx.step.invoke_by_id(
                "call", function_id="child", data={"encrypted": {"pin": 1234}, "route": "a"}
            )

    serve = handler(client, [parent])
    (op,) = json(call(serve, parent.id))
    assert op["op"] == "InvokeFunction"
    data = op["opts"]["payload"]["data"]
    assert data["route"] == "a"
    assert opened(data["encrypted"]) == {"pin": 1234}
    # The child's output comes back encrypted by the child's own middleware.
    done = call(serve, parent.id, steps={op["id"]: {"data": seal({"child": "ok"})}})
    assert opened(json(done)) == {"child": "ok"}


def test_unserializable_output_is_a_clear_500() -> None:
    client = client_with()

    @client.create_function(fn_id="bad", trigger=trigger)
    async def bad(ctx: inngest.Context) -> Any:
        return object()

    response = call(handler(client, [bad]), bad.id)
    assert response.status == 500
    assert json(response)["code"] == "output_unserializable"


def test_errors_are_not_encrypted() -> None:
    client = client_with()

    @client.create_function(fn_id="fails", trigger=trigger, retries=0)
    async def fails(ctx: inngest.Context) -> Any:
        raise inngest.NonRetriableError("no card")

    response = call(handler(client, [fails]), fails.id)
    assert (response.status, json(response)["message"]) == (500, "no card")


# --- keys -----------------------------------------------------------------------------------


@both
def test_fallback_keys_decrypt_and_the_new_key_encrypts(async_fn: bool) -> None:
    client = client_with(fallback_decryption_keys=["unrelated", OLD_KEY])
    fn = secret_fn(client, async_fn=async_fn)
    steps = {hash_step_id("card"): {"data": seal({"number": "old"}, OLD_KEY)}}
    response = call(
        handler(client, [fn]), fn.id, event=event({"encrypted": seal(7, OLD_KEY)}), steps=steps
    )
    output = json(response)
    assert opened(output) == {"event": {"encrypted": 7}, "card": {"number": "old"}, "n": 1}
    with pytest.raises(DecryptionError):
        opened(output, OLD_KEY)


@both
def test_wrong_key_is_a_clear_error(async_fn: bool, caplog: pytest.LogCaptureFixture) -> None:
    client = client_with(fallback_decryption_keys=[OLD_KEY])
    fn = secret_fn(client, async_fn=async_fn)
    steps = {hash_step_id("card"): {"data": seal({"number": "4242"}, "someone else's key")}}
    with caplog.at_level(logging.ERROR):
        response = call(handler(client, [fn]), fn.id, steps=steps)
    assert response.status == 500
    body = json(response)
    assert body["name"] == "DecryptionError"
    assert "could not be decrypted with the secret key or 1 fallback key" in body["message"]
    assert "fallback_decryption_keys" in body["message"]


def test_tampered_or_malformed_ciphertext_is_rejected() -> None:
    keys = _Keyring(KEY, [])
    marker = seal("x")
    raw = bytearray(base64.b64decode(marker["data"]))
    raw[-1] ^= 1
    with pytest.raises(DecryptionError, match="could not be decrypted"):
        keys.decrypt({**marker, "data": base64.b64encode(bytes(raw)).decode()}, "v")
    with pytest.raises(DecryptionError, match="base64"):
        keys.decrypt({**marker, "data": "!!!"}, "v")
    with pytest.raises(DecryptionError, match="could not be decrypted"):
        keys.decrypt({**marker, "data": base64.b64encode(b"short").decode()}, "v")


def test_unknown_strategies_pass_through_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = client_with()
    fn = secret_fn(client, async_fn=True)
    legacy = {"__ENCRYPTED__": True, "data": "U2FsdGVkX1+legacyAES"}
    memo = {hash_step_id("card"): {"data": legacy}}
    with caplog.at_level(logging.WARNING, logger="inngest_asgi"):
        response = call(handler(client, [fn]), fn.id, steps=memo)
    assert opened(json(response))["card"] == legacy
    assert "cannot decrypt" in caplog.text


# --- decrypt-only ---------------------------------------------------------------------------


@both
def test_decrypt_only_decrypts_but_never_encrypts(async_fn: bool) -> None:
    client = client_with(decrypt_only=True)
    fn = secret_fn(client, async_fn=async_fn)
    serve = handler(client, [fn])
    (op,) = json(call(serve, fn.id))
    assert op["data"] == {"number": "4242", "data": 1}  # plaintext on the wire

    steps = {op["id"]: {"data": seal({"number": "4242"})}}
    done = call(serve, fn.id, event=event({"encrypted": seal("e")}), steps=steps)
    assert json(done) == {"event": {"encrypted": "e"}, "card": {"number": "4242"}, "n": 1}


def test_decrypt_only_sends_plaintext(inngest_api: FakeInngestAPI) -> None:
    inngest_api.reply(200, {"ids": ["a"], "status": 200})
    client = client_with(api=inngest_api, decrypt_only=True)
    client.send_sync(inngest.Event(name="app/x", data={"encrypted": {"a": 1}}))
    (sent,) = inngest_api.requests
    assert sent.json()[0]["data"] == {"encrypted": {"a": 1}}


# --- sending events -------------------------------------------------------------------------


@pytest.mark.parametrize("sync_send", [True, False], ids=["send_sync", "send"])
def test_send_encrypts_the_field(inngest_api: FakeInngestAPI, sync_send: bool) -> None:
    inngest_api.reply(200, {"ids": ["a", "b", "c", "d"], "status": 200})
    client = client_with(api=inngest_api)
    secret = {"card": "4242"}
    events = [
        inngest.Event(name="app/a", data={"encrypted": secret, "plain": 1}),
        inngest.Event(name="app/b", data={"plain": 2}),
        inngest.Event(name="app/c", data={"encrypted": seal("already")}),
        inngest.Event(name="app/d", data={"encrypted": None}),
    ]
    if sync_send:
        client.send_sync(events)
    else:
        anyio.run(client.send, events)
    (sent,) = inngest_api.requests
    assert b"4242" not in sent.body
    a, b, c, d = (item["data"] for item in sent.json())
    assert a["plain"] == 1
    assert opened(a["encrypted"]) == secret
    assert b == {"plain": 2}
    assert opened(c["encrypted"]) == "already"  # not encrypted twice
    assert d == {"encrypted": None}  # null holds no secret; the official package skips it too
    # The caller's objects are left alone.
    assert events[0].data == {"encrypted": secret, "plain": 1}


def test_custom_field_name(inngest_api: FakeInngestAPI) -> None:
    inngest_api.reply(200, {"ids": ["a"], "status": 200})
    client = client_with(api=inngest_api, event_encryption_field="private")
    client.send_sync(inngest.Event(name="app/a", data={"private": [1], "encrypted": "public"}))
    data = inngest_api.requests[0].json()[0]["data"]
    assert data["encrypted"] == "public"
    assert opened(data["private"]) == [1]


def test_unserializable_event_field_names_the_event(inngest_api: FakeInngestAPI) -> None:
    client = client_with(api=inngest_api)
    with pytest.raises(TypeError, match="event 'app/a' field 'encrypted'"):
        client.send_sync(inngest.Event(name="app/a", data={"encrypted": object()}))
    assert inngest_api.requests == []


# --- typed outputs --------------------------------------------------------------------------


@dataclasses.dataclass
class Card:
    number: str
    expires: str


def test_typed_step_outputs_survive_encryption() -> None:
    client = client_with()

    @client.create_function(fn_id="typed", trigger=trigger)
    async def typed(ctx: inngest.Context) -> str:
        def load() -> Card:
            return Card("4242", "12/30")

        card = await ctx.step.run("load", load)
        assert isinstance(card, Card)
        return card.expires

    serve = handler(client, [typed])
    (op,) = json(call(serve, typed.id))
    assert opened(op["data"]) == {"number": "4242", "expires": "12/30"}
    done = call(serve, typed.id, steps={op["id"]: {"data": op["data"]}})
    assert opened(json(done)) == "12/30"


# --- end to end under the local executor ----------------------------------------------------


@pytest.mark.timeout(60)
def test_a_whole_run_stores_only_ciphertext() -> None:
    """send -> run -> step -> invoke -> wait_for_event -> output, through the executor: the
    executor (playing Inngest) never holds the secret, and user code only ever sees it."""

    async def main() -> None:
        async with (
            Executor(clock=VirtualClock()) as ex,
            UvicornServer(ex.api) as api,
        ):
            client = inngest.Inngest(
                app_id="enc",
                is_production=False,
                api_base_url=api.url,
                event_api_base_url=api.url,
                middleware=[EncryptionMiddleware.factory(KEY)],
            )

            @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="t/child"))
            def child(ctx: inngest.ContextSync) -> str:
                return "child saw " + ctx.event.data["encrypted"]["pin"]

            @client.create_function(fn_id="parent", trigger=trigger)
            async def parent(ctx: inngest.Context) -> dict[str, Any]:
                card = await ctx.step.run("card", lambda: ctx.event.data["encrypted"]["card"])
                kid = await ctx.step.invoke(
                    "kid", function=child, data={"encrypted": {"pin": "SECRET-PIN"}}
                )
                ok = await ctx.step.wait_for_event(
                    "ok", event="t/ok", timeout=dt.timedelta(hours=1)
                )
                return {"card": card, "kid": kid, "ok": ok.data["encrypted"] if ok else None}

            ex.mount("http://app.test", inngest.InngestASGI(client, [parent, child]))
            await ex.sync("http://app.test/api/inngest")
            await client.send(
                inngest.Event(name="app/secret", data={"encrypted": {"card": "SECRET-CARD"}})
            )
            await ex.run_until_idle()
            await client.send(inngest.Event(name="t/ok", data={"encrypted": "SECRET-OK"}))
            await ex.run_until_idle()

            [run] = ex.runs_for("enc-parent")
            assert run.status is RunStatus.COMPLETED, run.error
            assert opened(run.output) == {
                "card": "SECRET-CARD",
                "kid": "child saw SECRET-PIN",
                "ok": "SECRET-OK",
            }
            stored = repr([ex.events, [(r.event, r.output, r.steps) for r in ex.runs]])
            assert "SECRET" not in stored

    anyio.run(main)
