"""Request bodies the way the Inngest executor sends them, and the checks every answer must pass.

A body is JCS-shaped (sorted keys, no whitespace), as the executor sends it, so a signed request
verifies on its raw bytes. Steps ``step-0`` .. ``step-{n-2}`` are memoized with the data
``0`` .. ``n-2``; the right answer is a 206 with one ``StepRun`` op for ``step-{n-1}`` whose data
is ``n-1``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from .apps import APP_ID, FLOOR_BODY, SIGNING_KEY

MIB = 1024 * 1024


class CheckError(AssertionError):
    """An app answered wrongly: the benchmark stops rather than time a wrong answer."""


def step_id(user_id: str) -> str:
    return hashlib.sha1(user_id.encode()).hexdigest()


def payload(size: int = MIB) -> dict[str, Any]:
    """An event payload of at least ``size`` bytes of JSON: records of ints and strings."""
    items: list[dict[str, Any]] = []
    record = {"id": 0, "sku": "SKU-000000", "qty": 0, "tags": ["red", "large"], "note": "x" * 24}
    per_item = len(msgspec.json.encode(record)) + 1
    for k in range(size // per_item + 1):
        items.append(
            {
                "id": k,
                "sku": f"SKU-{k:06d}",
                "qty": k % 7,
                "tags": ["red", "large"],
                "note": "x" * 24,
            }
        )
    return {"items": items}


def call_body(n: int, *, extra: Mapping[str, Any] | None = None) -> bytes:
    """An execution request for the bench function with steps 0..n-2 memoized."""
    data: dict[str, Any] = {"n": n, **(extra or {})}
    event = {"data": data, "id": "01HBENCHEVENT", "name": "bench/run", "ts": 1700000000000}
    event["user"] = {}
    steps = {step_id(f"step-{i}"): {"data": i} for i in range(n - 1)}
    body = {
        "ctx": {
            "attempt": 0,
            "disable_immediate_execution": False,
            "max_attempts": 4,
            "run_id": "01HBENCHRUN",
            "stack": {"current": len(steps), "stack": list(steps)},
            "use_api": False,
        },
        "event": event,
        "events": [event],
        "steps": steps,
        "use_api": False,
        "version": 2,
    }
    return msgspec.json.encode(body, order="sorted")


def sign_request(body: bytes, key: str = SIGNING_KEY, at: int | None = None) -> str:
    """``x-inngest-signature`` as the server makes it (the body is already canonical)."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(_hmac_key(key), body + str(at).encode(), hashlib.sha256).hexdigest()
    return f"t={at}&s={mac}"


def _hmac_key(key: str) -> bytes:
    return key.split("-", 2)[2].encode()


def query(fn: str) -> bytes:
    return f"fnId={APP_ID}-{fn}&stepId=step".encode()


# --- checks ------------------------------------------------------------------------------------


def _fail(app: str, what: str, status: int, body: bytes) -> CheckError:
    return CheckError(f"{app}: {what} (HTTP {status}, body {body[:300]!r})")


def check_step(n: int, app: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
    """206 with exactly one StepRun op for step-{n-1}, data n-1."""
    if app == "floor":
        if status != 200 or body != FLOOR_BODY:
            raise _fail(app, "not the fixed body", status, body)
        return
    if status != 206:
        raise _fail(app, "expected 206", status, body)
    ops = json.loads(body)
    if not isinstance(ops, list) or len(ops) != 1:
        raise _fail(app, "expected exactly one op", status, body)
    op, want = ops[0], f"step-{n - 1}"
    if (
        op.get("op") != "StepRun"
        or op.get("id") != step_id(want)
        or op.get("displayName") != want
        or op.get("data") != n - 1
        or (op.get("userland") or {}).get("id") != want
    ):
        raise _fail(app, f"expected StepRun {want} with data {n - 1}", status, body)


def check_inspection(app: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
    if app == "floor":
        if status != 200 or body != FLOOR_BODY:
            raise _fail(app, "not the fixed body", status, body)
        return
    if status != 200:
        raise _fail(app, "expected 200", status, body)
    answer = json.loads(body)
    if answer.get("function_count") != 2 or answer.get("mode") != "dev":
        raise _fail(app, "expected function_count 2 in dev mode", status, body)


def check_signed(
    inner: Any, app: str, status: int, headers: Mapping[str, str], body: bytes
) -> None:
    """``inner``, and the response must carry a valid signature of its exact bytes."""
    inner(app, status, headers, body)
    header = headers.get("x-inngest-signature")
    if not header:
        raise _fail(app, "response is not signed", status, body)
    fields = dict(part.split("=", 1) for part in header.split("&"))
    mac = hmac.new(_hmac_key(SIGNING_KEY), body + fields["t"].encode(), hashlib.sha256)
    if not hmac.compare_digest(mac.hexdigest(), fields.get("s", "")):
        raise _fail(app, "response signature does not verify", status, body)
