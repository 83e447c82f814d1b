"""Cloud mode through every serving path: signed and unsigned introspection, execution and
in-band sync; valid, invalid, stale, future and fallback-key signatures; signed responses.

Mounts (``tests/apps/serving.py``): ``cloud`` knows the signing key and the fallback key,
``strict`` only the signing key.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import msgspec
import pytest

from tests.apps import serving

from .conftest import FakeInngestAPI, Transport
from .protocol import (
    SIGNING_KEY,
    SIGNING_KEY_FALLBACK,
    call_body,
    check_response_signature,
    drive,
    sign_body,
)

SK, SK_FB = SIGNING_KEY, SIGNING_KEY_FALLBACK
OTHER_KEY = "signkey-test-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
SK_HASH = "4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
SK_FB_HASH = "8d2e4d6374b604562a5d8c04a4dfc035fa499ec7ad373bd48bd2bd62ca75c3b5"
APP = serving.APP_ID


def fn(local_id: str) -> str:
    return f"{APP}-{local_id}"


def assert_unauthorized(response: httpx.Response) -> None:
    """401 with a JSON error and the SDK headers, never signed."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    assert response.headers["x-inngest-expected-server-kind"] == "cloud"
    assert "x-inngest-signature" not in response.headers
    body = response.json()
    assert body["code"] == "sig_verification_failed"
    assert body["message"]


def assert_signed_by(response: httpx.Response, key: str, *, not_by: str | None = None) -> None:
    check_response_signature(response, key)
    if not_by is not None:
        with pytest.raises(AssertionError, match="does not verify"):
            check_response_signature(response, not_by)


@pytest.fixture
def no_user_code(transport: Transport) -> Any:
    before = serving.CALLS["hello"]
    yield
    if transport.in_process:
        assert serving.CALLS["hello"] == before, "an unauthorized request ran user code"


# --- GET ---------------------------------------------------------------------------------------


