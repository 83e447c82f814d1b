"""WSGI entry point: Django behind ``InngestWSGI``. From ``examples/`` (set INNGEST_SIGNING_KEY
in production, INNGEST_DEV=1 locally)::

    gunicorn django_shop.wsgi:application --bind 127.0.0.1:8000
"""

import os

from django.core.wsgi import get_wsgi_application
from shop_workflow import client, functions

import inngest_asgi as inngest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_shop.settings")

application = inngest.InngestWSGI(client, functions, app=get_wsgi_application())
