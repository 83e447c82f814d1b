"""The app the load and fault tests drive: async and sync functions whose outputs depend on
their event, and which check inside every step that nothing of another run leaked in.

Every function expects ``event.data == {"n": int, "run_id": str, "block_ms": int}`` and the
same ``run_id`` in ``ctx.run_id``; it returns ``{"n", "run_id", "result"}`` where ``result``
is computed from ``n``, so a response delivered to the wrong run shows. A check that fails
raises :class:`Leak`, which makes the run end in a 500 the test sees.

``gunicorn 'tests.apps.load:wsgi_app()'`` serves the WSGI form (files go to ``$LOAD_DIR``);
:func:`asgi_app` builds the ASGI form around a :class:`Host` app that answers ``/ping`` and
measures its event loop's lag while it runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from inngest_asgi import (
    Context,
    ContextSync,
    Function,
    Inngest,
    InngestASGI,
    InngestWSGI,
    TriggerEvent,
)

client = Inngest(app_id="load", is_production=False)

#: Set by each function from its own event: a value already there at entry leaked in.
current_n: contextvars.ContextVar[int | None] = contextvars.ContextVar("load_n", default=None)


class Leak(Exception):
    """Something of another run (or none of this one) was seen inside a function."""


class Gauge:
    """How many callers are inside ``with gauge:`` now, and the most ever at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.entered = 0

    def __enter__(self) -> Gauge:
        with self._lock:
            self.active += 1
            self.entered += 1
            self.peak = max(self.peak, self.active)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.active -= 1

    def reset(self) -> None:
        with self._lock:
            self.active = self.peak = self.entered = 0


#: Sync function bodies running now (each holds a worker thread under ASGI).
SYNC_ACTIVE = Gauge()
#: ``hold`` calls running now, and what lets them return.
HELD = Gauge()
RELEASE = threading.Event()


def work_dir() -> Path:
    return Path(os.environ.get("LOAD_DIR") or tempfile.gettempdir())


def _enter(ctx: Context | ContextSync) -> int:
    """Check the run's identity and claim the context variable; return ``n``."""
    data = ctx.event.data
    n = data["n"]
    if ctx.run_id != data["run_id"]:
        raise Leak(f"ctx.run_id {ctx.run_id!r} but the event is of run {data['run_id']!r}")
    seen = current_n.get()
    if seen is not None:
        raise Leak(f"run {n} found context variable {seen} set by another run")
    current_n.set(n)
    return int(n)


def _check(ctx: Context | ContextSync, n: int) -> None:
    if current_n.get() != n or ctx.event.data["n"] != n:
        raise Leak(f"run {n} sees n={current_n.get()} / event {ctx.event.data['n']}")


def _result(ctx: Context | ContextSync, n: int, value: Any) -> dict[str, Any]:
    return {"n": n, "run_id": ctx.run_id, "result": value}


@client.create_function(fn_id="async-mix", trigger=TriggerEvent(event="load/async"))
async def async_mix(ctx: Context) -> dict[str, Any]:
    """Two steps: an async one that yields to the loop, and a sync one (worker thread)."""
    n = _enter(ctx)

    async def square() -> int:
        await anyio.sleep(0.001 * (n % 4))
        _check(ctx, n)
        return n * n

    def add(value: int) -> int:
        _check(ctx, n)  # contextvars are copied into the worker thread
        return value + n

    squared = await ctx.step.run("square", square)
    _check(ctx, n)
    total = await ctx.step.run("add", add, squared)
    return _result(ctx, n, total)


@client.create_function(fn_id="async-only", trigger=TriggerEvent(event="load/async-only"))
async def async_only(ctx: Context) -> dict[str, Any]:
    """Never needs a worker thread: runs even while every thread is taken."""
    n = _enter(ctx)

    async def triple() -> int:
        await anyio.sleep(0)
        _check(ctx, n)
        return 3 * n

    return _result(ctx, n, await ctx.step.run("triple", triple))


@client.create_function(fn_id="sync-block", trigger=TriggerEvent(event="load/sync"))
def sync_block(ctx: ContextSync) -> dict[str, Any]:
    """Blocks its thread: a sleep and a file write, then a sleep and a file read."""
    with SYNC_ACTIVE:
        n = _enter(ctx)
        block = ctx.event.data.get("block_ms", 0) / 1000
        path = work_dir() / f"load-{ctx.run_id}.txt"

        def write() -> int:
            _check(ctx, n)
            time.sleep(block)
            path.write_text(f"{n}\n" * (1 + n % 7))
            return n % 7

        def read() -> int:
            _check(ctx, n)
            time.sleep(block)
            lines = path.read_text().split()
            path.unlink()
            return sum(int(line) for line in lines)

        ctx.step.run("write", write)
        _check(ctx, n)
        total = ctx.step.run("read", read)
        return _result(ctx, n, total)


@client.create_function(fn_id="hold", trigger=TriggerEvent(event="load/hold"))
def hold(ctx: ContextSync) -> dict[str, Any]:
    """Runs until :data:`RELEASE` is set (at most 30 s), holding its worker thread."""
    with SYNC_ACTIVE, HELD:
        n = _enter(ctx)
        released = RELEASE.wait(30)
        return _result(ctx, n, released)


FUNCTIONS: list[Function[Any]] = [async_mix, async_only, sync_block, hold]


def expected(fn: Function[Any], n: int) -> Any:
    """The ``result`` a run of ``fn`` with event ``n`` must return."""
    if fn is async_mix:
        return n * n + n
    if fn is async_only:
        return 3 * n
    if fn is sync_block:
        return n * (1 + n % 7)
    return True


# --- the host app: /ping, and the loop lag probe ---------------------------------------------


class LagProbe:
    """Sleeps ``interval`` seconds again and again on the server's loop, and records how much
    later than asked it woke up: while the loop is blocked, that delay grows."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(loop.time() - start - self.interval)

    def mark(self) -> int:
        return len(self.samples)

    def since(self, mark: int) -> list[float]:
        return self.samples[mark:]


class Host:
    """A plain ASGI app around which :class:`InngestASGI` is mounted: answers every other path
    with ``pong``, and runs a :class:`LagProbe` on the server's loop between lifespan
    startup and shutdown."""

    def __init__(self) -> None:
        self.probe = LagProbe()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.loop = asyncio.get_running_loop()
                    self._task = self.loop.create_task(self.probe.run(), name="lag-probe")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._task is not None:
                        self._task.cancel()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                    "trailers": False,
                }
            )
            await send({"type": "http.response.body", "body": b"pong", "more_body": False})

    def tasks(self) -> list[str]:
        """Names of the tasks alive on the server's loop (other than the probe), read on it."""

        async def names() -> list[str]:
            me = asyncio.current_task()
            return sorted(
                t.get_name() for t in asyncio.all_tasks() if t is not me and t is not self._task
            )

        assert self.loop is not None, "the server has not started"
        return asyncio.run_coroutine_threadsafe(names(), self.loop).result(timeout=10)


def asgi_app(max_threads: int | None = None) -> tuple[InngestASGI, Host]:
    host = Host()
    return InngestASGI(client, FUNCTIONS, app=host, max_threads=max_threads), host


def wsgi_app() -> InngestWSGI:
    """Factory for gunicorn: ``gunicorn 'tests.apps.load:wsgi_app()'``."""
    return InngestWSGI(client, FUNCTIONS)
