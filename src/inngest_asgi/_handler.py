"""The sans-IO request handler: a :class:`Request` in, a :class:`Response` out.

It verifies signatures, routes by method, answers introspection (GET), syncs (PUT) and runs
functions (POST), then adds the SDK headers and signs the response. It knows nothing of ASGI or
WSGI; its only I/O is the outbound API calls of a sync or a ``use_api`` fetch, and the user code
it runs through the :class:`Invoker` the shell hands it.

Error policy: a request at fault gets a 4xx JSON body ``{"code", "message", "name"}`` naming
the problem and never runs user code; whether the server may retry is decided per case
(``x-inngest-no-retry``), see docs/protocol-choices.md.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

import httpx
import msgspec

from ._client import Inngest
from ._config import DEV_EVENT_KEY
from ._errors import (
    BadRequestError,
    ConfigError,
    FunctionNotFoundError,
    ProtocolError,
    ServerKindMismatchError,
    UnauthorizedError,
)
from ._execution import decode_call, execute, protocol_error_response
from ._function import Function
from ._http import authed_request, base_headers
from ._invoke import Invoker
from ._messages import Request, Response
from ._registration import CAPABILITIES, app_url, functions_config, register_body
from ._signing import hash_event_key, hash_signing_key, sign, verify
from ._version import SDK_LANGUAGE, __version__
from ._wire import Event, any_decoder, encoder

__all__: list[str] = []

log = logging.getLogger("inngest_asgi")

_SCHEMA_VERSION = "2024-05-24"
_actions_decoder = msgspec.json.Decoder(dict[str, Any])
_batch_decoder = msgspec.json.Decoder(list[Event])


class InternalError(ProtocolError):
    """An unexpected failure inside the SDK (never one of the request's making)."""

    status = 500
    default_code = "internal_error"
    retriable = True


class MethodNotAllowedError(ProtocolError):
    status = 405
    default_code = "method_not_allowed"


class InspectionForbiddenError(ProtocolError):
    status = 403
    default_code = "server_kind_mismatch"


class RegistrationFailedError(ProtocolError):
    status = 500
    default_code = "registration_failed"
    retriable = True


class ApiUnavailableError(ProtocolError):
    """A ``use_api`` fetch failed: retriable, the server tries the call again."""

    status = 500
    default_code = "api_fetch_failed"
    retriable = True


class ServeHandler:
    """Serves one client's functions. Built once per app; safe to share across requests."""

    def __init__(
        self,
        client: Inngest,
        functions: Iterable[Function[Any]],
        *,
        framework: str,
        streaming: bool | Streaming | None = None,
        serve_origin: str | None = None,
        serve_path: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = client.settings
        if serve_origin or serve_path:  # per-app overrides of the client's (and env) values
            settings = dataclasses.replace(
                settings,
                serve_origin=serve_origin or settings.serve_origin,
                serve_path=serve_path or settings.serve_path,
            )
        #: Answer execution requests as streams (``INNGEST_STREAMING=force`` when None).
        self.streaming = (
            streaming_from_env() if streaming is None else streaming in (True, Streaming.FORCE)
        )
        if settings.mode == "cloud" and not settings.signing_key:
            raise ConfigError(
                "cloud mode needs a signing key: set INNGEST_SIGNING_KEY (or pass signing_key= "
                "to Inngest()), or use dev mode with INNGEST_DEV=1 or is_production=False"
            )
        self._client = client
        self._settings = settings
        self._framework = framework
        self._clock = clock
        self._functions: dict[str, Function[Any]] = {}
        function_count = 0
        for fn in functions:
            if not isinstance(fn, Function):
                raise ConfigError(
                    f"functions must hold Function objects made by create_function, "
                    f"not {type(fn).__name__}"
                )
            if fn.app_id != client.app_id:
                raise ConfigError(
                    f"function {fn.id!r} belongs to app {fn.app_id!r}, not this client"
                )
            # on_failure / on_cancel companions are served and synced as functions of their
            # own, but not counted in introspection's function_count (PROTOCOL.md §7).
            for served in (fn, *fn.companions):
                if served.id in self._functions:
                    raise ConfigError(f"function id {served.id!r} is used twice")
                self._functions[served.id] = served
            function_count += 1
        self._headers = {
            **base_headers(settings),
            "x-inngest-framework": framework,
            "x-inngest-expected-server-kind": settings.mode,
        }
        has_event_key = settings.event_key not in (None, DEV_EVENT_KEY)
        public = {
            "schema_version": _SCHEMA_VERSION,
            "function_count": function_count,
            "has_event_key": has_event_key,
            "has_signing_key": settings.signing_key is not None,
            "has_signing_key_fallback": settings.signing_key_fallback is not None,
            "mode": settings.mode,
        }
        self._inspection_public = encoder.encode(public)
        # Signed requests may see more; keys only ever as their hashes.
        self._inspection_authed = {
            **public,
            "api_origin": settings.api_origin,
            "app_id": client.app_id,
            "authentication_succeeded": True,
            "capabilities": CAPABILITIES,
            "env": settings.env,
            "event_api_origin": settings.event_api_origin,
            "event_key_hash": hash_event_key(settings.event_key)
            if has_event_key and settings.event_key
            else None,
            "framework": framework,
            "sdk_language": SDK_LANGUAGE,
            "sdk_version": __version__,
            "serve_origin": settings.serve_origin,
            "serve_path": settings.serve_path,
            "signing_key_fallback_hash": hash_signing_key(settings.signing_key_fallback)
            if settings.signing_key_fallback
            else None,
            "signing_key_hash": hash_signing_key(settings.signing_key)
            if settings.signing_key
            else None,
        }

    @property
    def functions(self) -> dict[str, Function[Any]]:
        return self._functions

    async def handle(self, request: Request, invoker: Invoker) -> Response:
        """Answer one request. Never raises for anything the request contains."""
        key: str | None = None
        try:
            key = self._verify(request)
            if request.method == "POST":
                response = await self._call(request, invoker, key)
            elif request.method == "GET":
                response = self._inspect(request, key)
            elif request.method == "PUT":
                response = await self._sync(request, key)
            else:
                raise MethodNotAllowedError(
                    f"method {request.method} is not served here; use GET, PUT or POST"
                )
        except ProtocolError as exc:
            response = protocol_error_response(exc)
            if isinstance(exc, UnauthorizedError):
                key = None
        except RecursionError:
            # The JSON decoders recurse once per nesting level, and user code cannot get here
            # (execute() catches its errors): the body is nested too deeply to read.
            response = protocol_error_response(
                BadRequestError("request body is nested too deeply", code="body_invalid")
            )
        except Exception:
            # A bug of ours, not the request's: log it, answer JSON, let the server retry.
            log.exception("inngest-asgi failed to handle %s %s", request.method, request.url)
            response = protocol_error_response(
                InternalError("the SDK failed to handle this request; see the app's logs")
            )
        return self._finish(response, key)

    # --- streaming (PROTOCOL.md §10.8) -----------------------------------------------------

    def streams(self, request: Request) -> bool:
        """Whether the shell should answer ``request`` as a stream: 201 and the SDK headers at
        once, a keepalive byte every few seconds while :meth:`handle` runs, then
        :meth:`envelope` of its response. Only validly signed execution requests stream: any
        refusal is answered plainly, with its real status."""
        if not self.streaming or request.method != "POST":
            return False
        query = _query(request)
        if "probe" in query or query.get("fnId") not in self._functions:
            return False
        try:
            self._verify(request)
        except UnauthorizedError:
            return False
        return True

    def stream_headers(self) -> dict[str, str]:
        """Headers of the 201 that opens a stream (the real ones travel in the envelope)."""
        return {**self._headers, "content-type": "application/json"}

    @staticmethod
    def envelope(response: Response) -> bytes:
        """The last chunk of a stream: the real status, headers and body, as the server
        unwraps them."""
        return encoder.encode(
            {"body": response.body.decode(), "headers": response.headers, "status": response.status}
        )

    def reject(self, error: ProtocolError) -> Response:
        """The response to a request refused before it could be read (e.g. too large)."""
        return self._finish(protocol_error_response(error), None)

    def _finish(self, response: Response, key: str | None) -> Response:
        response.headers.update(self._headers)
        response.headers["content-type"] = "application/json"
        if key is not None:
            response.headers["x-inngest-signature"] = sign(response.body, key, int(self._clock()))
        return response

    # --- signatures ------------------------------------------------------------------------

    def _verify(self, request: Request) -> str | None:
        """The key that signed the request; None when unsigned and allowed to be (dev mode, or
        an out-of-band sync). Raises :class:`UnauthorizedError` otherwise."""
        settings = self._settings
        if settings.mode == "dev":
            return None
        header = request.headers.get("x-inngest-signature")
        if header is None and request.method == "PUT" and not self._in_band(request):
            return None  # out-of-band sync: the API call that follows is what is authenticated
        return verify(header, request.body, settings.signing_keys, int(self._clock()))

    def _in_band(self, request: Request) -> bool:
        return (
            self._settings.mode == "cloud"
            and request.headers.get("x-inngest-sync-kind") == "in_band"
        )

    def _check_server_kind(self, request: Request, error: type[ProtocolError]) -> str | None:
        kind = request.headers.get("x-inngest-server-kind")
        if kind is not None and kind != self._settings.mode:
            names = {"dev": "a Dev Server", "cloud": "Cloud"}
            raise error(
                f"request is from {names.get(kind, repr(kind))} but this app expects "
                f"{names[self._settings.mode]}; check INNGEST_DEV and the server you run"
            )
        return kind

    # --- GET: introspection ----------------------------------------------------------------

    def _inspect(self, request: Request, key: str | None) -> Response:
        self._check_server_kind(request, InspectionForbiddenError)
        if key is None:
            return Response(200, {}, self._inspection_public)
        return Response(200, {}, encoder.encode(self._inspection_authed))

    # --- PUT: sync -------------------------------------------------------------------------

    def _app_url(self, request_url: str) -> str:
        try:
            return app_url(request_url, self._settings.serve_origin, self._settings.serve_path)
        except ValueError:  # e.g. a Host header with an unbalanced "["
            raise BadRequestError("the request URL cannot be parsed", code="url_invalid") from None

    async def _sync(self, request: Request, key: str | None) -> Response:
        if self._in_band(request):
            return self._sync_in_band(request)
        kind = self._check_server_kind(request, ServerKindMismatchError)
        url = self._app_url(request.url)
        body = register_body(
            app_id=self._client.app_id,
            app_version=self._client.app_version,
            framework=self._framework,
            functions=functions_config(self._functions.values(), url),
            url=url,
        )
        headers = {**self._headers}
        if kind is None:
            del headers["x-inngest-expected-server-kind"]
        else:
            headers["x-inngest-expected-server-kind"] = kind
        deploy_id = _query(request).get("deployId")
        try:
            reply = await authed_request(
                self._settings,
                "POST",
                f"{self._settings.api_origin}/fn/register",
                headers=headers,
                content=encoder.encode(body),
                params={"deployId": deploy_id} if deploy_id else None,
            )
        except httpx.HTTPError as exc:
            raise RegistrationFailedError(
                f"could not reach the Inngest API at {self._settings.api_origin}: "
                f"{type(exc).__name__}"
            ) from None
        try:
            answer = msgspec.json.decode(reply.content)
        except (msgspec.DecodeError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            raise RegistrationFailedError(
                f"the Inngest API answered HTTP {reply.status_code} without JSON"
            )
        if reply.status_code >= 400 or answer.get("error"):
            raise RegistrationFailedError(
                f"the Inngest API refused the sync (HTTP {reply.status_code}): "
                f"{answer.get('error') or answer.get('message') or 'no reason given'}"
            )
        log.info("synced %d function(s) to %s", len(self._functions), self._settings.api_origin)
        result = {"message": "Successfully synced.", "modified": bool(answer.get("modified"))}
        return Response(200, {"x-inngest-sync-kind": "out_of_band"}, encoder.encode(result))

    def _sync_in_band(self, request: Request) -> Response:
        try:
            url = any_decoder.decode(request.body).get("url") if request.body else None
        except (msgspec.DecodeError, UnicodeDecodeError, AttributeError):
            url = None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequestError(
                'in-band sync body must be {"url": "<http(s) URL>"}', code="body_invalid"
            )
        url = self._app_url(url)
        inspection = {k: v for k, v in self._inspection_authed.items() if v is not None}
        body: dict[str, Any] = {
            "app_id": self._client.app_id,
            "framework": self._framework,
            "functions": functions_config(self._functions.values(), url),
            "inspection": inspection,
            "sdk_author": "inngest-asgi",
            "sdk_language": SDK_LANGUAGE,
            "sdk_version": __version__,
            "url": url,
        }
        if self._client.app_version:
            body["appVersion"] = self._client.app_version
        if self._settings.env:
            body["env"] = self._settings.env
        return Response(200, {"x-inngest-sync-kind": "in_band"}, encoder.encode(body))

    # --- POST: execution -------------------------------------------------------------------

    async def _call(self, request: Request, invoker: Invoker, key: str | None) -> Response:
        query = _query(request)
        probe = query.get("probe")
        if probe is not None:
            if probe != "trust":
                raise BadRequestError(f"unsupported probe {probe!r}", code="query_param_invalid")
            return Response(200, {}, b"null")
        fn_id = query.get("fnId")
        if not fn_id:
            raise BadRequestError("query parameter fnId is missing", code="query_param_missing")
        fn = self._functions.get(fn_id)
        if fn is None:
            raise FunctionNotFoundError(f"function {fn_id} not found")
        call = decode_call(request.body)
        events = call.events
        if call.use_api or call.ctx.use_api:
            steps, events = await self._fetch_run(call.ctx.run_id)
            call.steps = steps
        if call.event is None:
            if not events:
                raise BadRequestError("request body has no event", code="body_invalid")
            call.event = events[0]
        return await execute(
            fn,
            call,
            client=self._client,
            request=request,
            event=call.event,
            events=events if events else [call.event],
            target=query.get("stepId"),
            invoker=invoker,
        )

    async def _fetch_run(self, run_id: str) -> tuple[dict[str, Any], list[Event]]:
        """Memoized steps and the event batch of a run too large to send inline."""
        base = f"{self._settings.api_origin}/v0/runs/{run_id}"
        try:
            steps = await self._fetch_json(f"{base}/actions", _actions_decoder)
            events = await self._fetch_json(f"{base}/batch", _batch_decoder)
        except (httpx.HTTPError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise ApiUnavailableError(
                f"could not load run {run_id} from the Inngest API: {exc}"
            ) from None
        return steps, events

    async def _fetch_json(self, url: str, decoder: msgspec.json.Decoder[Any]) -> Any:
        reply = await authed_request(self._settings, "GET", url, headers=self._headers)
        if reply.status_code >= 400:
            raise ApiUnavailableError(
                f"the Inngest API answered HTTP {reply.status_code} for {url}"
            )
        return decoder.decode(reply.content)


class Streaming(enum.Enum):
    """``streaming=`` values of the official SDK: ``FORCE`` streams execution responses."""

    DISABLE = "disable"
    FORCE = "force"


def streaming_from_env() -> bool:
    """``INNGEST_STREAMING``: ``force`` (or ``allow``) streams, ``disable`` (the default) not."""
    value = os.environ.get("INNGEST_STREAMING", "disable").strip().lower()
    if value not in ("disable", "force", "allow", ""):
        raise ConfigError(f"INNGEST_STREAMING must be disable or force, not {value!r}")
    return value in ("force", "allow")


def _query(request: Request) -> Mapping[str, str]:
    """Query parameters; the first value of a repeated one wins."""
    query = request.url.partition("?")[2].partition("#")[0]
    # An app sees few distinct short query strings: those are parsed once and kept.
    return _parse_query_cached(query) if len(query) <= 512 else _parse_query(query)


def _parse_query(query: str) -> Mapping[str, str]:
    params: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name, value = unquote_plus(name), unquote_plus(value)
        if name and name not in params:
            params[name] = value
    return params


_parse_query_cached = functools.lru_cache(maxsize=256)(_parse_query)


class PayloadTooLargeError(ProtocolError):
    status = 413
    default_code = "payload_too_large"


#: Default cap on request bodies, in bytes (configurable per app).
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024


def too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body exceeds the {limit} byte limit (raise it with max_body_size=)"
    )
