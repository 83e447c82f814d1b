"""``Inngest``: the client users configure, create functions with, and send events through."""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from asgiref.sync import async_to_sync

from ._config import Settings, resolve
from ._errors import ConfigError, SendEventsError
from ._function import Function, check_function_options, check_more_options
from ._http import send_events
from ._invoke import ThreadPoolInvoker
from ._middleware import MiddlewareFactory, MiddlewareRunner, SendEventsResult
from ._options import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
)
from ._step import EMPTY
from ._triggers import Trigger
from ._wire import Event

__all__ = ["Inngest"]

T = TypeVar("T")

_default_logger = logging.getLogger("inngest_asgi")
_LOOP_INVOKER = ThreadPoolInvoker()


class Inngest:
    """The Inngest client.

    ``Inngest(app_id="my-app")`` reads the rest from ``INNGEST_*`` environment variables; any
    option passed here wins over its variable. Mode is cloud unless ``is_production=False`` or
    ``INNGEST_DEV`` is set (see docs/configuration.md).
    """

    def __init__(
        self,
        *,
        app_id: str,
        is_production: bool | None = None,
        signing_key: str | None = None,
        signing_key_fallback: str | None = None,
        event_key: str | None = None,
        env: str | None = None,
        api_base_url: str | None = None,
        event_api_base_url: str | None = None,
        serve_origin: str | None = None,
        serve_path: str | None = None,
        logger: logging.Logger | None = None,
        middleware: Sequence[MiddlewareFactory] | None = None,
        request_timeout: int | _dt.timedelta | None = None,
        app_version: str | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id:
            raise ConfigError("Inngest: app_id must be a non-empty string")
        self.middleware: list[MiddlewareFactory] = []
        for factory in middleware or ():
            self.add_middleware(factory)
        self.app_id = app_id
        self.app_version = app_version
        self.logger = logger or _default_logger
        self._settings = resolve(
            os.environ,
            is_production=is_production,
            signing_key=signing_key,
            signing_key_fallback=signing_key_fallback,
            event_key=event_key,
            env=env,
            api_base_url=api_base_url,
            event_api_base_url=event_api_base_url,
            serve_origin=serve_origin,
            serve_path=serve_path,
            request_timeout=request_timeout,
        )

    # Read-only views of the resolved settings, named as in the official SDK.
    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def is_production(self) -> bool:
        return self._settings.mode == "cloud"

    @property
    def mode(self) -> str:
        """``"dev"`` or ``"cloud"``."""
        return self._settings.mode

    @property
    def api_origin(self) -> str:
        return self._settings.api_origin

    @property
    def event_api_origin(self) -> str:
        return self._settings.event_api_origin

    @property
    def env(self) -> str | None:
        return self._settings.env

    @property
    def event_key(self) -> str | None:
        return self._settings.event_key

    @property
    def signing_key(self) -> str | None:
        return self._settings.signing_key

    @property
    def signing_key_fallback(self) -> str | None:
        return self._settings.signing_key_fallback

    def __repr__(self) -> str:
        return f"Inngest(app_id={self.app_id!r}, mode={self.mode!r})"

    def set_logger(self, logger: logging.Logger) -> None:
        self.logger = logger

    def add_middleware(self, middleware: MiddlewareFactory) -> None:
        """Add client-level middleware: a :class:`Middleware` subclass or a factory
        ``(client, raw_request) -> Middleware``. It runs before function-level middleware."""
        if not callable(middleware):
            raise ConfigError("middleware must be a Middleware subclass or a factory")
        self.middleware.append(middleware)

    def create_function(
        self,
        *,
        fn_id: str,
        trigger: Trigger | Sequence[Trigger],
        name: str | None = None,
        retries: int | None = None,
        batch_events: Batch | None = None,
        cancel: Sequence[Cancel] | None = None,
        concurrency: Sequence[Concurrency] | None = None,
        debounce: Debounce | None = None,
        idempotency: str | None = None,
        middleware: Sequence[MiddlewareFactory] | None = None,
        on_failure: Callable[..., Any] | None = None,
        on_cancel: Callable[..., Any] | None = None,
        output_type: Any = EMPTY,
        priority: Priority | None = None,
        rate_limit: RateLimit | None = None,
        throttle: Throttle | None = None,
        timeouts: Timeouts | None = None,
        singleton: Singleton | None = None,
    ) -> Callable[[Callable[..., Any]], Function[Any]]:
        """Decorator turning ``async def fn(ctx: Context)`` or ``def fn(ctx: ContextSync)``
        into a :class:`Function`.

        ``trigger`` is a :class:`TriggerEvent`, a :class:`TriggerCron` or a list of them;
        ``retries`` is the number of retries after the first attempt (0-20, server default 4).
        ``on_failure`` / ``on_cancel`` (sync or async, each on its own) run as companion
        functions when a run fails for good or is cancelled. The flow-control options are
        described in docs/function-options.md; a bad value raises :class:`ConfigError` here.
        """
        fn_id, triggers = check_function_options(fn_id, trigger, name, retries)
        options = check_more_options(
            fn_id,
            on_failure=on_failure,
            on_cancel=on_cancel,
            middleware=middleware,
            batch_events=batch_events,
            cancel=cancel,
            concurrency=concurrency,
            debounce=debounce,
            idempotency=idempotency,
            priority=priority,
            rate_limit=rate_limit,
            throttle=throttle,
            timeouts=timeouts,
            singleton=singleton,
        )

        def decorator(handler: Callable[..., Any]) -> Function[Any]:
            if not callable(handler):
                raise ConfigError(f"create_function(fn_id={fn_id!r}) must decorate a function")
            return Function(
                self,
                fn_id=fn_id,
                handler=handler,
                triggers=triggers,
                name=name,
                retries=retries,
                options=options,
                middleware=middleware,
                on_failure=on_failure,
                on_cancel=on_cancel,
                output_type=output_type,
            )

        return decorator

    async def send(
        self, events: Event | Sequence[Event], *, skip_middleware: bool = False
    ) -> list[str]:
        """Send one event or a list; return their ids. Raises :class:`SendEventsError`."""
        batch = [events] if isinstance(events, Event) else list(events)
        mw = MiddlewareRunner.build(
            () if skip_middleware else self.middleware, self, None, _LOOP_INVOKER
        )
        await mw.call("before_send_events", batch)
        try:
            ids = await send_events(self._settings, batch)
        except SendEventsError as exc:
            await mw.call("after_send_events", SendEventsResult(exc.ids, str(exc)), reverse=True)
            raise
        await mw.call("after_send_events", SendEventsResult(ids), reverse=True)
        return ids

    def send_sync(
        self, events: Event | Sequence[Event], *, skip_middleware: bool = False
    ) -> list[str]:
        """Blocking :meth:`send` for sync code (a sync function, a script, a WSGI view).

        From inside an event loop's own thread, ``await client.send(...)`` instead.
        """
        return async_to_sync(self.send)(events, skip_middleware=skip_middleware)
