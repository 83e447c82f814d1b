"""Litestar: the shop workflow (shop_workflow.py) in front of a Litestar app (``app=``).

Try it with the built-in executor, from this directory::

    pip install "inngest-asgi[dev]" litestar
    inngest-asgi dev litestar_app:app \\
        --send '{"name": "shop/order.placed", "data": {"order_id": 7, "items": [3, 4]}}' \\
        --send '{"name": "shop/order.shipped", "data": {"order_id": 7, "carrier": "ups"}}' \\
        --exit-when-done --timeout 60

Serve it with any ASGI server (set INNGEST_SIGNING_KEY in production, INNGEST_DEV=1 locally)::

    uvicorn litestar_app:app --host 127.0.0.1 --port 8000
    hypercorn litestar_app:app --bind 127.0.0.1:8000
    gunicorn litestar_app:app -k uvicorn_worker.UvicornWorker --bind 127.0.0.1:8000

Documented in docs/frameworks/litestar.md; run end to end by tests/test_e2e_frameworks.py.
"""

from __future__ import annotations

from litestar import Litestar, get
from shop_workflow import client, functions

import inngest_asgi as inngest


@get("/")
async def home() -> dict[str, str]:
    return {"shop": "open"}


litestar_app = Litestar(route_handlers=[home])
app = inngest.InngestASGI(client, functions, app=litestar_app)
