"""Streaming (PROTOCOL.md §10.8): 201 at once, keepalive bytes while the function runs, then the
real response in an envelope, over real sockets under uvicorn (ASGI) and gunicorn (WSGI)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from .apps import streaming
from .conftest import HOST, ROOT, free_port, gunicorn_server, uvicorn_server, wait_for_port
from .protocol import SIGNING_KEY, call_body, sign_body, step_id, verify_response_signature

#: ASGI servers started from their command line, serving ``tests.apps.streaming:asgi``.
COMMANDS = {
    "hypercorn": ["-m", "hypercorn", "--bind", "{host}:{port}", "tests.apps.streaming:asgi"],
    "gunicorn-uvicorn": [
        *("-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "--workers", "1"),
        *("--bind", "{host}:{port}", "tests.apps.streaming:asgi"),
    ],
}


@contextlib.contextmanager
def _command_server(name: str) -> Iterator[str]:
    port = free_port()
    args = [a.format(host=HOST, port=port) for a in COMMANDS[name]]
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, alive=lambda: proc.poll() is None)
        yield f"http://{HOST}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(
    scope="module", params=["uvicorn", "hypercorn", "gunicorn-uvicorn", "gunicorn-sync"]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "uvicorn":
        with uvicorn_server(streaming.asgi_app()) as url:
            yield url
    elif request.param == "gunicorn-sync":
        log = tmp_path_factory.mktemp("gunicorn") / "log"
        with gunicorn_server("tests.apps.streaming:wsgi_app()", env={}, log=log) as url:
            yield url
    else:
        with _command_server(request.param) as url:
            yield url


def _stream(
    url: str, fn: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, list[tuple[float, bytes]]]:
    """POST and read the body chunk by chunk, noting when each arrived."""
    chunks: list[tuple[float, bytes]] = []
    start = time.monotonic()
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        http.stream(
            "POST",
            "/api/inngest",
            params={"fnId": f"streaming-{fn}", "stepId": "step"},
            content=msgspec.json.encode(body),
            headers=headers or {},
        ) as response,
    ):
        for chunk in response.iter_raw():
            chunks.append((time.monotonic() - start, chunk))
    return response, chunks


@pytest.mark.parametrize("fn", ["slow-async", "slow-sync"])
def test_slow_function_streams_keepalives_then_the_envelope(server: str, fn: str) -> None:
    response, chunks = _stream(server, fn, call_body())
    assert response.status_code == 201
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    body = b"".join(chunk for _, chunk in chunks)
    padding = len(body) - len(body.lstrip(b" "))
    # The step takes several keepalive intervals: several spaces went out before the answer...
    assert padding >= 2
    # ...and they arrived while the function ran, ahead of the answer.
    first_space = next(at for at, chunk in chunks if chunk.startswith(b" "))
    assert first_space < chunks[-1][0]
    envelope = msgspec.json.decode(body.lstrip(b" "))
    assert envelope["status"] == 206
    assert envelope["headers"]["x-inngest-sdk"].startswith("inngest-asgi:v")
    (op,) = msgspec.json.decode(envelope["body"])
    assert (op["op"], op["id"], op["data"]) == ("StepRun", step_id("nap"), "slept")

    _, chunks = _stream(server, fn, call_body(steps={step_id("nap"): {"data": "slept"}}))
    final = msgspec.json.decode(b"".join(c for _, c in chunks).lstrip(b" "))
    assert (final["status"], final["body"]) == (200, '"done"')


def test_refusals_are_not_streamed(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        unknown = http.post("/api/inngest", params={"fnId": "nope"}, content=b"{}")
        assert unknown.status_code == 404
        probe = http.post("/api/inngest", params={"probe": "trust"})
        assert (probe.status_code, probe.content) == (200, b"null")


def test_cloud_mode_streams_only_signed_requests() -> None:
    with uvicorn_server(streaming.asgi_app(cloud=True)) as url:
        body = call_body(steps={step_id("nap"): {"data": "slept"}})
        unsigned, _ = _stream(url, "slow-async", body)
        assert unsigned.status_code == 401
        signed_headers = {"x-inngest-signature": sign_body(msgspec.json.encode(body), SIGNING_KEY)}
        signed, chunks = _stream(url, "slow-async", body, signed_headers)
        assert signed.status_code == 201
        envelope = msgspec.json.decode(b"".join(c for _, c in chunks).lstrip(b" "))
        assert envelope["status"] == 200
        # The inner response is signed over the inner body.
        verify_response_signature(envelope["headers"], envelope["body"].encode(), SIGNING_KEY)
