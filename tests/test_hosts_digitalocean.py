"""DigitalOcean Functions: ``inngest_asgi.digital_ocean.serve`` (the example in
examples/digitalocean/) driven with the events a ``web: raw`` web function receives.

The event is ``{"http": {...}}`` with ``method``, ``headers`` (lower-case names, string values,
plus the platform's ``x-forwarded-for``, ``x-forwarded-proto`` and ``x-request-id``), ``path``
(what follows the function's own URL, usually empty), ``queryString`` (raw), ``body`` and
``isBase64Encoded``; ``main`` returns ``{"statusCode", "headers", "body"}``. The context
carries ``api_host`` and ``function_name`` (``/<namespace>/<package>/<function>``), which make
the function's URL ``<api_host>/api/v1/web<function_name>``.

Sources: DigitalOcean's Functions reference ("Parameters and Responses", "HTTP Headers", the
Python runtime page's echo function for the context attributes) and DigitalOcean's answer on
``web: raw`` for the raw body and query string.
"""

from __future__ import annotations

import base64
import dataclasses
import runpy
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import inngest_asgi as inngest
from inngest_asgi.digital_ocean import serve
from inngest_asgi.executor import Executor, UvicornServer, VirtualClock

from .conftest import HOST, FakeInngestAPI, free_port
from .protocol import SIGNING_KEY, check_response_signature, drive, sign_body
from .test_hosts_bridge import (
    EventTransport,
    FunctionRuntime,
    HttpCall,
    check_shop_runs,
    event_asgi_app,
    use_env,
)

EXAMPLE = (
    Path(__file__).resolve().parent.parent
    / "examples"
    / "digitalocean"
    / "packages"
    / "shop"
    / "inngest"
    / "__main__.py"
)
ORDER = {"order_id": 7, "items": [1, 2, 3]}
API_HOST = "https://faas-nyc1-2ef2e6cc.doserverless.co"
FUNCTION_NAME = "/fn-b094417f-8a3e-4c8b-9f41-5d0e1c2a7b6d/shop/inngest"
FUNCTION_PATH = "/api/v1/web" + FUNCTION_NAME
PUBLIC_URL = API_HOST + FUNCTION_PATH


@dataclasses.dataclass
class DigitalOceanContext:
    """The attributes of the Python runtime's ``context`` argument."""

    api_host: str = API_HOST
    function_name: str = FUNCTION_NAME
    function_version: str = "0.0.1"
    namespace: str = "fn-b094417f-8a3e-4c8b-9f41-5d0e1c2a7b6d"
    activation_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    request_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    deadline: int = 1767225660000
    api_key: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def make_to_event(*, base64_body: bool, api_host: str = API_HOST) -> Any:
    def to_event(call: HttpCall) -> tuple[dict[str, Any], Any]:
        path = call.path
        assert path.startswith(FUNCTION_PATH), path
        headers = {
            "accept": "*/*",
            "accept-encoding": "gzip",
            "user-agent": "inngest",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-proto": "https",
            "x-request-id": uuid.uuid4().hex,
        }
        for name, value in call.headers:
            if name.lower() != "host":
                headers[name.lower()] = value
        http: dict[str, Any] = {
            "headers": headers,
            "method": call.method,
            "path": path[len(FUNCTION_PATH) :],
            "queryString": call.query,
            "body": "",
            "isBase64Encoded": False,
        }
        if call.body:
            if base64_body:
                http["body"] = base64.b64encode(call.body).decode()
                http["isBase64Encoded"] = True
            else:
                http["body"] = call.body.decode()
        return {"http": http}, DigitalOceanContext(api_host=api_host)

    return to_event


def from_result(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    assert set(result) == {"statusCode", "headers", "body"}
    assert isinstance(result["body"], str)
    return result["statusCode"], list(result["headers"].items()), result["body"].encode()


def load_main() -> Any:
    return runpy.run_path(str(EXAMPLE), run_name="digitalocean_example")["main"]


@pytest.fixture(params=[False, True], ids=["text", "base64"])
def base64_body(request: pytest.FixtureRequest) -> bool:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI) -> FakeInngestAPI:
    use_env(monkeypatch, INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_API_BASE_URL=inngest_api.url)
    return inngest_api


