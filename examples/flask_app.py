"""Flask: the shop workflow (shop_workflow.py) wrapped around ``app.wsgi_app`` (WSGI).

Try it from this directory with Flask's server or gunicorn, next to an Inngest dev server
(``npx inngest-cli@latest dev -u http://127.0.0.1:8000/api/inngest``)::

    pip install inngest-asgi flask gunicorn
    INNGEST_DEV=1 flask --app flask_app run --port 8000

Serve it with a WSGI server (set INNGEST_SIGNING_KEY in production)::

    gunicorn flask_app:app --bind 127.0.0.1:8000

Documented in docs/frameworks/flask.md; run end to end by tests/test_e2e_frameworks.py.
"""

from __future__ import annotations

from flask import Flask
from shop_workflow import client, functions

import inngest_asgi as inngest

app = Flask(__name__)


@app.get("/")
def home() -> dict[str, str]:
    return {"shop": "open"}


app.wsgi_app = inngest.InngestWSGI(client, functions, app=app.wsgi_app)  # type: ignore[method-assign]
