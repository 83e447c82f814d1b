"""Catching the events functions send (``client.send``, ``step.send_event``) during a test.

While a harness is open, event sends go (through ``_http.capture_events``) to the innermost
open harness instead of the event API. Nothing leaves the
process. The replacement is installed when the first harness opens and removed when the last
one closes; outside a harness ``client.send`` behaves as usual.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from inngest_asgi import _http
from inngest_asgi._config import Settings
from inngest_asgi._wire import Event
from inngest_asgi.executor._ids import ulid

__all__: list[str] = []

#: Set while the wire replays a request for a probe or the replay check: sends are dropped.
PROBING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "inngest_asgi_testing_probing", default=False
)

Sink = Callable[[list[Event]], None]

_lock = threading.Lock()
_sinks: list[Sink] = []


async def _send(settings: Settings, events: Sequence[Any]) -> list[str]:
    now = time.time()
    batch: list[Event] = []
    for event in events:
        if not isinstance(event, Event):
            raise TypeError(f"send: expected Event objects, not {type(event).__name__}")
        batch.append(
            msgspec.structs.replace(event, id=event.id or ulid(now), ts=event.ts or int(now * 1000))
        )
    ids = [e.id for e in batch]
    if PROBING.get():
        return ids
    with _lock:
        sink = _sinks[-1] if _sinks else None
    if sink is not None:  # None only in the instant between a harness closing and uninstall
        sink(batch)
    return ids


def install(sink: Sink) -> None:
    """Route the events every client sends to ``sink`` until :func:`uninstall`."""
    with _lock:
        if not _sinks:
            _http.capture_events(_send)
        _sinks.append(sink)


def uninstall(sink: Sink) -> None:
    with _lock:
        if sink in _sinks:
            _sinks.remove(sink)
        if not _sinks:
            _http.capture_events(None)
