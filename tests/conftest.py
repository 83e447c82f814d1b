"""Shared fixtures: free ports, real servers on 127.0.0.1, a fake Inngest API, and the
transports (in-process and over sockets) that serve the app of ``tests/apps/serving.py``."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import uvicorn

from .apps import serving

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client; plain httpx still works.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


# --- ports and servers -----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout: float = 20.0, alive: Callable[[], bool] | None = None
) -> None:
    """Poll until ``port`` accepts connections; fail after ``timeout`` s or once ``alive()``
    says the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"server for port {port} exited before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


@contextlib.contextmanager
def uvicorn_server(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server in a thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host=HOST, port=port, log_level="warning", ws="none", http="h11", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_for_port(port, alive=thread.is_alive)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not stop"


@contextlib.contextmanager
def gunicorn_server(app: str, *, env: dict[str, str], log: Path, workers: int = 2) -> Iterator[str]:
    """Run ``gunicorn app`` (sync workers) in a subprocess from the repository root."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "gunicorn"),
        *("--worker-class", "sync", "--workers", str(workers)),
        *("--bind", f"{HOST}:{port}", "--log-level", "warning", "--graceful-timeout", "5"),
        app,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, alive=lambda: proc.poll() is None)
        yield f"http://{HOST}:{port}"
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; gunicorn log:\n{log.read_text()}") from None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- a local HTTP server playing the Inngest API ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeInngestAPI:
    """Records every request; answers with :meth:`reply`'s status and body (by default
    ``{"ok":true,"modified":true}``). ``accept_bearer`` makes any other bearer get 401;
    ``drop`` closes connections without answering."""

    DEFAULT = (200, b'{"ok":true,"modified":true}')

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.status, self.body = self.DEFAULT
        self.accept_bearer: str | None = None
        self.drop = False
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def registrations(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/fn/register"]

    def reply(self, status: int, body: bytes | dict[str, Any]) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
        self.status, self.body = self.DEFAULT
        self.accept_bearer = None
        self.drop = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                with api._lock:
                    api.requests.append(
                        RecordedRequest(
                            self.command,
                            url.path,
                            dict(parse_qsl(url.query)),
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                if api.drop:
                    self.close_connection = True
                    return
                status, reply = api.status, api.body
                bearer = self.headers.get("authorization")
                if api.accept_bearer is not None and bearer != api.accept_bearer:
                    status, reply = 401, b'{"error":"unauthorized"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="session")
def fake_api_server() -> Iterator[FakeInngestAPI]:
    api = FakeInngestAPI()
    api.start()
    yield api
    api.stop()


@pytest.fixture
def inngest_api(fake_api_server: FakeInngestAPI) -> Iterator[FakeInngestAPI]:
    """The fake Inngest API, with a clean record and default answers for this test."""
    fake_api_server.reset()
    yield fake_api_server
    fake_api_server.reset()


@pytest.fixture
def dead_url() -> str:
    """A URL where nothing listens (connections are refused)."""
    return f"http://{HOST}:{free_port()}"


# --- transports serving tests/apps/serving.py ------------------------------------------------


@dataclasses.dataclass
class Transport:
    """One way of serving the app: an HTTP client plus what the tests need to know about it."""

    name: str
    http: httpx.Client
    #: User code runs in this process, so ``serving.CALLS`` sees it.
    in_process: bool
    wsgi: bool
    #: Lifespan messages the host app saw (plain ASGI wraps only).
    lifespan: list[str] | None = None

    def path(self, mount: str = "dev") -> str:
        return serving.MOUNTS[mount]

    def url(self, mount: str = "dev") -> str:
        """The URL the app is reached at (as a server would call it)."""
        return str(self.http.base_url).rstrip("/") + self.path(mount)


TRANSPORTS = ["starlette", "fastapi", "asgi_wrap", "flask", "uvicorn", "gunicorn"]


@pytest.fixture(scope="session")
def starlette_transport(fake_api_server: FakeInngestAPI) -> Iterator[Transport]:
    with TestClient(serving.starlette_app(fake_api_server.url)) as http:
        yield Transport("starlette", http, in_process=True, wsgi=False)


@pytest.fixture(scope="session")
def fastapi_transport(fake_api_server: FakeInngestAPI) -> Iterator[Transport]:
    with TestClient(serving.fastapi_app(fake_api_server.url)) as http:
        yield Transport("fastapi", http, in_process=True, wsgi=False)


@pytest.fixture(scope="session")
def asgi_wrap_transport(fake_api_server: FakeInngestAPI) -> Iterator[Transport]:
    app, other = serving.asgi_wrap(fake_api_server.url)
    with TestClient(app) as http:
        yield Transport("asgi_wrap", http, in_process=True, wsgi=False, lifespan=other.lifespan)


@pytest.fixture(scope="session")
def flask_transport(fake_api_server: FakeInngestAPI) -> Iterator[Transport]:
    app = serving.flask_app(fake_api_server.url)
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        yield Transport("flask", http, in_process=True, wsgi=True)


@pytest.fixture(scope="session")
def uvicorn_transport(fake_api_server: FakeInngestAPI) -> Iterator[Transport]:
    app, other = serving.asgi_wrap(fake_api_server.url)
    with uvicorn_server(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Transport("uvicorn", http, in_process=True, wsgi=False, lifespan=other.lifespan)


@pytest.fixture(scope="session")
def gunicorn_transport(
    fake_api_server: FakeInngestAPI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Transport]:
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {"SERVING_API_URL": fake_api_server.url}
    with (
        gunicorn_server("tests.apps.serving:wsgi_from_env()", env=env, log=log) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield Transport("gunicorn", http, in_process=False, wsgi=True)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    """Each serving path in turn; scenarios written once run through all of them."""
    return request.getfixturevalue(f"{request.param}_transport")
