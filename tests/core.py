"""Helpers for tests of the sans-IO core: build a handler, send it a Request value."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import msgspec

from inngest_asgi import Function, Inngest
from inngest_asgi._handler import ServeHandler
from inngest_asgi._invoke import ThreadPoolInvoker
from inngest_asgi._messages import Request, Response

from .protocol import call_body

URL = "http://testserver/api/inngest"


def handler(client: Inngest, functions: Iterable[Function[Any]], **kwargs: Any) -> ServeHandler:
    return ServeHandler(client, functions, framework="asgi", **kwargs)


def send(
    serve: ServeHandler,
    method: str,
    query: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Response:
    request = Request(method, URL + (f"?{query}" if query else ""), headers or {}, body)
    return anyio.run(serve.handle, request, ThreadPoolInvoker())


def call(serve: ServeHandler, fn_id: str, step: str = "step", **body: Any) -> Response:
    """POST an execution request for ``fn_id`` (the composite id) built by ``call_body``."""
    payload = msgspec.json.encode(call_body(**body))
    return send(serve, "POST", f"fnId={fn_id}&stepId={step}", payload)


def json(response: Response) -> Any:
    return msgspec.json.decode(response.body)
