"""Quart: the shop workflow (shop_workflow.py) wrapped around ``app.asgi_app``.

Try it with the built-in executor, from this directory::

    pip install "inngest-asgi[dev]" quart
    inngest-asgi dev quart_app:app \\
        --send '{"name": "shop/order.placed", "data": {"order_id": 7, "items": [3, 4]}}' \\
        --send '{"name": "shop/order.shipped", "data": {"order_id": 7, "carrier": "ups"}}' \\
        --exit-when-done --timeout 60

Serve it with any ASGI server, or ``quart --app quart_app run`` (set INNGEST_SIGNING_KEY in
production, INNGEST_DEV=1 locally)::

    uvicorn quart_app:app --host 127.0.0.1 --port 8000
    hypercorn quart_app:app --bind 127.0.0.1:8000
    gunicorn quart_app:app -k uvicorn_worker.UvicornWorker --bind 127.0.0.1:8000

Documented in docs/frameworks/quart.md; run end to end by tests/test_e2e_frameworks.py.
"""

from __future__ import annotations

from quart import Quart
from shop_workflow import client, functions

import inngest_asgi as inngest

app = Quart(__name__)


@app.get("/")
async def home() -> dict[str, str]:
    return {"shop": "open"}


app.asgi_app = inngest.InngestASGI(client, functions, app=app.asgi_app)  # type: ignore[method-assign]
