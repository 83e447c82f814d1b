"""Signing: the reference's test vectors (PROTOCOL.md §14.1, §14.3, §14.4) and properties."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from inngest_asgi._errors import UnauthorizedError
from inngest_asgi._http import bearer
from inngest_asgi._signing import (
    MAX_SKEW,
    canonicalize,
    hash_event_key,
    hash_signing_key,
    normalize_key,
    sign,
    verify,
)

from .protocol import SIGNING_KEY as SK
from .protocol import SIGNING_KEY_FALLBACK as SK_FB

T = 1700000000
BODY_1 = (
    b'{"event":{"name":"app/hello","data":{},"id":"01HEVT","ts":1700000000000,"user":{}},'
    b'"events":[{"name":"app/hello","data":{},"id":"01HEVT","ts":1700000000000,"user":{}}],'
    b'"steps":{},"ctx":{"run_id":"01HRUN","attempt":0,"max_attempts":4,'
    b'"disable_immediate_execution":false,"use_api":false,"stack":{"stack":[],"current":0}},'
    b'"version":2,"use_api":false}'
)
BODY_1_JCS = (
    b'{"ctx":{"attempt":0,"disable_immediate_execution":false,"max_attempts":4,'
    b'"run_id":"01HRUN","stack":{"current":0,"stack":[]},"use_api":false},'
    b'"event":{"data":{},"id":"01HEVT","name":"app/hello","ts":1700000000000,"user":{}},'
    b'"events":[{"data":{},"id":"01HEVT","name":"app/hello","ts":1700000000000,"user":{}}],'
    b'"steps":{},"use_api":false,"version":2}'
)
BODY_2 = b'{"b": 1, "a": "x & y", "c": [1, 2.0, "\\u00e9"]}'


def test_key_vectors() -> None:
    assert normalize_key(SK) == "0123456789abcdef" * 4
    assert (
        hash_signing_key(SK) == "4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
    )
    assert (
        hash_signing_key(SK_FB)
        == "8d2e4d6374b604562a5d8c04a4dfc035fa499ec7ad373bd48bd2bd62ca75c3b5"
    )
    assert (
        hash_signing_key("signkey-prod-12345678")
        == "b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c"
    )
    assert (
        hash_event_key("test-event-key-123")
        == "489b0fa1ff46afec035a3e018cd11d260ba52b607e878064dd37e5c408bf0679"
    )
    assert normalize_key("signkey-branch-abcd") == "abcd"


def test_bearer_uses_the_spec_form() -> None:
    assert bearer(SK) == (
        "Bearer signkey-test-4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
    )


def test_invalid_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="hex"):
        hash_signing_key("signkey-test-nothex")


def test_canonical_form_vectors() -> None:
    assert len(BODY_1) == 347
    assert canonicalize(BODY_1) == BODY_1_JCS
    assert canonicalize(BODY_2) == '{"a":"x & y","b":1,"c":[1,2,"é"]}'.encode()
    assert canonicalize(b"") == b""


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        (BODY_1, SK, "1a0e555a770f20f1941b04f51ad83f27a2545f216212414bfca84870fd327e5d"),
        (BODY_1, SK_FB, "771702cc70bbdb30ca11e7df5049b1b70a42fc2e0faad03493d0e30689e58cc7"),
        (BODY_2, SK, "fe6714815eca619ee9ea224cfbe983bb28753e11955b77b2faa428b0a1445a60"),
        (b"", SK, "a5b3848cf54a129e782a682980081eaa0fea9734d52e1e52f1eca244b671e009"),
        (
            b'{"url":"https://example.com/api/inngest"}',
            SK,
            "a193d87c31b208d8d0b9e4b5fa0899462ff6c00e241334d21b97e7982bb7ad3e",
        ),
    ],
)
def test_request_signature_vectors(body: bytes, key: str, expected: str) -> None:
    header = f"t={T}&s={expected}"
    assert verify(header, body, [key], now=T) == key
    # The order of the header's fields does not matter.
    assert verify(f"s={expected}&t={T}", body, [key], now=T) == key
    # The JCS bytes carry the same signature.
    assert verify(header, canonicalize(body), [key], now=T) == key


def test_fallback_key_matches_only_when_configured() -> None:
    header = f"t={T}&s=771702cc70bbdb30ca11e7df5049b1b70a42fc2e0faad03493d0e30689e58cc7"
    assert verify(header, BODY_1, [SK, SK_FB], now=T) == SK_FB
    with pytest.raises(UnauthorizedError):
        verify(header, BODY_1, [SK], now=T)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'"done"', "cbf757abbb8db47393c20e5b48f0fc2a74c5152a3b2c445aa00044020323aa91"),
        (b'{"b": 1, "a": 2}', "d7296e1370f362c5f85571118308ca80d901d6f6078fee2da9a252332194d0c3"),
        (
            b'[{"displayName": "my-step", "id": "8376129f22207d6e1acaa1c92de099dcb1ba24db", '
            b'"name": "my-step", "op": "StepRun", "opts": null, "userland": {"id": "my-step", '
            b'"index": null}, "data": {"ok": true}}]',
            "b84cc56db50f3e2acfe847d767f1da2e6066c0db7da0cbb86680404ff706c9f8",
        ),
    ],
)
def test_response_signature_vectors(body: bytes, expected: str) -> None:
    assert sign(body, SK, T) == f"t={T}&s={expected}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("garbage", "malformed"),
        (f"t={T}", "malformed"),
        ("s=abcd", "malformed"),
        ("t=soon&s=abcd", "not an integer"),
        (f"t={T - MAX_SKEW - 1}&s=00", "window"),
        (f"t={T + MAX_SKEW + 1}&s=00", "window"),
        (f"t={T}&s=00", "does not match"),
    ],
)
def test_bad_headers_are_rejected_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(UnauthorizedError, match=reason) as info:
        verify(header, BODY_1, [SK], now=T)
    # The message never reveals a key.
    assert normalize_key(SK) not in info.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
hex_keys = st.binary(min_size=8, max_size=32).map(lambda b: f"signkey-test-{b.hex()}")
stamps = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


@given(body=st.binary(max_size=200), key=hex_keys, at=stamps)
def test_sign_then_verify_round_trips(body: bytes, key: str, at: int) -> None:
    assert verify(sign(body, key, at), body, [key], now=at) == key


@given(body=st.binary(min_size=1, max_size=200), key=hex_keys, at=stamps, data=st.data())
def test_any_flipped_body_byte_fails(body: bytes, key: str, at: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(body) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = bytearray(body)
    tampered[index] ^= 1 << bit
    with pytest.raises(UnauthorizedError):
        verify(sign(body, key, at), bytes(tampered), [key], now=at)


@given(body=st.binary(max_size=100), key=hex_keys, other=hex_keys, at=stamps)
def test_another_key_fails(body: bytes, key: str, other: str, at: int) -> None:
    assume(normalize_key(other) != normalize_key(key))
    with pytest.raises(UnauthorizedError):
        verify(sign(body, key, at), body, [other], now=at)


@given(body=st.binary(max_size=100), key=hex_keys, at=stamps, shift=st.integers(1, 10**6))
def test_a_changed_timestamp_fails(body: bytes, key: str, at: int, shift: int) -> None:
    header = sign(body, key, at)
    forged = header.replace(f"t={at}", f"t={at + shift}")
    with pytest.raises(UnauthorizedError):
        verify(forged, body, [key], now=at + shift)


@given(value=json_values, key=hex_keys, at=stamps)
def test_reencoded_json_still_verifies(value: object, key: str, at: int) -> None:
    # The server signs canonical bytes; a proxy may re-encode them with other spacing.
    canonical = canonicalize(json.dumps(value).encode())
    spaced = json.dumps(value, indent=2, ensure_ascii=True).encode()
    assert verify(sign(canonical, key, at), spaced, [key], now=at) == key


@given(body=st.binary(max_size=100), key=hex_keys, at=stamps, wrong=st.text("0123456789abcdef"))
def test_header_fields_parse_as_a_query_string(body: bytes, key: str, at: int, wrong: str) -> None:
    """Field order does not matter, and the first of a repeated field wins, whatever form the
    header takes."""
    mac = sign(body, key, at).partition("&s=")[2]
    assume(wrong != mac)
    assert verify(f"s={mac}&t={at}", body, [key], now=at) == key
    assert verify(f"t={at}&s={mac}&s={wrong}", body, [key], now=at) == key
    assert verify(f"t={at}&x=1&s={mac}", body, [key], now=at) == key
    with pytest.raises(UnauthorizedError):
        verify(f"t={at}&s={wrong}&s={mac}", body, [key], now=at)


@given(body=st.binary(max_size=300), key=hex_keys, at=stamps)
def test_signature_is_the_standard_hmac(body: bytes, key: str, at: int) -> None:
    expected = hmac.new(normalize_key(key).encode(), body + str(at).encode(), hashlib.sha256)
    assert sign(body, key, at) == f"t={at}&s={expected.hexdigest()}"
