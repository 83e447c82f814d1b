"""Minimal settings for the example project: no database, no installed apps."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "django_shop.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]  # APPEND_SLASH is on by default
DATABASES: dict[str, dict[str, str]] = {}
WSGI_APPLICATION = "django_shop.wsgi.application"
USE_TZ = True
