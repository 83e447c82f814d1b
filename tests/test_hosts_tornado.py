"""Tornado: ``InngestWSGI`` inside ``WSGIContainer`` (thread-pool executor), routed with a
``FallbackHandler`` next to native handlers, under a real Tornado server on 127.0.0.1.

The app is examples/tornado_app.py's ``make_app``, so the example and its docs are what is
tested: GET, PUT and POST (dev and cloud mode), both example functions driven to completion by
the built-in executor and by ``drive()``, and an IOLoop that keeps answering while a sync
function blocks in a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import runpy
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("tornado")

import tornado.web

import inngest_asgi as inngest
from inngest_asgi.executor import Executor, UvicornServer, VirtualClock

from .conftest import HOST, FakeInngestAPI, free_port, wait_for_port
from .protocol import SIGNING_KEY, check_response_signature, drive, sign_body
from .test_hosts_bridge import check_shop_runs

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tornado_app.py"
ORDER = {"order_id": 7, "items": [1, 2, 3]}

_ENV = (
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


def load_example(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """Run examples/tornado_app.py afresh with exactly ``env`` as its INNGEST_* settings."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(EXAMPLE), run_name="tornado_example")


@contextlib.contextmanager
def tornado_server(make_app: Callable[[], tornado.web.Application]) -> Iterator[str]:
    """Serve ``make_app()`` with a real Tornado HTTP server, on its own IOLoop in a thread."""
    port = free_port()
    started = threading.Event()
    control: dict[str, Any] = {}

    async def serve() -> None:
        server = make_app().listen(port, address=HOST)
        control["loop"], control["stop"] = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await control["stop"].wait()
        server.stop()
        await server.close_all_connections()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name=f"tornado-{port}")
    thread.start()
    try:
        assert started.wait(10), "tornado did not start"
        wait_for_port(port, alive=thread.is_alive)
        yield f"http://{HOST}:{port}"
    finally:
        if "loop" in control:
            control["loop"].call_soon_threadsafe(control["stop"].set)
        thread.join(timeout=10)
        assert not thread.is_alive(), "tornado did not stop"


# --- the example, end to end through the executor ---------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_example_runs_both_functions_through_the_executor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with (
        Executor(clock=VirtualClock()) as ex,
        UvicornServer(ex.api) as api,
    ):
        example = load_example(
            monkeypatch, INNGEST_DEV="1", INNGEST_API_BASE_URL=api.url,
            INNGEST_EVENT_API_BASE_URL=api.url,
        )  # fmt: skip
        with tornado_server(
            lambda: example["make_app"](example["client"], example["functions"])
        ) as url:
            app = await ex.sync(f"{url}/api/inngest")
            assert app.url == f"{url}/api/inngest"
            assert app.framework == "wsgi"
            ex.send([
                {"name": "shop/order.placed", "data": ORDER},
                {"name": "shop/order.refunded", "data": ORDER},
            ])  # fmt: skip
            await ex.run_until_idle()
            await ex.advance(2)  # the cool-down sleeps
            await ex.run_until_idle()
    check_shop_runs(ex, "shop-tornado")


# --- GET, PUT and POST over real sockets ------------------------------------------------------


@pytest.fixture
def dev_example(monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI) -> dict[str, Any]:
    return load_example(monkeypatch, INNGEST_DEV="1", INNGEST_API_BASE_URL=inngest_api.url)


@pytest.fixture
def cloud_example(monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI) -> dict[str, Any]:
    return load_example(
        monkeypatch, INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_API_BASE_URL=inngest_api.url
    )


def serve_example(example: dict[str, Any]) -> contextlib.AbstractContextManager[str]:
    return tornado_server(lambda: example["make_app"](example["client"], example["functions"]))


