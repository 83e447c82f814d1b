"""The body limit is enforced while the body streams in: a request over ``max_body_size`` is
answered 413 before it is read in full, under ASGI (counted in ``receive()`` calls and bytes)
and WSGI (counted in bytes read from ``wsgi.input``), with and without ``content-length``.
"""

from __future__ import annotations

import io
import math
from typing import Any

import anyio
import msgspec
import pytest

from inngest_asgi import Inngest, InngestASGI, InngestWSGI
from inngest_asgi._handler import DEFAULT_MAX_BODY_SIZE

from .protocol import call_body
from .test_hostile import APP_ID, FN_IDS, SPY, check_response, spy_functions

LIMIT = 10_000
CHUNK = 1_000
WSGI_READ_CHUNK = 64 * 1024  # _wsgi._READ_CHUNK: how much one read() may ask for


def client() -> Inngest:
    return Inngest(app_id=APP_ID, is_production=False, api_base_url="http://127.0.0.1:9")


def valid_body(size: int) -> bytes:
    """An execution body of exactly ``size`` bytes (padded inside the event data)."""
    base = msgspec.json.encode(call_body(event={"name": "app/x", "data": {"pad": ""}}))
    assert size >= len(base)
    return base.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(base)) + b'"', 1)


class Stream:
    """An ASGI ``receive`` feeding ``body`` in ``CHUNK``-byte messages, counting what the app
    took before it started its response."""

    def __init__(self, body: bytes, chunk: int = CHUNK) -> None:
        self.chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
        self.calls = 0
        self.bytes = 0
        self.at_response: tuple[int, int] | None = None
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.calls >= len(self.chunks):
            await anyio.sleep_forever()
        chunk = self.chunks[self.calls]
        self.calls += 1
        self.bytes += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self.calls < len(self.chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.at_response = (self.calls, self.bytes)
        self.sent.append(message)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        start, *rest = self.sent
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, b"".join(m.get("body", b"") for m in rest)


def asgi(app: InngestASGI, body: bytes, content_length: str | None) -> Stream:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/inngest",
        "raw_path": b"/api/inngest",
        "query_string": f"fnId={FN_IDS[0]}".encode(),
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
    }
    stream = Stream(body)

    async def run() -> None:
        with anyio.fail_after(10):
            await app(scope, stream.receive, stream.send)  # type: ignore[arg-type]

    anyio.run(run)
    return stream


@pytest.fixture(scope="module")
def asgi_app() -> InngestASGI:
    c = client()
    return InngestASGI(c, spy_functions(c), max_body_size=LIMIT)


@pytest.fixture(scope="module")
def wsgi_app() -> InngestWSGI:
    c = client()
    return InngestWSGI(c, spy_functions(c), max_body_size=LIMIT)


def assert_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413
    decoded = check_response(status, headers, body, SPY.take())
    assert decoded["code"] == "payload_too_large"
    assert str(LIMIT) in decoded["message"]


def test_default_limit_is_set() -> None:
    assert DEFAULT_MAX_BODY_SIZE == 32 * 1024 * 1024
    c = client()
    assert InngestASGI(c, []).max_body_size == DEFAULT_MAX_BODY_SIZE
    assert InngestWSGI(c, []).max_body_size == DEFAULT_MAX_BODY_SIZE


# --- ASGI ------------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [LIMIT + 1, 10 * LIMIT, 1000 * LIMIT])
def test_asgi_declared_length_over_the_limit_reads_nothing(
    asgi_app: InngestASGI, total: int
) -> None:
    stream = asgi(asgi_app, b"x" * total, str(total))
    assert_413(*stream.response())
    assert stream.at_response == (0, 0)


@pytest.mark.parametrize("total", [LIMIT + 1, 10 * LIMIT, 1000 * LIMIT])
@pytest.mark.parametrize("declared", [None, "0", "5", "garbage", "-1", "\u00b2", "\u00b9\u00b2"])
def test_asgi_streamed_body_stops_at_the_limit(
    asgi_app: InngestASGI, total: int, declared: str | None
) -> None:
    """No (or a lying) content-length: counting stops at the first chunk past the limit."""
    stream = asgi(asgi_app, b"x" * total, declared)
    assert_413(*stream.response())
    expected_calls = math.ceil((LIMIT + 1) / CHUNK)
    assert stream.at_response == (expected_calls, min(total, expected_calls * CHUNK))
    assert stream.at_response[1] <= LIMIT + CHUNK
    assert stream.calls == expected_calls  # and nothing more was read after the 413


