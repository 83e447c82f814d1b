"""Load: many concurrent runs of async and blocking sync functions under real uvicorn and
gunicorn servers on 127.0.0.1, driven the way the Inngest server replays them.

What must hold: every run completes with the output its own event implies (so a response or
context crossing runs would show), the event loop keeps answering while sync functions block,
at most ``max_threads`` sync functions run at once while any number of requests still
complete, and memory stays flat over many requests.

The counts here keep the module fast enough for every test run; ``nox -s soak`` sets
``INNGEST_SOAK=1`` and runs it with larger ones. Each test prints its figures (``-s`` shows
them); timing bounds are deliberately loose, the figures are what
docs/security-and-reliability.md records.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import itertools
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from inngest_asgi import Function, InngestASGI

from .apps import load
from .conftest import gunicorn_server, uvicorn_server
from .protocol import call_body

SOAK = os.environ.get("INNGEST_SOAK") == "1"
PATH = "/api/inngest"

#: Concurrent runs driven against uvicorn (all in flight at once) and gunicorn.
UVICORN_RUNS = 2000 if SOAK else 300
GUNICORN_RUNS = 1000 if SOAK else 200
#: Milliseconds each sync step blocks its thread (sleep), besides its file I/O.
BLOCK_MS = 20
#: Client connections the uvicorn load test shares between its runs.
CONNECTIONS = 16
#: Worker threads allowed for sync code in the uvicorn load test.
LOAD_THREADS = 8
#: Requests made straight to the ASGI app in the memory test, in windows.
MEMORY_REQUESTS = 150_000 if SOAK else 12_000
MEMORY_WINDOWS = 10


def report(test: str, **figures: Any) -> None:
    """Print a test's figures on one line (``pytest -s`` or ``nox -s soak`` shows them)."""
    shown = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\n[figures] {test}: {shown}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture(autouse=True)
def _fresh_gauges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOAD_DIR", str(tmp_path))
    load.SYNC_ACTIVE.reset()
    load.HELD.reset()
    load.RELEASE.clear()


# --- a replaying driver, one run at a time or many interleaved -------------------------------


@dataclasses.dataclass
class RunDriver:
    """Plays the server for one run: replays with the memoized steps until the final answer."""

    fn: Function[Any]
    n: int
    block_ms: int = BLOCK_MS
    steps: dict[str, Any] = dataclasses.field(default_factory=dict)
    requests: int = 0
    status: int | None = None
    output: Any = None

    @property
    def run_id(self) -> str:
        return f"run-{self.fn.local_id}-{self.n}"

    @property
    def params(self) -> dict[str, str]:
        return {"fnId": self.fn.id, "stepId": "step"}

    def body(self) -> bytes:
        data = {"n": self.n, "run_id": self.run_id, "block_ms": self.block_ms}
        event = {"name": "load/x", "data": data, "id": f"evt-{self.run_id}", "ts": 1700000000000}
        return msgspec.json.encode(call_body(event=event, steps=self.steps, run_id=self.run_id))

    def feed(self, status: int, content: bytes) -> bool:
        """Take one response; True when the run is over."""
        self.requests += 1
        payload = msgspec.json.decode(content) if content else None
        if status == 206 and self.requests < 10:
            for op in payload:
                assert op["op"] == "StepRun", op
                self.steps[op["id"]] = {"data": op["data"]}
            return False
        self.status, self.output = status, payload
        return True

    def check(self) -> None:
        want = {"n": self.n, "run_id": self.run_id, "result": load.expected(self.fn, self.n)}
        assert (self.status, self.output) == (200, want), self.run_id


def mixed_runs(count: int, functions: list[Function[Any]]) -> list[RunDriver]:
    runs = [RunDriver(fn, n) for n, fn in zip(range(count), itertools.cycle(functions))]
    random.Random(count).shuffle(runs)
    return runs


async def drive_async(http: httpx.AsyncClient, run: RunDriver) -> None:
    while True:
        response = await http.post(PATH, params=run.params, content=run.body())
        if run.feed(response.status_code, response.content):
            return


def drive_sync(http: httpx.Client, run: RunDriver) -> None:
    while True:
        response = http.post(PATH, params=run.params, content=run.body())
        if run.feed(response.status_code, response.content):
            return


# --- uvicorn: hundreds of runs in flight, loop lag, thread bound ------------------------------


