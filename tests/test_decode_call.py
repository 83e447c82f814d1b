"""Decoding execution requests: large bodies skip decoding ``events`` when it only repeats
``event``; whatever the path, the result is what a plain decode of the body gives."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inngest_asgi._errors import BadRequestError
from inngest_asgi._execution import LARGE_BODY, decode_call
from inngest_asgi._wire import call_request_decoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
events = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=20), "data": st.dictionaries(st.text(), json_values)},
    optional={"id": st.text(max_size=26), "ts": st.integers(0, 2**53), "user": st.just({})},
)


def body(event: Any, batch: Any, padding: int) -> bytes:
    payload: dict[str, Any] = {
        "ctx": {"run_id": "01HRUN", "attempt": 0},
        "steps": {"x": {"data": "y" * padding}},  # sizes the body around LARGE_BODY
        "version": 2,
    }
    if event is not ...:
        payload["event"] = event
    if batch is not ...:
        payload["events"] = batch
    return msgspec.json.encode(payload)


def same(body: bytes) -> None:
    got, want = decode_call(body), call_request_decoder.decode(body)
    assert msgspec.to_builtins(got) == msgspec.to_builtins(want)


@given(
    event=events,
    others=st.lists(events, max_size=3),
    shape=st.sampled_from(["alone", "first", "other", "absent", "null"]),
    padding=st.sampled_from([0, LARGE_BODY]),
)
def test_the_result_is_a_plain_decode(
    event: dict[str, Any], others: list[Any], shape: str, padding: int
) -> None:
    batch = {
        "alone": [event],
        "first": [event, *others],
        "other": others,
        "absent": ...,
        "null": None,
    }[shape]
    same(body(event, batch, padding))
    same(body(None, batch, padding))
    same(body(..., batch, padding))


def test_a_large_batch_of_one_shares_the_decoded_event() -> None:
    event = {"name": "app/big", "data": {"blob": "z" * LARGE_BODY}}
    call = decode_call(body(event, [event], 0))
    assert call.events is not None
    assert call.events[0] is call.event
    # The same event written differently (here, with a space) is decoded on its own.
    spaced = body(event, [event], 0).replace(b'"events":[', b'"events":[ ')
    call = decode_call(spaced)
    assert call.events is not None
    assert call.events[0] is not call.event
    assert call.events[0] == call.event


@pytest.mark.parametrize("padding", [0, LARGE_BODY])
@pytest.mark.parametrize(
    ("field", "value", "where"),
    [("event", 5, "event"), ("events", [{"data": {}}], "events"), ("events", {}, "events")],
)
def test_invalid_events_are_named(padding: int, field: str, value: Any, where: str) -> None:
    fields = {"event": {"name": "app/x"}, "events": ...}
    fields[field] = value
    with pytest.raises(BadRequestError) as caught:
        decode_call(body(fields["event"], fields["events"], padding))
    assert caught.value.code == "body_invalid"
    assert where in caught.value.message