@pytest.mark.parametrize("declared", [True, False])
def test_asgi_body_at_the_limit_is_served(asgi_app: InngestASGI, declared: bool) -> None:
    body = valid_body(LIMIT)
    stream = asgi(asgi_app, body, str(LIMIT) if declared else None)
    status, headers, response = stream.response()
    ran = SPY.take()
    check_response(status, headers, response, ran)
    assert status == 200
    assert ran == ["plain"]
    assert stream.bytes == LIMIT


# --- WSGI ------------------------------------------------------------------------------------


class CountingInput(io.BytesIO):
    """``wsgi.input`` that counts the bytes handed out."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.consumed = 0
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.reads += 1
        self.consumed += len(data)
        return data


def wsgi(
    app: InngestWSGI, body: bytes, content_length: str | None, *, terminated: bool = True
) -> tuple[tuple[int, dict[str, str], bytes], CountingInput]:
    stream = CountingInput(body)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/inngest",
        "QUERY_STRING": f"fnId={FN_IDS[0]}",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.input_terminated": terminated,
    }
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.append((status, headers))
        return lambda data: None

    response = b"".join(app(environ, start_response))
    status, headers = captured[0]
    consumed_at_response = stream.consumed
    return (int(status.split()[0]), dict(headers), response), _freeze(stream, consumed_at_response)


def _freeze(stream: CountingInput, consumed: int) -> CountingInput:
    stream.consumed = consumed
    return stream


@pytest.mark.parametrize("total", [LIMIT + 1, 1000 * LIMIT])
def test_wsgi_declared_length_over_the_limit_reads_nothing(
    wsgi_app: InngestWSGI, total: int
) -> None:
    response, stream = wsgi(wsgi_app, b"x" * total, str(total))
    assert_413(*response)
    assert stream.consumed == 0


@pytest.mark.parametrize("total", [LIMIT + 1, 1000 * LIMIT])
def test_wsgi_terminated_stream_stops_at_the_limit(wsgi_app: InngestWSGI, total: int) -> None:
    """No content-length, ``wsgi.input_terminated`` (chunked upload): reads stop one read past
    the limit."""
    response, stream = wsgi(wsgi_app, b"x" * total, None)
    assert_413(*response)
    assert stream.consumed <= LIMIT + WSGI_READ_CHUNK
    assert stream.consumed < total or total <= WSGI_READ_CHUNK


def test_wsgi_no_length_and_no_terminated_stream_reads_nothing(wsgi_app: InngestWSGI) -> None:
    """PEP 3333: without CONTENT_LENGTH the body is empty unless the server terminates the
    stream; the app does not read (and cannot hang on) an unbounded input."""
    response, stream = wsgi(wsgi_app, b"x" * (1000 * LIMIT), None, terminated=False)
    status, headers, body = response
    assert stream.consumed == 0
    decoded = check_response(status, headers, body, SPY.take())
    assert status == 400
    assert decoded["code"] == "body_invalid"


@pytest.mark.parametrize("declared", [True, False])
def test_wsgi_body_at_the_limit_is_served(wsgi_app: InngestWSGI, declared: bool) -> None:
    body = valid_body(LIMIT)
    response, stream = wsgi(wsgi_app, body, str(LIMIT) if declared else None)
    ran = SPY.take()
    check_response(*response, ran)
    assert response[0] == 200
    assert ran == ["plain"]
    assert stream.consumed == LIMIT


@pytest.mark.parametrize("declared", ["\u00b2", "\u00b9\u00b2", "1e3", " 5"])
def test_wsgi_non_ascii_digits_are_not_a_length(wsgi_app: InngestWSGI, declared: str) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` fails: such a length is no length."""
    response, stream = wsgi(wsgi_app, b"x" * (1000 * LIMIT), declared)
    assert_413(*response)
    assert stream.consumed <= LIMIT + WSGI_READ_CHUNK


def test_wsgi_short_declared_length_reads_only_that_much(wsgi_app: InngestWSGI) -> None:
    """A content-length under the real size: the app reads exactly what was declared."""
    response, stream = wsgi(wsgi_app, b"x" * (1000 * LIMIT), "100")
    assert stream.consumed == 100
    status, headers, body = response
    check_response(status, headers, body, SPY.take())
    assert status == 400
