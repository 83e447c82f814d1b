"""Hostile input in cloud mode: nothing without a valid, fresh signature reaches user code or
learns more than the unauthenticated introspection would tell.

The handlers here run on a fixed clock (``NOW``) so that freshness is exact: a signature is
fresh when its timestamp is within :data:`MAX_SKEW` seconds of ``NOW``, either way.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import time
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inngest_asgi import Inngest, InngestASGI, _signing
from inngest_asgi._handler import ServeHandler
from inngest_asgi._messages import Response
from inngest_asgi._signing import MAX_SKEW

from .conftest import FakeInngestAPI
from .protocol import SIGNING_KEY, SIGNING_KEY_FALLBACK, call_body, hmac_key
from .test_hostile import (
    APP_ID,
    BAD_UTF8_BODIES,
    FN_IDS,
    NOW,
    SPY,
    asgi_call,
    check_response,
    core_headers,
    core_request,
    fuzz_settings,
    handle,
    methods,
    query_strings,
    raw_bodies,
    spy_functions,
)

OTHER_KEY = "signkey-prod-" + "ab" * 32
EVENT_KEY = "hostile-event-key"

#: Everything an unauthenticated caller may see in a body: an error, the public
#: introspection, or the outcome of an (unauthenticated, out-of-band) sync.
ERROR_KEYS = {"code", "message", "name"}
PUBLIC_INSPECTION_KEYS = {
    "schema_version",
    "function_count",
    "has_event_key",
    "has_signing_key",
    "has_signing_key_fallback",
    "mode",
}
SYNC_KEYS = {"message", "modified"}
SECRET_HASHES = [
    _signing.hash_signing_key(SIGNING_KEY),
    _signing.hash_signing_key(SIGNING_KEY_FALLBACK),
    _signing.hash_event_key(EVENT_KEY),
]


def cloud_handler(api_url: str, *, fallback: bool) -> ServeHandler:
    client = Inngest(
        app_id=APP_ID,
        is_production=True,
        signing_key=SIGNING_KEY,
        signing_key_fallback=SIGNING_KEY_FALLBACK if fallback else None,
        event_key=EVENT_KEY,
        api_base_url=api_url,
        event_api_base_url=api_url,
    )
    return ServeHandler(client, spy_functions(client), framework="asgi", clock=lambda: NOW)


@pytest.fixture(scope="module")
def cloud(fake_api_server: FakeInngestAPI) -> ServeHandler:
    return cloud_handler(fake_api_server.url, fallback=True)


@pytest.fixture(scope="module")
def strict(fake_api_server: FakeInngestAPI) -> ServeHandler:
    return cloud_handler(fake_api_server.url, fallback=False)


def raw_signature(body: bytes, key: str, at: int) -> str:
    """A signature over the exact bytes (what the server sends for a JCS body)."""
    mac = hmac.new(hmac_key(key), body + str(at).encode(), hashlib.sha256).hexdigest()
    return f"t={at}&s={mac}"


def check_unauthenticated(response: Response) -> None:
    """Nothing beyond what an anonymous caller may know, and nothing signed."""
    assert "x-inngest-signature" not in response.headers, response.headers
    decoded = msgspec.json.decode(response.body)
    assert isinstance(decoded, dict), decoded
    assert decoded.keys() <= ERROR_KEYS | PUBLIC_INSPECTION_KEYS | SYNC_KEYS, decoded
    assert "authentication_succeeded" not in decoded
    for secret in SECRET_HASHES:
        assert secret.encode() not in response.body


# --- strategies ------------------------------------------------------------------------------


@st.composite
def bad_signatures(draw: st.DrawFn, body: bytes) -> str | None:
    """Every way a signature header can fail: absent, garbage, malformed, unknown key, stale
    or from the future, over other bytes, or a real one with one character changed."""
    fresh = NOW + draw(st.integers(-MAX_SKEW, MAX_SKEW))
    stale = NOW + draw(st.integers(MAX_SKEW + 1, 10**12) | st.integers(-(10**12), -MAX_SKEW - 1))
    kind = draw(
        st.sampled_from(
            ["none", "empty", "garbage", "no_t", "no_s", "bad_t", "other_key", "stale",
             "other_body", "flipped", "uppercase", "float_t"]
        )
    )  # fmt: skip
    good = raw_signature(body, SIGNING_KEY, fresh)
    if kind == "none":
        return None
    if kind == "empty":
        return ""
    if kind == "garbage":
        return draw(st.text(st.characters(max_codepoint=255), max_size=120))
    if kind == "no_t":
        return good.split("&", 1)[1]
    if kind == "no_s":
        return good.split("&", 1)[0]
    if kind == "bad_t":
        return f"t={draw(st.text(max_size=12))}x&s={good.split('s=', 1)[1]}"
    if kind == "float_t":
        return raw_signature(body, SIGNING_KEY, fresh).replace(f"t={fresh}", f"t={fresh}.0")
    if kind == "other_key":
        return raw_signature(body, OTHER_KEY, fresh)
    if kind == "stale":
        return raw_signature(body, SIGNING_KEY, stale)
    if kind == "other_body":
        return raw_signature(body + b" ", SIGNING_KEY, fresh)
    if kind == "uppercase":
        t, s = good.split("&", 1)
        return f"{t}&{s.upper()}" if any(c in "abcdef" for c in s[2:]) else None
    mac = good.split("s=", 1)[1]
    index = draw(st.integers(0, len(mac) - 1))
    replacement = draw(st.sampled_from("0123456789abcdef").filter(lambda c: c != mac[index]))
    return good.replace(mac, mac[:index] + replacement + mac[index + 1 :])


# --- properties ------------------------------------------------------------------------------


@fuzz_settings(400)
@given(
    method=methods,
    query=query_strings(),
    headers=core_headers,
    body=raw_bodies,
    data=st.data(),
    strict_app=st.booleans(),
)
def test_unsigned_requests_run_nothing_and_reveal_nothing(
    cloud: ServeHandler,
    strict: ServeHandler,
    method: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    data: st.DataObject,
    strict_app: bool,
) -> None:
    signature = data.draw(bad_signatures(body))
    headers = {k: v for k, v in headers.items() if k != "x-inngest-signature"}
    if signature is not None:
        headers["x-inngest-signature"] = signature
    response = handle(strict if strict_app else cloud, core_request(method, query, headers, body))
    ran = SPY.take()
    assert not ran, (response.status, response.body)
    check_response(response.status, response.headers, response.body, ran)
    check_unauthenticated(response)
    unsigned_out_of_band_sync = (
        method == "PUT" and signature is None and headers.get("x-inngest-sync-kind") != "in_band"
    )
    if not unsigned_out_of_band_sync:
        # A body nested past the decoder's depth is refused while verify() canonicalizes it,
        # before any key is compared: 400 body_invalid, equally uninformative.
        refused = (response.status, msgspec.json.decode(response.body)["code"])
        assert refused in ((401, "sig_verification_failed"), (400, "body_invalid")), refused


@fuzz_settings(200)
@given(
    skew=st.integers(-2 * MAX_SKEW, 2 * MAX_SKEW) | st.integers(-(10**15), 10**15),
    fn_id=st.sampled_from(FN_IDS),
    key=st.sampled_from([SIGNING_KEY, SIGNING_KEY_FALLBACK]),
    data=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
def test_only_fresh_signatures_are_accepted(
    cloud: ServeHandler, skew: int, fn_id: str, key: str, data: dict[str, int]
) -> None:
    body = msgspec.json.encode(call_body(event={"name": "app/x", "data": data}))
    at = NOW + skew
    response = handle(
        cloud,
        core_request(
            "POST",
            urlencode({"fnId": fn_id, "stepId": "step"}),
            {"x-inngest-signature": raw_signature(body, key, at)},
            body,
        ),
    )
    ran = SPY.take()
    check_response(response.status, response.headers, response.body, ran)
    if abs(skew) <= MAX_SKEW:
        assert response.status in (200, 206), response.body
        assert ran
        assert "x-inngest-signature" in response.headers
    else:
        assert response.status == 401, response.body
        assert not ran
        check_unauthenticated(response)


@fuzz_settings(100)
@given(
    key=st.sampled_from([SIGNING_KEY, SIGNING_KEY_FALLBACK, OTHER_KEY]),
    strict_app=st.booleans(),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    skew=st.integers(-MAX_SKEW, MAX_SKEW),
)
def test_fallback_key_only_when_configured(
    cloud: ServeHandler, strict: ServeHandler, key: str, strict_app: bool, method: str, skew: int
) -> None:
    body = {
        "GET": b"",
        "POST": msgspec.json.encode(call_body()),
        "PUT": b'{"url":"https://example.com/api/inngest"}',
    }[method]
    headers = {"x-inngest-signature": raw_signature(body, key, NOW + skew)}
    if method == "PUT":
        headers["x-inngest-sync-kind"] = "in_band"
    query = urlencode({"fnId": FN_IDS[0], "stepId": "step"}) if method == "POST" else ""
    response = handle(strict if strict_app else cloud, core_request(method, query, headers, body))
    ran = SPY.take()
    check_response(response.status, response.headers, response.body, ran)
    accepted = key == SIGNING_KEY or (key == SIGNING_KEY_FALLBACK and not strict_app)
    if accepted:
        assert response.status == 200, response.body
        assert "x-inngest-signature" in response.headers
        assert ran == (["plain"] if method == "POST" else [])
    else:
        assert response.status == 401, response.body
        assert not ran
        check_unauthenticated(response)


@pytest.mark.parametrize("skew", [MAX_SKEW + 1, -MAX_SKEW - 1, 10**9, -(10**9), 2**70])
def test_stale_and_future_timestamps_are_rejected(cloud: ServeHandler, skew: int) -> None:
    body = msgspec.json.encode(call_body())
    headers = {"x-inngest-signature": raw_signature(body, SIGNING_KEY, NOW + skew)}
    query = urlencode({"fnId": FN_IDS[0], "stepId": "step"})
    response = handle(cloud, core_request("POST", query, headers, body))
    assert response.status == 401
    assert not SPY.take()
    assert b"5 minute" in response.body


def test_signatures_are_compared_in_constant_time(
    cloud: ServeHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code compares with hmac.compare_digest, and every key tried goes through it."""
    source = inspect.getsource(_signing._match)
    assert "hmac.compare_digest(" in source
    assert "==" not in source
    assert _signing.hmac is hmac

    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_signing.hmac, "compare_digest", spy)
    body = msgspec.json.encode(call_body())
    header = raw_signature(body, OTHER_KEY, NOW)
    with pytest.raises(_signing.UnauthorizedError):
        _signing.verify(header, body, (SIGNING_KEY, SIGNING_KEY_FALLBACK), NOW)
    # raw bytes, then the canonical form would be tried; msgspec's compact encoding of
    # call_body is not JCS (keys unsorted), so both keys are compared twice.
    assert len(compared) == 4
    provided = header.split("s=", 1)[1]
    assert all(b == provided for _, b in compared)
    compared.clear()
    header = raw_signature(body, SIGNING_KEY_FALLBACK, NOW)
    keys = (SIGNING_KEY, SIGNING_KEY_FALLBACK)
    assert _signing.verify(header, body, keys, NOW) == SIGNING_KEY_FALLBACK
    assert len(compared) == 2  # primary (no match), then the fallback


