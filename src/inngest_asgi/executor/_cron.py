"""Cron schedules (croniter), with the ``TZ=Area/City`` prefix Inngest accepts."""

from __future__ import annotations

import datetime as _dt
import zoneinfo

from croniter import croniter

__all__: list[str] = []


class CronError(ValueError):
    """A cron expression (or its time zone) that cannot be parsed."""


def _split(expression: str) -> tuple[str, _dt.tzinfo]:
    text = expression.strip()
    zone: _dt.tzinfo = _dt.timezone.utc
    for prefix in ("TZ=", "CRON_TZ="):
        if text.startswith(prefix):
            name, _, text = text[len(prefix) :].partition(" ")
            try:
                zone = zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise CronError(f"unknown time zone {name!r} in cron {expression!r}") from None
            text = text.strip()
            break
    return text, zone


def validate(expression: str) -> None:
    """Raise :class:`CronError` if ``expression`` is not a valid schedule."""
    text, _ = _split(expression)
    if not text or not croniter.is_valid(text):
        raise CronError(f"invalid cron expression {expression!r}")


def next_fire(expression: str, after: float) -> float:
    """The first time (unix seconds) strictly after ``after`` that matches ``expression``."""
    text, zone = _split(expression)
    start = _dt.datetime.fromtimestamp(after, zone)
    nxt: _dt.datetime = croniter(text, start).get_next(_dt.datetime)
    return nxt.timestamp()
