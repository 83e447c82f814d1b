"""Serving: introspection, execution and malformed requests through every serving path.

Each scenario is written once and runs through every transport of ``conftest.TRANSPORTS``:
Starlette and FastAPI mounts, a plain ASGI wrap, Flask through ``InngestWSGI``, a real uvicorn
server and real gunicorn sync workers (see ``tests/apps/serving.py`` for the app).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import msgspec
import pytest

from inngest_asgi import Inngest, InngestASGI
from tests.apps import serving

from .conftest import TestClient, Transport, uvicorn_server
from .protocol import call_body, drive, step_id

APP = serving.APP_ID


def fn(local_id: str) -> str:
    return f"{APP}-{local_id}"


def post(
    transport: Transport,
    local_id: str | None,
    body: Any,
    *,
    mount: str = "dev",
    step: str = "step",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    params = {"stepId": step}
    if local_id is not None:
        params["fnId"] = fn(local_id)
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return transport.http.post(
        transport.path(mount),
        params=params,
        content=content,
        headers={"content-type": "application/json", **(headers or {})},
    )


def assert_sdk_headers(response: httpx.Response | httpx.Headers, mode: str = "dev") -> None:
    headers = response if isinstance(response, httpx.Headers) else response.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    assert headers["x-inngest-req-version"] == "2"
    assert headers["x-inngest-expected-server-kind"] == mode


# --- GET: introspection ----------------------------------------------------------------------


def test_get_dev_introspection(transport: Transport) -> None:
    response = transport.http.get(transport.path())
    assert response.status_code == 200
    assert_sdk_headers(response)
    assert "x-inngest-signature" not in response.headers
    assert response.json() == {
        "schema_version": "2024-05-24",
        "function_count": len(serving.make_functions(serving.make_clients("http://x")["dev"])),
        "has_event_key": False,
        "has_signing_key": False,
        "has_signing_key_fallback": False,
        "mode": "dev",
    }


def test_get_dev_server_kind_mismatch(transport: Transport) -> None:
    response = transport.http.get(transport.path(), headers={"x-inngest-server-kind": "cloud"})
    assert response.status_code == 403
    assert_sdk_headers(response)
    assert response.json()["code"] == "server_kind_mismatch"


def test_get_dev_matching_server_kind(transport: Transport) -> None:
    response = transport.http.get(transport.path(), headers={"x-inngest-server-kind": "dev"})
    assert response.status_code == 200
    assert response.json()["mode"] == "dev"


# --- other paths reach the host app ----------------------------------------------------------


def test_other_paths_reach_the_host_app(transport: Transport) -> None:
    response = transport.http.get("/")
    assert response.status_code == 200
    assert response.text == "home"
    assert "x-inngest-sdk" not in response.headers


@pytest.mark.parametrize("name", ["asgi_wrap", "uvicorn"])
def test_lifespan_passes_through_the_wrap(name: str, request: pytest.FixtureRequest) -> None:
    """``InngestASGI(..., app=host)`` hands lifespan to the host app (both wraps deep)."""
    transport: Transport = request.getfixturevalue(f"{name}_transport")
    assert transport.lifespan == ["lifespan.startup"]


# --- POST: execution -------------------------------------------------------------------------


def test_one_step_function_runs_to_completion(transport: Transport) -> None:
    run = drive(transport.http, fn("hello"), path=transport.path())
    assert (run.status, run.output, run.requests) == (200, "done", 2)
    assert_sdk_headers(run.headers)
    assert [(op["op"], op["id"], op["data"]) for op in run.ops] == [
        ("StepRun", step_id("my-step"), {"ok": True})
    ]


def test_first_request_reports_the_step(transport: Transport) -> None:
    response = post(transport, "hello", call_body())
    assert response.status_code == 206
    assert response.json() == [
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


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_multi_step_function_replays_to_completion(transport: Transport, kind: str) -> None:
    event = {"name": "app/steps", "data": {"n": 5}, "id": "01HEVT", "ts": 1700000000000}
    run = drive(transport.http, fn(f"steps-{kind}"), path=transport.path(), event=event)
    assert run.status == 200
    assert run.output == {"a": 10, "b": 11, "counted": [0, 10, 20], "run_id": "01HRUN"}
    # one request per step, plus the final one
    assert run.requests == 6
    ids = [op["id"] for op in run.ops]
    assert ids == [
        step_id("load"),
        step_id("add"),
        step_id("count"),
        step_id("count:1"),
        step_id("count:2"),
    ]
    assert [op["userland"]["index"] for op in run.ops][2:] == [None, 1, 2]


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_parallel_group_plans_then_runs_each_branch(transport: Transport, kind: str) -> None:
    run = drive(transport.http, fn(f"parallel-{kind}"), path=transport.path())
    assert (run.status, run.output) == (200, ["A", "B"])
    a, b = step_id("step-a"), step_id("step-b")
    assert [(op["op"], op["id"]) for op in run.ops] == [
        ("StepPlanned", a),
        ("StepPlanned", b),
        ("StepRun", a),
        ("StepRun", b),
    ]
    assert [op["data"] for op in run.ops] == [None, None, "A", "B"]


def test_retriable_function_error_then_success(transport: Transport) -> None:
    first = post(transport, "flaky", call_body(attempt=0))
    assert first.status_code == 500
    assert "x-inngest-no-retry" not in first.headers
    assert_sdk_headers(first)
    error = first.json()
    assert (error["code"], error["name"], error["message"]) == (
        "unknown",
        "RuntimeError",
        "transient failure",
    )
    second = post(transport, "flaky", call_body(attempt=1))
    assert (second.status_code, second.json()) == (200, {"attempt": 1})


def test_retriable_step_error_is_retried_by_the_server(transport: Transport) -> None:
    run = drive(transport.http, fn("flaky-step"), path=transport.path())
    assert (run.status, run.output) == (200, "ok")
    assert [op["op"] for op in run.ops] == ["StepError", "StepError", "StepRun"]
    error = run.ops[0]["error"]
    assert (error["name"], error["message"]) == ("ConnectionError", "try again")


def test_non_retriable_error(transport: Transport) -> None:
    response = post(transport, "non-retriable", call_body())
    assert response.status_code == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    body = response.json()
    assert (body["code"], body["name"], body["message"]) == (
        "non_retriable_error",
        "NonRetriableError",
        "do not retry me",
    )


def test_retry_after_error(transport: Transport) -> None:
    response = post(transport, "retry-after", call_body())
    assert response.status_code == 500
    assert response.headers["retry-after"] == "2030-01-01T00:00:00.000Z"
    assert "x-inngest-no-retry" not in response.headers
    assert response.json()["code"] == "retry_after_error"


def test_step_failing_for_good_is_caught_and_the_run_goes_on(transport: Transport) -> None:
    run = drive(transport.http, fn("step-fails-caught"), path=transport.path(), max_attempts=2)
    assert run.status == 200
    assert run.output == {"caught": "kaboom", "recovered": "recovered from ValueError"}
    assert [op["op"] for op in run.ops] == ["StepError", "StepFailed", "StepRun"]
    assert run.ops[1]["error"]["name"] == "ValueError"


def test_step_failing_for_good_uncaught_fails_the_run(transport: Transport) -> None:
    run = drive(transport.http, fn("step-fails-uncaught"), path=transport.path(), max_attempts=2)
    assert run.status == 500
    assert run.headers["x-inngest-no-retry"] == "true"
    assert (run.output["code"], run.output["name"], run.output["message"]) == (
        "step_errored",
        "ValueError",
        "kaboom",
    )
    assert [op["op"] for op in run.ops] == ["StepError", "StepFailed"]


def test_trust_probe(transport: Transport) -> None:
    response = transport.http.post(transport.path(), params={"probe": "trust"})
    assert response.status_code == 200
    assert response.json() is None


# --- malformed requests ----------------------------------------------------------------------


def assert_refused(transport: Transport, response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert_sdk_headers(response)
    assert "Traceback" not in response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]


@pytest.fixture
def no_user_code(transport: Transport) -> Any:
    """Asserts, after the test, that the sentinel function never ran (when it can tell)."""
    before = serving.CALLS["sentinel"]
    yield
    if transport.in_process:
        assert serving.CALLS["sentinel"] == before, "a refused request ran user code"


BAD_BODIES = {
    "not-json": b"{not json",
    "empty": b"",
    "array": b"[1, 2]",
    "string": b'"hello"',
    "ctx-wrong-type": msgspec.json.encode({**call_body(), "ctx": 5}),
    "steps-wrong-type": msgspec.json.encode({**call_body(), "steps": [1]}),
    "attempt-wrong-type": msgspec.json.encode(
        {**call_body(), "ctx": {**call_body()["ctx"], "attempt": "zero"}}
    ),
    "no-ctx": msgspec.json.encode({k: v for k, v in call_body().items() if k != "ctx"}),
    "truncated": msgspec.json.encode(call_body())[:-5],
}


@pytest.mark.usefixtures("no_user_code")
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_body_is_refused(transport: Transport, body: bytes) -> None:
    response = post(transport, "sentinel", body)
    assert_refused(transport, response, 400, "body_invalid")
    assert response.headers["x-inngest-no-retry"] == "true"


@pytest.mark.usefixtures("no_user_code")
def test_missing_fn_id(transport: Transport) -> None:
    response = post(transport, None, call_body())
    assert_refused(transport, response, 400, "query_param_missing")


@pytest.mark.usefixtures("no_user_code")
def test_unknown_fn_id_is_retriable(transport: Transport) -> None:
    response = post(transport, "nope", call_body())
    assert_refused(transport, response, 404, "function_not_found")
    assert f"{APP}-nope" in response.json()["message"]
    # another replica may serve it during a rolling deploy: the server may retry
    assert "x-inngest-no-retry" not in response.headers


@pytest.mark.usefixtures("no_user_code")
def test_unsupported_probe(transport: Transport) -> None:
    response = transport.http.post(transport.path(), params={"probe": "other"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


@pytest.mark.usefixtures("no_user_code")
@pytest.mark.parametrize("method", ["DELETE", "PATCH", "OPTIONS"])
def test_unsupported_method(transport: Transport, method: str) -> None:
    response = transport.http.request(
        method, transport.path(), params={"fnId": fn("sentinel"), "stepId": "step"}
    )
    assert_refused(transport, response, 405, "method_not_allowed")


@pytest.mark.usefixtures("no_user_code")
def test_body_over_the_limit(transport: Transport) -> None:
    body = msgspec.json.encode({**call_body(), "pad": "x" * serving.SMALL_LIMIT})
    response = post(transport, "sentinel", body, mount="small")
    assert_refused(transport, response, 413, "payload_too_large")


def test_body_at_the_limit_is_served(transport: Transport) -> None:
    body = msgspec.json.encode(call_body())
    body = body[:-1] + b',"pad":"' + b"x" * (serving.SMALL_LIMIT - len(body) - 9) + b'"}'
    assert len(body) == serving.SMALL_LIMIT
    response = post(transport, "sentinel", body, mount="small")
    assert (response.status_code, response.json()) == (200, "ran")


@pytest.mark.usefixtures("no_user_code")
@pytest.mark.parametrize("name", ["uvicorn", "gunicorn"])
def test_chunked_body_over_the_limit(name: str, request: pytest.FixtureRequest) -> None:
    """No content-length: the shell must count the bytes as they arrive."""
    transport: Transport = request.getfixturevalue(f"{name}_transport")
    before = serving.CALLS["sentinel"]

    def chunks() -> Any:
        yield msgspec.json.encode(call_body())[:-1]
        for _ in range(8):
            yield b"," + b'"pad":"' + b"x" * 400 + b'"'
        yield b"}"

    response = transport.http.post(
        transport.path("small"),
        params={"fnId": fn("sentinel"), "stepId": "step"},
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_refused(transport, response, 413, "payload_too_large")
    assert serving.CALLS["sentinel"] == before


@pytest.mark.parametrize("name", ["uvicorn", "gunicorn"])
def test_chunked_body_under_the_limit_is_served(name: str, request: pytest.FixtureRequest) -> None:
    transport: Transport = request.getfixturevalue(f"{name}_transport")
    body = msgspec.json.encode(call_body())
    response = transport.http.post(
        transport.path("small"),
        params={"fnId": fn("sentinel"), "stepId": "step"},
        content=iter([body[:10], body[10:]]),
        headers={"content-type": "application/json"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert (response.status_code, response.json()) == (200, "ran")


# --- standalone and concurrent serving -------------------------------------------------------


def test_lifespan_shutdown_passes_through(fake_api_server: Any) -> None:
    app, other = serving.asgi_wrap(fake_api_server.url)
    with TestClient(app) as http:
        assert http.get("/").text == "home"
        assert other.lifespan == ["lifespan.startup"]
    assert other.lifespan == ["lifespan.startup", "lifespan.shutdown"]


def test_standalone_app_under_uvicorn() -> None:
    """``uvicorn module:app`` with a bare ``InngestASGI``: it answers lifespan itself and
    serves every path."""
    client = Inngest(app_id="standalone-app", is_production=False)
    fns = serving.make_functions(client)
    app = InngestASGI(client, fns)
    with uvicorn_server(app, lifespan="on") as url, httpx.Client(base_url=url) as http:
        assert http.get("/api/inngest").json()["function_count"] == len(fns)
        assert http.get("/anything").json()["mode"] == "dev"
        run = drive(http, "standalone-app-steps-sync", path="/x")
        assert (run.status, run.output["a"]) == (200, 2)


@pytest.mark.parametrize("name", ["uvicorn", "gunicorn"])
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_concurrent_runs(name: str, kind: str, request: pytest.FixtureRequest) -> None:
    """Several runs at once through a real server; each sees only its own memoized steps."""
    transport: Transport = request.getfixturevalue(f"{name}_transport")

    def one(n: int) -> Any:
        event = {"name": "app/steps", "data": {"n": n}, "id": f"E{n}", "ts": 1700000000000}
        return drive(transport.http, fn(f"steps-{kind}"), path=transport.path(), event=event)

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(one, range(12)))
    assert [(r.status, r.output["a"], r.output["b"]) for r in runs] == [
        (200, 2 * n, 2 * n + 1) for n in range(12)
    ]


@pytest.mark.usefixtures("no_user_code")
@pytest.mark.parametrize("shape", ["object", "array-in-field"])
def test_deeply_nested_body_is_refused(transport: Transport, shape: str) -> None:
    """JSON nested deeper than the decoder's recursion limit is malformed input, not a crash."""
    depth = 50_000
    if shape == "object":
        body = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        body = msgspec.json.encode(call_body())[:-1] + b',"pad":' + b"[" * depth + b"]" * depth
        body += b"}"
    response = post(transport, "sentinel", body)
    assert_refused(transport, response, 400, "body_invalid")
