"""Serve Inngest functions from a DigitalOcean web function (``web: raw`` in ``project.yml``).

::

    import inngest_asgi as inngest
    from inngest_asgi.digital_ocean import serve

    client = inngest.Inngest(app_id="shop")
    main = serve(client, [process_order])

A DigitalOcean web function is not an HTTP server: the platform calls ``main(event, context)``
with the request as a dict (``event["http"]``) and turns the returned dict into the response.
``main`` translates that dict into the sans-IO core's :class:`Request`, runs
:meth:`ServeHandler.handle`, and translates the :class:`Response` back.

The function must be deployed with ``web: raw``: only then does the event carry the raw query
string and the body as sent (``queryString``, ``body``, ``isBase64Encoded``), which signature
verification needs; with ``web: true`` the platform parses both into the event's top level.

How user code runs: as under ``InngestWSGI``, sync functions (and sync step callables) run on
the thread that called ``main``, and async code on the process's bridge event loop, which runs
in a daemon thread. ``main`` may be called from any thread.

The URL registered at sync is the web function's own URL: ``context.api_host`` +
``/api/v1/web`` + ``context.function_name`` (+ ``http.path``, the part after the function
name). ``serve_origin`` / ``serve_path`` on the client (or ``INNGEST_SERVE_ORIGIN`` /
``INNGEST_SERVE_PATH``) override it, e.g. for a custom domain.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict
from urllib.parse import quote

from . import _bridge
from ._client import Inngest
from ._errors import BadRequestError, ProtocolError
from ._function import Function
from ._handler import DEFAULT_MAX_BODY_SIZE, ServeHandler, too_large
from ._messages import Request, Response

__all__ = ["DigitalOceanResult", "serve"]

#: Where DigitalOcean serves web functions below ``context.api_host``.
_WEB_PREFIX = "/api/v1/web"

#: Used when the context does not say where the function lives (e.g. a local test call).
_FALLBACK_ORIGIN = "https://localhost"


class DigitalOceanResult(TypedDict):
    """What ``main`` returns: DigitalOcean sends it as the HTTP response."""

    statusCode: int  # DigitalOcean's spelling
    headers: dict[str, str]
    body: str


def serve(
    client: Inngest,
    functions: Iterable[Function[Any]],
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> Callable[[Mapping[str, Any], Any], DigitalOceanResult]:
    """Build the ``main(event, context)`` entry point of a DigitalOcean web function.

    Answers GET (inspect), PUT (sync) and POST (run a function) exactly as
    :class:`~inngest_asgi.InngestASGI` does. Execution responses are never streamed: the
    platform buffers the whole response anyway.

    ``serve_origin`` / ``serve_path`` override the public URL registered at sync.

    Raises :class:`~inngest_asgi.ConfigError` at once when the client cannot serve (e.g. cloud
    mode without a signing key), not at the first request.
    """
    handler = ServeHandler(
        client,
        functions,
        framework="digitalocean",
        streaming=False,
        serve_origin=serve_origin,
        serve_path=serve_path,
    )

    def main(event: Mapping[str, Any], context: Any) -> DigitalOceanResult:
        try:
            request = request_from_event(event, context, max_body_size)
        except ProtocolError as exc:  # not a web: raw event, or a body over the limit
            return _result(handler.reject(exc))
        return _result(_bridge.run(lambda invoker: handler.handle(request, invoker)))

    return main


def request_from_event(event: Mapping[str, Any], context: Any, max_body_size: int) -> Request:
    """The core's :class:`Request` for a ``web: raw`` event. Raises BadRequestError when the
    event is not one, and PayloadTooLargeError for a body over ``max_body_size``."""
    http = event.get("http") if isinstance(event, Mapping) else None
    if not isinstance(http, Mapping):
        raise BadRequestError(
            'the event has no "http" object: is this function deployed with "web: raw"?',
            code="event_invalid",
        )
    if "queryString" not in http:
        raise BadRequestError(
            'the event has no "http.queryString": set "web: raw" for this function in '
            "project.yml, so that the query and the body arrive as sent",
            code="event_invalid",
        )
    method = http.get("method")
    if not isinstance(method, str) or not method:
        raise BadRequestError('the event has no "http.method"', code="event_invalid")
    raw_headers = http.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        raise BadRequestError('"http.headers" must be an object', code="event_invalid")
    headers = {str(k).lower(): v for k, v in raw_headers.items() if isinstance(v, str)}
    body = _body(http, max_body_size)
    query = http.get("queryString") or ""
    if not isinstance(query, str):
        raise BadRequestError('"http.queryString" must be a string', code="event_invalid")
    url = _function_url(context, http.get("path"))
    return Request(method.upper(), url + (f"?{query}" if query else ""), headers, body)


def _body(http: Mapping[str, Any], limit: int) -> bytes:
    raw = http.get("body")
    if raw is None or raw == "":
        return b""
    if not isinstance(raw, str):
        raise BadRequestError(
            '"http.body" must be a string (the raw body): is this function deployed with '
            '"web: raw"?',
            code="event_invalid",
        )
    if http.get("isBase64Encoded"):
        if len(raw) > limit * 4 // 3 + 4:
            raise too_large(limit)
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequestError(
                '"http.body" is marked base64 but is not valid base64', code="event_invalid"
            ) from None
    else:
        try:
            body = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestError('"http.body" is not valid text', code="event_invalid") from None
    if len(body) > limit:
        raise too_large(limit)
    return body


def _function_url(context: Any, path: object) -> str:
    """``https://<api host>/api/v1/web/<namespace>/<package>/<function><path>``."""
    api_host = getattr(context, "api_host", None)
    function_name = getattr(context, "function_name", None)
    if isinstance(api_host, str) and api_host and isinstance(function_name, str):
        origin = api_host.rstrip("/")
        if "://" not in origin:
            origin = f"https://{origin}"
        base = origin + _WEB_PREFIX + "/" + function_name.strip("/")
    else:
        base = _FALLBACK_ORIGIN + _WEB_PREFIX
    suffix = path if isinstance(path, str) else ""
    if suffix and not suffix.startswith("/"):
        suffix = f"/{suffix}"
    return base + quote(suffix)


def _result(response: Response) -> DigitalOceanResult:
    # The core's bodies are JSON, hence UTF-8 text: returned as a string, DigitalOcean sends
    # these exact bytes, which the response signature covers.
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": response.body.decode("utf-8"),
    }
