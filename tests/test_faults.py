"""Faults: outbound calls that are refused, fail, hang or lose their answer; handlers that never
return or swallow what stops them; outputs that cannot be encoded. Each ends in a defined
outcome (docs/security-and-reliability.md), bounded in time, with no thread or task left behind.

Already covered elsewhere and not repeated here: event sends retried on 5xx with one seed,
not retried on 4xx, given up after five attempts (test_outbound.py); a refused or malformed
``use_api`` fetch (test_outbound.py); a refused, failing or dropped registration
(test_sync.py); an async function cancelled when its caller disconnects
(test_disconnect.py); a swallowed step interrupt and an unserializable step or function
output in the core (test_engine.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest

import inngest_asgi as inngest

from .apps import load
from .conftest import HOST, gunicorn_server, uvicorn_server
from .core import call, handler, json, send
from .protocol import call_body

SEED = "x-inngest-event-id-seed"
#: Milliseconds: the request_timeout of clients that talk to a server which never answers.
TIMEOUT_MS = 200
#: The shortest total of the backoffs between five send attempts (0.1 + 0.2 + 0.4 + 0.8 s).
MIN_BACKOFF = 1.5


# --- a scripted API: one action per request ----------------------------------------------------


class ScriptedAPI:
    """A raw HTTP/1.1 server on 127.0.0.1. For each request, in order, it takes the next action
    of its script (the last one repeats): ``"hang"`` reads the request and never answers,
    ``"close"`` closes the connection unanswered, ``(status, body)`` answers and closes.
    ``requests`` holds each request's start line, lower-cased headers and body."""

    def __init__(self, *script: str | tuple[int, bytes]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="scripted-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._listener.getsockname()[1]}"

    def seeds(self) -> list[str | None]:
        return [headers.get(SEED) for _, headers, _ in self.requests]

    def __enter__(self) -> ScriptedAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for conn in self._held:
            conn.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                self._answer(conn)
            except OSError:
                conn.close()

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close()
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        start, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
        while len(body) < int(headers.get("content-length", 0)):
            body += conn.recv(65536)
        action = self.script[min(len(self.requests), len(self.script) - 1)]
        self.requests.append((start, headers, body))
        if action == "hang":
            self._held.append(conn)
            return
        if action != "close":
            status, reply = action
            conn.sendall(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(reply)}\r\nconnection: close\r\n\r\n".encode()
                + reply
            )
        conn.close()


IDS = (200, b'{"ids":["evt-1"],"status":200}')


def sender(url: str, **options: Any) -> inngest.Inngest:
    return inngest.Inngest(
        app_id="faults", is_production=False, event_api_base_url=url, api_base_url=url, **options
    )


# --- event sends -------------------------------------------------------------------------------


def test_send_refused_is_retried_with_backoff_then_a_clear_error(dead_url: str) -> None:
    start = time.monotonic()
    with pytest.raises(inngest.SendEventsError, match=r"after 5 attempts: ConnectError"):
        sender(dead_url).send_sync(inngest.Event(name="app/a"))
    assert time.monotonic() - start >= MIN_BACKOFF


def test_send_to_a_server_that_never_answers_is_bounded_by_request_timeout() -> None:
    with ScriptedAPI("hang") as api:
        start = time.monotonic()
        with pytest.raises(inngest.SendEventsError, match=r"after 5 attempts: ReadTimeout"):
            sender(api.url, request_timeout=TIMEOUT_MS).send_sync(inngest.Event(name="app/a"))
        elapsed = time.monotonic() - start
    assert len(api.requests) == 5
    assert len(set(api.seeds())) == 1  # one send, one seed
    assert api.seeds()[0]
    assert len({body for _, _, body in api.requests}) == 1
    # Five timeouts and four backoffs, and not the 30 s default timeout.
    assert 5 * TIMEOUT_MS / 1000 + MIN_BACKOFF <= elapsed < 20


