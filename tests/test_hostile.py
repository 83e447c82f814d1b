"""Hostile input: generated requests against the sans-IO core and through both shells.

Every request, however malformed, must get a well-formed answer: a JSON body, the SDK headers,
a 4xx naming the problem (``code`` and ``message``) where the request is at fault, no
traceback text, no unhandled exception, and no user code run unless the request validly calls
a function. The ASGI shell is called with hand-built scope/receive/send, the WSGI shell with a
hand-built environ, so bytes no HTTP client would send reach them too.

Example counts scale with ``HOSTILE_SCALE`` (default 1; e.g. ``HOSTILE_SCALE=20`` for a long
run). See docs/security-and-reliability.md for the figures measured.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inngest_asgi import Context, ContextSync, Inngest, InngestASGI, InngestWSGI, TriggerEvent
from inngest_asgi._handler import ServeHandler
from inngest_asgi._invoke import ThreadPoolInvoker
from inngest_asgi._messages import Request, Response

from .conftest import FakeInngestAPI
from .protocol import call_body, step_id

SCALE = max(1, int(os.environ.get("HOSTILE_SCALE", "1")))
APP_ID = "hostile"
BASE = "http://testserver/api/inngest"
NOW = 1_700_000_000

#: 500s that are not the request's fault: an upstream API failed (the server retries).
UPSTREAM_CODES = {"registration_failed", "api_fetch_failed"}
#: 500s a valid call may end in after replaying user code (PROTOCOL.md §10.2, §10.5).
RUN_CODES = {"step_unexpected", "step_errored"}
TRACEBACK_MARKERS = (b"Traceback (most recent call last)", b'File "', b"line ")


def fuzz_settings(examples: int) -> Any:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- spy functions ---------------------------------------------------------------------------


class Spy:
    """Records every run of user code (thread-safe: sync functions run in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[str] = []

    def record(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def take(self) -> list[str]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


SPY = Spy()
STEP_ID = step_id("s")


def spy_functions(client: Inngest) -> list[Any]:
    @client.create_function(fn_id="plain", trigger=TriggerEvent(event="app/plain"))
    async def plain(ctx: Context) -> str:
        SPY.record("plain")
        return "ok"

    @client.create_function(fn_id="stepped", trigger=TriggerEvent(event="app/stepped"))
    def stepped(ctx: ContextSync) -> Any:
        SPY.record("stepped")
        try:
            value = ctx.step.run("s", lambda: 1)
        except Exception:  # a memoized error (StepError): a defined, valid outcome
            return "recovered"
        return {"s": value}

    return [plain, stepped]


FN_IDS = [f"{APP_ID}-plain", f"{APP_ID}-stepped"]


def dev_client(api_url: str) -> Inngest:
    return Inngest(
        app_id=APP_ID, is_production=False, api_base_url=api_url, event_api_base_url=api_url
    )


@pytest.fixture(scope="module")
def api_url(fake_api_server: FakeInngestAPI) -> str:
    return fake_api_server.url


@pytest.fixture(scope="module")
def dev_handler(api_url: str) -> ServeHandler:
    client = dev_client(api_url)
    return ServeHandler(client, spy_functions(client), framework="asgi", clock=lambda: NOW)


@pytest.fixture(scope="module")
def asgi_app(api_url: str) -> InngestASGI:
    client = dev_client(api_url)
    return InngestASGI(client, spy_functions(client), max_body_size=512 * 1024)


@pytest.fixture(scope="module")
def wsgi_app(api_url: str) -> InngestWSGI:
    client = dev_client(api_url)
    return InngestWSGI(client, spy_functions(client), max_body_size=512 * 1024)


@pytest.fixture(autouse=True)
def _clean_spy() -> Iterator[None]:
    SPY.take()
    yield
    SPY.take()


# --- the invariant every response must hold --------------------------------------------------


def check_response(
    status: int, headers: dict[str, str], body: bytes, ran: list[str], *, stream: bool = False
) -> Any:
    """Assert the response is well-formed for a request that ran ``ran`` user functions;
    return the decoded body."""
    assert 200 <= status < 600, status
    assert headers.get("content-type") == "application/json", headers
    assert headers.get("x-inngest-sdk", "").startswith("inngest-asgi:v"), headers
    for marker in TRACEBACK_MARKERS[:2]:
        assert marker not in body, body[:500]
    decoded = msgspec.json.decode(body)
    if status >= 400:
        assert isinstance(decoded, dict), decoded
        assert isinstance(decoded.get("code"), str), decoded
        assert decoded["code"], decoded
        assert isinstance(decoded.get("message"), str), decoded
    if ran:
        # User code ran: only a valid call to a known function gets this far.
        assert len(ran) == 1, ran
        assert status in (200, 206) or decoded.get("code") in RUN_CODES, (status, decoded)
    elif status >= 500:
        assert decoded["code"] in UPSTREAM_CODES, (status, decoded)
    else:
        assert status < 500, (status, decoded)
    return decoded


def handle(serve: ServeHandler, request: Request) -> Response:
    return anyio.run(serve.handle, request, ThreadPoolInvoker())


# --- strategies ------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 10, max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

methods = st.sampled_from(
    ["GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW"]
) | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)

fn_ids = st.sampled_from([*FN_IDS, f"{APP_ID}-plain-failure", "", "nope", f"{APP_ID}-"]) | st.text(
    max_size=30
)
step_ids = st.sampled_from(["step", STEP_ID, "", "deadbeef"]) | st.text(max_size=40)
query_values = st.text(max_size=30)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """fnId / stepId / probe / deployId in any combination, repeated, plus garbage."""
    from urllib.parse import quote

    parts: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(["fnId", "stepId", "probe", "deployId", "x", ""]))
        value = draw(
            {"fnId": fn_ids, "stepId": step_ids, "probe": st.sampled_from(["trust", "", "x"])}.get(
                name, query_values
            )
        )
        parts.append(f"{quote(name)}={quote(value)}")
    if draw(st.booleans()):
        parts.append(draw(st.text(max_size=30)).replace("#", ""))
    return "&".join(parts)


