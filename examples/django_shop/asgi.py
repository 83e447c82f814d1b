"""ASGI entry point: Django behind ``InngestASGI``. From ``examples/`` (set INNGEST_SIGNING_KEY
in production, INNGEST_DEV=1 locally)::

    uvicorn django_shop.asgi:application --host 127.0.0.1 --port 8000
    hypercorn django_shop.asgi:application --bind 127.0.0.1:8000
    gunicorn django_shop.asgi:application -k uvicorn_worker.UvicornWorker --bind 127.0.0.1:8000
"""

import os

from django.core.asgi import get_asgi_application
from shop_workflow import client, functions

import inngest_asgi as inngest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_shop.settings")

application = inngest.InngestASGI(client, functions, app=get_asgi_application())
