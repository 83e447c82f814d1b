"""The executor's building blocks: time strings, retry-after, cron, CEL, signing, ids, clocks."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inngest_asgi.executor import VirtualClock
from inngest_asgi.executor._clock import Timer, TimerQueue
from inngest_asgi.executor._cron import CronError, next_fire, validate
from inngest_asgi.executor._durations import (
    parse_duration,
    parse_retry_after,
    parse_sleep,
)
from inngest_asgi.executor._expressions import ExpressionError, evaluate, matches
from inngest_asgi.executor._ids import ulid
from inngest_asgi.executor._signing import (
    SignatureError,
    bearer_ok,
    hashed_key,
    sign,
    verify_response,
)

SK = "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1h30m", 5400), ("2w", 1209600), ("1d", 86400), ("500ms", 0.5), ("90s", 90)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "s", "-1s", "1h 30m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_parse_sleep_prefers_opts_duration_then_name() -> None:
    assert parse_sleep("10m", "2030-01-02T00:00:00.000Z", NOW) == NOW + 600
    assert parse_sleep(None, "2030-01-02T00:00:00.000Z", NOW) == NOW + 86400
    assert parse_sleep(None, "5s", NOW) == NOW + 5
    assert parse_sleep(None, "2099-01-01T00:00:00Z", NOW) == NOW + 366 * 86400  # clamped
    assert parse_sleep(None, "2030-01-02T00:00:00Z", NOW, offset=60) == NOW + 86400 + 60
    with pytest.raises(ValueError, match="no readable duration"):
        parse_sleep(None, "soon", NOW)


def test_parse_retry_after() -> None:
    assert parse_retry_after("30", NOW) == 30
    assert parse_retry_after("0", NOW) == 1  # clamped up to 1 s
    assert parse_retry_after("2030-01-01T00:10:00.000Z", NOW) == 600
    assert parse_retry_after("Tue, 01 Jan 2030 00:00:20 GMT", NOW) == 20
    assert parse_retry_after("2030-01-01T00:10:00Z", NOW + 3600, offset=3600) == 600
    assert parse_retry_after("2031-01-01T00:00:00Z", NOW) == 86400  # clamped to 24 h
    with pytest.raises(ValueError, match="unreadable"):
        parse_retry_after("later", NOW)


def test_cron_next_fire_with_time_zone() -> None:
    assert next_fire("*/15 * * * *", NOW + 1) == NOW + 900
    assert next_fire("@hourly", NOW) == NOW + 3600
    paris = next_fire("TZ=Europe/Paris 0 9 * * *", NOW)
    assert dt.datetime.fromtimestamp(paris, dt.timezone.utc).hour == 8  # 9:00 CET
    validate("TZ=Europe/Paris 0 9 * * MON")
    for bad in ("not a cron", "TZ=Mars/Base 0 9 * * *", "TZ=Europe/Paris"):
        with pytest.raises(CronError):
            validate(bad)


def test_expressions() -> None:
    event = {"name": "a", "data": {"n": 3, "user": {"id": "u1"}, "tags": ["x"]}}
    candidate = {"name": "b", "data": {"user_id": "u1"}}
    assert matches("event.data.n > 2", {"event": event})
    assert matches("async.data.user_id == event.data.user.id", {"event": event, "async": candidate})
    assert not matches("event.data.missing == 1", {"event": event})  # errors do not match
    assert not matches("event.data.n", {"event": event})  # not a boolean
    assert matches(None, {"event": event})
    assert evaluate("event.data.n * 2", {"event": event}) == 6
    assert evaluate("event.data.user", {"event": event}) == {"id": "u1"}
    assert evaluate("'x' in event.data.tags", {"event": event}) is True
    with pytest.raises(ExpressionError, match="invalid expression"):
        evaluate("event.data.n >", {"event": event})


def test_signing_matches_the_protocol_vectors() -> None:
    jcs = (
        b'{"ctx":{"attempt":0,"disable_immediate_execution":false,"max_attempts":4,'
        b'"run_id":"01HRUN","stack":{"current":0,"stack":[]},"use_api":false},'
        b'"event":{"data":{},"id":"01HEVT","name":"app/hello","ts":1700000000000,"user":{}},'
        b'"events":[{"data":{},"id":"01HEVT","name":"app/hello","ts":1700000000000,"user":{}}],'
        b'"steps":{},"use_api":false,"version":2}'
    )
    assert sign(jcs, SK, 1700000000) == (
        "t=1700000000&s=1a0e555a770f20f1941b04f51ad83f27a2545f216212414bfca84870fd327e5d"
    )
    assert sign(b"", SK, 1700000000).endswith(
        "a5b3848cf54a129e782a682980081eaa0fea9734d52e1e52f1eca244b671e009"
    )
    response = b'"done"'
    header = "t=1700000000&s=cbf757abbb8db47393c20e5b48f0fc2a74c5152a3b2c445aa00044020323aa91"
    verify_response(header, response, SK, 1700000100)
    with pytest.raises(SignatureError, match="does not match"):
        verify_response(header, b'"dona"', SK, 1700000100)
    with pytest.raises(SignatureError, match="5 minutes"):
        verify_response(header, response, SK, 1700000400)
    with pytest.raises(SignatureError, match="no x-inngest-signature"):
        verify_response(None, response, SK, 1700000000)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2**40))
def test_sign_then_verify_roundtrip(body: bytes, at: int) -> None:
    verify_response(sign(body, SK, at), body, SK, at)


def test_bearer_forms() -> None:
    hashed = "4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
    assert hashed_key(SK) == hashed
    assert bearer_ok(f"Bearer {hashed}", SK)
    assert bearer_ok(f"Bearer signkey-test-{hashed}", SK)
    assert not bearer_ok("Bearer 00", SK)
    assert not bearer_ok(None, SK)


def test_public_names() -> None:
    from inngest_asgi import executor

    assert executor.__all__ == sorted(executor.__all__)
    for name in executor.__all__:
        assert getattr(executor, name).__doc__, name


def test_ulid_shape_and_order() -> None:
    first, second = ulid(NOW), ulid(NOW + 1)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", first)
    assert first[:10] < second[:10]


def test_virtual_clock_and_timer_queue() -> None:
    clock = VirtualClock()
    start = clock.now()
    clock.move(100)
    assert clock.now() - start >= 100
    clock.move_to(start)  # never backwards
    assert clock.now() - start >= 100
    with pytest.raises(ValueError, match="forward"):
        clock.move(-1)
    queue = TimerQueue()
    fired: list[str] = []
    late = Timer(20, lambda: fired.append("late"), "sleep")
    early = Timer(10, lambda: fired.append("early"), "retry")
    dropped = Timer(5, lambda: fired.append("dropped"), "wait")
    for timer in (late, early, dropped):
        queue.push(timer)
    dropped.cancel()
    assert queue.kinds() == {"sleep", "retry"}
    assert queue.next_due() == 10
    assert queue.pop_due(9) is None
    assert queue.pop_due(30) is early
    assert queue.pop_due(30) is late
    assert len(queue) == 0