def _mutate(data: Any, path: list[Any], action: str, value: Any) -> Any:
    """Delete or replace the value at ``path`` (as far as it exists) in a JSON document."""
    if not path or not isinstance(data, (dict, list)) or not data:
        return value if action == "replace" else data
    key = path[0]
    if isinstance(data, dict):
        key = key if key in data else sorted(data)[hash(str(key)) % len(data)]
    else:
        key = key % len(data) if isinstance(key, int) else 0
    if len(path) == 1 and action == "delete":
        del data[key]
        return data
    data[key] = _mutate(data[key], path[1:], action, value)
    return data


PATH_KEYS = st.sampled_from(
    ["event", "events", "steps", "ctx", "use_api", "version", "run_id", "attempt",
     "max_attempts", "disable_immediate_execution", "stack", "name", "data", "ts", "id",
     "current", 0, 1, STEP_ID]
)  # fmt: skip


@st.composite
def call_bodies(draw: st.DrawFn) -> bytes:
    """Valid execution bodies with wrong types, missing fields, odd memos or truncation."""
    steps = draw(
        st.sampled_from(
            [
                {},
                {STEP_ID: {"data": 1}},
                {STEP_ID: None},
                {STEP_ID: {"error": {"name": "E", "message": "m"}}},
                {STEP_ID: {"error": {"name": 1, "message": [1], "stack": {}}}},
                {STEP_ID: {"data": 1, "error": "x"}},
                {"deadbeef": {"data": 1}},
            ]
        )
    )
    body = call_body(
        steps=steps,
        attempt=draw(st.integers(-(2**70), 2**70) | st.just(0)),
        disable_immediate_execution=draw(st.booleans()),
        max_attempts=draw(st.none() | st.integers(-5, 2**64)),
    )
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.lists(PATH_KEYS, min_size=1, max_size=4))
        action = draw(st.sampled_from(["delete", "replace"]))
        body = _mutate(body, path, action, draw(json_values))
    raw = msgspec.json.encode(body)
    if draw(st.integers(0, 4)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def nested(depth: int, *, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


invalid_utf8 = st.builds(
    lambda a, b, c: a + b + c,
    st.binary(max_size=20),
    st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]),
    st.binary(max_size=20),
)
raw_bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    invalid_utf8,
    invalid_utf8.map(lambda b: b'{"ctx":{"run_id":"' + b + b'"},"event":{"name":"x"}}'),
    st.builds(msgspec.json.encode, json_values),
    call_bodies(),
    st.sampled_from(
        [
            nested(2000),
            nested(3000, opener=b'{"a":', closer=b"}"),
            b"[" * 5000,
            b"1" * 5000,
            b"-" + b"9" * 400,
            b'{"ctx":{"run_id":"r","attempt":1e999},"event":{"name":"x"}}',
            b'{"ctx":{"run_id":"r"},"event":{"name":"x","ts":123456789012345678901234567890}}',
            b'{"url":"https://example.com/api/inngest"}',
            b'{"url":' + b"[" * 3000 + b"]" * 3000 + b"}",
            b"null",
            b'"just a string"',
        ]
    ),
)
bodies = raw_bodies
execution_bodies = call_bodies()

