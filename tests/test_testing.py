"""``inngest_asgi.testing``: the harness, stubs, captured events, time, the replay check, and
the examples of docs/testing.md (run as a pytest file of their own)."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import random
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import inngest_asgi as inngest
from inngest_asgi.testing import (
    AsyncHarness,
    Harness,
    NonDeterminismError,
    Result,
    Status,
    Timeout,
    trigger,
)

from .conftest import FakeInngestAPI

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
SK = "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
HOUR = dt.timedelta(hours=1)

client = inngest.Inngest(app_id="t-app", is_production=False)

#: How often each step callable ran, by name: stubbed steps must stay at 0.
CALLS: collections.Counter[str] = collections.Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def counted(name: str, value: Any) -> Any:
    CALLS[name] += 1
    return value


# --- functions under test: each scenario in an async and a sync spelling ----------------------


@client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="t/steps"))
async def steps_async(ctx: inngest.Context) -> dict[str, Any]:
    a = await ctx.step.run("a", lambda: counted("a", ctx.event.data["n"] + 1))
    b = await ctx.step.run("b", lambda: counted("b", a * 10))
    return {"a": a, "b": b}


@client.create_function(fn_id="steps-sync", trigger=inngest.TriggerEvent(event="t/steps"))
def steps_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
    a = ctx.step.run("a", lambda: counted("a", ctx.event.data["n"] + 1))
    b = ctx.step.run("b", lambda: counted("b", a * 10))
    return {"a": a, "b": b}


@client.create_function(fn_id="approval", trigger=inngest.TriggerEvent(event="t/order"))
async def approval_async(ctx: inngest.Context) -> dict[str, Any]:
    await ctx.step.sleep("nap", dt.timedelta(minutes=30))
    event = await ctx.step.wait_for_event(
        "approval", event="t/approve", if_exp="async.data.id == event.data.id", timeout=HOUR
    )
    if event is None:
        return {"approved": False}
    by = await ctx.step.run("record", lambda: counted("record", event.data["by"]))
    return {"approved": True, "by": by}


@client.create_function(fn_id="approval-sync", trigger=inngest.TriggerEvent(event="t/order-s"))
def approval_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
    ctx.step.sleep("nap", dt.timedelta(minutes=30))
    event = ctx.step.wait_for_event(
        "approval", event="t/approve", if_exp="async.data.id == event.data.id", timeout=HOUR
    )
    if event is None:
        return {"approved": False}
    by = ctx.step.run("record", lambda: counted("record", event.data["by"]))
    return {"approved": True, "by": by}


@client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="t/child"))
def child(ctx: inngest.ContextSync) -> int:
    return int(ctx.step.run("double", lambda: counted("double", ctx.event.data["x"] * 2)))


@client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="t/parent"))
async def parent(ctx: inngest.Context) -> dict[str, Any]:
    doubled = await ctx.step.invoke("call-child", function=child, data={"x": 21})
    left, right = await ctx.group.parallel(
        (
            lambda: ctx.step.run("left", lambda: counted("left", "L")),
            lambda: ctx.step.run("right", lambda: counted("right", "R")),
        )
    )
    return {"doubled": doubled, "pair": [left, right]}


@client.create_function(fn_id="flaky-step", trigger=inngest.TriggerEvent(event="t/flaky"))
async def flaky_step(ctx: inngest.Context) -> str:
    def attempt() -> str:
        CALLS["flaky"] += 1
        if CALLS["flaky"] < 3:
            raise ConnectionError(f"try {CALLS['flaky']} failed")
        return "ok"

    return await ctx.step.run("fetch", attempt)


@client.create_function(fn_id="broken", trigger=inngest.TriggerEvent(event="t/broken"), retries=0)
def broken(ctx: inngest.ContextSync) -> None:
    ctx.step.run("fine", lambda: 1)
    raise LookupError("no such order")


@client.create_function(fn_id="emitter", trigger=inngest.TriggerEvent(event="t/emit"))
async def emitter(ctx: inngest.Context) -> list[str]:
    ids = await ctx.step.send_event("announce", inngest.Event(name="t/steps", data={"n": 1}))
    await client.send(inngest.Event(name="t/direct", data={"from": "client.send"}))
    return ids


@client.create_function(fn_id="emitter-sync", trigger=inngest.TriggerEvent(event="t/emit-s"))
def emitter_sync(ctx: inngest.ContextSync) -> list[str]:
    ids = ctx.step.send_event("announce", [inngest.Event(name="t/steps", data={"n": 2})])
    client.send_sync(inngest.Event(name="t/direct", data={"from": "send_sync"}))
    return ids


@client.create_function(fn_id="repeat", trigger=inngest.TriggerEvent(event="t/repeat"))
def repeat(ctx: inngest.ContextSync) -> list[int]:
    return [ctx.step.run("tick", lambda i=i: counted(f"tick{i}", i)) for i in range(3)]


@client.create_function(
    fn_id="cancellable",
    trigger=inngest.TriggerEvent(event="t/cancellable"),
    cancel=[inngest.Cancel(event="t/stop")],
)
async def cancellable(ctx: inngest.Context) -> None:
    await ctx.step.sleep("long", dt.timedelta(days=3))


# Non-deterministic functions for the replay check.
_flips = itertools.count()


@client.create_function(fn_id="random-id", trigger=inngest.TriggerEvent(event="t/random"))
def random_id(ctx: inngest.ContextSync) -> str:
    ticket = ctx.step.run(f"draw-{random.random()}", lambda: "ticket")
    ctx.step.run("after", lambda: None)
    return str(ticket)


def fake_clock() -> float:
    """A clock that moves on each read: each replay sees a different time."""
    return 1_700_000_000.0 + next(_flips) * 3600


@client.create_function(fn_id="clock-branch", trigger=inngest.TriggerEvent(event="t/clock"))
async def clock_branch(ctx: inngest.Context) -> str:
    await ctx.step.run("first", lambda: 1)
    if int(fake_clock() // 3600) % 2:  # branching on the clock outside a step
        await ctx.step.run("odd-hour", lambda: 1)
    else:
        await ctx.step.run("even-hour", lambda: 2)
    await ctx.step.run("last", lambda: 3)
    return "done"


_warm: set[str] = set()


@client.create_function(fn_id="swap", trigger=inngest.TriggerEvent(event="t/swap"))
async def swap(ctx: inngest.Context) -> None:
    names = ["x", "y"]
    if ctx.run_id in _warm:  # state kept between calls changes the order of two known steps
        names.reverse()
    _warm.add(ctx.run_id)
    for name in names:
        await ctx.step.run(name, lambda: None)


@client.create_function(fn_id="clock-in-step", trigger=inngest.TriggerEvent(event="t/clock2"))
async def clock_in_step(ctx: inngest.Context) -> str:
    hour = await ctx.step.run("read-clock", lambda: int(fake_clock() // 3600))
    await ctx.step.run("odd-hour" if hour % 2 else "even-hour", lambda: 1)
    await ctx.step.sleep("nap", 1000)
    return "done"


ALL = [
    steps_async,
    steps_sync,
    approval_async,
    approval_sync,
    child,
    parent,
    flaky_step,
    broken,
    emitter,
    emitter_sync,
    repeat,
    cancellable,
    random_id,
    clock_branch,
    swap,
    clock_in_step,
]


APPROVALS = [(approval_async, "t/order"), (approval_sync, "t/order-s")]


def ev(name: str, **data: Any) -> inngest.Event:
    return inngest.Event(name=name, data=data)


def timeline(result: Result) -> list[tuple[str, str, str]]:
    return [(s.id, s.kind, s.status) for s in result.steps]


# --- trigger() and the result ---------------------------------------------------------------


@pytest.mark.parametrize("fn", [steps_async, steps_sync], ids=["async", "sync"])
def test_trigger_runs_to_completion(fn: inngest.Function[Any]) -> None:
    result = trigger(fn, ev("t/steps", n=4), client)
    assert result.status is Status.COMPLETED
    assert result.status == "completed"
    assert result.output == {"a": 5, "b": 50}
    assert result.error is None
    assert timeline(result) == [("a", "run", "completed"), ("b", "run", "completed")]
    assert result.step("b").output == 50
    assert result.step("a").attempts == 0
    assert not result.step("a").stubbed
    assert result.function_id == fn.id
    assert result.event["data"] == {"n": 4}
    assert CALLS == {"a": 1, "b": 1}


def test_trigger_accepts_dicts_and_batches() -> None:
    result = trigger(steps_sync, [{"name": "t/steps", "data": {"n": 1}}, ev("t/steps", n=9)])
    assert result.output == {"a": 2, "b": 20}
    assert [e["data"]["n"] for e in result.events] == [1, 9]


def test_result_prints_its_timeline() -> None:
    result = trigger(steps_async, ev("t/steps", n=1), step_stubs={"a": 7})
    text = str(result)
    assert text.splitlines() == [
        f'run {result.run_id} of t-app-steps: completed -> {{"a": 7, "b": 70}}',
        "  1. a (run): completed, stubbed -> 7",
        "  2. b (run): completed -> 70",
    ]
    assert repr(result) == f"<Result t-app-steps completed run={result.run_id}>"


# --- Harness (sync tests) and AsyncHarness (async tests) --------------------------------------


@pytest.mark.parametrize(("fn", "name"), APPROVALS)
def test_send_fulfils_a_wait(fn: inngest.Function[Any], name: str) -> None:
    with Harness(ALL) as harness:
        result = harness.trigger(fn, ev(name, id=1))
        assert result.status is Status.WAITING
        assert timeline(result) == [
            ("nap", "sleep", "completed"),
            ("approval", "wait_for_event", "waiting"),
        ]
        harness.send(ev("t/approve", id=2, by="mallory"))  # does not match the if
        assert result.status == "waiting"
        ids = harness.send(ev("t/approve", id=1, by="alice"))
        assert len(ids) == 1
        assert result.status == "completed"
        assert result.output == {"approved": True, "by": "alice"}
        assert result.step("approval").output["data"] == {"id": 1, "by": "alice"}
        assert result.step("approval").output["id"] == ids[0]


@pytest.mark.anyio
@pytest.mark.parametrize(("fn", "name"), APPROVALS)
async def test_async_harness(fn: inngest.Function[Any], name: str) -> None:
    async with AsyncHarness(ALL) as harness:
        result = await harness.trigger(fn, ev(name, id=5))
        assert result.status == "waiting"
        await harness.send(ev("t/approve", id=5, by="bob"))
        assert result.assert_completed() == {"approved": True, "by": "bob"}
        steps = await harness.trigger(steps_sync, ev("t/steps", n=0))
        assert steps.output == {"a": 1, "b": 10}


def test_advance_drives_sleeps_and_wait_timeouts() -> None:
    with Harness(ALL, auto_advance=False) as harness:
        result = harness.trigger(approval_sync, ev("t/order-s", id=1))
        assert timeline(result) == [("nap", "sleep", "sleeping")]
        harness.advance(29 * 60)
        assert result.step("nap").status == "sleeping"
        harness.advance(dt.timedelta(minutes=1))
        assert result.step("approval").status == "waiting"
        harness.advance(HOUR)
        assert result.step("approval").status == "timed_out"
        assert result.output == {"approved": False}


def test_auto_advance_skips_retry_delays() -> None:
    started = time.monotonic()
    result = trigger(flaky_step, ev("t/flaky"))
    assert time.monotonic() - started < 5  # backoff is 1 s then 2 s of virtual time
    assert result.output == "ok"
    step = result.step("fetch")
    assert step.status == "completed"
    assert step.attempts == 2
    assert CALLS["flaky"] == 3


def test_retry_is_visible_without_auto_advance() -> None:
    with Harness([flaky_step], auto_advance=False) as harness:
        result = harness.trigger(flaky_step, ev("t/flaky"))
        step = result.step("fetch")
        assert (step.status, step.attempts) == ("errored", 1)
        assert str(step.error) == "ConnectionError: try 1 failed"
        harness.advance(1)
        harness.advance(2)
        assert result.status == "completed"


def test_invoke_runs_the_target_and_parallel_steps_run() -> None:
    with Harness(ALL) as harness:
        result = harness.trigger(parent, ev("t/parent"))
        assert result.output == {"doubled": 42, "pair": ["L", "R"]}
        assert timeline(result)[0] == ("call-child", "invoke", "completed")
        assert sorted(timeline(result)[1:]) == [
            ("left", "run", "completed"),
            ("right", "run", "completed"),
        ]
        [child_run] = harness.runs(child)
        assert child_run.output == 42
        assert len(harness.runs()) == 2


def test_failed_run() -> None:
    result = trigger(broken, ev("t/broken"))
    assert result.status is Status.FAILED
    assert result.error is not None
    assert result.error.name == "LookupError"
    assert result.error.message == "no such order"
    assert "Traceback" in (result.error.stack or "")
    assert timeline(result) == [("fine", "run", "completed")]


def test_assert_completed_shows_the_error_and_timeline() -> None:
    result = trigger(broken, ev("t/broken"))
    with pytest.raises(AssertionError) as info:
        result.assert_completed()
    assert str(info.value).splitlines()[:3] == [
        "expected the run to complete, but it is failed",
        f"run {result.run_id} of t-app-broken: failed - LookupError: no such order",
        "  1. fine (run): completed -> 1",
    ]


def test_cancelled_run() -> None:
    with Harness([cancellable], auto_advance=False) as harness:
        result = harness.trigger(cancellable, ev("t/cancellable"))
        assert result.step("long").status == "sleeping"
        harness.send(ev("t/stop"))
        assert result.status is Status.CANCELLED


def test_repeated_step_ids_are_numbered() -> None:
    result = trigger(repeat, ev("t/repeat"), step_stubs={"tick:1": 10})
    assert result.output == [0, 10, 2]
    assert [s.id for s in result.steps] == ["tick", "tick:1", "tick:2"]
    assert [s.stubbed for s in result.steps] == [False, True, False]
    assert CALLS == {"tick0": 1, "tick2": 1}


def test_cloud_mode_client() -> None:
    cloud = inngest.Inngest(app_id="t-cloud", is_production=True, signing_key=SK)

    @cloud.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="t/hello"))
    def hello(ctx: inngest.ContextSync) -> str:
        return str(ctx.step.run("greet", lambda: f"hello {ctx.event.data['who']}"))

    result = trigger(hello, ev("t/hello", who="cloud"), cloud, replay_check=True)
    assert result.output == "hello cloud"


# --- stubs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [steps_async, steps_sync], ids=["async", "sync"])
def test_stubbed_step_does_not_run(fn: inngest.Function[Any]) -> None:
    result = trigger(fn, ev("t/steps", n=1), step_stubs={"a": 100})
    assert result.output == {"a": 100, "b": 1000}
    assert result.step("a").stubbed
    assert result.step("a").kind == "run"
    assert CALLS == {"b": 1}


def test_stubbed_error() -> None:
    result = trigger(steps_sync, ev("t/steps", n=1), step_stubs={"b": ValueError("declined")})
    assert result.status is Status.FAILED
    assert result.error is not None
    assert (result.error.name, result.error.message) == ("ValueError", "declined")
    step = result.step("b")
    assert (step.status, step.stubbed) == ("failed", True)
    assert CALLS == {"a": 1}


@pytest.mark.parametrize(("fn", "name"), APPROVALS)
def test_stubbed_wait(fn: inngest.Function[Any], name: str) -> None:
    approved = ev("t/approve", id=1, by="stub")
    result = trigger(fn, ev(name, id=1), step_stubs={"approval": approved})
    assert result.output == {"approved": True, "by": "stub"}
    assert result.step("approval").kind == "wait_for_event"
    timed_out = trigger(fn, ev(name, id=1), step_stubs={"approval": Timeout})
    assert timed_out.output == {"approved": False}
    step = timed_out.step("approval")
    assert (step.kind, step.status, step.stubbed) == ("wait_for_event", "timed_out", True)


def test_stubbed_invoke() -> None:
    # The target is not served: the stub stands for its result.
    result = trigger(parent, ev("t/parent"), step_stubs={"call-child": 7, "left": "l"})
    assert result.output == {"doubled": 7, "pair": ["l", "R"]}
    assert result.step("call-child").kind == "invoke"
    assert CALLS == {"right": 1}
    failed = trigger(parent, ev("t/parent"), step_stubs={"call-child": RuntimeError("boom")})
    assert failed.status is Status.FAILED
    assert str(failed.error) == "RuntimeError: boom"


def test_harness_wide_stubs_and_per_trigger_override() -> None:
    with Harness(ALL, step_stubs={"a": 1}) as harness:
        assert harness.trigger(steps_sync, ev("t/steps", n=5)).output == {"a": 1, "b": 10}
        other = harness.trigger(steps_sync, ev("t/steps", n=5), step_stubs={"b": 0})
        assert other.output == {"a": 6, "b": 0}
        # Runs started by send get the harness-wide stubs too.
        harness.send(ev("t/steps", n=5))
        assert [r.output for r in harness.runs(steps_async)] == [{"a": 1, "b": 10}]


def test_bad_stub_is_refused() -> None:
    with pytest.raises(TypeError, match=r"step_stubs\['a'\] cannot be sent as JSON"):
        trigger(steps_sync, ev("t/steps", n=1), step_stubs={"a": object()})


# --- captured events ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fn", "name"), [(emitter, "t/emit"), (emitter_sync, "t/emit-s")])
def test_sent_events_are_captured(fn: inngest.Function[Any], name: str) -> None:
    with Harness(ALL) as harness:
        result = harness.trigger(fn, ev(name))
        assert result.status == "completed"
        sent = harness.sent_events
        assert [e.name for e in sent] == ["t/steps", "t/direct"]
        assert result.output == [sent[0].id]
        assert all(e.id and e.ts for e in sent)
        assert harness.runs(steps_async) == []  # captured, not delivered
        assert timeline(result) == [("announce", "run", "completed")]


def test_sent_events_can_be_delivered() -> None:
    with Harness(ALL, deliver_events=True) as harness:
        harness.trigger(emitter, ev("t/emit"))
        [run] = harness.runs(steps_async)
        assert run.output == {"a": 2, "b": 20}
        assert [e.name for e in harness.sent_events] == ["t/steps", "t/direct"]


def test_sends_outside_a_harness_are_not_captured(inngest_api: FakeInngestAPI) -> None:
    sender = inngest.Inngest(
        app_id="outside", is_production=False, event_api_base_url=inngest_api.url
    )
    inngest_api.reply(200, {"ids": ["real-id"], "status": 200})
    with Harness([steps_sync]):
        captured = sender.send_sync(inngest.Event(name="t/inside"))
    assert captured != ["real-id"]
    assert inngest_api.requests == []  # nothing left the process while the harness was open
    assert sender.send_sync(inngest.Event(name="t/outside")) == ["real-id"]
    assert [r.path for r in inngest_api.requests] == ["/e/NO_EVENT_KEY_SET"]


# --- replay check -----------------------------------------------------------------------------


def test_replay_check_passes_deterministic_functions() -> None:
    with Harness(ALL, replay_check=True) as harness:
        assert harness.trigger(parent, ev("t/parent")).status == "completed"
        result = harness.trigger(approval_sync, ev("t/order-s", id=1))
        harness.send(ev("t/approve", id=1, by="x"))
        assert result.status == "completed"
        assert harness.trigger(repeat, ev("t/repeat")).output == [0, 1, 2]
        assert harness.trigger(flaky_step, ev("t/flaky")).output == "ok"
        # Reading the clock inside a step is fine: the value is memoized.
        assert harness.trigger(clock_in_step, ev("t/clock2")).output == "done"
    # The replays ran no step code twice.
    assert CALLS["left"] == CALLS["right"] == CALLS["record"] == 1


def test_replay_check_catches_a_random_step_id() -> None:
    with Harness(ALL, replay_check=True) as harness:
        with pytest.raises(NonDeterminismError) as info:
            harness.trigger(random_id, ev("t/random"))
        [run] = harness.runs(random_id)
    message = str(info.value)
    assert message.startswith("replay check: a function took a different path")
    assert re.search(
        rf"run {run.run_id} of t-app-random-id: after steps \['draw-0\.\d+'\], a replay with "
        r"no step memoized reported 'draw-0\.\d+' \(a step id never seen before\) where "
        r"'draw-0\.\d+' was expected",
        message,
    )
    assert "never from random(), time.time()" in message
    # The run is stopped rather than left to wander.
    assert run.status is Status.FAILED
    assert run.error is not None
    assert run.error.name == "NonDeterminismError"


def test_replay_check_catches_branching_on_the_clock() -> None:
    expected = r"after steps \['first', '(odd|even)-hour'"
    with Harness(ALL, replay_check=True) as harness, pytest.raises(NonDeterminismError) as info:
        harness.trigger(clock_branch, ev("t/clock"))
    assert re.search(expected, str(info.value))


def test_replay_check_catches_a_changed_order_of_known_steps() -> None:
    with Harness(ALL, replay_check=True) as harness, pytest.raises(NonDeterminismError) as info:
        harness.trigger(swap, ev("t/swap"))
    expected = "after steps ['x'], a replay with no step memoized reported 'y' where 'x' was"
    assert expected in str(info.value)


def test_without_the_check_a_random_step_id_is_stopped_as_runaway() -> None:
    result = trigger(random_id, ev("t/random"))
    assert result.status is Status.FAILED
    assert result.error is not None
    assert result.error.name == "RunawayRunError"
    assert "more than 1000 requests" in result.error.message


# --- misuse gives readable errors ------------------------------------------------------------


def test_readable_errors() -> None:
    with Harness([steps_sync]) as harness:
        with pytest.raises(ValueError, match=r"is not served by this harness \(it serves"):
            harness.trigger(steps_async, ev("t/steps", n=1))
        with pytest.raises(ValueError, match="an event needs a name"):
            harness.send({"data": {}})
        result = harness.trigger(steps_sync, ev("t/steps", n=1))
        with pytest.raises(KeyError, match=r"has no step 'c'; its steps: 'a', 'b'"):
            result.step("c")
    with pytest.raises(RuntimeError, match="open the harness first"):
        harness.trigger(steps_sync, ev("t/steps", n=1))
    with pytest.raises(TypeError, match=r"functions made by client\.create_function"):
        Harness([steps_sync.handler])  # type: ignore[list-item]


# --- docs/testing.md ---------------------------------------------------------------------------


def test_docs_examples_run(tmp_path: Path) -> None:
    """Every ``python`` block of docs/testing.md, in order, is one pytest module: run it."""
    text = (ROOT / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 6
    module = "\n\n".join(textwrap.dedent(block) for block in blocks)
    (tmp_path / "test_docs_testing.py").write_text(module)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = re.findall(r"^(?:async )?def (test_\w+)", module, flags=re.MULTILINE)
    assert f"{len(tests)} passed" in proc.stdout, proc.stdout
