"""The URL an app registers when a router rewrites the path it hands on (Litestar mounts)."""

from __future__ import annotations

from typing import Any

import pytest

import inngest_asgi as inngest

from .conftest import FakeInngestAPI

litestar = pytest.importorskip("litestar")
litestar_testing = pytest.importorskip("litestar.testing")


def test_litestar_mount_registers_the_path_the_client_used(inngest_api: FakeInngestAPI) -> None:
    from litestar.handlers import asgi
    from litestar.types import Receive, Scope, Send

    client = inngest.Inngest(app_id="mounted", is_production=False, api_base_url=inngest_api.url)

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="app/e"))
    def f(ctx: inngest.ContextSync) -> None:
        return None

    served = inngest.InngestASGI(client, [f])

    @asgi("/api/inngest", is_mount=True, copy_scope=True)
    async def mount(scope: Scope, receive: Receive, send: Send) -> None:
        await served(scope, receive, send)  # type: ignore[arg-type]

    app: Any = litestar.Litestar(route_handlers=[mount])
    with litestar_testing.TestClient(app) as http:
        response = http.put("/api/inngest")
    assert response.status_code == 200, response.text
    (registration,) = inngest_api.registrations
    assert registration.json()["url"] == "http://testserver.local/api/inngest"
