"""Starlette: the shop workflow (shop_workflow.py) served on ``/api/inngest`` by a ``Route``.

Try it with the built-in executor, from this directory::

    pip install "inngest-asgi[dev]" starlette
    inngest-asgi dev starlette_app:app \\
        --send '{"name": "shop/order.placed", "data": {"order_id": 7, "items": [3, 4]}}' \\
        --send '{"name": "shop/order.shipped", "data": {"order_id": 7, "carrier": "ups"}}' \\
        --exit-when-done --timeout 60

Serve it with any ASGI server (set INNGEST_SIGNING_KEY in production, INNGEST_DEV=1 locally)::

    uvicorn starlette_app:app --host 127.0.0.1 --port 8000
    hypercorn starlette_app:app --bind 127.0.0.1:8000
    gunicorn starlette_app:app -k uvicorn_worker.UvicornWorker --bind 127.0.0.1:8000

Documented in docs/frameworks/starlette.md; run end to end by tests/test_e2e_frameworks.py.
"""

from __future__ import annotations

from shop_workflow import client, functions
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import inngest_asgi as inngest


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"shop": "open"})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/api/inngest", inngest.InngestASGI(client, functions)),
    ]
)
