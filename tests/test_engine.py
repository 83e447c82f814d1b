"""The replay engine, through the sans-IO handler: step ids, memoization, planning, errors."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import inngest_asgi as inngest
from inngest_asgi._engine import hash_step_id

from .core import call, handler, json

client = inngest.Inngest(app_id="my-app", is_production=False)
trigger = inngest.TriggerEvent(event="app/hello")


@pytest.mark.parametrize(
    ("pre", "expected"),
    [
        ("my-step", "8376129f22207d6e1acaa1c92de099dcb1ba24db"),
        ("my-step:1", "93de82859c2f0cfdc32855d8a527c8832a78b414"),
        ("my-step:2", "3d8cfd45edf539f6e8558a23dc2ce2e07ab17fd5"),
        ("my-step-id", "e7d8a2f140845095749d60246ff1110c9d01d76a"),
        ("step-a", "1419522417cff8c6ddd205cc9882d16411490c09"),
        ("step-b", "fe0ff3a9f16e8030660e5c6c446c04439143a0d1"),
        ("first step", "98bf98df193bcce7c33e6bc50927cf2ac21206cb"),
        ("sleep", "c3ca5f787365eae0dea86250e27d476406956478"),
        ("nap", "c2640f79b4ed481b838ce4ad75330aa3f825d4d9"),
        ("wait", "daaad336276d15594d0e765f96c17cd746bf4971"),
        ("call", "bc8d8647b02deea0ab3e715c220d041ee78cc19d"),
        ("send", "37ed539c0cef13959abd980bebf30f4922f606e3"),
        ("infer", "0c8207b92779c0a42507a293a23106814cc381e1"),
    ],
)
def test_step_id_vectors(pre: str, expected: str) -> None:
    assert hash_step_id(pre) == expected


def _expected_ids(ids: list[str]) -> list[tuple[str, int | None]]:
    """Independent statement of the rule: k-th repeat hashes ``id:k``; index is k or None."""
    seen: collections.Counter[str] = collections.Counter()
    out = []
    for user_id in ids:
        k = seen[user_id]
        seen[user_id] += 1
        pre = f"{user_id}:{k}" if k else user_id
        out.append((hashlib.sha1(pre.encode()).hexdigest(), k or None))
    return out


def _loop_functions(ids: list[str]) -> tuple[inngest.Function[Any], inngest.Function[Any]]:
    @client.create_function(fn_id="loop-async", trigger=trigger)
    async def loop_async(ctx: inngest.Context) -> list[Any]:
        results = []
        for position, user_id in enumerate(ids):
            results.append(await ctx.step.run(user_id, lambda p=position: {"at": p}))
        return results

    @client.create_function(fn_id="loop-sync", trigger=trigger)
    def loop_sync(ctx: inngest.ContextSync) -> list[Any]:
        return [
            ctx.step.run(user_id, lambda p=position: {"at": p})
            for position, user_id in enumerate(ids)
        ]

    return loop_async, loop_sync


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["a", "b", "my-step", "x y"]), min_size=1, max_size=8),
    data=st.data(),
)
def test_replay_returns_memos_in_order_and_reports_the_next_step(
    ids: list[str], data: st.DataObject
) -> None:
    expected = _expected_ids(ids)
    memoized = data.draw(st.integers(0, len(ids)))
    steps = {hashed: {"data": {"memo": i}} for i, (hashed, _) in enumerate(expected[:memoized])}
    for fn in _loop_functions(ids):
        serve = handler(client, [fn])
        for _ in range(2):  # the same request twice: ids are stable across replays
            response = call(serve, fn.id, steps=dict(steps))
            if memoized == len(ids):
                assert response.status == 200
                assert json(response) == [{"memo": i} for i in range(len(ids))]
                continue
            assert response.status == 206
            (op,) = json(response)
            hashed, index = expected[memoized]
            assert op["id"] == hashed
            assert op["op"] == "StepRun"
            assert op["data"] == {"at": memoized}
            assert op["displayName"] == ids[memoized]
            assert op["userland"] == {"id": ids[memoized], "index": index}


def test_repeated_step_id_gets_a_counter_suffix() -> None:
    @client.create_function(fn_id="three", trigger=trigger)
    def three(ctx: inngest.ContextSync) -> None:
        for i in range(3):
            ctx.step.run("my-step", lambda i=i: i)

    serve = handler(client, [three])
    response = call(
        serve, three.id, steps={"8376129f22207d6e1acaa1c92de099dcb1ba24db": {"data": 0}}
    )
    (op,) = json(response)
    assert op["id"] == "93de82859c2f0cfdc32855d8a527c8832a78b414"
    assert op["userland"] == {"id": "my-step", "index": 1}
    assert op["data"] == 1


def _hello(kind: str) -> inngest.Function[Any]:
    if kind == "async":

        @client.create_function(fn_id="hello", trigger=trigger)
        async def hello(ctx: inngest.Context) -> str:
            await ctx.step.run("my-step", lambda: {"ok": True})
            return "done"

        return hello

    @client.create_function(fn_id="hello", trigger=trigger)
    def hello_sync(ctx: inngest.ContextSync) -> str:
        ctx.step.run("my-step", lambda: {"ok": True})
        return "done"

    return hello_sync


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_fixture_execution_cases(kind: str) -> None:
    """PROTOCOL.md §14.5 "Execution", cases 1-4."""
    serve = handler(client, [_hello(kind)])
    first = call(serve, "my-app-hello")
    assert first.status == 206
    assert json(first) == [
        {
            "displayName": "my-step",
            "id": "8376129f22207d6e1acaa1c92de099dcb1ba24db",
            "name": "my-step",
            "op": "StepRun",
            "opts": None,
            "userland": {"id": "my-step", "index": None},
            "data": {"ok": True},
        }
    ]
    done = call(
        serve,
        "my-app-hello",
        steps={"8376129f22207d6e1acaa1c92de099dcb1ba24db": {"data": {"ok": True}}},
    )
    assert (done.status, done.body) == (200, b'"done"')

    planned = call(serve, "my-app-hello", disable_immediate_execution=True)
    assert planned.status == 206
    (op,) = json(planned)
    assert (op["op"], op["data"], op["id"]) == (
        "StepPlanned",
        None,
        "8376129f22207d6e1acaa1c92de099dcb1ba24db",
    )

    unexpected = call(serve, "my-app-hello", step="deadbeef")
    assert unexpected.status == 500
    assert unexpected.headers["x-inngest-no-retry"] == "true"
    assert json(unexpected) == {
        "code": "step_unexpected",
        "message": 'found step "my-step" when targeting a different step',
        "name": "StepUnexpectedError",
    }


def test_parallel_planning_targeting_and_completion(kind: str) -> None:
    a, b = "1419522417cff8c6ddd205cc9882d16411490c09", "fe0ff3a9f16e8030660e5c6c446c04439143a0d1"
    if kind == "async":

        @client.create_function(fn_id="par", trigger=trigger)
        async def par(ctx: inngest.Context) -> tuple[str, ...]:
            return await ctx.group.parallel(
                (
                    lambda: ctx.step.run("step-a", lambda: "A"),
                    lambda: ctx.step.run("step-b", lambda: "B"),
                )
            )

        fn = par
    else:

        @client.create_function(fn_id="par", trigger=trigger)
        def par_sync(ctx: inngest.ContextSync) -> tuple[str, ...]:
            return ctx.group.parallel(
                (
                    lambda: ctx.step.run("step-a", lambda: "A"),
                    lambda: ctx.step.run("step-b", lambda: "B"),
                )
            )

        fn = par_sync
    serve = handler(client, [fn])
    discovery = json(call(serve, fn.id))
    assert [(op["op"], op["id"], op["data"]) for op in discovery] == [
        ("StepPlanned", a, None),
        ("StepPlanned", b, None),
    ]
    targeted = json(call(serve, fn.id, step=a, disable_immediate_execution=True))
    assert [(op["op"], op["id"], op["data"]) for op in targeted] == [("StepRun", a, "A")]
    other = json(
        call(serve, fn.id, step=b, steps={a: {"data": "A"}}, disable_immediate_execution=True)
    )
    assert [(op["op"], op["data"]) for op in other] == [("StepRun", "B")]
    final = call(serve, fn.id, steps={a: {"data": "A"}, b: {"data": "B"}})
    assert (final.status, json(final)) == (200, ["A", "B"])
    # A target that no branch holds cannot complete the group.
    lost = call(serve, fn.id, step="deadbeef")
    assert lost.status == 500
    assert json(lost)["code"] == "step_unexpected"


def test_race_mode_marks_planned_steps() -> None:
    @client.create_function(fn_id="race", trigger=trigger)
    async def race(ctx: inngest.Context) -> tuple[str, ...]:
        return await ctx.group.parallel(
            (
                lambda: ctx.step.run("step-a", lambda: "A"),
                lambda: ctx.step.run("step-b", lambda: "B"),
            ),
            parallel_mode=inngest.ParallelMode.RACE,
        )

    ops = json(call(handler(client, [race]), race.id))
    assert [op["opts"] for op in ops] == [{"parallelMode": "race"}] * 2


def test_step_error_then_failed_then_step_error_raised_on_replay(kind: str) -> None:
    def boom() -> None:
        raise ValueError("kaboom")

    if kind == "async":

        @client.create_function(fn_id="err", trigger=trigger)
        async def err(ctx: inngest.Context) -> str:
            try:
                await ctx.step.run("my-step", boom)
            except inngest.StepError as exc:
                return f"recovered from {exc.name}: {exc.message}"
            return "unreachable"

        fn = err
    else:

        @client.create_function(fn_id="err", trigger=trigger)
        def err_sync(ctx: inngest.ContextSync) -> str:
            try:
                ctx.step.run("my-step", boom)
            except inngest.StepError as exc:
                return f"recovered from {exc.name}: {exc.message}"
            return "unreachable"

        fn = err_sync
    serve = handler(client, [fn])
    (retry,) = json(call(serve, fn.id, attempt=0, max_attempts=4))
    assert retry["op"] == "StepError"
    assert "data" not in retry
    assert retry["error"]["name"] == "ValueError"
    assert retry["error"]["message"] == "kaboom"
    assert "Traceback" in retry["error"]["stack"]
    (last,) = json(call(serve, fn.id, attempt=3, max_attempts=4))
    assert last["op"] == "StepFailed"
    memo = {"8376129f22207d6e1acaa1c92de099dcb1ba24db": {"error": last["error"]}}
    final = call(serve, fn.id, steps=memo)
    assert (final.status, json(final)) == (200, "recovered from ValueError: kaboom")


def test_uncaught_step_error_fails_the_run_without_retry() -> None:
    @client.create_function(fn_id="uncaught", trigger=trigger)
    async def uncaught(ctx: inngest.Context) -> None:
        await ctx.step.run("call", lambda: None)

    memo = {hash_step_id("call"): {"error": {"name": "Error", "message": "invoked fn failed"}}}
    response = call(handler(client, [uncaught]), uncaught.id, steps=memo)
    assert response.status == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    assert json(response) == {
        "code": "step_errored",
        "message": "invoked fn failed",
        "name": "Error",
        "stack": None,
    }


def test_function_errors_map_to_retry_headers(kind: str) -> None:
    at = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    errors: dict[str, Exception] = {
        "plain": RuntimeError("try again"),
        "final": inngest.NonRetriableError("do not retry me"),
        "later": inngest.RetryAfterError("later", at),
    }
    functions = []
    for name, error in errors.items():
        if kind == "async":

            async def fail(ctx: inngest.Context, error: Exception = error) -> None:
                raise error

        else:

            def fail(ctx: inngest.ContextSync, error: Exception = error) -> None:  # type: ignore[misc]
                raise error

        functions.append(client.create_function(fn_id=name, trigger=trigger)(fail))
    serve = handler(client, functions)

    plain = call(serve, "my-app-plain")
    assert plain.status == 500
    assert "x-inngest-no-retry" not in plain.headers
    assert json(plain)["code"] == "unknown"
    assert json(plain)["message"] == "try again"

    final = call(serve, "my-app-final")
    assert final.headers["x-inngest-no-retry"] == "true"
    assert json(final)["code"] == "non_retriable_error"
    assert json(final)["name"] == "NonRetriableError"

    later = call(serve, "my-app-later")
    assert later.headers["retry-after"] == "2030-01-01T00:00:00.000Z"
    assert json(later)["code"] == "retry_after_error"


def test_non_retriable_error_in_a_step_fails_the_whole_run() -> None:
    def refuse() -> None:
        raise inngest.NonRetriableError("do not retry me")

    @client.create_function(fn_id="refuse", trigger=trigger)
    def refuse_fn(ctx: inngest.ContextSync) -> None:
        ctx.step.run("my-step", refuse)

    response = call(handler(client, [refuse_fn]), refuse_fn.id)
    assert response.status == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    assert json(response)["code"] == "non_retriable_error"


def test_nested_steps_are_a_non_retriable_error() -> None:
    @client.create_function(fn_id="nested", trigger=trigger)
    async def nested(ctx: inngest.Context) -> None:
        async def outer() -> None:
            await ctx.step.run("inner", lambda: 1)

        await ctx.step.run("outer", outer)

    response = call(handler(client, [nested]), nested.id)
    assert response.status == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    assert json(response)["code"] == "step_nested"
    assert '"inner" was called inside step "outer"' in json(response)["message"]


def test_swallowed_interrupt_still_reports_the_step() -> None:
    @client.create_function(fn_id="swallow", trigger=trigger)
    def swallow(ctx: inngest.ContextSync) -> str:
        try:  # noqa: SIM105 - a bare swallow is the mistake under test
            ctx.step.run("my-step", lambda: 1)
        except BaseException:
            pass
        return "went on"

    response = call(handler(client, [swallow]), swallow.id)
    assert response.status == 206
    assert [op["op"] for op in json(response)] == ["StepRun"]


def test_unserializable_output_names_its_source() -> None:
    @client.create_function(fn_id="bad-step", trigger=trigger)
    async def bad_step(ctx: inngest.Context) -> None:
        await ctx.step.run("my-step", lambda: object())

    @client.create_function(fn_id="bad-return", trigger=trigger)
    async def bad_return(ctx: inngest.Context) -> object:
        return object()

    serve = handler(client, [bad_step, bad_return])
    for fn, source in ((bad_step, 'step "my-step"'), (bad_return, 'function "my-app-bad-return"')):
        response = call(serve, fn.id)
        assert response.status == 500
        assert response.headers["x-inngest-no-retry"] == "true"
        body = json(response)
        assert body["code"] == "output_unserializable"
        assert source in body["message"]


def test_sleep_wait_and_invoke_ops() -> None:
    @client.create_function(fn_id="ops", trigger=trigger)
    async def ops(ctx: inngest.Context) -> Any:
        await ctx.step.sleep_until("nap", dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
        got = await ctx.step.wait_for_event(
            "wait",
            event="app/resume",
            if_exp="async.data.id == event.data.id",
            timeout=dt.timedelta(minutes=10),
        )
        out = await ctx.step.invoke_by_id(
            "call", function_id="other-fn", data={"x": 1}, timeout=60_000
        )
        return [got.data if got else None, out]

    serve = handler(client, [ops])
    (sleep,) = json(call(serve, ops.id))
    assert (sleep["op"], sleep["name"], sleep["id"]) == (
        "Sleep",
        "2030-01-02T03:04:05.000Z",
        "c2640f79b4ed481b838ce4ad75330aa3f825d4d9",
    )
    memo: dict[str, Any] = {sleep["id"]: None}
    (wait,) = json(call(serve, ops.id, steps=dict(memo)))
    assert wait["op"] == "WaitForEvent"
    assert wait["name"] == "app/resume"
    assert wait["opts"]["if"] == "async.data.id == event.data.id"
    assert wait["opts"]["timeout"] == "10m"
    memo[wait["id"]] = {"name": "app/resume", "data": {"id": 1}, "id": "e2", "ts": 1, "user": {}}
    (invoke,) = json(call(serve, ops.id, steps=dict(memo)))
    assert invoke["op"] == "InvokeFunction"
    assert invoke["opts"] == {
        "function_id": "my-app-other-fn",
        "payload": {"data": {"x": 1}, "v": None},
        "timeout": "1m",
    }
    memo[invoke["id"]] = {"data": {"child": "ok"}}
    final = call(serve, ops.id, steps=memo)
    assert (final.status, json(final)) == (200, [{"id": 1}, {"child": "ok"}])
    memo[wait["id"]] = None
    assert json(call(serve, ops.id, steps=memo)) == [None, {"child": "ok"}]


def test_naive_sleep_until_is_a_clear_error() -> None:
    @client.create_function(fn_id="naive", trigger=trigger)
    def naive(ctx: inngest.ContextSync) -> None:
        ctx.step.sleep_until("nap", dt.datetime(2030, 1, 1))

    body = json(call(handler(client, [naive]), naive.id))
    assert body["name"] == "ValueError"
    assert "naive datetime" in body["message"]


def test_logger_is_silent_during_replay(caplog: pytest.LogCaptureFixture) -> None:
    @client.create_function(fn_id="logs", trigger=trigger)
    async def logs(ctx: inngest.Context) -> None:
        ctx.logger.info("before step")
        await ctx.step.run("my-step", lambda: 1)
        ctx.logger.info("after step")

    serve = handler(client, [logs])
    with caplog.at_level("INFO", logger="inngest_asgi"):
        call(serve, logs.id)
        call(serve, logs.id, steps={hash_step_id("my-step"): {"data": 1}})
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("before step") == 1
    assert messages.count("after step") == 1
