"""The replay engine: one per request, the same for sync and async functions.

It decides and never performs: the step facades ask it what a step call means, run the user's
callable themselves when told to (awaiting it, or calling it in the current thread), and hand the
outcome back. Rules (PROTOCOL.md §10.2-10.7):

* Every step call gets a hashed id: ``sha1(user_id)`` for the first use of ``user_id`` in this
  replay, ``sha1(f"{user_id}:{k}")`` for the k-th repeat. The counter counts memoized calls too.
* A memoized step returns its stored value (each memo is used once) or raises :class:`StepError`
  when it stored an error.
* A new step stops the replay, reported as an opcode, except a run step that may execute now:
  no parallel group, no ``disable_immediate_execution``, and no target other than itself.
* While the server targets a step (``stepId`` is not ``step``), a different new step is an error
  outside a parallel group and skips its branch inside one.
* Inside a parallel group new steps are collected, not reported one by one: each stops only its
  own branch, and all are reported together when the group ends.
* In async functions, new steps that start in the same event-loop iteration (``asyncio.gather``)
  meet in :meth:`Replay.settle` and are treated like a parallel group: planned together, or,
  under targeting, the target runs while its siblings wait and then unwind.

Stopping unwinds user code with :class:`Interrupt`, a :class:`BaseException`, so that
``except Exception`` cannot swallow it. The ops are recorded before raising, so even a bare
``except:`` that swallows the interrupt cannot lose them: the request still reports them.
"""

from __future__ import annotations

import asyncio
import hashlib
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final, NoReturn

import anyio
import anyio.lowlevel
import msgspec

from ._errors import (
    NonRetriableError,
    ProtocolError,
    RetryAfterError,
    StepError,
    StepNestedError,
    StepUnexpectedError,
)
from ._types import EMPTY, convert_output, declared_output_type, output_types
from ._wire import ErrorBody, Op, Userland, encoder

__all__: list[str] = []


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: What :meth:`Replay.lookup` returns for a step that has no memo: it is new.
MISSING: Final = _Missing()
_TARGET_NONE = "step"


class Interrupt(BaseException):
    """Stops a function's replay so that its next step can be reported to the Inngest server.

    This is not an error. If you see it, your code caught it: a bare ``except:`` or
    ``except BaseException:`` around ``ctx.step.*`` calls. Catch ``Exception`` instead (or
    re-raise ``BaseException`` subclasses you do not own), so the step can be reported.
    """


class _BranchStop(BaseException):
    """Ends one branch of a parallel group; the group reports what the branches collected."""


class OutputUnserializableError(ProtocolError):
    """A step or function returned a value that cannot be encoded as JSON."""

    status = 500
    default_code = "output_unserializable"


def current_task() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no asyncio loop (trio): every new step checks for siblings
        return None


_sha1 = hashlib.sha1


def hash_step_id(pre: str) -> str:
    return _sha1(pre.encode(), usedforsecurity=False).hexdigest()


def error_body(exc: BaseException, code: str = "unknown") -> ErrorBody:
    """The wire form of an exception: class name, message and formatted traceback."""
    if isinstance(exc, StepError):
        return ErrorBody(code=code, message=exc.message, name=exc.name, stack=exc.stack)
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        message = str(exc)
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorBody(code=code, message=message, name=type(exc).__name__, stack=stack)


def encode_output(value: Any, what: str) -> msgspec.Raw:
    """Encode a step's or function's output now, so that a bad value is blamed on its source."""
    try:
        return msgspec.Raw(encoder.encode(value))
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise OutputUnserializableError(
            f"{what} returned a value that cannot be serialized to JSON: {exc}"
        ) from None


def _unwrap_memo(memo: Any) -> tuple[Any, dict[str, Any] | None]:
    """Split a memo into (data, error). ``{"data": x}`` and ``{"error": {...}}`` are wrappers;
    anything else (``null`` for a sleep, an event for a wait) is the data itself."""
    if isinstance(memo, dict) and memo and memo.keys() <= {"data", "error"}:
        error = memo.get("error")
        if isinstance(error, dict) and "message" in error and "name" in error:
            return None, error
        if "data" in memo:
            return memo["data"], None
    return memo, None


class _StepInfo:
    __slots__ = ("hashed", "index", "user_id")

    def __init__(self, user_id: str, hashed: str, index: int | None) -> None:
        self.user_id = user_id
        self.hashed = hashed
        self.index = index

    def op(self, opcode: str, *, name: str | None = None, opts: dict[str, Any] | None = None) -> Op:
        return Op(
            display_name=self.user_id,
            id=self.hashed,
            name=self.user_id if name is None else name,
            op=opcode,
            opts=opts,
            userland=Userland(id=self.user_id, index=self.index),
        )