def get(transport: Transport, mount: str, key: str | None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["x-inngest-signature"] = sign_body(b"", key)
    return transport.http.get(transport.path(mount), headers=headers)


def test_unsigned_get_is_unauthorized(transport: Transport) -> None:
    assert_unauthorized(get(transport, "cloud", None))


def test_signed_get_returns_the_authenticated_body(transport: Transport) -> None:
    response = get(transport, "cloud", SK)
    assert response.status_code == 200, response.text
    assert_signed_by(response, SK, not_by=SK_FB)
    body = response.json()
    assert body["authentication_succeeded"] is True
    assert body["app_id"] == APP
    assert body["mode"] == "cloud"
    assert body["framework"] == ("wsgi" if transport.wsgi else "asgi")
    assert body["signing_key_hash"] == SK_HASH
    assert body["signing_key_fallback_hash"] == SK_FB_HASH
    assert (body["has_signing_key"], body["has_signing_key_fallback"]) == (True, True)
    assert body["has_event_key"] is True
    assert body["event_key_hash"] == (
        "489b0fa1ff46afec035a3e018cd11d260ba52b607e878064dd37e5c408bf0679"
    )
    assert body["function_count"] == 12
    assert SK.split("-")[-1] not in response.text
    assert SK_FB.split("-")[-1] not in response.text


def test_get_signed_with_the_fallback_key(transport: Transport) -> None:
    response = get(transport, "cloud", SK_FB)
    assert response.status_code == 200, response.text
    assert response.json()["authentication_succeeded"] is True
    # the response is signed with the key that matched the request
    assert_signed_by(response, SK_FB, not_by=SK)


def test_get_signed_with_an_unknown_fallback_key(transport: Transport) -> None:
    assert_unauthorized(get(transport, "strict", SK_FB))


def test_strict_app_reports_no_fallback(transport: Transport) -> None:
    response = get(transport, "strict", SK)
    assert response.status_code == 200
    body = response.json()
    assert body["has_signing_key_fallback"] is False
    assert body["signing_key_fallback_hash"] is None


def test_signed_get_from_a_dev_server(transport: Transport) -> None:
    response = get(transport, "cloud", SK, **{"x-inngest-server-kind": "dev"})
    assert response.status_code == 403
    assert response.json()["code"] == "server_kind_mismatch"
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")


def test_dev_mount_ignores_signatures(transport: Transport) -> None:
    response = get(transport, "dev", SK)
    assert response.status_code == 200
    assert response.json()["mode"] == "dev"
    assert "x-inngest-signature" not in response.headers


# --- POST ------------------------------------------------------------------------------------


def test_signed_run_to_completion(transport: Transport) -> None:
    """``drive`` signs every request and checks every response signature."""
    run = drive(transport.http, fn("hello"), path=transport.path("cloud"), signing_key=SK)
    assert (run.status, run.output, run.requests) == (200, "done", 2)


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_run_signed_with_the_fallback_key(transport: Transport, kind: str) -> None:
    event = {"name": "app/steps", "data": {"n": 2}, "id": "01HEVT", "ts": 1700000000000}
    run = drive(
        transport.http,
        fn(f"steps-{kind}"),
        path=transport.path("cloud"),
        event=event,
        signing_key=SK_FB,
    )
    assert run.status == 200
    assert run.output["a"] == 4


def post_signed(
    transport: Transport,
    mount: str,
    *,
    signature: str | None,
    body: bytes | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-inngest-signature"] = signature
    return transport.http.post(
        transport.path(mount),
        params=params or {"fnId": fn("hello"), "stepId": "step"},
        content=msgspec.json.encode(call_body()) if body is None else body,
        headers=headers,
    )


BODY = msgspec.json.encode(call_body())


def test_signed_step_response_is_signed(transport: Transport) -> None:
    response = post_signed(transport, "cloud", signature=sign_body(BODY, SK), body=BODY)
    assert response.status_code == 206
    assert_signed_by(response, SK, not_by=SK_FB)


def test_fallback_key_rejected_when_not_configured(transport: Transport, no_user_code: Any) -> None:
    response = post_signed(transport, "strict", signature=sign_body(BODY, SK_FB), body=BODY)
    assert_unauthorized(response)


def test_fallback_key_accepted_when_configured(transport: Transport) -> None:
    response = post_signed(transport, "cloud", signature=sign_body(BODY, SK_FB), body=BODY)
    assert response.status_code == 206
    assert_signed_by(response, SK_FB, not_by=SK)


def _bad_signatures() -> dict[str, Any]:
    def mac_of(key: str, at: int | None = None) -> str:
        return sign_body(BODY, key, at).split("&s=")[1]

    return {
        "missing": lambda: None,
        "empty": lambda: "",
        "garbage": lambda: "not a signature",
        "no-timestamp": lambda: f"s={mac_of(SK)}",
        "no-mac": lambda: f"t={int(time.time())}",
        "timestamp-not-int": lambda: f"t=soon&s={mac_of(SK)}",
        "wrong-mac": lambda: f"t={int(time.time())}&s={'0' * 64}",
        "other-key": lambda: sign_body(BODY, OTHER_KEY),
        "mac-for-another-time": lambda: f"t={int(time.time())}&s={mac_of(SK, 1700000000)}",
        "stale": lambda: sign_body(BODY, SK, int(time.time()) - 6 * 60),
        "future": lambda: sign_body(BODY, SK, int(time.time()) + 6 * 60),
        "stale-fallback": lambda: sign_body(BODY, SK_FB, int(time.time()) - 6 * 60),
    }


BAD_SIGNATURES = _bad_signatures()


@pytest.mark.parametrize("make", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_bad_signatures_are_refused(transport: Transport, no_user_code: Any, make: Any) -> None:
    response = post_signed(transport, "cloud", signature=make(), body=BODY)
    assert_unauthorized(response)


def test_tampered_body_is_refused(transport: Transport, no_user_code: Any) -> None:
    signature = sign_body(BODY, SK)
    tampered = BODY.replace(b'"attempt":0', b'"attempt":1')
    assert tampered != BODY
    assert_unauthorized(post_signed(transport, "cloud", signature=signature, body=tampered))


@pytest.mark.parametrize("age", [-240, 240])
def test_timestamps_within_five_minutes_are_accepted(transport: Transport, age: int) -> None:
    signature = sign_body(BODY, SK, int(time.time()) - age)
    response = post_signed(transport, "cloud", signature=signature, body=BODY)
    assert response.status_code == 206
    assert_signed_by(response, SK)


def test_signature_fields_in_any_order(transport: Transport) -> None:
    t, s = sign_body(BODY, SK).split("&")
    response = post_signed(transport, "cloud", signature=f"{s}&{t}", body=BODY)
    assert response.status_code == 206


def test_re_encoded_body_verifies_by_its_canonical_form(transport: Transport) -> None:
    """A proxy may re-encode the JSON: the signature covers its canonical (JCS) form."""
    pretty = json.dumps(call_body(), indent=2, sort_keys=False).encode()
    assert pretty != BODY
    response = post_signed(transport, "cloud", signature=sign_body(pretty, SK), body=pretty)
    assert response.status_code == 206
    assert_signed_by(response, SK)


def test_errors_after_verification_are_signed(transport: Transport) -> None:
    unknown = post_signed(
        transport,
        "cloud",
        signature=sign_body(BODY, SK),
        body=BODY,
        params={"fnId": fn("nope"), "stepId": "step"},
    )
    assert unknown.status_code == 404
    assert_signed_by(unknown, SK)
    failed = post_signed(
        transport,
        "cloud",
        signature=sign_body(BODY, SK_FB),
        body=BODY,
        params={"fnId": fn("non-retriable"), "stepId": "step"},
    )
    assert failed.status_code == 500
    assert failed.headers["x-inngest-no-retry"] == "true"
    assert_signed_by(failed, SK_FB)


def test_trust_probe_needs_a_signature(transport: Transport) -> None:
    params = {"probe": "trust"}
    assert_unauthorized(post_signed(transport, "cloud", signature=None, body=b"", params=params))
    signed = post_signed(transport, "cloud", signature=sign_body(b"", SK), body=b"", params=params)
    assert (signed.status_code, signed.json()) == (200, None)
    assert_signed_by(signed, SK)


# --- PUT: in-band and signed out-of-band sync --------------------------------------------------

IN_BAND_BODY = b'{"url":"https://example.com/api/inngest"}'


def put_in_band(
    transport: Transport, mount: str, key: str | None, body: bytes = IN_BAND_BODY
) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "x-inngest-sync-kind": "in_band",
        "x-inngest-server-kind": "cloud",
    }
    if key is not None:
        headers["x-inngest-signature"] = sign_body(body, key)
    return transport.http.put(transport.path(mount), content=body, headers=headers)


@pytest.mark.parametrize("key", [SK, SK_FB], ids=["primary", "fallback"])
def test_in_band_sync(transport: Transport, inngest_api: FakeInngestAPI, key: str) -> None:
    response = put_in_band(transport, "cloud", key)
    assert response.status_code == 200, response.text
    assert response.headers["x-inngest-sync-kind"] == "in_band"
    assert_signed_by(response, key)
    body = response.json()
    assert body["app_id"] == APP
    assert body["url"] == "https://example.com/api/inngest"
    assert body["framework"] == ("wsgi" if transport.wsgi else "asgi")
    assert body["sdk_language"] == "py"
    urls = {f["id"]: f["steps"]["step"]["runtime"]["url"] for f in body["functions"]}
    assert urls[fn("hello")] == f"https://example.com/api/inngest?fnId={fn('hello')}&stepId=step"
    assert len(urls) == 12
    inspection = body["inspection"]
    assert inspection["authentication_succeeded"] is True
    assert inspection["signing_key_hash"] == SK_HASH
    assert None not in inspection.values()
    assert inngest_api.requests == []  # in-band: nothing goes to the API


def test_unsigned_in_band_sync_is_unauthorized(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    assert_unauthorized(put_in_band(transport, "cloud", None))
    assert inngest_api.requests == []


def test_in_band_sync_with_an_unknown_key(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    assert_unauthorized(put_in_band(transport, "strict", SK_FB))
    assert inngest_api.requests == []


@pytest.mark.parametrize(
    "body", [b"{}", b'{"url": 5}', b'{"url": "ftp://x"}', b"[]", b"{nope"], ids=str
)
def test_in_band_sync_with_a_bad_body(
    transport: Transport, inngest_api: FakeInngestAPI, body: bytes
) -> None:
    headers = {"x-inngest-sync-kind": "in_band", "x-inngest-server-kind": "cloud"}
    try:
        headers["x-inngest-signature"] = sign_body(body, SK)
    except msgspec.DecodeError:
        headers["x-inngest-signature"] = sign_body(b"", SK)  # unparsable: cannot be signed
    response = transport.http.put(transport.path("cloud"), content=body, headers=headers)
    assert response.status_code in (400, 401), response.text
    assert "Traceback" not in response.text
    if body != b"{nope":
        assert response.status_code == 400
        assert response.json()["code"] == "body_invalid"
    assert inngest_api.requests == []


def test_dev_mode_syncs_out_of_band_even_when_asked_in_band(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    headers = {"x-inngest-sync-kind": "in_band"}
    response = transport.http.put(transport.path("dev"), content=IN_BAND_BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-inngest-sync-kind"] == "out_of_band"
    assert len(inngest_api.registrations) == 1


def test_signed_out_of_band_sync_is_signed(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    headers = {"x-inngest-signature": sign_body(b"", SK_FB)}
    response = transport.http.put(transport.path("cloud"), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-inngest-sync-kind"] == "out_of_band"
    assert_signed_by(response, SK_FB)
    assert len(inngest_api.registrations) == 1


def test_out_of_band_sync_with_a_bad_signature(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    headers = {"x-inngest-signature": sign_body(b"", OTHER_KEY)}
    assert_unauthorized(transport.http.put(transport.path("cloud"), headers=headers))
    assert inngest_api.requests == []


DEEP = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_deeply_nested_body_with_a_signature(
    transport: Transport, inngest_api: FakeInngestAPI, no_user_code: Any, method: str
) -> None:
    """Verification re-canonicalizes a body whose raw bytes do not match: a body nested past
    the decoder's recursion limit must be refused (401 or 400), not crash the shell."""
    headers = {"x-inngest-signature": sign_body(b"{}", SK), "x-inngest-sync-kind": "in_band"}
    response = transport.http.request(
        method,
        transport.path("cloud"),
        params={"fnId": fn("hello"), "stepId": "step"},
        content=DEEP,
        headers=headers,
    )
    assert response.status_code in (400, 401), response.text[:200]
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    assert "x-inngest-signature" not in response.headers
    assert inngest_api.requests == []