@pytest.fixture
def do_http(base64_body: bool) -> Iterator[httpx.Client]:
    """An HTTP client whose requests reach the example as DigitalOcean events."""
    with (
        FunctionRuntime(load_main) as runtime,
        httpx.Client(
            transport=EventTransport(runtime, make_to_event(base64_body=base64_body), from_result),
            base_url=API_HOST,
        ) as http,
    ):
        yield http


def signed(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "x-inngest-signature": sign_body(body, SIGNING_KEY)}


# --- cloud mode: GET, PUT and POST with signatures --------------------------------------------


def test_cloud_get_put_post(cloud: FakeInngestAPI, do_http: httpx.Client) -> None:
    http = do_http
    unsigned = http.get(FUNCTION_PATH)
    assert unsigned.status_code == 401
    inspect = http.get(FUNCTION_PATH, headers={"x-inngest-signature": sign_body(b"", SIGNING_KEY)})
    assert inspect.status_code == 200
    check_response_signature(inspect, SIGNING_KEY)
    assert inspect.json()["framework"] == "digitalocean"
    assert inspect.headers["x-inngest-framework"] == "digitalocean"
    assert inspect.json()["function_count"] == 2

    in_band = b'{"url":"' + PUBLIC_URL.encode() + b'"}'
    sync = http.put(
        FUNCTION_PATH,
        content=in_band,
        headers={**signed(in_band), "x-inngest-sync-kind": "in_band"},
    )
    assert sync.status_code == 200, sync.text
    check_response_signature(sync, SIGNING_KEY)
    assert sync.json()["url"] == PUBLIC_URL

    out_of_band = http.put(FUNCTION_PATH, headers={"x-inngest-server-kind": "cloud"})
    assert out_of_band.status_code == 200, out_of_band.text
    [registration] = cloud.registrations
    assert registration.json()["url"] == PUBLIC_URL
    assert registration.json()["framework"] == "digitalocean"

    event = {"name": "shop/order.placed", "data": ORDER}
    order = drive(
        http, "shop-digitalocean-process-order", path=FUNCTION_PATH, event=event,
        signing_key=SIGNING_KEY,
    )  # fmt: skip
    assert order.status == 200
    assert order.output["receipt"] == "receipt for 60 cents"
    refund = drive(
        http, "shop-digitalocean-refund-order", path=FUNCTION_PATH, event=event,
        signing_key=SIGNING_KEY,
    )  # fmt: skip
    assert (refund.status, refund.output["note"]) == (200, "refunded 60 cents")

    forged = http.post(
        FUNCTION_PATH,
        params={"fnId": "shop-digitalocean-refund-order", "stepId": "step"},
        content=b"{}",
        headers={"x-inngest-signature": sign_body(b'{"a":1}', SIGNING_KEY)},
    )
    assert forged.status_code == 401


def test_serve_origin_and_path_replace_the_function_url(
    monkeypatch: pytest.MonkeyPatch, cloud: FakeInngestAPI
) -> None:
    monkeypatch.setenv("INNGEST_SERVE_ORIGIN", "jobs.example.com")
    monkeypatch.setenv("INNGEST_SERVE_PATH", "/inngest")
    with (
        FunctionRuntime(load_main) as runtime,
        httpx.Client(
            transport=EventTransport(runtime, make_to_event(base64_body=False), from_result),
            base_url=API_HOST,
        ) as http,
    ):
        assert http.put(FUNCTION_PATH).status_code == 200
    [registration] = cloud.registrations
    assert registration.json()["url"] == "https://jobs.example.com/inngest"


# --- events that are not web: raw, and other refusals -----------------------------------------


