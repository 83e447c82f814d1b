"""The executor against a hand-written ASGI app that answers as other SDKs may: ``opts.duration``
sleeps, ``opts.event`` waits, a legacy single-op 206, a streamed 201, unknown opcodes, and
non-retriable step errors. Also what the executor sends: JCS bodies, headers, targeting."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
import rfc8785

from inngest_asgi.executor import Executor, RunStatus, StepStatus, VirtualClock
from inngest_asgi.executor._registry import RegisterRequest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SDK_HEADERS = [(b"content-type", b"application/json"), (b"x-inngest-sdk", b"raw:v0.0.1")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def op(kind: str, step_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "op": kind,
        "id": step_id,
        "displayName": step_id,
        "name": step_id,
        "userland": {"id": step_id},
        **fields,
    }


class RawApp:
    """A tiny SDK written by hand: ``answer(fn, step, body)`` gives (status, body, headers)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], dict[str, Any], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = json.loads(raw) if raw else {}
        self.requests.append((query.get("fnId", ""), query.get("stepId", ""), headers, body, raw))
        status, payload, extra = self.answer(query.get("fnId", ""), query["stepId"], body)
        content = json.dumps(payload).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": SDK_HEADERS + extra}
        )
        await send({"type": "http.response.body", "body": content})

    def answer(self, fn: str, step: str, body: dict[str, Any]) -> tuple[int, Any, list[Any]]:
        steps = body["steps"]
        if fn == "sleep":
            if not steps:
                return 206, [op("Sleep", "nap", opts={"duration": "10m"})], []
            return 200, {"steps": steps}, []
        if fn == "wait":
            if not steps:
                wait = op("WaitForEvent", "w", opts={"event": "x/go", "timeout": "1h"})
                return 206, [wait], []
            return 200, steps["w"]["data"], []
        if fn == "legacy":
            if not steps:
                return 206, op("StepRun", "one", data=1), []  # a single object, not a list
            return 200, steps, []
        if fn == "stream":
            inner = json.dumps([op("StepRun", "s", data="streamed")]) if not steps else '"end"'
            wrapped = {"status": 206 if not steps else 200, "headers": {}, "body": inner}
            return 201, wrapped, []
        if fn == "unknown-op":
            if not steps:
                return 206, [op("Gateway", "g")], []
            return 200, steps, []
        if fn == "no-retry-step":
            if not steps:
                error = {"name": "ValueError", "message": "nope"}
                return 206, [op("StepError", "e", error=error)], [(b"x-inngest-no-retry", b"true")]
            return 200, steps, []
        if fn == "planned":
            if step == "step" and not steps:
                return 206, [op("StepPlanned", "p1"), op("StepPlanned", "p2")], []
            if step in ("p1", "p2"):
                return 206, [op("StepRun", step, data=step.upper())], []
            return 200, sorted(steps), []
        if fn == "empty":
            return 206, [], []
        raise AssertionError(fn)


async def start(app: RawApp, *names: str, retries: int = 0) -> Executor:
    ex = Executor(clock=VirtualClock())
    await ex.__aenter__()
    ex.mount("http://raw.test", app)
    functions = [
        {
            "id": name,
            "triggers": [{"event": f"raw/{name}"}],
            "steps": {
                "step": {
                    "runtime": {"url": f"http://raw.test/api?fnId={name}&stepId=step"},
                    "retries": {"attempts": retries},
                }
            },
        }
        for name in names
    ]
    body = json.dumps({"appName": "raw", "url": "http://raw.test/api", "functions": functions})
    ex.register(body.encode())
    return ex


async def test_sleep_reads_opts_duration_first() -> None:
    app = RawApp()
    ex = await start(app, "sleep")
    try:
        ex.send({"name": "raw/sleep"})
        await ex.advance(dt.timedelta(minutes=9))
        [run] = ex.runs
        assert run.status is RunStatus.RUNNING
        await ex.advance(dt.timedelta(minutes=2))
        assert run.output == {"steps": {"nap": None}}
    finally:
        await ex.__aexit__(None, None, None)


