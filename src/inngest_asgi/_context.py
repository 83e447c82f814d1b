"""The ``ctx`` argument of user functions."""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from ._wire import Event

if TYPE_CHECKING:
    from ._engine import Replay
    from ._step import Group, GroupSync, Step, StepSync

__all__ = ["Context", "ContextSync", "ReplayFilter"]

#: The replay of the function running in this context (copied into worker threads).
current_replay: contextvars.ContextVar[Replay | None] = contextvars.ContextVar(
    "inngest_asgi_replay", default=None
)


class ReplayFilter(logging.Filter):
    """A logging filter that drops records emitted while a function replays memoized steps.

    ``ctx.logger`` already behaves this way; attach this filter to your own loggers (or
    handlers) for the same effect: ``logging.getLogger("myapp").addFilter(ReplayFilter())``.
    Records logged outside a function run always pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        replay = current_replay.get()
        return replay is None or not replay.replaying


class ReplayAwareLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Drops records while the function replays steps that already ran, so each line is
    logged once per run instead of once per request."""

    def __init__(self, logger: logging.Logger, replay: Replay) -> None:
        self.logger = logger
        self.extra = {}
        self._replay = replay

    def isEnabledFor(self, level: int) -> bool:
        return not self._replay.replaying and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs


@dataclasses.dataclass
class _ContextFields:
    attempt: int
    event: Event
    events: list[Event]
    logger: logging.Logger | logging.LoggerAdapter  # type: ignore[type-arg]
    run_id: str
    max_attempts: int | None


@dataclasses.dataclass
class Context(_ContextFields):
    """Context of an ``async def`` function: ``await ctx.step.run(...)``."""

    step: Step
    group: Group


@dataclasses.dataclass
class ContextSync(_ContextFields):
    """Context of a ``def`` function: ``ctx.step.run(...)`` without ``await``."""

    step: StepSync
    group: GroupSync