header_names = st.sampled_from(
    [
        "x-inngest-signature",
        "x-inngest-server-kind",
        "x-inngest-sync-kind",
        "content-type",
        "content-length",
        "host",
        "x-inngest-req-version",
        "x-run-id",
    ]
) | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20).map(
    str.lower
)
header_values = st.one_of(
    st.sampled_from(["dev", "cloud", "in_band", "out_of_band", "t=1&s=00", "", "0", "-1"]),
    st.text(st.characters(max_codepoint=255), max_size=40),
    st.integers(1000, 70_000).map(lambda n: "v" * n),
)
core_headers = st.dictionaries(
    header_names.filter(lambda n: n != "host"), header_values, max_size=6
)


def core_request(method: str, query: str, headers: dict[str, str], body: bytes) -> Request:
    return Request(method, BASE + (f"?{query}" if query else ""), headers, body)


# --- the sans-IO core ------------------------------------------------------------------------


@fuzz_settings(400)
@given(method=methods, query=query_strings(), headers=core_headers, body=bodies)
def test_core_answers_every_request(
    dev_handler: ServeHandler, method: str, query: str, headers: dict[str, str], body: bytes
) -> None:
    response = handle(dev_handler, core_request(method, query, headers, body))
    check_response(response.status, response.headers, response.body, SPY.take())


@fuzz_settings(300)
@given(fn_id=st.sampled_from(FN_IDS), step=step_ids, body=execution_bodies)
def test_core_execution_bodies(
    dev_handler: ServeHandler, fn_id: str, step: str, body: bytes
) -> None:
    """Known functions, hostile bodies: user code runs only when the body decodes."""
    from urllib.parse import urlencode

    query = urlencode({"fnId": fn_id, "stepId": step})
    response = handle(dev_handler, core_request("POST", query, {}, body))
    ran = SPY.take()
    decoded = check_response(response.status, response.headers, response.body, ran)
    if not ran:
        assert response.status >= 400, decoded


@fuzz_settings(150)
@given(fn_id=fn_ids.filter(lambda f: f not in FN_IDS), body=st.sampled_from([b"", b"{}"]) | bodies)
def test_unknown_functions_run_nothing(dev_handler: ServeHandler, fn_id: str, body: bytes) -> None:
    from urllib.parse import urlencode

    response = handle(dev_handler, core_request("POST", urlencode({"fnId": fn_id}), {}, body))
    check_response(response.status, response.headers, response.body, SPY.take())
    assert response.status in (400, 404), response.body


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
@pytest.mark.parametrize(
    "where",
    ["top", "steps", "event.data", "ctx", "url"],
)
def test_core_deeply_nested_json(dev_handler: ServeHandler, depth: int, where: str) -> None:
    deep = nested(depth)
    body = {
        "top": deep,
        "steps": b'{"ctx":{"run_id":"r"},"event":{"name":"x"},"steps":{"a":' + deep + b"}}",
        "event.data": b'{"ctx":{"run_id":"r"},"event":{"name":"x","data":{"a":' + deep + b"}}}",
        "ctx": b'{"ctx":{"run_id":"r","stack":' + deep + b'},"event":{"name":"x"}}',
        "url": b'{"url":' + deep + b"}",
    }[where]
    for method in ("POST", "PUT", "GET"):
        query = f"fnId={FN_IDS[0]}" if method == "POST" else ""
        response = handle(dev_handler, core_request(method, query, {}, body))
        check_response(response.status, response.headers, response.body, SPY.take())


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_core_survives_an_unparsable_url(dev_handler: ServeHandler, method: str) -> None:
    request = Request(method, f"http://[bad/api/inngest?fnId={FN_IDS[0]}", {}, b"{}")
    response = handle(dev_handler, request)
    check_response(response.status, response.headers, response.body, SPY.take())


