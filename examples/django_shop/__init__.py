"""Django: one project serving the shop workflow (shop_workflow.py) under ASGI and WSGI.

``asgi.py`` wraps Django's ASGI application in ``InngestASGI``; ``wsgi.py`` wraps its WSGI
application in ``InngestWSGI``. Requests to ``/api/inngest`` never reach Django, so no URL
pattern, CSRF exemption or ``APPEND_SLASH`` change is needed. Run it from ``examples/``::

    pip install "inngest-asgi[dev]" django
    inngest-asgi dev django_shop.asgi:application \\
        --send '{"name": "shop/order.placed", "data": {"order_id": 7, "items": [3, 4]}}' \\
        --send '{"name": "shop/order.shipped", "data": {"order_id": 7, "carrier": "ups"}}' \\
        --exit-when-done --timeout 60

``python -m django runserver --settings django_shop.settings`` serves the WSGI side
(``WSGI_APPLICATION``); asgi.py and wsgi.py show the production commands.
Documented in docs/frameworks/django.md; run end to end by tests/test_e2e_frameworks.py.
"""
