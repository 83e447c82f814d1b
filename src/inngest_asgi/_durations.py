"""Durations in the forms users pass (int ms, timedelta, "1h30m") and the server reads."""

from __future__ import annotations

import datetime as _dt
import re

__all__: list[str] = []

_UNITS = {
    "w": 7 * 24 * 3600.0,
    "d": 24 * 3600.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|w|d|h|m|s)")
_EMIT = (("w", 7 * 24 * 3600), ("d", 24 * 3600), ("h", 3600), ("m", 60), ("s", 1))

Duration = int | _dt.timedelta | str


def to_timedelta(value: Duration, what: str) -> _dt.timedelta:
    """Read a duration: int milliseconds, a timedelta, or a string such as ``"1h30m"``."""
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected int milliseconds, timedelta or a string like '30s'")
    if isinstance(value, _dt.timedelta):
        delta = value
    elif isinstance(value, int):
        delta = _dt.timedelta(milliseconds=value)
    elif isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise ValueError(
                f"{what}: {value!r} is not a duration; use units w, d, h, m, s, ms "
                "(for example '30s' or '1h30m')"
            )
        delta = _dt.timedelta(seconds=seconds)
    else:
        raise TypeError(
            f"{what}: expected int milliseconds, timedelta or a string like '30s', "
            f"not {type(value).__name__}"
        )
    if delta < _dt.timedelta(0):
        raise ValueError(f"{what}: a duration cannot be negative")
    return delta


def to_time_string(value: Duration, what: str, *, minimum: float = 1.0) -> str:
    """The server's form of a duration: the largest of w, d, h, m, s dividing it exactly.

    Sub-second remainders and values under ``minimum`` seconds are rejected.
    """
    delta = to_timedelta(value, what)
    if delta.total_seconds() < minimum:
        raise ValueError(f"{what}: must be at least {minimum:g} second(s), not {delta}")
    if delta.microseconds:
        raise ValueError(f"{what}: {delta} is not a whole number of seconds")
    seconds = int(delta.total_seconds())
    for unit, size in _EMIT:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: seconds divide by 1")  # pragma: no cover


def iso_utc(moment: _dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2030-01-01T00:00:00.000Z``."""
    utc = moment.astimezone(_dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
