"""FastAPI: the shop workflow (shop_workflow.py) served on ``/api/inngest`` next to FastAPI routes.

Try it with the built-in executor, from this directory::

    pip install "inngest-asgi[dev]" fastapi
    inngest-asgi dev fastapi_app:app \\
        --send '{"name": "shop/order.placed", "data": {"order_id": 7, "items": [3, 4]}}' \\
        --send '{"name": "shop/order.shipped", "data": {"order_id": 7, "carrier": "ups"}}' \\
        --exit-when-done --timeout 60

Serve it with any ASGI server (set INNGEST_SIGNING_KEY in production, INNGEST_DEV=1 locally)::

    uvicorn fastapi_app:app --host 127.0.0.1 --port 8000
    hypercorn fastapi_app:app --bind 127.0.0.1:8000
    gunicorn fastapi_app:app -k uvicorn_worker.UvicornWorker --bind 127.0.0.1:8000

Documented in docs/frameworks/fastapi.md; run end to end by tests/test_e2e_frameworks.py.
"""

from __future__ import annotations

from fastapi import FastAPI
from shop_workflow import client, functions

import inngest_asgi as inngest

app = FastAPI()


@app.get("/")
def home() -> dict[str, str]:
    return {"shop": "open"}


app.add_route("/api/inngest", inngest.InngestASGI(client, functions))