async def test_wait_reads_opts_event_and_memoizes_the_event_itself() -> None:
    app = RawApp()
    ex = await start(app, "wait")
    try:
        ex.send({"name": "raw/wait"})
        await ex.run_until_idle()
        ex.send({"name": "x/go", "data": {"k": 1}, "id": "e1", "ts": 5})
        await ex.run_until_idle()
        [run] = ex.runs
        assert run.output == {"k": 1}
        assert app.requests[-1][3]["steps"]["w"] == {
            "name": "x/go",
            "data": {"k": 1},
            "id": "e1",
            "ts": 5,
            "user": {},
        }
    finally:
        await ex.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("fn", "output"),
    [
        ("legacy", {"one": {"data": 1}}),
        ("stream", "end"),
        ("no-retry-step", {"e": {"error": {"name": "ValueError", "message": "nope"}}}),
    ],
)
async def test_response_variants(fn: str, output: Any) -> None:
    app = RawApp()
    ex = await start(app, fn, retries=3)
    try:
        ex.send({"name": f"raw/{fn}"})
        await ex.run_until_idle()
        [run] = ex.runs
        assert run.status is RunStatus.COMPLETED
        assert run.output == output
        assert run.requests == 2
    finally:
        await ex.__aexit__(None, None, None)


async def test_unknown_opcode_fails_the_step_not_the_run() -> None:
    app = RawApp()
    ex = await start(app, "unknown-op")
    try:
        ex.send({"name": "raw/unknown-op"})
        await ex.run_until_idle()
        [run] = ex.runs
        assert run.output["g"]["error"]["name"] == "UnsupportedOpcode"
        assert run.steps[0].status is StepStatus.FAILED
    finally:
        await ex.__aexit__(None, None, None)


async def test_empty_206_is_a_failed_attempt() -> None:
    app = RawApp()
    ex = await start(app, "empty", retries=1)
    try:
        ex.send({"name": "raw/empty"})
        await ex.advance(10)
        [run] = ex.runs
        assert run.status is RunStatus.FAILED
        assert run.requests == 2
    finally:
        await ex.__aexit__(None, None, None)


async def test_planned_steps_are_targeted_then_rediscovered() -> None:
    app = RawApp()
    ex = await start(app, "planned")
    try:
        ex.send({"name": "raw/planned", "data": {"b": 1, "a": 2}})
        await ex.run_until_idle()
        [run] = ex.runs
        assert run.output == ["p1", "p2"]
        seen = [
            (step, body["ctx"]["disable_immediate_execution"])
            for _, step, _, body, _ in app.requests
        ]
        assert seen[0] == ("step", False)
        assert sorted(seen[1:3]) == [("p1", True), ("p2", True)]
        assert seen[3] == ("step", False)  # cleared once the group settled
        for _, step, headers, body, raw in app.requests:
            assert raw == rfc8785.dumps(body)  # the body is canonical JSON
            assert headers["x-inngest-server-kind"] == "dev"
            assert headers["x-inngest-step-id"] == step
            assert "x-inngest-signature" not in headers
            assert body["ctx"]["run_id"] == run.id
            assert body["events"] == [body["event"]]
        last = app.requests[-1][3]
        assert last["ctx"]["stack"] == {"stack": last["ctx"]["stack"]["stack"], "current": 2}
        assert sorted(last["ctx"]["stack"]["stack"]) == ["p1", "p2"]
    finally:
        await ex.__aexit__(None, None, None)


async def test_register_parses_the_python_sdk_keys() -> None:
    app = RawApp()
    ex = await start(app)
    try:
        request = RegisterRequest(url="http://raw.test/api", appname="py-style")
        registered, modified = ex.register(request)
        assert registered.name == "py-style"
        assert modified
        assert ex.register(request)[1] is False
    finally:
        await ex.__aexit__(None, None, None)


def test_register_names_the_sdk_from_either_form() -> None:
    def ident(**fields: str) -> str | None:
        return RegisterRequest(url="http://raw.test/api", **fields).sdk_ident  # type: ignore[arg-type]

    assert ident(sdk="py:v0.5.19") == "py:v0.5.19"
    assert ident(sdk_language="py", sdk_version="0.5.19") == "py:v0.5.19"
    assert ident(sdk_language="py") == "py"
    assert ident() is None
