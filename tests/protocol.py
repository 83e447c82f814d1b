"""Test helpers that play the Inngest server's side of the protocol (PROTOCOL.md §10).

``drive()`` sends execution requests the way the server does: replay with memoized steps, follow
StepPlanned with targeted requests, retry StepError with ``attempt + 1``, memoize StepFailed as
an error, and stop at the function's final 200 or 500. It works over any ``httpx.Client``
(an in-process ASGI or WSGI transport, or a real server on 127.0.0.1), so every serving path is
exercised by the same scenarios.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec
import rfc8785

SIGNING_KEY = "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
SIGNING_KEY_FALLBACK = (
    "signkey-test-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)


def hmac_key(key: str) -> bytes:
    return key.split("-", 2)[2].encode() if key.startswith("signkey-") else key.encode()


def sign_body(body: bytes, key: str, at: int | None = None) -> str:
    """Sign as the server does: HMAC over the JCS form of the body and the timestamp."""
    at = int(time.time()) if at is None else at
    canonical = rfc8785.dumps(msgspec.json.decode(body)) if body else b""
    mac = hmac.new(hmac_key(key), canonical + str(at).encode(), hashlib.sha256).hexdigest()
    return f"t={at}&s={mac}"


def check_response_signature(response: httpx.Response, key: str) -> None:
    verify_response_signature(response.headers, response.content, key)


def verify_response_signature(headers: Mapping[str, str], body: bytes, key: str) -> None:
    """Assert the SDK signed exactly ``body`` with ``key`` (PROTOCOL.md §6.3)."""
    fields = dict(part.split("=", 1) for part in headers["x-inngest-signature"].split("&"))
    expected = hmac.new(hmac_key(key), body + fields["t"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["s"]), "response signature does not verify"


def step_id(pre: str) -> str:
    return hashlib.sha1(pre.encode()).hexdigest()


def call_body(
    *,
    event: dict[str, Any] | None = None,
    steps: dict[str, Any] | None = None,
    attempt: int = 0,
    max_attempts: int | None = 4,
    disable_immediate_execution: bool = False,
    run_id: str = "01HRUN",
) -> dict[str, Any]:
    event = event or {"name": "app/hello", "data": {}, "id": "01HEVT", "ts": 1700000000000}
    ctx: dict[str, Any] = {
        "run_id": run_id,
        "attempt": attempt,
        "disable_immediate_execution": disable_immediate_execution,
        "use_api": False,
        "stack": {"stack": list(steps or {}), "current": len(steps or {})},
    }
    if max_attempts is not None:
        ctx["max_attempts"] = max_attempts
    return {
        "event": event,
        "events": [event],
        "steps": steps or {},
        "ctx": ctx,
        "version": 2,
        "use_api": False,
    }


@dataclasses.dataclass
class Run:
    """What ``drive`` saw: the final response, every op reported, and the request count."""

    status: int
    output: Any
    headers: httpx.Headers
    ops: list[dict[str, Any]]
    requests: int


def drive(
    http: httpx.Client,
    fn_id: str,
    *,
    path: str = "/api/inngest",
    event: dict[str, Any] | None = None,
    max_attempts: int = 4,
    signing_key: str | None = None,
    max_requests: int = 100,
) -> Run:
    """Run a function to its end through the HTTP protocol, as the Inngest server would."""
    steps: dict[str, Any] = {}
    attempt = 0
    disable_immediate = False
    planned: list[str] = []
    ops_seen: list[dict[str, Any]] = []
    for count in range(1, max_requests + 1):
        target = planned.pop(0) if planned else "step"
        body = msgspec.json.encode(
            call_body(
                event=event,
                steps=steps,
                attempt=attempt,
                max_attempts=max_attempts,
                disable_immediate_execution=disable_immediate,
            )
        )
        headers = {"content-type": "application/json"}
        if signing_key:
            headers["x-inngest-signature"] = sign_body(body, signing_key)
        response = http.post(
            path, params={"fnId": fn_id, "stepId": target}, content=body, headers=headers
        )
        if signing_key:
            check_response_signature(response, signing_key)
        assert response.headers.get("x-inngest-sdk", "").startswith("inngest-asgi:v")
        if response.status_code != 206:
            output = response.json() if response.content else None
            return Run(response.status_code, output, response.headers, ops_seen, count)
        ops = response.json()
        assert isinstance(ops, list)
        ops_seen.extend(ops)
        if len(ops) > 1:
            disable_immediate = True
        for op in ops:
            kind = op["op"]
            if kind == "StepPlanned":
                planned.append(op["id"])
            elif kind == "StepRun":
                steps[op["id"]] = {"data": op["data"]}
                attempt = 0
            elif kind == "StepError":
                attempt += 1
                if target != "step":
                    planned.insert(0, target)
            elif kind == "StepFailed":
                steps[op["id"]] = {"error": op["error"]}
                attempt = 0
            elif kind in ("Sleep", "WaitForEvent"):
                steps[op["id"]] = None
            elif kind == "InvokeFunction":
                steps[op["id"]] = {"data": None}
            else:
                raise AssertionError(f"unexpected op {kind}")
        if not planned and len(ops) == 1:
            disable_immediate = False
    raise AssertionError(f"function {fn_id} did not finish in {max_requests} requests")