# --- through the ASGI shell ------------------------------------------------------------------


def asgi_call(
    app: InngestASGI,
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i + 1 < len(chunks)}
        for i, chunk in enumerate(chunks or [b""])
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await anyio.sleep_forever()  # the shell must not read past the last chunk
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        with anyio.fail_after(30):
            await app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(run)
    assert sent, "the ASGI shell sent nothing"
    start, *body_messages = sent
    assert start["type"] == "http.response.start"
    assert body_messages, "no body message"
    assert all(m["type"] == "http.response.body" for m in body_messages)
    assert not body_messages[-1].get("more_body", False)
    response_headers: dict[str, str] = {}
    for name, value in start["headers"]:
        assert isinstance(name, bytes)
        assert isinstance(value, bytes)
        response_headers[name.decode("latin-1")] = value.decode("latin-1")
    return start["status"], response_headers, b"".join(m.get("body", b"") for m in body_messages)


raw_header_names = header_names.map(lambda s: s.encode()) | st.binary(min_size=1, max_size=20)
raw_header_values = header_values.map(lambda s: s.encode("latin-1")) | st.binary(max_size=60)
asgi_headers = st.lists(
    st.tuples(raw_header_names.filter(lambda n: n.lower() != b"host"), raw_header_values),
    max_size=8,
).flatmap(
    # duplicate some of them (first value wins in the shell)
    lambda hs: st.just(hs + hs[: len(hs) // 2])
)
paths = st.sampled_from(["/api/inngest", "/", "/api/inngest/", "//api//inngest"]) | st.text(
    max_size=30
).map(lambda s: "/" + s)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


@fuzz_settings(300)
@given(
    method=methods,
    path=paths,
    query=query_strings().map(lambda q: q.encode("utf-8")) | st.binary(max_size=60),
    headers=asgi_headers,
    data=st.data(),
    body=bodies,
    content_length=st.none()
    | st.sampled_from([b"0", b"-1", b"abc", b"99999999999", b"+5", b"\xb2", b"\xb9\xb2"]),
)
def test_asgi_shell_answers_every_request(
    asgi_app: InngestASGI,
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    data: st.DataObject,
    body: bytes,
    content_length: bytes | None,
) -> None:
    chunks = data.draw(chunked(body))
    if content_length is not None:
        headers = [*headers, (b"content-length", content_length)]
    status, response_headers, response_body = asgi_call(
        asgi_app, method, path, query, headers, chunks
    )
    check_response(status, response_headers, response_body, SPY.take())


@fuzz_settings(100)
@given(host=st.binary(max_size=40), body=bodies)
def test_asgi_shell_with_hostile_host_header(
    asgi_app: InngestASGI, host: bytes, body: bytes
) -> None:
    """The Host header becomes part of the request URL (and of the synced app URL)."""
    for method in ("POST", "PUT", "GET"):
        query = f"fnId={FN_IDS[0]}".encode()
        status, headers, response_body = asgi_call(
            asgi_app, method, "/api/inngest", query, [(b"host", host)], [body]
        )
        check_response(status, headers, response_body, SPY.take())


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_asgi_deeply_nested_json_in_small_chunks(asgi_app: InngestASGI, depth: int) -> None:
    body = b'{"ctx":{"run_id":"r"},"event":{"name":"x","data":{"a":' + nested(depth) + b"}}}"
    assert len(body) <= asgi_app.max_body_size
    chunks = [body[i : i + 997] for i in range(0, len(body), 997)]
    status, headers, response_body = asgi_call(
        asgi_app, "POST", "/api/inngest", f"fnId={FN_IDS[0]}".encode(), [], chunks
    )
    decoded = check_response(status, headers, response_body, SPY.take())
    assert decoded["code"] == "body_invalid"


# --- through the WSGI shell ------------------------------------------------------------------


def wsgi_call(app: InngestWSGI, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    captured: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        assert exc_info is None, "the shell reported an exception"
        captured.append((status, headers))
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert len(captured) == 1
    status_line, header_list = captured[0]
    code, _, phrase = status_line.partition(" ")
    assert code.isdigit()
    assert len(code) == 3
    assert phrase
    for name, value in header_list:
        # PEP 3333: native strings, latin-1 encodable, no control characters.
        name.encode("latin-1")
        value.encode("latin-1")
        assert "\n" not in value
        assert "\r" not in value
    return int(code), {k.lower(): v for k, v in header_list}, body


def wsgi_str(raw: bytes) -> str:
    return raw.decode("latin-1")  # PEP 3333 "bytes as str"


@fuzz_settings(300)
@given(
    method=methods,
    path=paths.map(lambda p: wsgi_str(p.encode("utf-8"))),
    query=query_strings(),
    headers=st.dictionaries(
        header_names.map(lambda n: "HTTP_" + n.upper().replace("-", "_")), header_values, max_size=6
    ),
    body=bodies,
    length=st.sampled_from(["exact", "none", "garbage", "short"]),
    terminated=st.booleans(),
)
def test_wsgi_shell_answers_every_request(
    wsgi_app: InngestWSGI,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    length: str,
    terminated: bool,
) -> None:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": terminated,
        **{k: v for k, v in headers.items() if k not in ("HTTP_HOST", "HTTP_CONTENT_LENGTH")},
    }
    environ["CONTENT_LENGTH"] = {
        "exact": str(len(body)),
        "none": "",
        "garbage": "12abc",
        "short": str(len(body) // 2),
    }[length]
    status, response_headers, response_body = wsgi_call(wsgi_app, environ)
    check_response(status, response_headers, response_body, SPY.take())


@fuzz_settings(100)
@given(host=st.binary(max_size=40), body=bodies)
def test_wsgi_shell_with_hostile_host_header(
    wsgi_app: InngestWSGI, host: bytes, body: bytes
) -> None:
    for method in ("POST", "PUT", "GET"):
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": "/api/inngest",
            "QUERY_STRING": f"fnId={FN_IDS[0]}",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "HTTP_HOST": wsgi_str(host),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
        }
        status, headers, response_body = wsgi_call(wsgi_app, environ)
        check_response(status, headers, response_body, SPY.take())


# --- invalid UTF-8 inside a JSON string (msgspec raises UnicodeDecodeError there) ----------

BAD_UTF8_BODIES = [
    b'{"ctx":{"run_id":"\x80"},"event":{"name":"x"}}',
    b'{"ctx":{"run_id":"r"},"event":{"name":"x","data":{"k\xff":1}}}',
]


@pytest.mark.parametrize("body", BAD_UTF8_BODIES)
def test_invalid_utf8_in_a_json_string(dev_handler: ServeHandler, body: bytes) -> None:
    response = handle(dev_handler, core_request("POST", f"fnId={FN_IDS[0]}", {}, body))
    check_response(response.status, response.headers, response.body, SPY.take())
    assert response.status == 400


@pytest.mark.parametrize("body", BAD_UTF8_BODIES)
def test_invalid_utf8_in_a_json_string_asgi(asgi_app: InngestASGI, body: bytes) -> None:
    query = f"fnId={FN_IDS[0]}".encode()
    status, headers, response_body = asgi_call(asgi_app, "POST", "/api/inngest", query, [], [body])
    check_response(status, headers, response_body, SPY.take())


@pytest.mark.parametrize("body", BAD_UTF8_BODIES)
def test_invalid_utf8_in_a_json_string_wsgi(wsgi_app: InngestWSGI, body: bytes) -> None:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/inngest",
        "QUERY_STRING": f"fnId={FN_IDS[0]}",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
    }
    status, headers, response_body = wsgi_call(wsgi_app, environ)
    check_response(status, headers, response_body, SPY.take())