@pytest.mark.parametrize("body", BAD_UTF8_BODIES)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_invalid_utf8_with_a_forged_signature(
    cloud: ServeHandler, method: str, body: bytes
) -> None:
    """verify() canonicalizes a body whose raw bytes do not match; a body it cannot read is
    simply not matched."""
    headers = {"x-inngest-signature": raw_signature(b"{}", OTHER_KEY, NOW)}
    response = handle(cloud, core_request(method, f"fnId={FN_IDS[0]}", headers, body))
    assert response.status == 401
    check_unauthenticated(response)


@pytest.mark.parametrize("body", BAD_UTF8_BODIES)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_invalid_utf8_in_a_signed_request(cloud: ServeHandler, method: str, body: bytes) -> None:
    headers = {"x-inngest-signature": raw_signature(body, SIGNING_KEY, NOW)}
    if method == "PUT":
        headers["x-inngest-sync-kind"] = "in_band"
    response = handle(cloud, core_request(method, f"fnId={FN_IDS[0]}", headers, body))
    check_response(response.status, response.headers, response.body, SPY.take())
    assert response.status == 400


@pytest.mark.parametrize("shape", [list, tuple, iter])
def test_asgi_shell_keeps_the_first_of_repeated_headers(
    fake_api_server: FakeInngestAPI, shape: Any
) -> None:
    """Of two ``x-inngest-signature`` headers only the first counts, however the server
    hands the headers over (a list, a tuple, any iterable)."""
    client = cloud_handler(fake_api_server.url, fallback=False)._client
    app = InngestASGI(client, spy_functions(client))
    body = msgspec.json.encode(call_body())
    now = int(time.time())
    good = raw_signature(body, SIGNING_KEY, now).encode()
    bad = raw_signature(body, OTHER_KEY, now).encode()
    query = f"fnId={FN_IDS[0]}&stepId=step".encode()
    for first, second, expected in ((good, bad, 200), (bad, good, 401)):
        headers = [(b"x-inngest-signature", first), (b"X-Inngest-Signature", second)]
        status, response_headers, _ = asgi_call(
            app, "POST", "/api/inngest", query, shape(headers), [body]
        )
        assert status == expected, (status, response_headers)
        assert ("x-inngest-signature" in response_headers) == (expected == 200)
    SPY.take()
