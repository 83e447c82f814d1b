"""Out-of-band sync (PUT) through every serving path, against a local server playing the
Inngest API (``conftest.FakeInngestAPI``): the registered URL, body and headers, and failures
reported as failures."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from inngest_asgi import Inngest, InngestASGI, InngestWSGI, TriggerEvent
from tests.apps import serving

from .conftest import FakeInngestAPI, TestClient, Transport, uvicorn_server
from .protocol import call_body

APP = serving.APP_ID
PRIMARY_BEARER = (
    "Bearer signkey-test-4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837"
)
FALLBACK_BEARER = (
    "Bearer signkey-test-8d2e4d6374b604562a5d8c04a4dfc035fa499ec7ad373bd48bd2bd62ca75c3b5"
)


def registered_url(transport: Transport, mount: str = "dev") -> str:
    """Where a sync through ``transport`` should point the server.

    Starlette's ``Mount("/api/inngest", ...)`` answers ``/api/inngest`` with a 307 to
    ``/api/inngest/``; the PUT follows it, so the app registers the slashed URL, the one that
    does not redirect. Everything else serves the path as given.
    """
    slash = "/" if transport.name in ("starlette", "fastapi") else ""
    return transport.url(mount) + slash


def put(transport: Transport, mount: str = "dev", **kwargs: Any) -> httpx.Response:
    return transport.http.put(transport.path(mount), **kwargs)


def test_out_of_band_sync(transport: Transport, inngest_api: FakeInngestAPI) -> None:
    response = put(
        transport, params={"deployId": "dep-123"}, headers={"x-inngest-server-kind": "dev"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-inngest-sync-kind"] == "out_of_band"
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    assert response.json() == {"message": "Successfully synced.", "modified": True}

    (sent,) = inngest_api.registrations
    assert sent.query == {"deployId": "dep-123"}
    assert sent.headers["x-inngest-expected-server-kind"] == "dev"
    assert sent.headers["x-inngest-sdk"] == response.headers["x-inngest-sdk"]
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers  # dev mode has no key

    body = sent.json()
    url = registered_url(transport)
    framework = "wsgi" if transport.wsgi else "asgi"
    assert body["appName"] == APP
    assert body["deployType"] == "ping"
    assert body["framework"] == framework
    assert body["sdk"] == response.headers["x-inngest-sdk"]
    assert body["url"] == url
    assert "dep-123" not in sent.body.decode()  # deployId never reaches registered URLs

    functions = {f["id"]: f for f in body["functions"]}
    assert set(functions) == {
        f"{APP}-{f.local_id}"
        for f in serving.make_functions(Inngest(app_id=APP, is_production=False))
    }
    assert functions[f"{APP}-hello"] == {
        "id": f"{APP}-hello",
        "name": "Hello",
        "triggers": [
            {"event": "app/hello", "expression": "event.data.n > 0"},
            {"cron": "0 0 * * *"},
        ],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {"type": "http", "url": f"{url}?fnId={APP}-hello&stepId=step"},
                "retries": {"attempts": 3},
            }
        },
    }
    for fn_id, config in functions.items():
        runtime = urlsplit(config["steps"]["step"]["runtime"]["url"])
        assert runtime._replace(query="").geturl() == url
        assert parse_qs(runtime.query) == {"fnId": [fn_id], "stepId": ["step"]}
    assert "retries" not in functions[f"{APP}-sentinel"]["steps"]["step"]


def test_registered_url_is_served_without_redirect(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    """The server calls the registered URL as is: it must reach the function directly."""
    assert put(transport).status_code == 200
    (sent,) = inngest_api.registrations
    hello = next(f for f in sent.json()["functions"] if f["id"] == f"{APP}-hello")
    runtime = urlsplit(hello["steps"]["step"]["runtime"]["url"])
    response = transport.http.post(
        f"{runtime.path}?{runtime.query}", json=call_body(), follow_redirects=False
    )
    assert response.status_code == 206, response.text
    assert response.json()[0]["displayName"] == "my-step"


def test_sync_without_server_kind_sends_no_expectation(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    assert put(transport).status_code == 200
    (sent,) = inngest_api.registrations
    assert "x-inngest-expected-server-kind" not in sent.headers
    assert sent.query == {}


def test_sync_from_the_wrong_kind_of_server(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    response = put(transport, headers={"x-inngest-server-kind": "cloud"})
    assert response.status_code == 400
    assert response.json()["code"] == "server_kind_mismatch"
    assert inngest_api.requests == []


def test_cloud_sync_sends_the_hashed_key(transport: Transport, inngest_api: FakeInngestAPI) -> None:
    response = put(transport, "cloud", headers={"x-inngest-server-kind": "cloud"})
    assert response.status_code == 200, response.text
    assert response.json()["modified"] is True
    assert "x-inngest-signature" not in response.headers  # the PUT was not signed
    (sent,) = inngest_api.registrations
    assert sent.headers["authorization"] == PRIMARY_BEARER
    assert sent.headers["x-inngest-expected-server-kind"] == "cloud"
    assert sent.json()["url"] == registered_url(transport, "cloud")


def test_cloud_sync_retries_with_the_fallback_key(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    inngest_api.accept_bearer = FALLBACK_BEARER
    response = put(transport, "cloud")
    assert response.status_code == 200, response.text
    bearers = [r.headers["authorization"] for r in inngest_api.registrations]
    assert bearers == [PRIMARY_BEARER, FALLBACK_BEARER]


def test_cloud_sync_refused_by_the_api_without_fallback(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    inngest_api.accept_bearer = FALLBACK_BEARER
    response = put(transport, "strict")
    assert response.status_code == 500
    assert response.json()["code"] == "registration_failed"
    assert "401" in response.json()["message"]
    assert [r.headers["authorization"] for r in inngest_api.registrations] == [PRIMARY_BEARER]


API_FAILURES = {
    "server-error": (500, {"error": "internal failure"}),
    "bad-request": (400, {"error": "bad app config"}),
    "unauthorized": (401, {"error": "unauthorized"}),
    "ok-false": (200, {"ok": False, "error": "could not sync"}),
    "not-json": (502, b"<html>bad gateway</html>"),
    "json-not-object": (200, b"[]"),
}


@pytest.mark.parametrize("reply", API_FAILURES.values(), ids=API_FAILURES.keys())
def test_failed_registration_is_a_failure(
    transport: Transport, inngest_api: FakeInngestAPI, reply: tuple[int, Any]
) -> None:
    inngest_api.reply(*reply)
    response = put(transport)
    assert response.status_code == 500, response.text
    assert response.headers["x-inngest-sdk"].startswith("inngest-asgi:v")
    body = response.json()
    assert body["code"] == "registration_failed"
    assert "Traceback" not in response.text
    if isinstance(reply[1], dict):
        assert reply[1]["error"] in body["message"]
    assert len(inngest_api.registrations) == 1


def test_api_dropping_the_connection_is_a_failure(
    transport: Transport, inngest_api: FakeInngestAPI
) -> None:
    inngest_api.drop = True
    response = put(transport)
    assert response.status_code == 500
    assert response.json()["code"] == "registration_failed"
    assert len(inngest_api.registrations) == 1


# --- unreachable API, serve_origin / serve_path: apps built per test ------------------------


def sync_app(**options: Any) -> Inngest:
    return Inngest(app_id="sync-app", is_production=False, **options)


def one_function(client: Inngest) -> list[Any]:
    @client.create_function(fn_id="only", trigger=TriggerEvent(event="app/only"))
    async def only(ctx: Any) -> str:
        return "only"

    return [only]


def asgi_client(client: Inngest) -> TestClient:
    return TestClient(InngestASGI(client, one_function(client)))


def wsgi_client(client: Inngest) -> httpx.Client:
    app = InngestWSGI(client, one_function(client))
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")


SHELLS = {"asgi": asgi_client, "wsgi": wsgi_client}


@pytest.mark.parametrize("shell", SHELLS.values(), ids=SHELLS.keys())
def test_unreachable_api_is_a_failure(shell: Any, dead_url: str) -> None:
    with shell(sync_app(api_base_url=dead_url)) as http:
        response = http.put("/api/inngest")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "registration_failed"
    assert dead_url in body["message"]
    assert "Traceback" not in response.text


def synced_url(
    http: httpx.Client, api: FakeInngestAPI, path: str = "/api/inngest", *, full: bool = False
) -> str:
    """Sync through ``http``; the app URL it registered (``full``: serving.make_functions)."""
    response = http.put(path)
    assert response.status_code == 200, response.text
    (sent,) = api.registrations
    body = sent.json()
    for function in body["functions"]:
        assert function["steps"]["step"]["runtime"]["url"] == (
            f"{body['url']}?fnId={function['id']}&stepId=step"
        )
    assert len(body["functions"]) == (12 if full else 1)
    return str(body["url"])


OVERRIDES = {
    "none": ({}, "http://testserver/api/inngest"),
    "origin": (
        {"serve_origin": "https://public.example.com"},
        "https://public.example.com/api/inngest",
    ),
    "origin-without-scheme": (
        {"serve_origin": "public.example.com"},
        "https://public.example.com/api/inngest",
    ),
    "origin-with-port": (
        {"serve_origin": "http://10.0.0.5:8080"},
        "http://10.0.0.5:8080/api/inngest",
    ),
    "path": ({"serve_path": "/behind/proxy"}, "http://testserver/behind/proxy"),
    "both": (
        {"serve_origin": "https://public.example.com", "serve_path": "/x/inngest"},
        "https://public.example.com/x/inngest",
    ),
}


@pytest.mark.parametrize("shell", SHELLS.values(), ids=SHELLS.keys())
@pytest.mark.parametrize(("options", "expected"), OVERRIDES.values(), ids=OVERRIDES.keys())
def test_serve_origin_and_path_override_the_request_url(
    shell: Any, inngest_api: FakeInngestAPI, options: dict[str, str], expected: str
) -> None:
    """The origin replaces scheme and host of the request URL; the path replaces its path."""
    with shell(sync_app(api_base_url=inngest_api.url, **options)) as http:
        assert synced_url(http, inngest_api) == expected


def test_serve_origin_and_path_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI
) -> None:
    monkeypatch.setenv("INNGEST_SERVE_ORIGIN", "https://env.example.com")
    monkeypatch.setenv("INNGEST_SERVE_PATH", "/env/inngest")
    with asgi_client(sync_app(api_base_url=inngest_api.url)) as http:
        assert synced_url(http, inngest_api) == "https://env.example.com/env/inngest"


def test_code_options_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI
) -> None:
    monkeypatch.setenv("INNGEST_SERVE_ORIGIN", "https://env.example.com")
    monkeypatch.setenv("INNGEST_SERVE_PATH", "/env/inngest")
    client = sync_app(
        api_base_url=inngest_api.url, serve_origin="https://code.example.com", serve_path="/code"
    )
    with asgi_client(client) as http:
        assert synced_url(http, inngest_api) == "https://code.example.com/code"


def test_api_base_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI
) -> None:
    monkeypatch.setenv("INNGEST_API_BASE_URL", inngest_api.url)
    with asgi_client(sync_app()) as http:
        assert synced_url(http, inngest_api) == "http://testserver/api/inngest"


def test_serve_path_is_used_verbatim_under_a_mount(inngest_api: FakeInngestAPI) -> None:
    """``serve_path`` is taken as given: under Starlette's mount, ``/api/inngest`` (no slash)
    is a URL Starlette answers with a redirect, so give the slashed path or none at all."""
    client = sync_app(api_base_url=inngest_api.url, serve_path="/api/inngest")
    app = Starlette(routes=[Mount("/api/inngest", InngestASGI(client, one_function(client)))])
    with TestClient(app) as http:
        url = synced_url(http, inngest_api)
        assert url == "http://testserver/api/inngest"
        assert http.get(urlsplit(url).path, follow_redirects=False).status_code == 307


# --- a root path (uvicorn --root-path, or a wrap mounted under a prefix) -------------------


def test_wrap_under_uvicorn_root_path(inngest_api: FakeInngestAPI) -> None:
    """Behind a proxy that strips ``/prefix`` (``uvicorn --root-path /prefix``), the wrap
    still serves its path, and registers the public URL, prefix included."""
    app, _ = serving.asgi_wrap(inngest_api.url)
    with uvicorn_server(app, root_path="/prefix") as url, httpx.Client(base_url=url) as http:
        assert http.get("/").text == "home"
        assert http.get("/api/inngest").json()["mode"] == "dev"
        assert synced_url(http, inngest_api, full=True) == f"{url}/prefix/api/inngest"


def test_wrap_mounted_under_a_prefix(inngest_api: FakeInngestAPI) -> None:
    app, _ = serving.asgi_wrap(inngest_api.url)
    with TestClient(Starlette(routes=[Mount("/sub", app)])) as http:
        assert http.get("/sub/").text == "home"
        assert http.get("/sub/api/inngest").json()["mode"] == "dev"
        assert synced_url(http, inngest_api, "/sub/api/inngest", full=True) == (
            "http://testserver/sub/api/inngest"
        )


def test_wsgi_wrap_mounted_under_a_prefix(inngest_api: FakeInngestAPI) -> None:
    """Under a WSGI dispatcher the prefix is in ``SCRIPT_NAME``: the wrap routes on
    ``PATH_INFO`` and registers the full URL."""
    app = DispatcherMiddleware(
        serving.plain_home, {"/sub": serving.wsgi_chain(inngest_api.url, serving.plain_home)}
    )
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        assert http.get("/sub/").text == "home"
        assert http.get("/sub/api/inngest").json()["mode"] == "dev"
        assert synced_url(http, inngest_api, "/sub/api/inngest", full=True) == (
            "http://testserver/sub/api/inngest"
        )
