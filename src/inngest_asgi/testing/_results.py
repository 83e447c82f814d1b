"""What a test reads back: a run's status, output, error and step timeline."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from inngest_asgi._engine import hash_step_id
from inngest_asgi.executor import Run, RunStatus, StepRecord, StepStatus

if TYPE_CHECKING:
    from ._wire import Wire

__all__ = ["Error", "Result", "Status", "StepResult"]

#: How many uses of one step id (``x``, ``x:1``, ``x:2`` ...) are tried when naming a step.
_MAX_REPEATS = 1000


class Status(str, enum.Enum):
    """Where a run is after the harness drove it as far as it could go."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Not finished: waiting for an event, an invoked run, or (without auto-advance) a timer.
    WAITING = "waiting"

    def __str__(self) -> str:
        return self.value


_RUN_STATUS = {
    RunStatus.RUNNING: Status.WAITING,
    RunStatus.COMPLETED: Status.COMPLETED,
    RunStatus.FAILED: Status.FAILED,
    RunStatus.CANCELLED: Status.CANCELLED,
}

_STEP_STATUS = {
    StepStatus.PLANNED: "planned",
    StepStatus.RUNNING: "running",
    StepStatus.SLEEPING: "sleeping",
    StepStatus.WAITING: "waiting",
    StepStatus.INVOKING: "invoking",
    StepStatus.COMPLETED: "completed",
    StepStatus.ERRORED: "errored",
    StepStatus.FAILED: "failed",
    StepStatus.TIMED_OUT: "timed_out",
}


@dataclasses.dataclass(frozen=True)
class Error:
    """An error as it crossed the wire: the exception's class name, message and traceback."""

    name: str
    message: str
    stack: str | None = None

    @classmethod
    def from_wire(cls, value: Mapping[str, Any] | None) -> Error | None:
        if not value:
            return None
        stack = value.get("stack")
        return cls(
            name=str(value.get("name") or "Error"),
            message=str(value.get("message") or ""),
            stack=stack if isinstance(stack, str) else None,
        )

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One step of a run's timeline.

    ``id`` is the step id as written in the function (``"charge"``), with ``:1``, ``:2``
    for its later uses in the same run, as in ``step_stubs``. ``kind`` is ``run``,
    ``sleep``, ``wait_for_event`` or ``invoke``. ``status`` is one of ``completed``,
    ``failed`` (for good), ``errored`` (an attempt failed, a retry is due), ``timed_out``
    (a wait or invoke that got nothing), ``planned``, ``running``, ``sleeping``, ``waiting``
    or ``invoking``. ``attempts`` counts the failed attempts before the current one.
    ``stubbed`` is true when the value came from ``step_stubs`` and the step never ran.
    """

    id: str
    kind: str
    status: str
    output: Any = None
    error: Error | None = None
    attempts: int = 0
    stubbed: bool = False
    hashed_id: str = ""

    def __str__(self) -> str:
        text = f"{self.id} ({self.kind}): {self.status}"
        if self.stubbed:
            text += ", stubbed"
        if self.attempts:
            text += f" after {self.attempts} failed attempt{'s' if self.attempts > 1 else ''}"
        if self.error is not None:
            text += f" - {self.error}"
        elif self.status == "completed" and self.kind != "sleep":
            text += f" -> {_short(self.output)}"
        return text


class Result:
    """One run, as the harness sees it: a live view that follows the run as it moves on.

    ``status`` (:class:`Status`), ``output`` (the function's return value, once
    completed), ``error`` (an :class:`Error`, once failed), ``steps`` (the timeline of
    :class:`StepResult`, in the order steps were first reported), ``event`` and ``events``.
    ``str(result)`` prints all of it.
    """

    def __init__(self, run: Run, wire: Wire) -> None:
        self._run = run
        self._wire = wire

    @property
    def run_id(self) -> str:
        return self._run.id

    @property
    def function_id(self) -> str:
        """The composite id ``<app id>-<function id>``."""
        return self._run.function_id

    @property
    def status(self) -> Status:
        return _RUN_STATUS[self._run.status]

    @property
    def output(self) -> Any:
        return self._run.output

    @property
    def error(self) -> Error | None:
        return Error.from_wire(self._run.error)

    @property
    def event(self) -> dict[str, Any]:
        return self._run.event

    @property
    def events(self) -> list[dict[str, Any]]:
        return self._run.events

    @property
    def steps(self) -> list[StepResult]:
        return [self._step_result(record) for record in self._run.steps]

    def step(self, step_id: str) -> StepResult:
        """The step with this id (``"charge"``, or ``"charge:1"`` for its second use).

        Raises KeyError naming the steps the run has.
        """
        steps = self.steps
        for step in steps:
            if step.id == step_id:
                return step
        names = ", ".join(repr(s.id) for s in steps) or "none"
        raise KeyError(f"run {self.run_id} has no step {step_id!r}; its steps: {names}")

    def assert_completed(self) -> Any:
        """Return the output; raise AssertionError showing the error and timeline otherwise."""
        if self.status is not Status.COMPLETED:
            raise AssertionError(f"expected the run to complete, but it is {self.status}\n{self}")
        return self.output

    def _step_result(self, record: StepRecord) -> StepResult:
        stubbed = self._wire.stubbed(self._run.id, record.id)
        status = _STEP_STATUS.get(record.status, str(record.status.value).lower())
        if stubbed is not None and stubbed[0].timed_out:
            status = "timed_out"
        return StepResult(
            id=_user_id(record),
            kind=record.kind if stubbed is None else stubbed[1],
            status=status,
            output=record.output,
            error=Error.from_wire(record.error),
            attempts=record.attempts,
            stubbed=stubbed is not None,
            hashed_id=record.id,
        )

    def __str__(self) -> str:
        lines = [f"run {self.run_id} of {self.function_id}: {self.status}"]
        if self.status is Status.COMPLETED:
            lines[0] += f" -> {_short(self.output)}"
        error = self.error
        if error is not None:
            lines[0] += f" - {error}"
        for index, step in enumerate(self.steps, 1):
            lines.append(f"  {index}. {step}")
        if not self._run.steps:
            lines.append("  (no steps)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Result {self.function_id} {self.status} run={self.run_id}>"


def _user_id(record: StepRecord) -> str:
    """``name``, or ``name:k`` when the hashed id says this is the k-th use of the name."""
    name = record.name
    if hash_step_id(name) == record.id:
        return name
    for k in range(1, _MAX_REPEATS):
        if hash_step_id(f"{name}:{k}") == record.id:
            return f"{name}:{k}"
    return name


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