@pytest.mark.parametrize("lost", ["hang", "close"])
def test_send_whose_answer_is_lost_is_resent_with_the_same_seed(lost: str) -> None:
    """The API may have taken the events before its answer was lost: the retry carries the
    same seed and body, so the API derives the same event ids and keeps one copy."""
    with ScriptedAPI(lost, (503, b'{"error":"busy"}'), IDS) as api:
        ids = sender(api.url, request_timeout=TIMEOUT_MS).send_sync(
            [inngest.Event(name="app/a", data={"k": 1}), inngest.Event(name="app/b")]
        )
    assert ids == ["evt-1"]
    assert len(api.requests) == 3
    assert len(set(api.seeds())) == 1
    assert len({body for _, _, body in api.requests}) == 1


def test_separate_sends_get_separate_seeds() -> None:
    with ScriptedAPI(IDS) as api:
        client = sender(api.url)
        client.send_sync(inngest.Event(name="app/a"))
        client.send_sync(inngest.Event(name="app/a"))
    assert len(set(api.seeds())) == 2


fault_client = inngest.Inngest(app_id="faults", is_production=False)


def _send_fns(client: inngest.Inngest) -> tuple[inngest.Function[Any], inngest.Function[Any]]:
    @client.create_function(fn_id="send-async", trigger=inngest.TriggerEvent(event="f/send"))
    async def send_async(ctx: inngest.Context) -> list[str]:
        return await ctx.step.send_event("notify", inngest.Event(name="app/notify"))

    @client.create_function(fn_id="send-sync", trigger=inngest.TriggerEvent(event="f/send"))
    def send_sync(ctx: inngest.ContextSync) -> list[str]:
        return ctx.step.send_event("notify", inngest.Event(name="app/notify"))

    return send_async, send_sync


def test_step_send_event_that_fails_is_a_step_error_the_server_retries(dead_url: str) -> None:
    """After its own five attempts, ``step.send_event`` fails its step like any other error:
    ``StepError`` (the server retries the step) until the last attempt, then ``StepFailed``."""
    client = sender(dead_url)
    send_async, send_sync = _send_fns(client)
    serve = handler(client, [send_async, send_sync])
    for fn, attempt, op in ((send_async, 0, "StepError"), (send_sync, 3, "StepFailed")):
        response = call(serve, fn.id, attempt=attempt, max_attempts=4)
        assert response.status == 206
        assert "x-inngest-no-retry" not in response.headers
        (reported,) = json(response)
        assert reported["op"] == op
        assert reported["error"]["name"] == "SendEventsError"
        assert "after 5 attempts: ConnectError" in reported["error"]["message"]


def test_step_send_event_recovers_when_the_api_does() -> None:
    with ScriptedAPI((500, b"{}"), IDS) as api:
        client = sender(api.url)
        send_async, _ = _send_fns(client)
        response = call(handler(client, [send_async]), send_async.id)
    (reported,) = json(response)
    assert (reported["op"], reported["data"]) == ("StepRun", ["evt-1"])
    assert len(set(api.seeds())) == 1


# --- registration and use_api fetches ----------------------------------------------------------


def test_registration_to_an_api_that_never_answers_is_a_bounded_retriable_failure() -> None:
    """A sync is one attempt (whoever asked for it, the Dev Server or a deploy hook, retries):
    a hung API costs ``request_timeout``, not the 30 s default, and answers a retriable 500."""
    with ScriptedAPI("hang") as api:
        client = sender(api.url, request_timeout=TIMEOUT_MS)
        send_async, _ = _send_fns(client)
        start = time.monotonic()
        response = send(handler(client, [send_async]), "PUT")
        elapsed = time.monotonic() - start
    assert response.status == 500
    assert "x-inngest-no-retry" not in response.headers
    body = json(response)
    assert body["code"] == "registration_failed"
    assert "ReadTimeout" in body["message"]
    assert len(api.requests) == 1
    assert elapsed < 10


USE_API_BODY = msgspec.json.encode(
    {
        "event": {"name": "f/send", "data": {}},
        "events": [],
        "steps": {},
        "ctx": {"run_id": "01HRUN", "attempt": 0, "use_api": True},
        "use_api": True,
    }
)


