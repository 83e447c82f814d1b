"""Outbound calls to the Inngest API (httpx): sync, event sends, large-payload fetches.

Request building is shared; only the transport differs between the async and sync paths.
Keys never appear in errors or logs: only the hashed bearer token is sent.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import httpx
import msgspec

from ._config import Settings
from ._errors import SendEventsError
from ._signing import hash_signing_key, normalize_key
from ._version import SDK_IDENT
from ._wire import Event

__all__: list[str] = []

#: Attempts for event sends on network errors and 5xx answers.
SEND_ATTEMPTS = 5


class _RedactEventKeys(logging.Filter):
    """httpx logs every request URL at INFO, and the event API's URL ends in the event key:
    keep the key out of the log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def _redact(arg: object) -> object:
    if isinstance(arg, httpx.URL) and arg.path.startswith("/e/"):
        return arg.copy_with(path="/e/***", query=None)
    return arg


logging.getLogger("httpx").addFilter(_RedactEventKeys())


def bearer(key: str) -> str:
    """``signkey-<env>-<sha256>`` (the spec's form); a bare hash for keys without a prefix."""
    hex_part = normalize_key(key)
    prefix = key[: len(key) - len(hex_part)]
    return f"Bearer {prefix}{hash_signing_key(key)}"


def base_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "user-agent": SDK_IDENT,
        "x-inngest-sdk": SDK_IDENT,
        "x-inngest-req-version": "2",
    }
    if settings.env:
        headers["x-inngest-env"] = settings.env
    return headers


def _api_error(response: httpx.Response) -> str:
    try:
        body = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"HTTP {response.status_code}: {body['error']}"
    return f"HTTP {response.status_code}"


async def authed_request(
    settings: Settings,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Call the API with the signing key's bearer token, retrying once with the fallback key
    on 401/403. Network errors propagate as :class:`httpx.HTTPError`."""
    keys: Sequence[str | None] = settings.signing_keys or (None,)
    async with httpx.AsyncClient(timeout=settings.request_timeout) as http:
        for index, key in enumerate(keys):
            sent = dict(headers)
            if key is not None:
                sent["authorization"] = bearer(key)
            response = await http.request(method, url, headers=sent, content=content, params=params)
            if response.status_code in (401, 403) and index + 1 < len(keys):
                continue
            return response
    raise AssertionError("unreachable")  # pragma: no cover


# --- events ------------------------------------------------------------------------------


def event_seed() -> str:
    """``x-inngest-event-id-seed``: lets the server derive the same ids if a send is retried."""
    return f"{int(time.time() * 1000)},{base64.b64encode(os.urandom(10)).decode()}"


def event_payload(events: Sequence[Any]) -> bytes:
    """The JSON array of events to send: ``ts`` filled in, empty ``id`` omitted."""
    now = int(time.time() * 1000)
    items = []
    for event in events:
        if not isinstance(event, Event):
            raise TypeError(f"send: expected Event objects, not {type(event).__name__}")
        if not event.name:
            raise ValueError("send: every event needs a name")
        item: dict[str, Any] = {"data": event.data, "name": event.name, "ts": event.ts or now}
        if event.id:
            item["id"] = event.id
        if event.user is not None:
            item["user"] = event.user
        if event.v is not None:
            item["v"] = event.v
        items.append(item)
    return msgspec.json.encode(items)


def _send_url(settings: Settings) -> str:
    if not settings.event_key:
        raise SendEventsError(
            "no event key: set INNGEST_EVENT_KEY or pass event_key= to Inngest() (code "
            "event_key_unspecified)"
        )
    return f"{settings.event_api_origin}/e/{settings.event_key}"


def _send_result(response: httpx.Response) -> list[str] | None:
    """The ids on success; None when the answer is worth retrying; raise on a final failure."""
    if response.status_code >= 500:
        return None
    try:
        body = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, UnicodeDecodeError):
        body = None
    ids = body.get("ids") if isinstance(body, dict) else None
    ids = [str(i) for i in ids] if isinstance(ids, list) else []
    if response.status_code >= 400 or (isinstance(body, dict) and body.get("error")):
        raise SendEventsError(f"sending events failed: {_api_error(response)}", ids)
    return ids


def _backoff(attempt: int) -> float:
    return 0.1 * 2.0**attempt + random.uniform(0, 0.1)


EventSender = Callable[[Settings, Sequence[Any]], Awaitable[list[str]]]
#: Set by :mod:`inngest_asgi.testing` while a harness captures the events functions send.
_capture: EventSender | None = None


def capture_events(sender: EventSender | None) -> None:
    """Route every event send to ``sender`` instead of the event API (None: back to the API)."""
    global _capture
    _capture = sender


async def send_events(settings: Settings, events: Sequence[Any]) -> list[str]:
    if _capture is not None:
        return await _capture(settings, events)
    url, content = _send_url(settings), event_payload(events)
    headers = {**base_headers(settings), "x-inngest-event-id-seed": event_seed()}
    error: str = ""
    async with httpx.AsyncClient(timeout=settings.request_timeout) as http:
        for attempt in range(SEND_ATTEMPTS):
            try:
                response = await http.post(url, content=content, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                ids = _send_result(response)
                if ids is not None:
                    return ids
                error = _api_error(response)
            if attempt + 1 < SEND_ATTEMPTS:
                await anyio.sleep(_backoff(attempt))
    raise SendEventsError(f"sending events failed after {SEND_ATTEMPTS} attempts: {error}")
