"""``Function``: a user handler with its id, triggers and options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._errors import ConfigError
from ._invoke import is_async_callable
from ._middleware import MiddlewareFactory
from ._options import options_config
from ._step import EMPTY
from ._triggers import Trigger, TriggerCron, TriggerEvent

if TYPE_CHECKING:
    from ._client import Inngest

__all__ = ["Function"]

T = TypeVar("T")

#: The server's cap on retries (attempts = retries + 1).
MAX_RETRIES = 20

#: The internal events that start the ``on_failure`` and ``on_cancel`` companions.
FAILED_EVENT = "inngest/function.failed"
CANCELLED_EVENT = "inngest/function.cancelled"


class Function(Generic[T]):
    """A function served by :class:`~inngest_asgi.InngestASGI`; made by
    :meth:`Inngest.create_function <inngest_asgi.Inngest.create_function>`.

    ``on_failure`` and ``on_cancel`` handlers become functions of their own (``failure_fn`` and
    ``cancel_fn``, both in ``companions``), registered and served alongside this one.
    """

    __slots__ = (
        "_client",
        "cancel_fn",
        "failure_fn",
        "handler",
        "is_handler_async",
        "local_id",
        "middleware",
        "name",
        "options",
        "output_type",
        "retries",
        "triggers",
    )

    def __init__(
        self,
        client: Inngest,
        *,
        fn_id: str,
        handler: Callable[..., Any],
        triggers: Sequence[Trigger],
        name: str | None,
        retries: int | None,
        options: dict[str, Any] | None = None,
        middleware: Sequence[MiddlewareFactory] | None = None,
        on_failure: Callable[..., Any] | None = None,
        on_cancel: Callable[..., Any] | None = None,
        output_type: Any = EMPTY,
    ) -> None:
        self._client = client
        self.local_id = fn_id
        self.handler = handler
        self.triggers = tuple(triggers)
        self.name = name or fn_id
        self.retries = retries
        #: Checked options in their registration form (``batchEvents``, ``concurrency``, ...).
        self.options: dict[str, Any] = dict(options or {})
        #: Function-level middleware factories; they run after the client's.
        self.middleware: list[MiddlewareFactory] = list(middleware or ())
        self.output_type = output_type
        #: Decided once: async handlers are awaited, sync ones run in a worker thread.
        self.is_handler_async = is_async_callable(handler)
        self.failure_fn = self._companion("failure", FAILED_EVENT, on_failure)
        self.cancel_fn = self._companion("cancel", CANCELLED_EVENT, on_cancel)

    def _companion(
        self, kind: str, event: str, handler: Callable[..., Any] | None
    ) -> Function[Any] | None:
        """The function the server starts with ``event`` when a run of this one ends that way.

        Shaped as PROTOCOL.md §9 shows the on-failure function: no retries, empty ``cancel``
        and ``concurrency``, triggered only for this function's runs. Sync or async is decided
        for the companion's own handler.
        """
        if handler is None:
            return None
        quoted = self.id.replace("\\", "\\\\").replace("'", "\\'")
        return Function(
            self._client,
            fn_id=f"{self.local_id}-{kind}",
            handler=handler,
            triggers=[
                TriggerEvent(event=event, expression=f"event.data.function_id == '{quoted}'")
            ],
            name=f"{self.name} ({kind})",
            retries=0,
            options={"cancel": [], "concurrency": []},
            middleware=self.middleware,
        )

    @property
    def id(self) -> str:
        """The fully qualified id ``<app_id>-<fn_id>`` the server uses."""
        return f"{self._client.app_id}-{self.local_id}"

    @property
    def app_id(self) -> str:
        return self._client.app_id

    @property
    def companions(self) -> tuple[Function[Any], ...]:
        """The ``on_failure`` and ``on_cancel`` functions, those that are set."""
        return tuple(fn for fn in (self.failure_fn, self.cancel_fn) if fn is not None)

    @property
    def on_failure_fn_id(self) -> str | None:
        """The id of the ``on_failure`` function, ``<app_id>-<fn_id>-failure``, if any."""
        return None if self.failure_fn is None else self.failure_fn.id

    @property
    def on_cancel_fn_id(self) -> str | None:
        """The id of the ``on_cancel`` function, ``<app_id>-<fn_id>-cancel``, if any."""
        return None if self.cancel_fn is None else self.cancel_fn.id

    def __repr__(self) -> str:
        kind = "async" if self.is_handler_async else "sync"
        return f"<Function {self.id!r} ({kind})>"


def check_function_options(
    fn_id: object, trigger: object, name: object, retries: object
) -> tuple[str, list[Trigger]]:
    """Validate ``create_function`` arguments; raise :class:`ConfigError` naming the option."""
    if not isinstance(fn_id, str) or not fn_id:
        raise ConfigError("create_function: fn_id must be a non-empty string")
    what = f"create_function(fn_id={fn_id!r})"
    items: list[object] = list(trigger) if isinstance(trigger, (list, tuple)) else [trigger]
    triggers: list[Trigger] = []
    if not items:
        raise ConfigError(
            f"{what}: trigger must be a TriggerEvent, a TriggerCron or a list of them"
        )
    for item in items:
        if not isinstance(item, (TriggerEvent, TriggerCron)):
            raise ConfigError(
                f"{what}: trigger must be a TriggerEvent or TriggerCron, not {type(item).__name__}"
            )
        try:
            item.validate(what)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        triggers.append(item)
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{what}: name must be a string")
    if retries is not None and (
        not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES
    ):
        raise ConfigError(f"{what}: retries must be an int from 0 to {MAX_RETRIES}")
    return fn_id, triggers


def check_more_options(
    fn_id: str,
    *,
    on_failure: object,
    on_cancel: object,
    middleware: object,
    **options: object,
) -> dict[str, Any]:
    """Validate the handlers, middleware and flow-control options of ``create_function``.

    Returns the options in their registration form; raises :class:`ConfigError` naming the
    option and what it must be.
    """
    what = f"create_function(fn_id={fn_id!r})"
    for option, value in (("on_failure", on_failure), ("on_cancel", on_cancel)):
        if value is not None and not callable(value):
            raise ConfigError(
                f"{what}: {option} must be a function (sync or async) taking ctx, "
                f"not {type(value).__name__}"
            )
    if middleware is not None:
        if not isinstance(middleware, (list, tuple)):
            raise ConfigError(f"{what}: middleware must be a list of Middleware classes")
        for factory in middleware:
            if not callable(factory):
                raise ConfigError(
                    f"{what}: middleware must hold Middleware subclasses or factories, "
                    f"not {type(factory).__name__}"
                )
    try:
        return options_config(what, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