@pytest.mark.parametrize(
    "action",
    ["hang", "close", (503, b'{"error":"unavailable"}'), (200, b"not json")],
    ids=["hang", "close", "503", "garbage"],
)
def test_failed_use_api_fetch_is_a_bounded_retriable_error(action: Any) -> None:
    ran: list[str] = []
    with ScriptedAPI(action) as api:
        client = sender(api.url, request_timeout=TIMEOUT_MS)

        @client.create_function(fn_id="big", trigger=inngest.TriggerEvent(event="f/send"))
        async def big(ctx: inngest.Context) -> None:
            ran.append(ctx.run_id)

        start = time.monotonic()
        response = send(handler(client, [big]), "POST", f"fnId={big.id}", USE_API_BODY)
        elapsed = time.monotonic() - start
    assert response.status == 500
    assert "x-inngest-no-retry" not in response.headers
    assert json(response)["code"] == "api_fetch_failed"
    assert api.requests[0][0].startswith("GET /v0/runs/01HRUN/actions")
    assert not ran  # user code never ran on a half-loaded run
    assert elapsed < 10


# --- handlers that never return, or swallow what stops them ------------------------------------

STARTED = threading.Event()
ENDED = threading.Event()
NOTES: list[str] = []


@fault_client.create_function(fn_id="stubborn", trigger=inngest.TriggerEvent(event="f/stubborn"))
async def stubborn(ctx: inngest.Context) -> str:
    """A step that would never return, and catches its cancellation with a bare ``except:``;
    then it either awaits again (``await-again``) or returns (``return``)."""
    mode = ctx.event.data["mode"]

    async def forever() -> str:
        STARTED.set()
        try:
            try:
                await anyio.sleep(60)
            except:  # noqa: E722 - the mistake under test
                NOTES.append("swallowed")
            if mode == "await-again":
                await anyio.sleep(60)
                NOTES.append("slept again")  # cancellation is level-triggered: never reached
            return "went on"
        finally:
            ENDED.set()

    return await ctx.step.run("forever", forever)


@contextlib.contextmanager
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """Records of errors that uvicorn and the SDK log while the block runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(logging.ERROR)
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "inngest_asgi")]
    for logger in loggers:
        logger.addHandler(keep)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(keep)


def wait_until(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def idle_tasks(host: load.Host) -> int:
    """How many tasks the server's loop holds once the ones of its startup are gone."""
    counts = [-1]
    while True:
        time.sleep(0.1)
        counts.append(len(host.tasks()))
        if counts[-1] == counts[-2] or len(counts) > 50:
            return counts[-1]


def hang_up(url: str, fn: inngest.Function[Any], data: dict[str, Any]) -> None:
    """POST a call and hang up before it is answered (a ReadTimeout, then a closed socket)."""
    event = {"name": "f/x", "data": data, "id": "e1", "ts": 1}
    body = msgspec.json.encode(call_body(event=event, run_id=data.get("run_id", "01HRUN")))
    with httpx.Client(base_url=url, timeout=0.5) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/api/inngest", params={"fnId": fn.id, "stepId": "step"}, content=body)


@pytest.mark.parametrize("mode", ["await-again", "return"])
def test_async_handler_swallowing_its_cancellation_still_ends(mode: str) -> None:
    """The caller leaves; the step's bare ``except:`` catches the cancellation. Awaiting again
    is cancelled again; returning ends the attempt, whose answer goes nowhere. Either way the
    request's task ends, no thread is started and nothing is logged as an error."""
    STARTED.clear()
    ENDED.clear()
    NOTES.clear()
    host = load.Host()
    app = inngest.InngestASGI(fault_client, [stubborn], app=host)
    with server_errors() as errors, uvicorn_server(app, lifespan="on") as url:
        tasks_before = idle_tasks(host)
        threads_before = threading.active_count()
        hang_up(url, stubborn, {"mode": mode})
        assert STARTED.wait(5)
        assert ENDED.wait(10), "the handler kept running after its caller left"
        assert wait_until(lambda: len(host.tasks()) == tasks_before), host.tasks()
        assert threading.active_count() <= threads_before
    assert NOTES == ["swallowed"]
    assert not errors, [r.getMessage() for r in errors]


