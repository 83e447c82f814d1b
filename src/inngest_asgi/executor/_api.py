"""The executor's HTTP API as a small hand-written ASGI app (no framework needed).

Routes (PROTOCOL.md §1, §8.2, §11):

``POST /fn/register``                out-of-band sync; 200 ``{"ok": true, "modified": bool}``
``POST /e/{event_key}``              one event or a list; 200 ``{"ids": [...], "status": 200}``
``GET  /v0/runs/{run_id}/actions``   memoized steps of a run (``use_api``)
``GET  /v0/runs/{run_id}/batch``     the run's events (``use_api``)
``GET  /v0/runs/{run_id}``           the run's status, output and steps (a convenience, not
                                     part of the protocol)

With a signing key, sync and run routes need ``authorization: Bearer <hashed key>``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import msgspec
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from inngest_asgi._asgi import acknowledge_lifespan

from ._registry import SyncError
from ._signing import bearer_ok

if TYPE_CHECKING:
    from ._executor import Executor

__all__: list[str] = []

log = logging.getLogger("inngest_asgi.executor")

MAX_BODY = 64 * 1024 * 1024


class ExecutorAPI:
    """ASGI app of an :class:`Executor`; run it with uvicorn on 127.0.0.1:8288."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")  # type: ignore[operator]
            if len(body) > MAX_BODY:
                await _reply(send, 413, {"error": "request body too large"})
                return
            if not message.get("more_body", False):
                break
        status, payload = self._route(scope, body)
        await _reply(send, status, payload)

    def _route(self, scope: HTTPScope, body: bytes) -> tuple[int, Any]:
        method = scope["method"]
        parts = [unquote(p) for p in scope["path"].strip("/").split("/") if p]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if method == "POST" and parts == ["fn", "register"]:
            return self._register(headers, body)
        if method == "POST" and len(parts) == 2 and parts[0] == "e":
            return self._events(parts[1], body)
        if method == "GET" and len(parts) >= 3 and parts[:2] == ["v0", "runs"]:
            return self._runs(headers, parts[2], parts[3:])
        return 404, {"error": f"no route for {method} {scope['path']}"}

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = self.executor.signing_key
        return key is None or bearer_ok(headers.get("authorization"), key)

    def _register(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if not self._authorized(headers):
            return 401, {"error": "missing or wrong authorization: Bearer <hashed signing key>"}
        try:
            app, modified = self.executor.register(
                body, expected_server_kind=headers.get("x-inngest-expected-server-kind")
            )
        except SyncError as exc:
            log.warning("sync refused: %s", exc)
            return 400, {"error": str(exc)}
        return 200, {"ok": True, "modified": modified, "app_id": app.name}

    def _events(self, event_key: str, body: bytes) -> tuple[int, Any]:
        expected = self.executor.event_key
        if expected is not None and event_key != expected:
            return 401, {"ids": [], "status": 401, "error": "unknown event key"}
        try:
            events = msgspec.json.decode(body)
            ids = self.executor.send(events)
        except (msgspec.DecodeError, ValueError) as exc:
            return 400, {"ids": [], "status": 400, "error": str(exc)}
        return 200, {"ids": ids, "status": 200}

    def _runs(self, headers: dict[str, str], run_id: str, rest: list[str]) -> tuple[int, Any]:
        if not self._authorized(headers):
            return 401, {"error": "missing or wrong authorization: Bearer <hashed signing key>"}
        try:
            run = self.executor.get_run(run_id)
        except KeyError:
            return 404, {"error": f"no run {run_id}"}
        if rest == ["actions"]:
            return 200, self.executor.run_steps(run_id)
        if rest == ["batch"]:
            return 200, run.events
        if not rest:
            summary = dataclasses.asdict(run)
            summary["status"] = run.status.value
            for step in summary["steps"]:
                step["status"] = step["status"].value
            return 200, summary
        return 404, {"error": f"no route for run {run_id}/{'/'.join(rest)}"}


async def _reply(send: ASGISendCallable, status: int, payload: Any) -> None:
    body = msgspec.json.encode(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
