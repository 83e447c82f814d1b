"""Triggers: what starts a function. They encode directly to the registration payload."""

from __future__ import annotations

import msgspec

from ._durations import to_time_string

__all__ = ["TriggerCron", "TriggerEvent"]


class TriggerEvent(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Run the function for each event named ``event``.

    ``expression`` is an optional CEL filter evaluated against ``event``,
    e.g. ``"event.data.amount > 100"``.
    """

    event: str
    expression: str | None = None

    def validate(self, what: str) -> None:
        if not isinstance(self.event, str) or not self.event:
            raise ValueError(f"{what}: TriggerEvent.event must be a non-empty event name")
        if self.expression is not None and not isinstance(self.expression, str):
            raise ValueError(f"{what}: TriggerEvent.expression must be a string")


class TriggerCron(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Run the function on a schedule, e.g. ``TriggerCron(cron="0 9 * * MON")``.

    ``cron`` may start with ``TZ=Area/City``; ``jitter`` (e.g. ``"30s"``) spreads start times.
    """

    cron: str
    jitter: str | None = None

    def validate(self, what: str) -> None:
        if not isinstance(self.cron, str) or not self.cron.strip():
            raise ValueError(f"{what}: TriggerCron.cron must be a cron expression")
        if self.jitter is not None:
            if not isinstance(self.jitter, str):
                raise ValueError(f"{what}: TriggerCron.jitter must be a duration string like '30s'")
            to_time_string(self.jitter, f"{what}: TriggerCron.jitter")


Trigger = TriggerEvent | TriggerCron