def test_sync_handler_that_never_returns_keeps_its_thread_until_it_does() -> None:
    """A thread cannot be interrupted: when the caller leaves, a sync function runs on to the
    end of its current call, holding one of the ``max_threads`` workers, the request's task
    and its disconnect watcher (which keeps asking for a cancellation the thread wait does not
    take); its answer is then dropped. Nothing accumulates: three such calls in a row leave
    no more threads than ``max_threads`` and no task behind."""
    threads = 2
    load.HELD.reset()
    app, host = load.asgi_app(max_threads=threads)
    with server_errors() as errors, uvicorn_server(app, lifespan="on") as url:
        tasks_before = idle_tasks(host)
        threads_before = threading.active_count()
        for n in range(3):
            load.RELEASE.clear()
            try:
                hang_up(url, load.hold, {"n": n, "run_id": "01HRUN"})
                assert wait_until(lambda: load.HELD.active == 1)
                time.sleep(0.3)  # past the disconnect watcher's start
                assert load.HELD.active == 1  # still running after the caller left
                # The request awaits its thread, its watcher awaits the request.
                assert wait_until(lambda: len(host.tasks()) == tasks_before + 2), host.tasks()
            finally:
                load.RELEASE.set()  # never leave a thread waiting 30 s
            assert wait_until(lambda: load.HELD.active == 0)
            assert wait_until(lambda: len(host.tasks()) == tasks_before), host.tasks()
        assert threading.active_count() <= threads_before + threads
    assert load.HELD.entered == 3
    assert not errors, [r.getMessage() for r in errors]


def test_wsgi_handler_that_never_returns_is_ended_by_the_gunicorn_timeout(tmp_path: Path) -> None:
    """Under gunicorn's sync workers the request thread is the worker: a function that never
    returns holds it until gunicorn's ``--timeout`` aborts and replaces the worker. The caller
    gets gunicorn's plain 500 (the server retries the call); other requests keep being
    served."""
    env = {"GUNICORN_CMD_ARGS": "--timeout 2", "LOAD_DIR": str(tmp_path)}
    log = tmp_path / "gunicorn.log"
    event = {"name": "f/x", "data": {"n": 1, "run_id": "01HRUN"}, "id": "e1", "ts": 1}
    body = msgspec.json.encode(call_body(event=event))
    with (
        gunicorn_server("tests.apps.load:wsgi_app()", env=env, log=log) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        start = time.monotonic()
        killed = http.post(
            "/api/inngest", params={"fnId": load.hold.id, "stepId": "step"}, content=body
        )
        killed_after = time.monotonic() - start
        event["data"] = {"n": 7, "run_id": "01HRUN"}
        response = http.post(
            "/api/inngest",
            params={"fnId": load.async_only.id, "stepId": "step"},
            content=msgspec.json.encode(call_body(event=event)),
        )
        assert response.status_code == 206
    # gunicorn's own error page: no SDK headers, so the server counts the call as failed and
    # retries it (PROTOCOL.md §3).
    assert killed.status_code == 500
    assert "x-inngest-sdk" not in killed.headers
    assert 2 <= killed_after < 25
    assert "WORKER TIMEOUT" in log.read_text()


# --- outputs that cannot be encoded ----------------------------------------------------------


def test_unserializable_sync_step_output_is_a_non_retriable_error() -> None:
    @fault_client.create_function(fn_id="bad-sync", trigger=inngest.TriggerEvent(event="f/bad"))
    def bad_sync(ctx: inngest.ContextSync) -> None:
        ctx.step.run("make", lambda: {"when": object()})

    response = call(handler(fault_client, [bad_sync]), bad_sync.id)
    assert response.status == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    assert json(response)["code"] == "output_unserializable"
    assert 'step "make"' in json(response)["message"]


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize("where", ["step", "function"])
def test_self_referential_output_is_a_non_retriable_error(where: str) -> None:
    @fault_client.create_function(fn_id=f"loop-{where}", trigger=inngest.TriggerEvent(event="f/l"))
    async def looping(ctx: inngest.Context) -> Any:
        if where == "step":
            await ctx.step.run("make", _circular)
        return _circular()

    response = call(handler(fault_client, [looping]), looping.id)
    assert response.status == 500
    assert json(response)["code"] == "output_unserializable"
    assert response.headers.get("x-inngest-no-retry") == "true"
