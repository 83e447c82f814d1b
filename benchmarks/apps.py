"""The apps the benchmark compares, all built from the same two user functions.

* ``ours``: ``InngestASGI`` (and ``InngestWSGI`` for the WSGI case).
* ``official``: the official ``inngest`` SDK from PyPI, served by its FastAPI adapter.
* ``minimal``: the least work the replay protocol costs in Python (:func:`minimal_app`).
* ``floor``: read the body, decode it, answer a fixed body (:func:`floor_app`).

Every app serves the app id ``bench-app`` with the functions ``bench`` (async) and
``bench-sync`` (sync). Each function reads ``n`` from the event data and runs
``step.run(f"step-{i}", value, i)`` for ``i`` in ``range(n)``; ``value`` returns ``i``, so the
step ``step-{k}`` always has the data ``k`` and a response is easy to check.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

APP_ID = "bench-app"
FN_ASYNC = "bench"
FN_SYNC = "bench-sync"
SIGNING_KEY = "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
SERVE_PATH = "/api/inngest"


# --- the user code, written once ------------------------------------------------------------


async def value(i: int) -> int:
    return i


def value_sync(i: int) -> int:
    return i


async def bench(ctx: Any) -> int:
    total = 0
    for i in range(ctx.event.data["n"]):
        total += await ctx.step.run(f"step-{i}", value, i)
    return total


def bench_sync(ctx: Any) -> int:
    total = 0
    for i in range(ctx.event.data["n"]):
        total += ctx.step.run(f"step-{i}", value_sync, i)
    return total


# --- 1. this project ---------------------------------------------------------------------------


def _ours_client(mode: str) -> Any:
    import inngest_asgi

    if mode == "cloud":
        return inngest_asgi.Inngest(app_id=APP_ID, is_production=True, signing_key=SIGNING_KEY)
    return inngest_asgi.Inngest(app_id=APP_ID, is_production=False)


def _ours_functions(client: Any) -> list[Any]:
    import inngest_asgi

    trigger = inngest_asgi.TriggerEvent(event="bench/run")
    return [
        client.create_function(fn_id=FN_ASYNC, trigger=trigger)(bench),
        client.create_function(fn_id=FN_SYNC, trigger=trigger)(bench_sync),
    ]


def ours_app(mode: str = "dev") -> Any:
    import inngest_asgi

    client = _ours_client(mode)
    return inngest_asgi.InngestASGI(client, _ours_functions(client))


def ours_wsgi_app(mode: str = "dev") -> Any:
    import inngest_asgi

    client = _ours_client(mode)
    return inngest_asgi.InngestWSGI(client, _ours_functions(client))


# --- 2. the official SDK -----------------------------------------------------------------------


def official_app(mode: str = "dev") -> Any:
    import fastapi
    import inngest
    import inngest.fast_api

    if mode == "cloud":
        client = inngest.Inngest(app_id=APP_ID, is_production=True, signing_key=SIGNING_KEY)
    else:
        client = inngest.Inngest(app_id=APP_ID, is_production=False)
    trigger = inngest.TriggerEvent(event="bench/run")
    functions = [
        client.create_function(fn_id=FN_ASYNC, trigger=trigger)(bench),
        client.create_function(fn_id=FN_SYNC, trigger=trigger)(bench_sync),
    ]
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, functions)
    return app


# --- 3. the minimal engine ---------------------------------------------------------------------


class _Event(msgspec.Struct):
    name: str
    data: dict[str, Any] = {}


class _Call(msgspec.Struct):
    event: _Event
    steps: dict[str, Any] = {}


class _Userland(msgspec.Struct):
    id: str
    index: int | None


class _Op(msgspec.Struct, rename={"display_name": "displayName"}):
    display_name: str
    id: str
    name: str
    op: str
    opts: None
    userland: _Userland
    data: Any


class _NewStep(BaseException):
    pass


class _MinimalStep:
    """``step.run`` that only counts, hashes and looks up ids; the first new step stops."""

    __slots__ = ("counts", "memos", "op")

    def __init__(self, memos: dict[str, Any]) -> None:
        self.memos, self.counts, self.op = memos, {}, None

    def _memo(self, step_id: str) -> tuple[str, int, Any]:
        count = self.counts.get(step_id, 0)
        self.counts[step_id] = count + 1
        hashed = hashlib.sha1((f"{step_id}:{count}" if count else step_id).encode()).hexdigest()
        return hashed, count, self.memos.get(hashed, _NewStep)

    def _stop(self, step_id: str, hashed: str, count: int, data: Any) -> _NewStep:
        user = _Userland(step_id, count or None)
        self.op = _Op(step_id, hashed, step_id, "StepRun", None, user, data)
        return _NewStep()


class _MinimalStepAsync(_MinimalStep):
    __slots__ = ()

    async def run(self, step_id: str, handler: Any, *args: Any) -> Any:
        hashed, count, memo = self._memo(step_id)
        if memo is not _NewStep:
            return memo["data"]
        raise self._stop(step_id, hashed, count, await handler(*args))


class _MinimalStepSync(_MinimalStep):
    __slots__ = ()

    def run(self, step_id: str, handler: Any, *args: Any) -> Any:
        hashed, count, memo = self._memo(step_id)
        if memo is not _NewStep:
            return memo["data"]
        raise self._stop(step_id, hashed, count, handler(*args))


class _MinimalContext:
    __slots__ = ("event", "step")

    def __init__(self, event: _Event, step: _MinimalStep) -> None:
        self.event, self.step = event, step


_call_decoder = msgspec.json.Decoder(_Call)
_encoder = msgspec.json.Encoder()
_JSON = [(b"content-type", b"application/json")]
_MINIMAL_INSPECTION = _encoder.encode({"function_count": 2, "mode": "dev"})


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": body})


async def minimal_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Decode, replay ``bench`` or ``bench_sync``, encode the one new StepRun op."""
    if scope["method"] == "GET":
        return await _answer(send, 200, _MINIMAL_INSPECTION)
    call = _call_decoder.decode(await _read_body(receive))
    is_sync = scope["query_string"].startswith(f"fnId={APP_ID}-{FN_SYNC}&".encode())
    step = _MinimalStepSync(call.steps) if is_sync else _MinimalStepAsync(call.steps)
    ctx = _MinimalContext(call.event, step)
    try:
        output = bench_sync(ctx) if is_sync else await bench(ctx)
    except _NewStep:
        return await _answer(send, 206, _encoder.encode([step.op]))
    await _answer(send, 200, _encoder.encode(output))


# --- 4. the floor ------------------------------------------------------------------------------

FLOOR_BODY = b'{"ok":true}'


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the body, decode it with msgspec, answer a fixed JSON body."""
    body = await _read_body(receive)
    if body:
        msgspec.json.decode(body)
    await _answer(send, 200, FLOOR_BODY)


BUILDERS = {
    "ours": ours_app,
    "official": official_app,
    "minimal": lambda mode="dev": minimal_app,
    "floor": lambda mode="dev": floor_app,
}
