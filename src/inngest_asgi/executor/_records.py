"""What the executor records about runs: status, output or error, and a timeline of steps."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = ["Run", "RunStatus", "StepRecord", "StepStatus"]


class RunStatus(str, enum.Enum):
    """Where a run is. Only ``RUNNING`` is not final."""

    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


class StepStatus(str, enum.Enum):
    """Where a step is in its run's timeline."""

    PLANNED = "Planned"
    RUNNING = "Running"
    SLEEPING = "Sleeping"
    WAITING = "Waiting"
    INVOKING = "Invoking"
    COMPLETED = "Completed"
    ERRORED = "Errored"  # an attempt failed; a retry is scheduled
    FAILED = "Failed"  # failed for good; memoized as an error
    TIMED_OUT = "TimedOut"  # a wait or invoke that ended without a result


@dataclasses.dataclass
class StepRecord:
    """One step of a run, as the executor saw it.

    ``kind`` is ``run``, ``sleep``, ``wait_for_event`` or ``invoke``; ``id`` is the hashed
    step id and ``name`` the user's id. ``attempts`` counts failed attempts before the last.
    """

    id: str
    name: str
    kind: str
    status: StepStatus
    started_at: float
    ended_at: float | None = None
    attempts: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    #: For sleeps, waits and invokes: when the step times out or wakes (unix seconds).
    until: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once ended."""
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclasses.dataclass
class Run:
    """One run of a function: read it from :meth:`Executor.get_run` or :attr:`Executor.runs`.

    ``event`` is the triggering event and ``events`` the batch (one event unless batched).
    ``output`` is the function's return value once ``COMPLETED``; ``error`` is
    ``{"name", "message", "stack"}`` once ``FAILED``.
    """

    id: str
    function_id: str
    event: dict[str, Any]
    events: list[dict[str, Any]]
    status: RunStatus
    started_at: float
    ended_at: float | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    steps: list[StepRecord] = dataclasses.field(default_factory=list)
    #: HTTP requests sent to the app for this run.
    requests: int = 0
    #: The run that invoked this one with ``step.invoke``, if any.
    parent_run_id: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once finished."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    def step(self, name: str) -> StepRecord:
        """The last step whose user id is ``name``; KeyError if there is none."""
        for record in reversed(self.steps):
            if record.name == name:
                return record
        raise KeyError(f"run {self.id} has no step {name!r}")