def test_dev_mode_get_put_post(dev_example: dict[str, Any], inngest_api: FakeInngestAPI) -> None:
    with serve_example(dev_example) as url, httpx.Client(base_url=url, timeout=30) as http:
        inspect = http.get("/api/inngest")
        assert inspect.status_code == 200
        assert inspect.json()["function_count"] == 2
        assert inspect.headers["x-inngest-framework"] == "wsgi"

        sync = http.put("/api/inngest", headers={"x-inngest-server-kind": "dev"})
        assert sync.status_code == 200, sync.text
        [registration] = inngest_api.registrations
        body = registration.json()
        assert body["url"] == f"{url}/api/inngest"
        assert {fn["id"] for fn in body["functions"]} == {
            "shop-tornado-process-order",
            "shop-tornado-refund-order",
        }

        event = {"name": "shop/order.placed", "data": ORDER}
        order = drive(http, "shop-tornado-process-order", event=event)
        assert (order.status, order.output["receipt"]) == (200, "receipt for 60 cents")
        assert [op["op"] for op in order.ops] == ["StepRun", "StepRun", "Sleep", "StepRun"]
        refund = drive(http, "shop-tornado-refund-order", event=event)
        assert (refund.status, refund.output["note"]) == (200, "refunded 60 cents")

        # The native handler next to it, and the optional trailing slash of the route.
        assert http.get("/health").json() == {"ok": True}
        assert http.get("/api/inngest/").status_code == 200


def test_cloud_mode_signed_requests(
    cloud_example: dict[str, Any], inngest_api: FakeInngestAPI
) -> None:
    with serve_example(cloud_example) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/api/inngest").status_code == 401
        signed = http.get(
            "/api/inngest", headers={"x-inngest-signature": sign_body(b"", SIGNING_KEY)}
        )
        assert signed.status_code == 200
        assert signed.json()["authentication_succeeded"] is True
        check_response_signature(signed, SIGNING_KEY)

        in_band = b'{"url":"https://shop.example.com/api/inngest"}'
        sync = http.put(
            "/api/inngest",
            content=in_band,
            headers={
                "content-type": "application/json",
                "x-inngest-sync-kind": "in_band",
                "x-inngest-server-kind": "cloud",
                "x-inngest-signature": sign_body(in_band, SIGNING_KEY),
            },
        )
        assert sync.status_code == 200, sync.text
        check_response_signature(sync, SIGNING_KEY)
        assert sync.json()["url"] == "https://shop.example.com/api/inngest"

        event = {"name": "shop/order.refunded", "data": ORDER}
        run = drive(http, "shop-tornado-refund-order", event=event, signing_key=SIGNING_KEY)
        assert run.status == 200
        assert run.output == {"order_id": 7, "amount": 60, "note": "refunded 60 cents"}
        unsigned = http.post(
            "/api/inngest", params={"fnId": "shop-tornado-refund-order", "stepId": "step"}
        )
        assert unsigned.status_code == 401


# --- the IOLoop stays free while sync user code blocks ----------------------------------------


def test_ioloop_answers_while_a_sync_step_blocks(
    monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI
) -> None:
    example = load_example(monkeypatch, INNGEST_DEV="1", INNGEST_API_BASE_URL=inngest_api.url)
    client: inngest.Inngest = example["client"]
    entered, release = threading.Event(), threading.Event()

    def wait_for_release() -> str:
        entered.set()
        assert release.wait(30), "never released"
        return "released"

    @client.create_function(fn_id="blocker", trigger=inngest.TriggerEvent(event="t/block"))
    def blocker(ctx: inngest.ContextSync) -> str:
        return ctx.step.run("block", wait_for_release)

    functions = [*example["functions"], blocker]
    with (
        tornado_server(lambda: example["make_app"](client, functions)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        result: list[Any] = []
        caller = threading.Thread(target=lambda: result.append(drive(http, "shop-tornado-blocker")))
        caller.start()
        try:
            assert entered.wait(10), "the blocking step never started"
            # The step holds one WSGI worker thread; the IOLoop and the other workers are free.
            started = time.monotonic()
            assert http.get("/health").json() == {"ok": True}
            assert http.get("/api/inngest").status_code == 200
            other = drive(http, "shop-tornado-refund-order", event={"name": "x", "data": ORDER})
            assert other.status == 200
            assert time.monotonic() - started < 10
            assert caller.is_alive(), "the blocked call finished early"
        finally:
            release.set()
            caller.join(timeout=30)
        [run] = result
        assert (run.status, run.output) == (200, "released")