def dev_main(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    use_env(monkeypatch, INNGEST_DEV="1")
    client = inngest.Inngest(app_id="do-refusals")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="t/f"))
    def f(ctx: inngest.ContextSync) -> str:
        return threading.current_thread().name

    return serve(client, [f], **kwargs)


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({}, '"http"'),
        ({"http": "GET"}, '"http"'),
        # web: true: the query and JSON body are parsed into the event's top level.
        (
            {"http": {"headers": {}, "method": "POST", "path": ""}, "fnId": "do-refusals-f"},
            "web: raw",
        ),
        ({"http": {"headers": {}, "queryString": ""}}, "http.method"),
        ({"http": {"method": "GET", "headers": ["accept"], "queryString": ""}}, "http.headers"),
        ({"http": {"method": "POST", "queryString": "", "body": {"a": 1}}}, "raw body"),
        (
            {"http": {"method": "POST", "queryString": "", "body": "%%", "isBase64Encoded": True}},
            "base64",
        ),
    ],
)
def test_events_that_cannot_be_read_get_a_400(
    monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], needle: str
) -> None:
    result = dev_main(monkeypatch)(event, DigitalOceanContext())
    assert result["statusCode"] == 400
    assert result["headers"]["x-inngest-sdk"].startswith("inngest-asgi:v")
    assert needle in httpx.Response(200, content=result["body"]).json()["message"]


def test_a_body_over_the_limit_gets_a_413(monkeypatch: pytest.MonkeyPatch) -> None:
    main = dev_main(monkeypatch, max_body_size=10)
    for body, encoded in (("x" * 11, False), (base64.b64encode(b"x" * 11).decode(), True)):
        http = {"method": "POST", "headers": {}, "queryString": "fnId=do-refusals-f&stepId=step"}
        event = {"http": {**http, "body": body, "isBase64Encoded": encoded}}
        assert main(event, DigitalOceanContext())["statusCode"] == 413


def test_sync_code_runs_on_the_invocation_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    main = dev_main(monkeypatch)
    with FunctionRuntime(lambda: main) as runtime:
        transport = EventTransport(runtime, make_to_event(base64_body=False), from_result)
        with httpx.Client(transport=transport, base_url=API_HOST) as http:
            run = drive(http, "do-refusals-f", path=FUNCTION_PATH)
    assert (run.status, run.output) == (200, "function-runtime")


def test_without_a_context_the_url_is_a_placeholder(
    monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI
) -> None:
    use_env(monkeypatch, INNGEST_DEV="1", INNGEST_API_BASE_URL=inngest_api.url)
    client = inngest.Inngest(app_id="do-bare")
    main = serve(client, [])
    result = main({"http": {"method": "PUT", "headers": {}, "queryString": ""}}, None)
    assert result["statusCode"] == 200, result
    [registration] = inngest_api.registrations
    assert registration.json()["url"] == "https://localhost/api/v1/web"


# --- the example, end to end through the built-in executor ------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_example_through_the_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor calls a socket whose requests become DigitalOcean events; the context's
    api_host is that socket's origin, so the registered URL is the one the executor calls."""
    port = free_port()
    origin = f"http://{HOST}:{port}"
    async with (
        Executor(clock=VirtualClock()) as ex,
        UvicornServer(ex.api) as api,
    ):
        use_env(
            monkeypatch, INNGEST_DEV="1", INNGEST_API_BASE_URL=api.url,
            INNGEST_EVENT_API_BASE_URL=api.url,
        )  # fmt: skip
        with FunctionRuntime(load_main) as runtime:
            to_event = make_to_event(base64_body=True, api_host=origin)
            async with UvicornServer(event_asgi_app(runtime, to_event, from_result), port=port):
                synced = await ex.sync(origin + FUNCTION_PATH)
                assert synced.url == origin + FUNCTION_PATH
                ex.send(
                    [
                        {"name": "shop/order.placed", "data": ORDER},
                        {"name": "shop/order.refunded", "data": ORDER},
                    ]
                )
                await ex.run_until_idle()
                await ex.advance(2)  # the cool-down sleeps
                await ex.run_until_idle()
            assert all(set(e) == {"http"} for e in runtime.invocations)
    check_shop_runs(ex, "shop-digitalocean")
