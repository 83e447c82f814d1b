"""``InngestWSGI``: the WSGI shell. The async handler runs on the process's bridge loop (see
``_bridge``); sync functions run on the WSGI request thread itself."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import _bridge
from ._asgi import normalize_path, safe_host
from ._client import Inngest
from ._function import Function
from ._handler import DEFAULT_MAX_BODY_SIZE, ServeHandler, Streaming, too_large
from ._messages import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["InngestWSGI"]

_READ_CHUNK = 64 * 1024


class InngestWSGI:
    """Serve Inngest functions as a WSGI application (Flask, Django, gunicorn sync workers).

    Without ``app`` it answers every request; with ``app`` it answers ``path`` and passes every
    other request to ``app``, e.g.
    ``flask_app.wsgi_app = InngestWSGI(client, fns, app=flask_app.wsgi_app)``.
    """

    def __init__(
        self,
        client: Inngest,
        functions: Iterable[Function[Any]],
        *,
        app: WSGIApplication | Callable[..., Any] | None = None,
        path: str = "/api/inngest",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        streaming: bool | Streaming | None = None,
        keepalive_interval: float = 3.0,
        serve_origin: str | None = None,
        serve_path: str | None = None,
    ) -> None:
        self.handler = ServeHandler(
            client,
            functions,
            framework="wsgi",
            streaming=streaming,
            serve_origin=serve_origin,
            serve_path=serve_path,
        )
        self.keepalive_interval = keepalive_interval
        self.app = app
        self.path = normalize_path(path)
        self.max_body_size = max_body_size

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # SCRIPT_NAME is where this app is mounted; it routes on PATH_INFO, below it.
        if self.app is not None and normalize_path(environ.get("PATH_INFO", "")) != self.path:
            return self.app(environ, start_response)
        headers = _headers(environ)
        body = _read_body(environ, headers.get("content-length", ""), self.max_body_size)
        if body is None:
            response = self.handler.reject(too_large(self.max_body_size))
        else:
            method = environ["REQUEST_METHOD"].upper()
            request = Request(method, _url(environ, headers), headers, body)
            if self.handler.streams(request):
                start_response("201 Created", list(self.handler.stream_headers().items()))
                return self._stream(request)
            response = self._handle(request)
        start_response(
            f"{response.status} {HTTPStatus(response.status).phrase}",
            list(response.headers.items()),
        )
        return [response.body]

    def _handle(self, request: Request) -> Response:
        return _bridge.run(lambda invoker: self.handler.handle(request, invoker))

    def _stream(self, request: Request) -> Iterator[bytes]:
        """A streamed body: a space every ``keepalive_interval`` seconds while the function
        runs in a helper thread (sync functions run there, not on the request thread), then
        the envelope."""
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="inngest-stream") as pool:
            future = pool.submit(self._handle, request)
            while True:
                try:
                    response: Response = future.result(timeout=self.keepalive_interval)
                except concurrent.futures.TimeoutError:
                    yield b" "
                else:
                    break
        yield self.handler.envelope(response)


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _read_body(environ: WSGIEnvironment, length: str, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` (read no further than ``limit + 1``)."""
    stream = environ["wsgi.input"]
    if length.isascii() and length.isdigit():  # not "²", which int() refuses
        size = int(length)
        return None if size > limit else stream.read(size)
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and no terminated stream: WSGI says there is no body
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(_READ_CHUNK):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _url(environ: WSGIEnvironment, headers: dict[str, str]) -> str:
    host = safe_host(headers.get("host"), f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}")
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    return f"{environ['wsgi.url_scheme']}://{host}{path}" + (f"?{query}" if query else "")
