"""The registration payload (PROTOCOL.md §8-9): app metadata and one config per function."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._function import Function
from ._version import SDK_IDENT

__all__: list[str] = []

#: What this SDK can do beyond the basics. Connect is not offered.
CAPABILITIES = {"in_band_sync": "v1", "trust_probe": "v1"}


def app_url(request_url: str, serve_origin: str | None, serve_path: str | None) -> str:
    """The URL the server must call: the request's, minus its query, with configured overrides."""
    parts = urlsplit(request_url)
    scheme, netloc, path = parts.scheme, parts.netloc, parts.path
    if serve_origin:
        origin = serve_origin if "://" in serve_origin else f"https://{serve_origin}"
        o = urlsplit(origin)
        scheme, netloc = o.scheme, o.netloc
        if o.path not in ("", "/") and not serve_path:
            path = o.path.rstrip("/") + path
    if serve_path:
        path = serve_path if serve_path.startswith("/") else f"/{serve_path}"
    return urlunsplit((scheme, netloc, path, "", ""))


def function_config(fn: Function[Any], url: str) -> dict[str, Any]:
    """One entry of ``functions`` (PROTOCOL.md §9): id, name, triggers, the HTTP step, and the
    options already checked and put in wire form by ``create_function``."""
    step: dict[str, Any] = {
        "id": "step",
        "name": "step",
        "runtime": {"type": "http", "url": f"{url}?{urlencode({'fnId': fn.id, 'stepId': 'step'})}"},
    }
    if fn.retries is not None:
        step["retries"] = {"attempts": fn.retries}
    return {
        "id": fn.id,
        "name": fn.name,
        "triggers": list(fn.triggers),
        "steps": {"step": step},
        **fn.options,
    }


def functions_config(functions: Iterable[Function[Any]], url: str) -> list[dict[str, Any]]:
    """One config per function given; include companions (``on_failure``, ``on_cancel``) in
    ``functions`` yourself, as :class:`~inngest_asgi._handler.ServeHandler` does."""
    return [function_config(fn, url) for fn in functions]


def register_body(
    *,
    app_id: str,
    app_version: str | None,
    framework: str,
    functions: list[dict[str, Any]],
    url: str,
) -> dict[str, Any]:
    """Body of ``POST /fn/register`` (out-of-band sync), with the spec's key names."""
    body: dict[str, Any] = {
        "appName": app_id,
        "capabilities": CAPABILITIES,
        "deployType": "ping",
        "framework": framework,
        "functions": functions,
        "sdk": SDK_IDENT,
        "url": url,
        "v": "0.1",
    }
    if app_version:
        body["appVersion"] = app_version
    return body
