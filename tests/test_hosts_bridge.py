"""Helpers shared by the serverless host tests: play a platform that turns HTTP requests into
event dicts, calls the function's entry point, and turns the returned dict into a response.

- :class:`FunctionRuntime` is one warm function instance: a thread that imports the handler
  once and serves invocations one at a time, as Lambda's and DigitalOcean's Python runtimes do.
- :class:`EventTransport` is an ``httpx`` transport over it, for ``drive()`` and plain calls.
- :func:`event_asgi_app` is an ASGI app over it, so the built-in executor can reach the
  function over a real socket (served by ``UvicornServer``).

A host supplies ``to_event(HttpCall) -> (event, context)`` and
``from_result(dict) -> (status, headers, body)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx
import pytest

from inngest_asgi.executor import RunStatus

Handler = Callable[[Any, Any], Any]
ToEvent = Callable[["HttpCall"], tuple[dict[str, Any], Any]]
FromResult = Callable[[Any], tuple[int, list[tuple[str, str]], bytes]]


@dataclasses.dataclass(frozen=True)
class HttpCall:
    """One HTTP request as the platform received it."""

    method: str
    path: str
    query: str  # raw, without "?"
    headers: list[tuple[str, str]]  # as sent (names keep their case)
    body: bytes


class FunctionRuntime:
    """A function instance: ``load()`` runs once on the runtime's thread (the module import),
    then each :meth:`invoke` runs the returned handler on that same thread."""

    def __init__(self, load: Callable[[], Handler]) -> None:
        self._load = load
        self._jobs: queue.Queue[tuple[Any, Any, concurrent.futures.Future[Any]] | None] = (
            queue.Queue()
        )
        self._loaded: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name="function-runtime")
        self.invocations: list[dict[str, Any]] = []

    def __enter__(self) -> FunctionRuntime:
        self._thread.start()
        self._loaded.result(timeout=30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the function runtime did not stop"

    def invoke(self, event: Any, context: Any) -> Any:
        self.invocations.append(event)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((event, context, done))
        return done.result(timeout=60)

    def _run(self) -> None:
        # A fresh loop for this thread, closed at the end: Mangum uses the thread's loop.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            try:
                handler = self._load()
            except BaseException as exc:
                self._loaded.set_exception(exc)
                return
            self._loaded.set_result(None)
            while (job := self._jobs.get()) is not None:
                event, context, done = job
                try:
                    done.set_result(handler(event, context))
                except BaseException as exc:
                    done.set_exception(exc)
        finally:
            asyncio.set_event_loop(None)
            loop.close()


#: Settings the examples read from the environment; each test sets exactly the ones it needs.
INNGEST_ENV = (
    "INNGEST_DEV",
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "INNGEST_EVENT_KEY",
    "INNGEST_BASE_URL",
    "INNGEST_API_BASE_URL",
    "INNGEST_EVENT_API_BASE_URL",
    "INNGEST_SERVE_ORIGIN",
    "INNGEST_SERVE_PATH",
    "INNGEST_STREAMING",
)


def use_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Exactly ``env`` as INNGEST_* settings for this test."""
    for name in INNGEST_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


class EventTransport(httpx.BaseTransport):
    """``httpx.Client(transport=EventTransport(...), base_url=<public URL>)``."""

    def __init__(self, runtime: FunctionRuntime, to_event: ToEvent, from_result: FromResult):
        self.runtime = runtime
        self.to_event = to_event
        self.from_result = from_result

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = HttpCall(
            request.method,
            request.url.path,
            request.url.query.decode(),
            [(k.decode(), v.decode()) for k, v in request.headers.raw],
            request.read(),
        )
        event, context = self.to_event(call)
        status, headers, body = self.from_result(self.runtime.invoke(event, context))
        return httpx.Response(status, headers=headers, content=body)


def event_asgi_app(runtime: FunctionRuntime, to_event: ToEvent, from_result: FromResult) -> Any:
    """An ASGI app that hands every HTTP request to the function as the platform would."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        call = HttpCall(
            scope["method"],
            scope["path"],
            scope["query_string"].decode(),
            [(k.decode(), v.decode()) for k, v in scope["headers"]],
            body,
        )
        event, context = to_event(call)
        result = await anyio.to_thread.run_sync(runtime.invoke, event, context)
        status, headers, content = from_result(result)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": content})

    return app


def check_shop_runs(executor: Any, app_id: str) -> None:
    """The example shop app's two runs completed with the outputs its workflow computes."""
    [order] = executor.runs_for(f"{app_id}-process-order")
    [refund] = executor.runs_for(f"{app_id}-refund-order")
    assert order.status is RunStatus.COMPLETED, order
    assert order.output == {
        "order_id": 7,
        "total": 60,
        "reservation": "reserved-7",
        "receipt": "receipt for 60 cents",
    }
    assert refund.status is RunStatus.COMPLETED, refund
    assert refund.output == {"order_id": 7, "amount": 60, "note": "refunded 60 cents"}


def test_function_runtime_runs_invocations_on_its_own_thread() -> None:
    seen: list[str] = []

    def load() -> Handler:
        seen.append(threading.current_thread().name)
        return lambda event, context: (threading.current_thread().name, event, context)

    with FunctionRuntime(load) as runtime:
        assert runtime.invoke({"a": 1}, "ctx") == ("function-runtime", {"a": 1}, "ctx")
    assert seen == ["function-runtime"]
