"""End to end: every framework example under every server it documents, driven by the executor.

Each example in ``examples/`` (FastAPI, Starlette, Litestar, Quart, Django ASGI and WSGI,
Flask) is started by the exact command its module docstring shows (the same lines the
docs/servers/ pages show), in a subprocess on 127.0.0.1 with ``examples/`` as the working
directory, in cloud mode: ``INNGEST_SIGNING_KEY`` is set and the executor signs every request
with the same key and checks every response signature. Each test syncs the app in-band, then
runs the shop workflow (steps, a parallel group, a step that fails once and is retried, a
sleep, a wait for an event, an invoke of a second function) from its event to completion
over HTTP, on a virtual clock so the sleep and the retry backoff take no real time.

All servers start together when the first test needs one, and stop after the last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from inngest_asgi.executor import Executor, RunStatus, StepStatus, VirtualClock

from .conftest import HOST, ROOT, free_port, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

EXAMPLES = ROOT / "examples"
SIGNING_KEY = "signkey-test-5a1e5ca1ab1e0ddba11c0ffee5eed5a1e5ca1ab1e0ddba11c0ffee5eed0000"
APP_ID = "shop"
START_TIMEOUT = 45.0
#: The port every documented command uses; tests swap in a free one.
DOC_PORT = 8000

#: Example module (relative to examples/) per framework, and whether it is WSGI.
FRAMEWORKS: dict[str, tuple[str, bool]] = {
    "fastapi": ("fastapi_app.py", False),
    "starlette": ("starlette_app.py", False),
    "litestar": ("litestar_app.py", False),
    "quart": ("quart_app.py", False),
    "django-asgi": ("django_shop/asgi.py", False),
    "django-wsgi": ("django_shop/wsgi.py", True),
    "flask": ("flask_app.py", True),
}
#: Mounted with a Starlette ``Route`` (the others wrap the framework's app with ``app=``).
ROUTE_MOUNTED = {"fastapi", "starlette"}
ASGI_SERVERS = ("uvicorn", "hypercorn", "gunicorn-uvicorn")
WSGI_SERVERS = ("gunicorn",)
#: Flags the tests add to each documented command: quieter logs, quicker shutdown; two
#: gunicorn workers so the executor's requests really spread over processes.
EXTRA_FLAGS = {
    "uvicorn": ["--log-level", "warning"],
    "hypercorn": ["--log-level", "warning"],
    "gunicorn-uvicorn": ["--workers", "2", "--log-level", "warning", "--graceful-timeout", "5"],
    "gunicorn": ["--workers", "2", "--log-level", "warning", "--graceful-timeout", "5"],
}


@dataclasses.dataclass(frozen=True)
class Case:
    framework: str
    server: str

    @property
    def example(self) -> Path:
        return EXAMPLES / FRAMEWORKS[self.framework][0]

    def __str__(self) -> str:
        return f"{self.framework}-{self.server}"


CASES = [
    Case(framework, server)
    for framework, (_, wsgi) in FRAMEWORKS.items()
    for server in (WSGI_SERVERS if wsgi else ASGI_SERVERS)
]


def runs_here(case: Case) -> bool:
    return sys.platform != "win32" or not case.server.startswith("gunicorn")


def server_kind(command: str) -> str:
    """Which of our servers a documented command line starts."""
    program = command.split()[0]
    if program == "gunicorn" and "-k uvicorn_worker.UvicornWorker" in command:
        return "gunicorn-uvicorn"
    return program


def documented_commands(example: Path) -> dict[str, str]:
    """The server command lines in an example's docstring, by server kind."""
    commands: dict[str, str] = {}
    for line in example.read_text().splitlines():
        command = line.strip()
        if re.match(r"(uvicorn|hypercorn|gunicorn) \S+:\S+", command):
            kind = server_kind(command)
            assert kind not in commands, f"{example}: two {kind} commands"
            commands[kind] = command
    return commands


def argv_for(case: Case, port: int) -> list[str]:
    """The documented command of ``case`` on ``port``, run with this interpreter."""
    command = documented_commands(case.example)[case.server]
    moved = command.replace(f"--port {DOC_PORT}", f"--port {port}").replace(
        f"{HOST}:{DOC_PORT}", f"{HOST}:{port}"
    )
    assert moved != command, f"{case.example}: no port {DOC_PORT} in {command!r}"
    return [sys.executable, "-m", *shlex.split(moved), *EXTRA_FLAGS[case.server]]