def test_uvicorn_concurrent_mixed_runs() -> None:
    app, host = load.asgi_app(max_threads=LOAD_THREADS)
    runs = mixed_runs(UVICORN_RUNS, [load.async_mix, load.sync_block])
    pings: list[float] = []
    in_flight = [0, 0]  # now, most

    async def one(http: httpx.AsyncClient, run: RunDriver) -> None:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            await drive_async(http, run)
        finally:
            in_flight[0] -= 1

    async def pinger(http: httpx.AsyncClient, stop: anyio.Event) -> None:
        while not stop.is_set():
            start = time.perf_counter()
            assert (await http.get("/ping")).text == "pong"
            pings.append(time.perf_counter() - start)
            await anyio.sleep(0.05)

    async def main(url: str) -> None:
        limits = httpx.Limits(max_connections=CONNECTIONS)
        async with (
            httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http,
            httpx.AsyncClient(base_url=url, timeout=120) as probe_http,
            anyio.create_task_group() as tasks,
        ):
            stop = anyio.Event()
            tasks.start_soon(pinger, probe_http, stop)
            async with anyio.create_task_group() as runners:
                for run in runs:
                    runners.start_soon(one, http, run)
            stop.set()

    with uvicorn_server(app, lifespan="on") as url:
        mark = host.probe.mark()
        start = time.perf_counter()
        anyio.run(main, url)
        elapsed = time.perf_counter() - start
        lag = host.probe.since(mark)

    for run in runs:
        run.check()
    requests = sum(run.requests for run in runs)
    assert requests == 3 * len(runs)
    assert 1 <= load.SYNC_ACTIVE.peak <= LOAD_THREADS
    report(
        "uvicorn mixed load",
        runs=len(runs),
        requests=requests,
        seconds=elapsed,
        req_per_s=requests / elapsed,
        runs_in_flight_max=in_flight[1],
        max_threads=LOAD_THREADS,
        sync_running_max=load.SYNC_ACTIVE.peak,
        loop_lag_p50_ms=1000 * percentile(lag, 0.5),
        loop_lag_p99_ms=1000 * percentile(lag, 0.99),
        loop_lag_max_ms=1000 * max(lag, default=0.0),
        ping_max_ms=1000 * max(pings, default=0.0),
        pings=len(pings),
    )
    assert lag, "the lag probe did not run"
    # Sync code blocked its threads for ~runs * 2 * BLOCK_MS in total; none of it on the loop.
    assert max(lag) < 2.0


def test_thread_pool_is_bounded_and_the_loop_stays_free() -> None:
    """``max_threads=3``: ten sync functions that block until released; three run, seven
    wait for a thread. Meanwhile pings, introspection and async-only runs are answered, so
    the loop is free. Once released, all ten complete."""
    threads, callers = 3, 10
    app, host = load.asgi_app(max_threads=threads)
    held = [RunDriver(load.hold, n) for n in range(callers)]

    def call(run: RunDriver) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            response = http.post(PATH, params=run.params, content=run.body())
            run.feed(response.status_code, response.content)

    with (
        uvicorn_server(app, lifespan="on") as url,
        concurrent.futures.ThreadPoolExecutor(callers) as pool,
    ):
        futures = [pool.submit(call, run) for run in held]
        try:
            deadline = time.monotonic() + 30
            while load.HELD.active < threads and time.monotonic() < deadline:
                time.sleep(0.02)
            assert load.HELD.active == threads
            mark = host.probe.mark()
            waits: list[float] = []
            with httpx.Client(base_url=url, timeout=10) as http:
                for n in range(20):
                    start = time.perf_counter()
                    assert http.get("/ping").text == "pong"
                    assert http.get(PATH).json()["function_count"] == len(load.FUNCTIONS)
                    run = RunDriver(load.async_only, 1000 + n)
                    drive_sync(http, run)
                    run.check()
                    waits.append(time.perf_counter() - start)
            lag = host.probe.since(mark)
            assert load.HELD.active == threads  # still held: the others still wait
            assert not any(f.done() for f in futures)
        finally:
            load.RELEASE.set()
        for future in futures:
            future.result(timeout=60)
    for run in held:
        run.check()
    assert load.HELD.entered == callers
    assert load.HELD.peak == threads
    report(
        "thread pool bound",
        max_threads=threads,
        blocked_requests=callers,
        sync_running_max=load.HELD.peak,
        completed=sum(run.status == 200 for run in held),
        loop_round_trip_max_ms=1000 * max(waits),
        loop_lag_max_ms=1000 * max(lag, default=0.0),
    )
    assert max(waits) < 5.0


# --- gunicorn: interleaved runs over sync workers ---------------------------------------------