class _Group:
    __slots__ = ("mode", "pending", "skipped")

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.pending: list[Op] = []
        self.skipped = False


class Replay:
    """Replay state of one request: memos left, id counters, targeting, parallel groups."""

    __slots__ = (
        "_batch",
        "_counts",
        "_group",
        "_immediate",
        "_memos",
        "_released",
        "_running",
        "_target",
        "attempt",
        "fatal",
        "max_attempts",
        "owner",
        "stopped",
    )

    def __init__(
        self,
        memos: dict[str, Any],
        *,
        target: str | None = None,
        disable_immediate_execution: bool = False,
        attempt: int = 0,
        max_attempts: int | None = None,
    ) -> None:
        self._memos = memos
        self._counts: dict[str, int] = {}
        self._target = None if target in (None, "", _TARGET_NONE) else target
        self._immediate = not disable_immediate_execution
        self._group: _Group | None = None
        self._running: _StepInfo | None = None
        self._batch: list[tuple[_StepInfo, Op | None]] | None = None
        self._released: anyio.Event | None = None
        self.attempt = attempt
        self.max_attempts = max_attempts
        #: The ops this replay stopped to report, once it has stopped.
        self.stopped: list[Op] | None = None
        #: A protocol error that ends the request, whatever user code does with the interrupt.
        self.fatal: ProtocolError | None = None
        #: The asyncio task running the function, when it is async and on asyncio.
        self.owner: object | None = None

    @property
    def replaying(self) -> bool:
        """True while memoized steps remain: user code is re-running what already happened."""
        return bool(self._memos)

    # --- shared by every step kind ---------------------------------------------------------

    def _check_call(self, user_id: str) -> None:
        """Refuse a step call the replay cannot take (the rare cases, out of the hot path)."""
        if self.stopped is not None:
            # User code swallowed the interrupt and went on: stop it again.
            raise Interrupt
        if not isinstance(user_id, str) or not user_id:
            raise TypeError(f"step_id must be a non-empty string, not {user_id!r}")
        if self._running is not None:
            self._fatal(
                StepNestedError(
                    f'step "{user_id}" was called inside step "{self._running.user_id}"; steps '
                    "cannot be nested: call it after the outer step returns"
                )
            )

    @staticmethod
    def _memo_value(memo: Any) -> Any:
        data, error = _unwrap_memo(memo)
        if error is not None:
            raise StepError(
                message=str(error.get("message", "")),
                name=str(error.get("name", "Error")),
                stack=error.get("stack") if isinstance(error.get("stack"), str) else None,
            )
        return data

    def _check_target(self, info: _StepInfo) -> None:
        """Return if a new step may proceed under targeting; skip its branch or fail if not."""
        if self._target is None or self._target == info.hashed:
            return
        if self._group is not None:
            self._group.skipped = True
            raise _BranchStop
        self._fatal(
            StepUnexpectedError(f'found step "{info.user_id}" when targeting a different step')
        )

    def _stop(self, ops: list[Op]) -> NoReturn:
        self.stopped = ops
        raise Interrupt

    def _fatal(self, error: ProtocolError) -> NoReturn:
        self.fatal = error
        self._stop([])

    def _report(self, op: Op) -> NoReturn:
        if self._group is not None and self._target is None:
            self._group.pending.append(op)
            raise _BranchStop
        self._stop([op])

    # --- the step protocol the facades follow ------------------------------------------------
    #
    #   value = replay.lookup(step_id, type, fn)    the typed memo, or a _StepInfo if new
    #   await replay.settle(info, op)               async facades only (asyncio.gather)
    #   replay.plan_run(info) / replay.plan_op(...)  run now, or report and stop
    #   replay.step_done(output) / step_failed(exc)  after running a run step

    def lookup(self, user_id: str, output_type: Any = None, handler: Any = None) -> Any:
        """Assign the call its hashed id and take its memo: the memoized value, decoded to
        ``output_type`` (``EMPTY``: to ``handler``'s return annotation), or a
        :class:`_StepInfo` (never a memo's value: those come from JSON) for a new step.

        Raises :class:`StepError` when the memo holds an error. This runs once per step and
        replay, so the common case (a ``{"data": ...}`` memo) takes the shortest path.
        """
        if self.stopped is not None or self._running is not None or type(user_id) is not str:
            self._check_call(user_id)
        counts = self._counts
        count = counts.get(user_id, 0)
        counts[user_id] = count + 1
        if count:
            pre = f"{user_id}:{count}"
        elif user_id:
            pre = user_id
        else:
            self._check_call(user_id)  # raises: an empty id
        hashed = _sha1(pre.encode(), usedforsecurity=False).hexdigest()
        memo = self._memos.pop(hashed, MISSING)
        if memo is MISSING:
            return _StepInfo(user_id, hashed, count or None)
        data = memo.get("data", MISSING) if type(memo) is dict and len(memo) == 1 else MISSING
        if data is MISSING:
            data = self._memo_value(memo)
        if output_type is EMPTY:
            try:  # the cache of declared_output_type, read in place
                output_type = output_types[handler.__code__]
            except (AttributeError, KeyError):
                output_type = declared_output_type(handler)
        return data if output_type is None else convert_output(data, output_type)

    async def settle(self, info: _StepInfo, op: Op | None) -> None:
        """Let sibling step calls started in the same loop iteration (``asyncio.gather``)
        announce themselves, then treat several new steps like a parallel group.

        ``op`` is the step's op, or None for a run step. A call from the function's own task
        (not from a task ``asyncio.gather`` made) has no siblings and returns at once.
        """
        batch = self._batch
        if batch is None and self.owner is not None and current_task() is self.owner:
            return
        if batch is None:
            batch = self._batch = []
        batch.append((info, op))
        await anyio.lowlevel.checkpoint()
        if self._batch is batch:
            self._batch = None
        if self.stopped is not None:
            raise Interrupt
        if len(batch) == 1:
            return
        if self._target is None:
            self._stop([o if o is not None else i.op("StepPlanned") for i, o in batch])
        if info.hashed == self._target:
            return
        if any(i.hashed == self._target for i, _ in batch):
            # A sibling is the target: wait for it to report, then unwind.
            if self._released is None:
                self._released = anyio.Event()
            await self._released.wait()
            raise Interrupt
        self._fatal(
            StepUnexpectedError("no step started together with others is the targeted step")
        )

    def release(self) -> None:
        """End of request: unwind step calls still waiting in :meth:`settle`."""
        if self._released is not None:
            self._released.set()

    def plan_run(self, info: _StepInfo) -> None:
        """Return if the run step executes now; otherwise report it (planned) and stop."""
        self._check_target(info)
        if self._target is None and (self._group is not None or not self._immediate):
            opts = {"parallelMode": "race"} if self._group and self._group.mode == "race" else None
            self._report(info.op("StepPlanned", opts=opts))
        self._running = info

    def plan_op(self, info: _StepInfo, op: Op) -> NoReturn:
        """Report a step the server performs (sleep, wait, invoke) and stop."""
        self._check_target(info)
        self._report(op)

    def step_done(self, output: Any) -> NoReturn:
        """The running step returned ``output``: report it as ``StepRun``.

        The output is encoded later, after middleware has seen it."""
        info = self._take_running()
        op = info.op("StepRun")
        op.data = output
        self._stop([op])

    def step_failed(self, exc: Exception) -> NoReturn:
        """The running step raised ``exc``: report ``StepError``, or ``StepFailed`` on the last
        attempt. Errors that must fail the whole run are re-raised instead."""
        info = self._take_running()
        if isinstance(exc, (NonRetriableError, RetryAfterError)):
            raise exc  # fails or delays the whole attempt, as at function level
        final = self.max_attempts is not None and self.attempt + 1 >= self.max_attempts
        op = info.op("StepFailed" if final else "StepError")
        op.error = error_body(exc)
        op.data = msgspec.UNSET
        self._stop([op])

    def _take_running(self) -> _StepInfo:
        info = self._running
        if info is None:  # pragma: no cover - facades always pair plan_run with these
            raise RuntimeError("no step is running")
        self._running = None
        return info

    # --- parallel groups -------------------------------------------------------------------

    @contextmanager
    def parallel(self, mode: str) -> Iterator[None]:
        """Run a parallel group: branches inside use :meth:`branch`."""
        if self._group is not None:
            raise RuntimeError("ctx.group.parallel cannot be nested in another parallel group")
        group = self._group = _Group(mode)
        try:
            yield
        finally:
            self._group = None
        if group.pending:
            self._stop(group.pending)
        if group.skipped:
            # Targeting: no branch held the targeted step, so the group cannot complete.
            self._fatal(
                StepUnexpectedError("no branch of the parallel group holds the targeted step")
            )

    @contextmanager
    def branch(self) -> Iterator[None]:
        """One branch of the current group; a collected or skipped step ends only the branch."""
        with suppress(_BranchStop):
            yield
