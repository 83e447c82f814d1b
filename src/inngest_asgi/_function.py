"""``Function``: a user handler with its id, triggers and options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._errors import ConfigError
from ._invoke import is_async_callable
from ._triggers import Trigger, TriggerCron, TriggerEvent

if TYPE_CHECKING:
    from ._client import Inngest

__all__ = ["Function"]

T = TypeVar("T")

#: The server's cap on retries (attempts = retries + 1).
MAX_RETRIES = 20


class Function(Generic[T]):
    """A function served by :class:`~inngest_asgi.InngestASGI`; made by
    :meth:`Inngest.create_function <inngest_asgi.Inngest.create_function>`."""

    __slots__ = (
        "_client",
        "handler",
        "is_handler_async",
        "local_id",
        "name",
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
    ) -> None:
        self._client = client
        self.local_id = fn_id
        self.handler = handler
        self.triggers = tuple(triggers)
        self.name = name or fn_id
        self.retries = retries
        #: Decided once: async handlers are awaited, sync ones run in a worker thread.
        self.is_handler_async = is_async_callable(handler)

    @property
    def id(self) -> str:
        """The fully qualified id ``<app_id>-<fn_id>`` the server uses."""
        return f"{self._client.app_id}-{self.local_id}"

    @property
    def app_id(self) -> str:
        return self._client.app_id

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