def test_gunicorn_concurrent_mixed_runs(tmp_path: Path) -> None:
    """Runs interleaved the way the server replays them: each client thread advances its
    share of the runs one request at a time, so all of them are open at once."""
    client_threads = 16
    runs = mixed_runs(GUNICORN_RUNS, [load.async_mix, load.sync_block, load.async_only])
    for run in runs:
        run.block_ms = 5
    shares = [runs[i::client_threads] for i in range(client_threads)]

    def drive_share(base_url: str, share: list[RunDriver]) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            open_runs = list(share)
            while open_runs:  # one request per open run per round
                for run in list(open_runs):
                    response = http.post(PATH, params=run.params, content=run.body())
                    if run.feed(response.status_code, response.content):
                        open_runs.remove(run)

    log = tmp_path / "gunicorn.log"
    work = tmp_path / "work"
    work.mkdir()
    with (
        gunicorn_server("tests.apps.load:wsgi_app()", env={"LOAD_DIR": str(work)}, log=log) as url,
        concurrent.futures.ThreadPoolExecutor(client_threads) as pool,
    ):
        start = time.perf_counter()
        for future in [pool.submit(drive_share, url, share) for share in shares]:
            future.result(timeout=120)
        elapsed = time.perf_counter() - start
    for run in runs:
        run.check()
    assert not list(work.iterdir()), "a sync run left its file behind"
    requests = sum(run.requests for run in runs)
    report(
        "gunicorn mixed load",
        runs=len(runs),
        requests=requests,
        seconds=elapsed,
        req_per_s=requests / elapsed,
        workers=2,
        client_threads=client_threads,
    )


# --- memory over many requests, the ASGI app called directly ----------------------------------


async def asgi_post(app: InngestASGI, query: bytes, body: bytes) -> tuple[int, bytes]:
    """One POST straight into the app, as an ASGI server would make it."""
    messages: list[Any] = []
    delivered = False

    async def receive() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()

    async def send(message: Any) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 12345),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


def rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_flat_over_many_requests() -> None:
    """Allocated blocks (``sys.getallocatedblocks``, after a full collection) and RSS are
    sampled after each window of requests; the last window may not hold noticeably more than
    the first (after warm-up)."""
    app = InngestASGI(load.client, load.FUNCTIONS, max_threads=4)
    functions = [load.async_mix, load.sync_block, load.async_only]
    concurrency = 16
    per_window = MEMORY_REQUESTS // MEMORY_WINDOWS
    samples: list[tuple[int, int, int]] = []  # requests, blocks, rss
    counter = itertools.count()

    async def worker(stop_at: int, done: list[int]) -> None:
        while done[0] < stop_at:
            n = next(counter)
            run = RunDriver(functions[n % len(functions)], n, block_ms=0)
            query = f"fnId={run.fn.id}&stepId=step".encode()
            while True:
                done[0] += 1
                # A task per request, with a copy of the context, as ASGI servers do.
                call = asyncio.ensure_future(asgi_post(app, query, run.body()))
                if run.feed(*await call):
                    break
            run.check()

    async def main() -> None:
        done = [0]
        for window in range(MEMORY_WINDOWS + 1):  # window 0 is warm-up
            stop_at = done[0] + per_window
            async with anyio.create_task_group() as tasks:
                for _ in range(concurrency):
                    tasks.start_soon(worker, stop_at, done)
            gc.collect()
            if window:
                samples.append((done[0], sys.getallocatedblocks(), rss_bytes()))

    start = time.perf_counter()
    anyio.run(main)
    elapsed = time.perf_counter() - start
    first, last = samples[0], samples[-1]
    requests = last[0] - first[0]
    blocks = [s[1] for s in samples]
    report(
        "memory",
        requests=last[0],
        measured_requests=requests,
        seconds=elapsed,
        req_per_s=last[0] / elapsed,
        blocks_first=first[1],
        blocks_last=last[1],
        blocks_growth=last[1] - first[1],
        blocks_per_1k_requests=1000 * (last[1] - first[1]) / requests,
        blocks_median=statistics.median(blocks),
        rss_first_mb=first[2] / 2**20,
        rss_last_mb=last[2] / 2**20,
        rss_growth_mb=(last[2] - first[2]) / 2**20,
    )
    # A leak of one small object per request would add ~`requests` blocks; allow a tenth.
    assert last[1] - first[1] < max(2000, requests // 10)
    if first[2]:
        assert last[2] - first[2] < 64 * 2**20


def test_context_does_not_leak_between_requests_served_by_one_task() -> None:
    """uvicorn and hypercorn run each request in a task of its own, but nothing in ASGI says
    so: httpx's ASGITransport, for one, calls the app from the caller's task. A ContextVar
    set by one run must still not be seen by the next (the WSGI shell already isolates it)."""
    app = InngestASGI(load.client, load.FUNCTIONS)

    async def main() -> list[RunDriver]:
        transport = httpx.ASGITransport(app=app)
        runs = [RunDriver(load.async_only, n) for n in (1, 2)]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for run in runs:
                await drive_async(http, run)
        return runs

    for run in anyio.run(main):
        run.check()
