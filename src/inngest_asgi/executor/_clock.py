"""Clocks the executor reads time from, and the timers it schedules against them.

:class:`RealClock` is wall time: timers fire on their own, as the executor's scheduler sleeps
until the next one is due. :class:`VirtualClock` is wall time plus an offset that only
:meth:`Executor.advance <inngest_asgi.executor.Executor.advance>` moves, and its timers fire
only when time is advanced, so sleeps, wait timeouts and retry delays of any length are tested
instantly.

Why wall time plus an offset and not a frozen instant: user code computes sleep deadlines with
the real clock (``datetime.now() + duration``), so a frozen clock would always lag behind them.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import time
from collections.abc import Callable

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock:
    """Base of the executor's clocks: :meth:`now` in unix seconds."""

    #: Whether timers fire on their own (True) or only when time is advanced (False).
    realtime: bool = True

    def now(self) -> float:
        """The current time in unix seconds."""
        raise NotImplementedError

    @property
    def offset(self) -> float:
        """Seconds this clock is ahead of wall time. Dates computed by apps (which live in
        wall time) are shifted by this much."""
        return 0.0

    def now_datetime(self) -> _dt.datetime:
        """The current time as an aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.now(), _dt.timezone.utc)


class RealClock(Clock):
    """Wall time. Used by ``inngest-asgi dev``: a 2 s sleep takes 2 s."""

    realtime = True

    def now(self) -> float:
        return time.time()


class VirtualClock(Clock):
    """Wall time plus an offset moved only by ``advance``; for tests.

    >>> clock = VirtualClock()
    >>> before = clock.now()
    >>> clock.move(3600)
    >>> clock.now() - before >= 3600
    True
    """

    realtime = False

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def move(self, seconds: float) -> None:
        """Jump forward by ``seconds`` (never backward). Timers are fired by the executor."""
        if seconds < 0:
            raise ValueError("a virtual clock only moves forward")
        self._offset += seconds

    def move_to(self, moment: float) -> None:
        """Jump forward to unix time ``moment`` if it is ahead of now."""
        ahead = moment - self.now()
        if ahead > 0:
            self._offset += ahead


class Timer:
    """A callback due at ``due`` (unix seconds); :meth:`cancel` before it fires to drop it."""

    __slots__ = ("callback", "cancelled", "due", "label")

    def __init__(self, due: float, callback: Callable[[], None], label: str) -> None:
        self.due = due
        self.callback = callback
        self.label = label
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        return f"<Timer {self.label} due={self.due:.3f}{' cancelled' if self.cancelled else ''}>"


class TimerQueue:
    """Timers ordered by due time (ties by insertion order)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def push(self, timer: Timer) -> None:
        heapq.heappush(self._heap, (timer.due, next(self._seq), timer))

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        """Due time of the earliest live timer, or None."""
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Timer | None:
        """Remove and return the earliest live timer due at or before ``now``."""
        self._drop_cancelled()
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None

    def kinds(self) -> set[str]:
        """Labels of the live timers."""
        return {t.label for _, _, t in self._heap if not t.cancelled}

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)
