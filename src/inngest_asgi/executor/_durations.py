"""Time strings (``"1h30m"``), ISO-8601 dates and ``retry-after`` values."""

from __future__ import annotations

import datetime as _dt
import email.utils

from inngest_asgi._durations import to_timedelta

__all__: list[str] = []

#: Longest sleep the server accepts.
MAX_SLEEP = 366 * 86400.0
#: ``retry-after`` is clamped into this range, in seconds.
RETRY_AFTER_MIN, RETRY_AFTER_MAX = 1.0, 86400.0


def parse_duration(text: str) -> float:
    """Seconds in a time string such as ``"90s"`` or ``"2h45m"``; ValueError otherwise."""
    return to_timedelta(text, "duration").total_seconds()


def parse_datetime(text: str) -> float:
    """Unix seconds of an ISO-8601 date; a date without a zone is read as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = _dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def parse_sleep(duration: object, name: object, now: float, offset: float = 0.0) -> float:
    """When a Sleep op wakes: ``opts.duration`` first, then ``name``, each a time string or
    a date (in wall time, shifted by the clock's ``offset``). Clamped to :data:`MAX_SLEEP`
    ahead; ValueError when neither can be read."""
    for value in (duration, name):
        if not isinstance(value, str) or not value:
            continue
        try:
            return now + min(parse_duration(value), MAX_SLEEP)
        except ValueError:
            pass
        try:
            return min(parse_datetime(value) + offset, now + MAX_SLEEP)
        except ValueError:
            pass
    raise ValueError(
        f"Sleep op has no readable duration (opts.duration={duration!r}, name={name!r})"
    )


def parse_retry_after(value: str, now: float, offset: float = 0.0) -> float:
    """Delay in seconds from a ``retry-after`` header: seconds (up to 7 characters) or a date
    (ISO-8601 or HTTP, in wall time, shifted by the clock's ``offset``). Clamped to
    1 s ... 24 h; ValueError when unreadable."""
    text = value.strip()
    now -= offset
    if len(text) <= 7 and text.replace(".", "", 1).isdigit():
        delay = float(text)
    else:
        try:
            delay = parse_datetime(text) - now
        except ValueError:
            try:
                delay = email.utils.parsedate_to_datetime(text).timestamp() - now
            except (TypeError, ValueError):
                raise ValueError(f"unreadable retry-after {value!r}") from None
    return min(max(delay, RETRY_AFTER_MIN), RETRY_AFTER_MAX)


def format_duration(seconds: float) -> str:
    """Short human form for logs: ``850 ms``, ``2.0 s``, ``3m05s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