def server_env() -> dict[str, str]:
    """Cloud mode with the executor's key; any other INNGEST_* setting of the caller dropped.

    No API origin is reachable (cloud syncs are in-band and this workflow sends no events),
    so the API points at the discard port rather than at Inngest Cloud."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["INNGEST_SIGNING_KEY"] = SIGNING_KEY
    env["INNGEST_BASE_URL"] = f"http://{HOST}:9"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclasses.dataclass
class Server:
    case: Case
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ready: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait(self, deadline: float) -> str:
        if not self.ready:
            try:
                wait_for_port(
                    self.port,
                    timeout=max(deadline - time.monotonic(), 0.1),
                    alive=lambda: self.process.poll() is None,
                )
            except (RuntimeError, TimeoutError) as exc:
                pytest.fail(f"{self.case}: {exc}; log:\n{self.log.read_text()}")
            self.ready = True
        return self.url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class ServerPool:
    """Every case's server, all started at once (startup is mostly imports, done in parallel)."""

    def __init__(self, cases: list[Case], logs: Path) -> None:
        self.servers: dict[Case, Server] = {}
        self.started = time.monotonic()
        env = server_env()
        try:
            for case in cases:
                port = free_port()
                log = logs / f"{case}.log"
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        argv_for(case, port),
                        cwd=EXAMPLES,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                self.servers[case] = Server(case, port, process, log)
        except BaseException:
            self.stop()
            raise

    def url(self, case: Case) -> str:
        return self.servers[case].wait(self.started + START_TIMEOUT)

    def stop(self) -> None:
        for server in self.servers.values():
            with contextlib.suppress(OSError):
                server.process.terminate()
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPool]:
    """The servers of the cases this run selected (``-k fastapi`` starts only FastAPI's),
    stopped once this module's tests are done."""
    wanted = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if isinstance(params.get("case"), Case):
            wanted.add(params["case"])
    cases = [case for case in CASES if case in wanted and runs_here(case)]
    pool = ServerPool(cases, tmp_path_factory.mktemp("e2e-servers"))
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the commands themselves -----------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_example_documents_its_servers(framework: str) -> None:
    example, wsgi = FRAMEWORKS[framework]
    servers = WSGI_SERVERS if wsgi else ASGI_SERVERS
    assert set(documented_commands(EXAMPLES / example)) == set(servers)


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=str(case),
            marks=pytest.mark.skipif(not runs_here(case), reason="gunicorn needs a POSIX OS"),
        )
        for case in CASES
    ],
)
async def test_workflow_runs_to_completion(case: Case, servers: ServerPool) -> None:
    base = servers.url(case)
    url = f"{base}/api/inngest"
    with anyio.fail_after(40):
        async with httpx.AsyncClient(timeout=10) as http:
            # Cloud mode reaches through the framework: an unsigned request is refused...
            unsigned = await http.get(url)
            assert unsigned.status_code == 401, unsigned.text
            # ...and the framework still serves its own routes.
            home = await http.get(f"{base}/")
            assert home.status_code == 200, home.text
            assert home.json() == {"shop": "open"}
            # The serve path with a trailing slash: the app= forms answer it too; a Starlette
            # Route redirects it to the registered path (the server never calls it).
            slash = await http.get(f"{url}/")
            if case.framework in ROUTE_MOUNTED:
                assert slash.status_code == 307
                assert slash.headers["location"] == url
            else:
                assert slash.status_code == 401, slash.text

        async with Executor(
            clock=VirtualClock(), signing_key=SIGNING_KEY, request_timeout=20
        ) as ex:
            app = await ex.sync(url)  # in-band: a signed PUT, a signed reply
            assert app.name == APP_ID
            assert app.url == url
            assert set(app.functions) == {f"{APP_ID}-fulfil-order", f"{APP_ID}-render-receipt"}

            ex.send({"name": "shop/order.placed", "data": {"order_id": 7, "items": [3, 4]}})
            await ex.run_until_idle()
            [run] = ex.runs_for(f"{APP_ID}-fulfil-order")
            assert run.status is RunStatus.RUNNING, run.error
            # The retry of charge-card (backoff 1 s) and the 2-s cool-down, in virtual time.
            await ex.advance(dt.timedelta(minutes=1))
            assert run.status is RunStatus.RUNNING, run.error
            assert run.step("await-shipping").status is StepStatus.WAITING

            ex.send({"name": "shop/order.shipped", "data": {"order_id": 8, "carrier": "dhl"}})
            await ex.run_until_idle()
            assert run.step("await-shipping").status is StepStatus.WAITING  # another order
            ex.send({"name": "shop/order.shipped", "data": {"order_id": 7, "carrier": "ups"}})
            await ex.run_until_idle()

    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {
        "order_id": 7,
        "status": "done",
        "stock": "reserved-7",
        "fraud": {"score": 0.02},
        "charge": "charged 70 cents",
        "carrier": "ups",
        "receipt": "order 7: 70 cents",
    }
    names = [step.name for step in run.steps]
    assert names[0] == "price-order"
    assert set(names[1:3]) == {"reserve-stock", "check-fraud"}
    assert names[3:] == ["charge-card", "cool-down", "await-shipping", "send-receipt"]
    assert all(step.status is StepStatus.COMPLETED for step in run.steps)
    assert run.step("charge-card").attempts == 1  # failed once, then succeeded
    assert run.step("charge-card").output == "charged 70 cents"
    [child] = ex.runs_for(f"{APP_ID}-render-receipt")
    assert child.status is RunStatus.COMPLETED
    assert child.parent_run_id == run.id
