"""The sans-IO request handler: introspection, in-band sync, probes and refusals."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

import inngest_asgi as inngest
from inngest_asgi._handler import ServeHandler

from .core import handler, json, send
from .protocol import SIGNING_KEY, SIGNING_KEY_FALLBACK, sign_body, verify_response_signature

EVENT_KEY = "test-event-key-123"
trigger = inngest.TriggerEvent(event="app/hello", expression="event.data.n > 0")


def _functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    @client.create_function(fn_id="hello", name="Hello", trigger=[trigger], retries=3)
    async def hello(ctx: inngest.Context) -> str:
        await ctx.step.run("my-step", lambda: {"ok": True})
        return "done"

    return [hello]


@pytest.fixture
def dev() -> ServeHandler:
    client = inngest.Inngest(app_id="my-app", is_production=False)
    return handler(client, _functions(client))


@pytest.fixture
def cloud() -> ServeHandler:
    client = inngest.Inngest(
        app_id="my-app",
        is_production=True,
        signing_key=SIGNING_KEY,
        event_key=EVENT_KEY,
        api_base_url="https://api.inngest.com/",
        event_api_base_url="https://inn.gs/",
    )
    return handler(client, _functions(client))


def _signed(body: bytes = b"", key: str = SIGNING_KEY, **extra: str) -> dict[str, str]:
    return {"x-inngest-signature": sign_body(body, key), **extra}


def test_dev_introspection_is_unauthenticated(dev: ServeHandler) -> None:
    response = send(dev, "GET")
    assert response.status == 200
    assert json(response) == {
        "schema_version": "2024-05-24",
        "function_count": 1,
        "has_event_key": False,
        "has_signing_key": False,
        "has_signing_key_fallback": False,
        "mode": "dev",
    }
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    assert response.headers["x-inngest-req-version"] == "2"
    assert response.headers["x-inngest-expected-server-kind"] == "dev"
    assert "x-inngest-signature" not in response.headers


def test_cloud_introspection_needs_a_signature(cloud: ServeHandler) -> None:
    refused = send(cloud, "GET")
    assert refused.status == 401
    assert json(refused)["code"] == "sig_verification_failed"
    assert refused.headers["x-inngest-sdk"].startswith("inngest-asgi:v")

    response = send(cloud, "GET", headers=_signed())
    assert response.status == 200
    body = json(response)
    assert body["authentication_succeeded"] is True
    assert body["mode"] == "cloud"
    assert body["app_id"] == "my-app"
    assert body["signing_key_hash"] == (
        "4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
    )
    assert body["event_key_hash"] == (
        "489b0fa1ff46afec035a3e018cd11d260ba52b607e878064dd37e5c408bf0679"
    )
    assert body["signing_key_fallback_hash"] is None
    assert body["api_origin"] == "https://api.inngest.com"
    verify_response_signature(response.headers, response.body, SIGNING_KEY)
    # Neither key appears anywhere in what was sent back.
    for key in (SIGNING_KEY, EVENT_KEY, SIGNING_KEY.split("-", 2)[2]):
        assert key.encode() not in response.body


def test_server_kind_mismatch(dev: ServeHandler, cloud: ServeHandler) -> None:
    assert send(dev, "GET", headers={"x-inngest-server-kind": "cloud"}).status == 403
    mismatch = send(dev, "PUT", headers={"x-inngest-server-kind": "cloud"})
    assert mismatch.status == 400
    assert json(mismatch)["code"] == "server_kind_mismatch"
    assert send(cloud, "GET", headers=_signed(**{"x-inngest-server-kind": "dev"})).status == 403


def test_in_band_sync(cloud: ServeHandler) -> None:
    body = b'{"url":"https://example.com/api/inngest"}'
    headers = {"x-inngest-sync-kind": "in_band", "x-inngest-server-kind": "cloud"}
    assert send(cloud, "PUT", body=body, headers=headers).status == 401
    response = send(cloud, "PUT", body=body, headers={**headers, **_signed(body)})
    assert response.status == 200
    assert response.headers["x-inngest-sync-kind"] == "in_band"
    payload = json(response)
    assert payload["app_id"] == "my-app"
    assert payload["url"] == "https://example.com/api/inngest"
    assert payload["inspection"]["authentication_succeeded"] is True
    assert None not in payload["inspection"].values()
    (fn,) = payload["functions"]
    assert fn == {
        "id": "my-app-hello",
        "name": "Hello",
        "triggers": [{"event": "app/hello", "expression": "event.data.n > 0"}],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {
                    "type": "http",
                    "url": "https://example.com/api/inngest?fnId=my-app-hello&stepId=step",
                },
                "retries": {"attempts": 3},
            }
        },
    }
    verify_response_signature(response.headers, response.body, SIGNING_KEY)
    bad = send(cloud, "PUT", body=b"[]", headers={**headers, **_signed(b"[]")})
    assert bad.status == 400


def test_trust_probe(cloud: ServeHandler) -> None:
    assert send(cloud, "POST", "probe=trust").status == 401
    response = send(cloud, "POST", "probe=trust", headers=_signed())
    assert (response.status, response.body) == (200, b"null")
    assert "x-inngest-signature" in response.headers
    other = send(cloud, "POST", "probe=other", headers=_signed())
    assert other.status == 400
    assert "unsupported probe" in json(other)["message"]


def test_signed_execution_with_the_fallback_key() -> None:
    client = inngest.Inngest(
        app_id="my-app",
        is_production=True,
        signing_key=SIGNING_KEY,
        signing_key_fallback=SIGNING_KEY_FALLBACK,
    )
    serve = handler(client, _functions(client))
    body = msgspec.json.encode({"event": {"name": "app/hello"}, "ctx": {"run_id": "r"}})
    headers = _signed(body, SIGNING_KEY_FALLBACK)
    response = send(serve, "POST", "fnId=my-app-hello&stepId=step", body, headers)
    assert response.status == 206
    verify_response_signature(response.headers, response.body, SIGNING_KEY_FALLBACK)


def test_stale_signature_is_refused_and_runs_nothing() -> None:
    ran: list[str] = []
    client = inngest.Inngest(app_id="my-app", is_production=True, signing_key=SIGNING_KEY)

    @client.create_function(fn_id="spy", trigger=trigger)
    def spy(ctx: inngest.ContextSync) -> None:
        ran.append(ctx.run_id)

    serve = handler(client, [spy])
    body = msgspec.json.encode({"event": {"name": "app/hello"}, "ctx": {"run_id": "r"}})
    stale = {"x-inngest-signature": sign_body(body, SIGNING_KEY, int(time.time()) - 600)}
    response = send(serve, "POST", "fnId=my-app-spy&stepId=step", body, stale)
    assert response.status == 401
    assert "window" in json(response)["message"]
    assert ran == []


@pytest.mark.parametrize(
    ("method", "query", "body", "status", "code"),
    [
        ("DELETE", "", b"", 405, "method_not_allowed"),
        ("POST", "", b"{}", 400, "query_param_missing"),
        ("POST", "fnId=nope", b"{}", 404, "function_not_found"),
        ("POST", "fnId=my-app-hello", b"{", 400, "body_invalid"),
        ("POST", "fnId=my-app-hello", b"[]", 400, "body_invalid"),
        ("POST", "fnId=my-app-hello", b'{"ctx": {"run_id": 5}}', 400, "body_invalid"),
        ("POST", "fnId=my-app-hello", b'{"ctx": {"run_id": "r"}}', 400, "body_invalid"),
        ("POST", "fnId=my-app-hello", b"\xff\xfe", 400, "body_invalid"),
    ],
)
def test_bad_requests_get_a_json_error(
    dev: ServeHandler, method: str, query: str, body: bytes, status: int, code: str
) -> None:
    response = send(dev, method, query, body)
    assert response.status == status
    error = json(response)
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.body.decode()
    # Only an unknown function may be retried: another replica may serve it.
    assert ("x-inngest-no-retry" in response.headers) == (status != 404)


def test_validation_errors_name_the_field(dev: ServeHandler) -> None:
    response = send(dev, "POST", "fnId=my-app-hello", b'{"ctx": {"run_id": 5}}')
    assert "$.ctx.run_id" in json(response)["message"]


def test_cloud_mode_without_signing_key_fails_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INNGEST_SIGNING_KEY", raising=False)
    monkeypatch.delenv("INNGEST_DEV", raising=False)
    client = inngest.Inngest(app_id="my-app")
    with pytest.raises(inngest.ConfigError, match="INNGEST_SIGNING_KEY"):
        inngest.InngestASGI(client, [])
    with pytest.raises(inngest.ConfigError, match="INNGEST_SIGNING_KEY"):
        inngest.InngestWSGI(client, [])


def test_function_list_is_checked() -> None:
    client = inngest.Inngest(app_id="my-app", is_production=False)
    other = inngest.Inngest(app_id="other", is_production=False)
    (fn,) = _functions(client)
    with pytest.raises(inngest.ConfigError, match="used twice"):
        handler(client, [fn, fn])
    with pytest.raises(inngest.ConfigError, match="belongs to app"):
        handler(other, [fn])
    with pytest.raises(inngest.ConfigError, match="Function objects"):
        handler(client, [lambda ctx: None])  # type: ignore[list-item]


def test_serve_overrides_on_the_app_beat_the_client() -> None:
    client = inngest.Inngest(
        app_id="my-app",
        is_production=True,
        signing_key=SIGNING_KEY,
        serve_origin="https://from-client.example",
    )
    serve = handler(
        client, _functions(client), serve_origin="public.example", serve_path="/hooks/inngest"
    )
    body = b'{"url":"http://10.0.0.5:8000/api/inngest"}'
    headers = {"x-inngest-sync-kind": "in_band", **_signed(body)}
    payload = json(send(serve, "PUT", body=body, headers=headers))
    assert payload["url"] == "https://public.example/hooks/inngest"
    (fn,) = payload["functions"]
    assert fn["steps"]["step"]["runtime"]["url"].startswith(
        "https://public.example/hooks/inngest?fnId=my-app-hello"
    )
