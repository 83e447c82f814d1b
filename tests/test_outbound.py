"""Outbound calls against a local HTTP server playing the Inngest API: ``use_api`` fetches of
large runs, and event sends with retries, backoff and an idempotency seed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import inngest_asgi as inngest
from inngest_asgi._engine import hash_step_id

from .conftest import free_port, uvicorn_server
from .core import handler, json, send
from .protocol import SIGNING_KEY, SIGNING_KEY_FALLBACK, sign_body

HASH_FALLBACK = "8d2e4d6374b604562a5d8c04a4dfc035fa499ec7ad373bd48bd2bd62ca75c3b5"
trigger = inngest.TriggerEvent(event="app/hello")


@dataclasses.dataclass
class Api:
    """What the local API answers, and what it saw."""

    url: str = ""
    seen: list[tuple[str, str, dict[str, str]]] = dataclasses.field(default_factory=list)
    sent: list[Any] = dataclasses.field(default_factory=list)
    actions: Any = dataclasses.field(default_factory=dict)
    batch: Any = dataclasses.field(default_factory=list)
    fail_sends: int = 0
    send_status: int = 500
    accept_bearer: str | None = None

    def reset(self) -> None:
        self.seen.clear()
        self.sent.clear()
        self.actions, self.batch = {}, []
        self.fail_sends, self.send_status, self.accept_bearer = 0, 500, None


@pytest.fixture(scope="module")
def api_server() -> Iterator[Api]:
    api = Api()

    def record(request: Request, body: bytes = b"") -> JSONResponse | None:
        api.seen.append((request.method, request.url.path, dict(request.headers)))
        bearer = request.headers.get("authorization")
        if api.accept_bearer is not None and bearer != api.accept_bearer:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None

    async def actions(request: Request) -> JSONResponse:
        return record(request) or JSONResponse(api.actions)

    async def batch(request: Request) -> JSONResponse:
        return record(request) or JSONResponse(api.batch)

    async def events(request: Request) -> JSONResponse:
        record(request, await request.body())
        if api.fail_sends > 0:
            api.fail_sends -= 1
            return JSONResponse({"error": "try later"}, status_code=api.send_status)
        api.sent.append(await request.json())
        count = len(api.sent[-1])
        return JSONResponse({"ids": [f"id-{i}" for i in range(count)], "status": 200})

    app = Starlette(
        routes=[
            Route("/v0/runs/{run_id}/actions", actions),
            Route("/v0/runs/{run_id}/batch", batch),
            Route("/e/{key}", events, methods=["POST"]),
        ]
    )
    with uvicorn_server(app) as url:
        api.url = url
        yield api


@pytest.fixture
def api(api_server: Api) -> Iterator[Api]:
    api_server.reset()
    yield api_server
    api_server.reset()


def _fn(client: inngest.Inngest) -> inngest.Function[Any]:
    @client.create_function(fn_id="big", trigger=trigger)
    async def big(ctx: inngest.Context) -> list[Any]:
        loaded = await ctx.step.run("load", lambda: "fresh")
        return [loaded, [e.name for e in ctx.events], ctx.event.data]

    return big


USE_API_BODY = (
    b'{"event":{"name":"app/hello","data":{"n":1}},"events":[],"steps":{},'
    b'"ctx":{"run_id":"01HRUN","attempt":0,"use_api":true},"use_api":true}'
)


def test_use_api_loads_steps_and_batch(api: Api) -> None:
    client = inngest.Inngest(
        app_id="outbound",
        is_production=True,
        signing_key=SIGNING_KEY,
        signing_key_fallback=SIGNING_KEY_FALLBACK,
        api_base_url=api.url,
    )
    serve = handler(client, [_fn(client)])
    api.actions = {hash_step_id("load"): {"data": "from-api"}}
    api.batch = [{"name": "app/hello", "data": {"n": 1}}, {"name": "app/again", "data": {}}]
    api.accept_bearer = f"Bearer signkey-test-{HASH_FALLBACK}"  # only the fallback works
    headers = {"x-inngest-signature": sign_body(USE_API_BODY, SIGNING_KEY)}
    response = send(serve, "POST", "fnId=outbound-big&stepId=step", USE_API_BODY, headers)
    assert response.status == 200
    assert json(response) == ["from-api", ["app/hello", "app/again"], {"n": 1}]
    paths = [path for _, path, _ in api.seen]
    assert paths.count("/v0/runs/01HRUN/actions") == 2  # primary refused, then the fallback
    assert paths.count("/v0/runs/01HRUN/batch") == 2


def test_failed_use_api_fetch_is_retriable(api: Api) -> None:
    client = inngest.Inngest(app_id="outbound", is_production=False, api_base_url=api.url)
    serve = handler(client, [_fn(client)])
    api.actions = ["not", "an", "object"]
    response = send(serve, "POST", "fnId=outbound-big&stepId=step", USE_API_BODY)
    assert response.status == 500
    assert "x-inngest-no-retry" not in response.headers
    assert json(response)["code"] == "api_fetch_failed"

    gone = inngest.Inngest(
        app_id="outbound", is_production=False, api_base_url=f"http://127.0.0.1:{free_port()}"
    )
    response = send(handler(gone, [_fn(gone)]), "POST", "fnId=outbound-big", USE_API_BODY)
    assert (response.status, json(response)["code"]) == (500, "api_fetch_failed")
    assert "x-inngest-no-retry" not in response.headers


def _sender(api: Api) -> inngest.Inngest:
    return inngest.Inngest(app_id="outbound", is_production=False, event_api_base_url=api.url)


def test_send_retries_5xx_with_the_same_seed(api: Api) -> None:
    api.fail_sends = 2
    events = [inngest.Event(name="app/a"), inngest.Event(name="app/b", data={"x": 1})]
    assert _sender(api).send_sync(events) == ["id-0", "id-1"]
    seeds = {headers["x-inngest-event-id-seed"] for _, path, headers in api.seen}
    assert len(api.seen) == 3
    assert len(seeds) == 1  # a retried send is the same send: the server dedupes by the seed


def test_send_does_not_retry_4xx(api: Api) -> None:
    api.fail_sends, api.send_status = 1, 400
    with pytest.raises(inngest.SendEventsError, match="try later"):
        anyio.run(_sender(api).send, inngest.Event(name="app/a"))
    assert len(api.seen) == 1


def test_send_gives_up_after_five_attempts(api: Api) -> None:
    api.fail_sends = 10
    with pytest.raises(inngest.SendEventsError, match="after 5 attempts"):
        _sender(api).send_sync(inngest.Event(name="app/a"))
    assert len(api.seen) == 5


def test_send_without_event_key_in_cloud_mode_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INNGEST_EVENT_KEY", raising=False)
    client = inngest.Inngest(app_id="outbound", is_production=True)
    with pytest.raises(inngest.SendEventsError, match="INNGEST_EVENT_KEY"):
        client.send_sync(inngest.Event(name="app/a"))


def test_send_hooks_see_the_events_and_the_ids(api: Api) -> None:
    seen: list[Any] = []

    class Stamp(inngest.Middleware):
        async def before_send_events(self, events: list[inngest.Event]) -> None:
            for event in events:
                event.data["stamped"] = True

        def after_send_events(self, result: inngest.SendEventsResult) -> None:
            seen.append(result.ids)

    client = inngest.Inngest(
        app_id="outbound", is_production=False, event_api_base_url=api.url, middleware=[Stamp]
    )
    assert anyio.run(client.send, [inngest.Event(name="app/a")]) == ["id-0"]
    assert client.send_sync(inngest.Event(name="app/b")) == ["id-0"]
    assert seen == [["id-0"], ["id-0"]]
    assert [batch[0]["data"] for batch in api.sent] == [{"stamped": True}] * 2
    assert client.send_sync(inngest.Event(name="app/c"), skip_middleware=True) == ["id-0"]
    assert len(seen) == 2
