"""``InngestASGI``: the ASGI shell around the sans-IO handler."""

from __future__ import annotations

import asyncio
import functools
import re
import sys
from collections.abc import Iterable
from contextlib import suppress
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
from asgiref.typing import (
    ASGI3Application,
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPScope,
    Scope,
)

from ._client import Inngest
from ._coroutines import first_slice, resume
from ._function import Function
from ._handler import DEFAULT_MAX_BODY_SIZE, ServeHandler, Streaming, too_large
from ._invoke import ThreadPoolInvoker
from ._messages import Request, Response

__all__ = ["InngestASGI"]


def normalize_path(path: str) -> str:
    return "/" + path.strip("/")


class InngestASGI:
    """Serve Inngest functions as an ASGI application.

    Without ``app`` it answers every HTTP request it receives, so it can be mounted:
    ``Mount("/api/inngest", InngestASGI(client, [fn]))``. With ``app`` it answers ``path``
    and passes every other request, websocket and lifespan message to ``app`` untouched.

    Sync functions run in this app's worker threads, at most ``max_threads`` at once (40 when
    None). Bodies over ``max_body_size`` bytes are refused with 413.
    ``streaming`` (``INNGEST_STREAMING`` when None) answers execution requests as streams with
    a keepalive byte every ``keepalive_interval`` seconds. ``serve_origin`` / ``serve_path``
    set the public URL registered at sync, over the client's values.
    """

    def __init__(
        self,
        client: Inngest,
        functions: Iterable[Function[Any]],
        *,
        app: ASGI3Application | Any | None = None,
        path: str = "/api/inngest",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_threads: int | None = None,
        streaming: bool | Streaming | None = None,
        keepalive_interval: float = 3.0,
        serve_origin: str | None = None,
        serve_path: str | None = None,
    ) -> None:
        self.handler = ServeHandler(
            client,
            functions,
            framework="asgi",
            streaming=streaming,
            serve_origin=serve_origin,
            serve_path=serve_path,
        )
        self.keepalive_interval = keepalive_interval
        self.app = app
        self.path = normalize_path(path)
        self.max_body_size = max_body_size
        self._invoker = ThreadPoolInvoker(max_threads)
        self._known = encoded_headers(self.handler.stream_headers())

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http" and (
            self.app is None or normalize_path(_route_path(scope)) == self.path
        ):
            await self._serve(scope, receive, send)
        elif self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000, "reason": None})

    async def _serve(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        raw = scope["headers"]
        if not isinstance(raw, (list, tuple)):
            raw = list(raw)
        # Reversed, so that the first of a repeated header is the one kept.
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in reversed(raw)}
        length = headers.get("content-length", "")
        if length.isascii() and length.isdigit() and int(length) > self.max_body_size:  # not "²"
            await _respond(send, self.handler.reject(too_large(self.max_body_size)))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody is there to answer
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            size += len(chunk)
            if size > self.max_body_size:
                await _respond(send, self.handler.reject(too_large(self.max_body_size)))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        request = Request(scope["method"], _url(scope, headers), headers, b"".join(chunks))
        if self.handler.streams(request):
            await self._stream(request, receive, send)
        elif request.method != "POST":
            await _respond(send, await self.handler.handle(request, self._invoker), self._known)
        else:
            # User code runs: if the caller goes away, stop it rather than leave it running.
            await self._serve_call(request, receive, send)

    async def _serve_call(
        self, request: Request, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Run an attempt; cancel it if the caller disconnects. Watching starts once the
        attempt has waited ``WATCH_AFTER`` seconds: most attempts never wait at all, and
        those pay nothing for it."""
        attempt = self.handler.handle(request, self._invoker)
        done, value = first_slice(attempt)
        if done:
            await _respond(send, value, self._known)
            return
        try:
            task = asyncio.current_task()
        except RuntimeError:  # not asyncio (trio): no watcher, the attempt runs to its end
            task = None
        if task is None:
            await _respond(send, await resume(attempt, value), self._known)
            return
        watch = _DisconnectWatch(task, receive)
        try:
            response = await resume(attempt, value)
        except asyncio.CancelledError:
            if not watch.cancels:
                raise
        finally:
            watch.close()
        if watch.cancels:
            await watch.absorb()
            return  # the caller left: nobody is there to answer
        await _respond(send, response, self._known)

    async def _stream(
        self, request: Request, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """201 at once, a space every ``keepalive_interval`` seconds, then the envelope."""
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": _raw_headers(self.handler.stream_headers()),
                "trailers": False,
            }
        )
        done = anyio.Event()
        result: list[Response] = []

        async def work() -> None:
            result.append(await self.handler.handle(request, self._invoker))
            done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(work)
            tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
            while not done.is_set():
                with anyio.move_on_after(self.keepalive_interval):
                    await done.wait()
                if not done.is_set():
                    await send({"type": "http.response.body", "body": b" ", "more_body": True})
            tasks.cancel_scope.cancel()
        if not result:
            return  # the client went away
        body = self.handler.envelope(result[0])
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _route_path(scope: HTTPScope) -> str:
    """The path below the app's root: uvicorn (``--root-path``) and Starlette mounts keep the
    root path in ``path``; ``path`` is compared to ``self.path`` without it."""
    root, path = scope.get("root_path", "").rstrip("/"), scope["path"]
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path


#: A Host header that can stand in a URL: a reg-name or IPv4 address, or a bracketed IPv6
#: literal, then an optional port (RFC 3986 §3.2.2).
_HOST = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?")


def safe_host(host: str | None, fallback: str) -> str:
    """The client's Host header if it is a well-formed host[:port], else ``fallback`` (the
    server's own address): the header is client input and the URL built from it is parsed
    again by the handler (e.g. an unbalanced ``[`` makes ``urlsplit`` raise)."""
    if not host or not _HOST.fullmatch(host):
        return fallback
    try:
        urlsplit(f"//{host}")  # also checks what is inside brackets
    except ValueError:
        return fallback
    return host


def _url(scope: HTTPScope, headers: dict[str, str]) -> str:
    server: Any = scope.get("server")
    if server is not None and type(server) is not tuple:
        server = tuple(server)  # some servers give a list; the cache needs a key
    query = scope["query_string"]
    host, path = headers.get("host"), scope["path"]
    # An app sees few distinct short URLs: those are built once and kept.
    build = _base_url_cached if len(path) + len(host or "") <= 512 else _base_url
    base = build(
        scope["scheme"], host, server, scope.get("root_path", ""), path, scope.get("raw_path")
    )
    return f"{base}?{query.decode('latin-1')}" if query else base


def _base_url(
    scheme: str,
    host: str | None,
    server: tuple[Any, ...] | None,
    root: str,
    path: str,
    raw: bytes | None,
) -> str:
    """The URL without its query."""
    fallback = f"{server[0]}:{server[1]}" if server and server[1] is not None else "localhost"
    host = safe_host(host, fallback)
    # Starlette and recent uvicorn keep the mount prefix in "path"; the spec says it is not.
    if root and not path.startswith(root):
        path = root.rstrip("/") + path
    elif not root and raw:
        # Some routers (Litestar mounts) rewrite "path" without setting root_path: the path
        # the client asked for is then only in raw_path.
        return f"{scheme}://{host}{raw.decode('latin-1').partition('?')[0] or quote(path)}"
    return f"{scheme}://{host}{quote(path)}"


_base_url_cached = functools.lru_cache(maxsize=256)(_base_url)


#: Seconds from an attempt's first wait until its connection is watched for a disconnect.
WATCH_AFTER = 0.25


#: Seconds between cancellations of an attempt whose caller left and that goes on anyway.
RECANCEL_INTERVAL = 0.05


class _DisconnectWatch:
    """Cancels the task running an attempt once its caller disconnects.

    Watching starts ``WATCH_AFTER`` seconds after the watch is made, when the attempt first
    waits (a timer until then, not a task). Cancellation
    is level-triggered, as in anyio: code that swallows the ``CancelledError`` is cancelled
    again at its next wait, until the attempt ends. :meth:`absorb` then takes back what this
    watch asked of the task, so the host's own cancellations keep their meaning.
    """

    __slots__ = ("_receive", "_task", "_timer", "_watcher", "cancels", "closed")

    def __init__(self, task: asyncio.Task[Any], receive: ASGIReceiveCallable) -> None:
        self._task = task
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self._timer = task.get_loop().call_later(WATCH_AFTER, self._start)
        #: How many times this watch cancelled the task.
        self.cancels = 0
        self.closed = False

    def _start(self) -> None:
        self._watcher = self._task.get_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        while not self.closed and self._task.cancel():
            self.cancels += 1
            await asyncio.sleep(RECANCEL_INTERVAL)

    def close(self) -> None:
        """The attempt is over: cancel nothing more."""
        self.closed = True
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()

    async def absorb(self) -> None:
        """Take in a cancellation asked for but not yet delivered, and undo this watch's
        requests; re-raise if someone else cancelled the task too."""
        with suppress(asyncio.CancelledError):
            await asyncio.sleep(0)
        if sys.version_info >= (3, 11):
            for _ in range(self.cancels):
                self._task.uncancel()
            if self._task.cancelling():
                raise asyncio.CancelledError


async def _cancel_on_disconnect(receive: ASGIReceiveCallable, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` when the client disconnects (the ASGI server says so on ``receive``)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _raw_headers(
    headers: dict[str, str], known: dict[tuple[str, str], tuple[bytes, bytes]] | None = None
) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI wants them; pairs found in ``known`` are not encoded again."""
    if not known:
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    get = known.get
    return [
        get(item) or (item[0].encode("latin-1"), item[1].encode("latin-1"))
        for item in headers.items()
    ]


def encoded_headers(headers: dict[str, str]) -> dict[tuple[str, str], tuple[bytes, bytes]]:
    """The raw form of headers every response carries, for :func:`_respond`."""
    return dict(zip(headers.items(), _raw_headers(headers), strict=True))


async def _respond(
    send: ASGISendCallable,
    response: Response,
    known: dict[tuple[str, str], tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": _raw_headers(response.headers, known),
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


async def acknowledge_lifespan(receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """Standalone (``uvicorn module:app``): nothing to start or stop, acknowledge both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
