"""The run loop: call the app, read its opcodes, store results, schedule what waits, call again.

This is the server's side of PROTOCOL.md §10, one run at a time:

* A **discovery** request (``stepId=step``) replays the function with every memo so far. It
  answers 200 (done, body = output), 206 (ops) or an error status.
* ``StepRun`` / ``StepFailed`` store ``{"data": ...}`` / ``{"error": ...}`` under the hashed
  step id; the next discovery follows. ``StepError`` retries the same request with
  ``attempt + 1`` after a backoff, and is stored as an error once attempts run out (or when
  the response says ``x-inngest-no-retry: true``).
* ``StepPlanned`` gets a **targeted** request (``stepId=<hashed id>``) of its own. A response
  with several ops is a parallel group: immediate execution is disabled until every op of the
  group is settled, then one discovery follows (``race`` groups: one after each op).
* ``Sleep``, ``WaitForEvent`` and ``InvokeFunction`` are settled later by a timer, a matching
  event or the invoked run's end; sleeps store ``null``, waits the event (or ``null`` on
  timeout), invokes ``{"data": output}`` or ``{"error": ...}``.
* Any other status is a failed attempt of the whole request: retried after a backoff (or
  ``retry-after``) unless ``x-inngest-no-retry: true`` or attempts are exhausted, in which case
  the run fails and ``inngest/function.failed`` is emitted.

``attempt`` belongs to the request edge (a discovery or one targeted step), not to the run,
and starts again at 0 for each new edge.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import msgspec
import rfc8785

from . import _expressions
from ._clock import Timer
from ._durations import format_duration, parse_duration, parse_retry_after, parse_sleep
from ._ids import ulid
from ._records import Run, RunStatus, StepRecord, StepStatus
from ._registry import FunctionConfig
from ._signing import SignatureError, sign, verify_response

if TYPE_CHECKING:
    from ._executor import Executor

__all__: list[str] = []

log = logging.getLogger("inngest_asgi.executor")

DISCOVERY = "step"
#: How long a wait or invoke without a timeout lasts.
DEFAULT_WAIT = 365 * 86400.0
_json_decoder = msgspec.json.Decoder()


def default_backoff(attempt: int) -> float:
    """Seconds before retry ``attempt + 1``: 1, 2, 4, 8 ... capped at 5 minutes."""
    return float(min(2**attempt, 300))


def encode_body(value: Any) -> bytes:
    """Canonical (JCS) bytes, which signatures are computed over; plain JSON as a fallback for
    values JCS cannot represent (integers beyond 2**53, for instance)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return msgspec.json.encode(value)


class RunState:
    """Everything the loop knows about one unfinished (or just finished) run."""

    def __init__(self, record: Run, fn: FunctionConfig, parent: tuple[RunState, str] | None):
        self.record = record
        self.fn = fn
        self.parent = parent
        self.steps: dict[str, Any] = {}
        self.stack: list[str] = []
        self.version = -1
        self.disable_immediate = False
        #: Hashed ids reported by the app and not settled yet (planned, sleeping, waiting...).
        self.outstanding: set[str] = set()
        self.race = False
        self.discovering = False
        self.rediscover = False
        self.timers: set[Timer] = set()
        self.step_records: dict[str, StepRecord] = {}
        self.finished = anyio.Event()

    @property
    def done(self) -> bool:
        return self.record.status.finished

    def label(self) -> str:
        return f"run {self.record.id} ({self.fn.id})"


class Outcome:
    """A response, read: output (200), ops (206) or an error, plus retry hints."""

    __slots__ = ("error", "no_retry", "ops", "output", "retry_after", "status")

    def __init__(self, status: int) -> None:
        self.status = status
        self.output: Any = None
        self.ops: list[dict[str, Any]] | None = None
        self.error: dict[str, Any] | None = None
        self.no_retry = False
        self.retry_after: float | None = None


class RunLoop:
    """Drives runs for an :class:`Executor`; all state changes happen on its event loop."""

    def __init__(self, executor: Executor) -> None:
        self._ex = executor

    # --- scheduling ------------------------------------------------------------------------

    def discover(self, state: RunState) -> None:
        """Queue a discovery request, or remember to send one after the current one."""
        if state.done:
            return
        if state.discovering:
            state.rediscover = True
            return
        state.discovering = True
        self._ex.spawn(self._call, state, DISCOVERY, 0)

    def _later(self, state: RunState, due: float, kind: str, action: Callable[[], None]) -> Timer:
        def fire() -> None:
            state.timers.discard(timer)
            if not state.done:
                action()

        timer = self._ex.schedule(due, fire, kind)
        state.timers.add(timer)
        return timer

    # --- one request -----------------------------------------------------------------------

    async def _call(self, state: RunState, target: str, attempt: int) -> None:
        retrying = False
        try:
            retrying = await self._exchange(state, target, attempt)
        except Exception as exc:
            log.exception("%s: the executor failed handling a response", state.label())
            error = {"name": type(exc).__name__, "message": f"executor error: {exc}"}
            self.finish(state, RunStatus.FAILED, error=error)
        finally:
            if target == DISCOVERY and not retrying:
                state.discovering = False
                if state.rediscover and not state.done:
                    state.rediscover = False
                    self.discover(state)

    def _body(self, state: RunState, target: str, attempt: int) -> bytes:
        record = state.record
        use_api = False
        events = record.events
        steps = state.steps
        threshold = self._ex.use_api_threshold
        if threshold is not None and len(encode_body([events, steps])) > threshold:
            use_api, events, steps = True, [], {}
        body = {
            "event": record.event,
            "events": events,
            "steps": steps,
            "ctx": {
                "run_id": record.id,
                "attempt": attempt,
                "max_attempts": state.fn.max_attempts,
                "disable_immediate_execution": state.disable_immediate,
                "use_api": use_api,
                "stack": {"stack": list(state.stack), "current": len(state.stack)},
                "fn_id": state.fn.id,
                "step_id": target,
                "env": "",
                "request_id": ulid(time.time()),
            },
            "version": state.version,
            "use_api": use_api,
        }
        return encode_body(body)

    async def _exchange(self, state: RunState, target: str, attempt: int) -> bool:
        """Send one request and act on its answer; True when a retry of it was scheduled."""
        if state.done:
            return False
        ex = self._ex
        body = self._body(state, target, attempt)
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": ex.server_kind,
            "x-inngest-step-id": target,
            "x-run-id": state.record.id,
            "x-request-id": ulid(time.time()),
        }
        if state.version >= 0:
            headers["x-inngest-req-version"] = str(state.version)
        if ex.signing_key:
            headers["x-inngest-signature"] = sign(body, ex.signing_key, int(time.time()))
        running = state.step_records.get(target)
        if running is not None and running.status in (StepStatus.PLANNED, StepStatus.ERRORED):
            running.status = StepStatus.RUNNING
        state.record.requests += 1
        started = ex.clock.now()
        try:
            response = await ex.transport.request("POST", state.fn.url(target), headers, body)
            outcome = self._read(state, response)
        except httpx.HTTPError as exc:
            outcome = Outcome(0)
            outcome.error = {"name": type(exc).__name__, "message": f"could not reach app: {exc}"}
        if state.record.status is not RunStatus.RUNNING:
            return False  # cancelled (or finished) while the request was in flight
        elapsed = ex.clock.now() - started
        if outcome.status == 200:
            self.finish(state, RunStatus.COMPLETED, output=outcome.output)
            return False
        if outcome.ops is not None:
            return self._ops(state, target, attempt, outcome, started, elapsed)
        return self._failed_attempt(state, target, attempt, outcome)

    def _read(self, state: RunState, response: httpx.Response) -> Outcome:
        ex = self._ex
        status, headers, content = response.status_code, response.headers, response.content
        if status == 201:  # streaming: whitespace keep-alives, then the real response as JSON
            try:
                wrapped = _json_decoder.decode(content)
                status = int(wrapped["status"])
                headers = httpx.Headers({**dict(response.headers), **wrapped.get("headers", {})})
                content = str(wrapped["body"]).encode()
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                return _bad(status, "the streamed response could not be read")
        elif ex.signing_key:
            try:
                verify_response(
                    headers.get("x-inngest-signature"), content, ex.signing_key, int(time.time())
                )
            except SignatureError as exc:
                return _bad(status, str(exc), name="SignatureError")
        if "x-inngest-sdk" not in headers:
            return _bad(status, f"HTTP {status} without x-inngest-sdk: not an Inngest SDK")
        version = headers.get("x-inngest-req-version", "")
        if version.lstrip("-").isdigit():
            state.version = int(version)
        outcome = Outcome(status)
        try:
            value = _json_decoder.decode(content) if content else None
        except msgspec.DecodeError:
            if status in (200, 206):
                return _bad(status, f"HTTP {status} with a body that is not JSON")
            value = None
        if status == 200:
            outcome.output = value
        elif status == 206:
            if isinstance(value, dict):
                value = [value]  # a legacy single op
            if not isinstance(value, list) or not all(isinstance(op, dict) for op in value):
                return _bad(status, "HTTP 206 whose body is not a list of ops")
            outcome.ops = value
        else:
            outcome.error = _error_of(value, status, content)
        outcome.no_retry = headers.get("x-inngest-no-retry", "").strip().lower() == "true"
        retry_after = headers.get("retry-after")
        if retry_after:
            try:
                outcome.retry_after = parse_retry_after(
                    retry_after, ex.clock.now(), ex.clock.offset
                )
            except ValueError:
                log.warning("%s: ignoring unreadable retry-after %r", state.label(), retry_after)
        return outcome

    def _failed_attempt(self, state: RunState, target: str, attempt: int, outcome: Outcome) -> bool:
        error = outcome.error or {"name": "Error", "message": f"HTTP {outcome.status}"}
        max_attempts = state.fn.max_attempts
        if not outcome.no_retry and attempt + 1 < max_attempts:
            delay = outcome.retry_after or self._ex.backoff(attempt)
            log.info(
                "  %s attempt %d/%d failed: %s: %s; retrying in %s",
                state.label(),
                attempt + 1,
                max_attempts,
                error.get("name"),
                error.get("message"),
                format_duration(delay),
            )
            self._retry(state, target, attempt, delay)
            return True
        self.finish(state, RunStatus.FAILED, error=error)
        return False

    def _retry(self, state: RunState, target: str, attempt: int, delay: float) -> None:
        due = self._ex.clock.now() + delay
        self._later(
            state, due, "retry", lambda: self._ex.spawn(self._call, state, target, attempt + 1)
        )

    # --- opcodes ---------------------------------------------------------------------------

    def _ops(
        self,
        state: RunState,
        target: str,
        attempt: int,
        outcome: Outcome,
        started: float,
        elapsed: float,
    ) -> bool:
        ops = outcome.ops or []
        if len(ops) > 1:
            state.disable_immediate = True
        retrying = False
        planned: list[str] = []
        settled: list[tuple[str, Any]] = []
        for op in ops:
            kind = str(op.get("op"))
            hashed = op.get("id")
            if not isinstance(hashed, str) or hashed in state.steps:
                continue
            name = _display_name(op)
            if kind in ("StepPlanned", "Sleep", "WaitForEvent", "InvokeFunction"):
                if hashed in state.outstanding:
                    continue  # already in progress (a race group rediscovered it)
                state.outstanding.add(hashed)
            if kind == "StepPlanned":
                opts = op.get("opts") or {}
                if isinstance(opts, dict) and opts.get("parallelMode") == "race":
                    state.race = True
                self._step(state, hashed, name, "run", StepStatus.PLANNED)
                planned.append(hashed)
            elif kind == "StepRun":
                rec = self._step(state, hashed, name, "run", StepStatus.COMPLETED, started)
                rec.ended_at, rec.output = started + elapsed, op.get("data")
                log.info(
                    "  %s: step %r completed in %s", state.label(), name, format_duration(elapsed)
                )
                settled.append((hashed, {"data": op.get("data")}))
            elif kind in ("StepError", "StepFailed"):
                error = _op_error(op)
                rec = self._step(state, hashed, name, "run", StepStatus.ERRORED, started)
                rec.error = error
                max_attempts = state.fn.max_attempts
                if kind == "StepError" and not outcome.no_retry and attempt + 1 < max_attempts:
                    rec.attempts += 1
                    delay = self._ex.backoff(attempt)
                    log.info(
                        "  %s: step %r errored (attempt %d/%d): %s: %s; retrying in %s",
                        state.label(),
                        name,
                        attempt + 1,
                        max_attempts,
                        error.get("name"),
                        error.get("message"),
                        format_duration(delay),
                    )
                    self._retry(state, target, attempt, delay)
                    retrying = True
                else:
                    rec.status, rec.ended_at = StepStatus.FAILED, started + elapsed
                    log.info(
                        "  %s: step %r failed: %s: %s",
                        state.label(),
                        name,
                        error.get("name"),
                        error.get("message"),
                    )
                    settled.append((hashed, {"error": error}))
            elif kind == "Sleep":
                self._sleep(state, hashed, name, op)
            elif kind == "WaitForEvent":
                self._wait(state, hashed, name, op)
            elif kind == "InvokeFunction":
                memo = self._invoke(state, hashed, name, op)
                if memo is not None:
                    settled.append((hashed, memo))
            else:
                log.warning(
                    "%s: opcode %s (step %r) is not supported by the local executor; "
                    "the step fails",
                    state.label(),
                    kind,
                    name,
                )
                error = {"name": "UnsupportedOpcode", "message": f"opcode {kind} is not supported"}
                rec = self._step(state, hashed, name, kind, StepStatus.FAILED, started)
                rec.error, rec.ended_at = error, started
                settled.append((hashed, {"error": error}))
        for hashed in planned:
            self._ex.spawn(self._call, state, hashed, 0)
        for hashed, memo in settled:
            self.settle(state, hashed, memo)
        if not ops and not state.outstanding and not retrying and target == DISCOVERY:
            outcome.error = {"name": "Error", "message": "the app reported no step and no result"}
            return self._failed_attempt(state, target, attempt, outcome)
        return retrying and target == DISCOVERY

    def _step(
        self,
        state: RunState,
        hashed: str,
        name: str,
        kind: str,
        status: StepStatus,
        started: float | None = None,
    ) -> StepRecord:
        rec = state.step_records.get(hashed)
        if rec is None:
            now = self._ex.clock.now() if started is None else started
            rec = StepRecord(id=hashed, name=name, kind=kind, status=status, started_at=now)
            state.step_records[hashed] = rec
            state.record.steps.append(rec)
        else:
            rec.status = status
        return rec

    def settle(self, state: RunState, hashed: str, memo: Any) -> None:
        """Store a step's result; continue the run when its group allows."""
        if state.done or hashed in state.steps:
            return
        state.steps[hashed] = memo
        state.stack.append(hashed)
        state.outstanding.discard(hashed)
        if not state.outstanding:
            if state.version != 1:
                state.disable_immediate = False
            state.race = False
            self.discover(state)
        elif state.race:
            self.discover(state)

    def _sleep(self, state: RunState, hashed: str, name: str, op: dict[str, Any]) -> None:
        opts = op.get("opts") if isinstance(op.get("opts"), dict) else {}
        now = self._ex.clock.now()
        try:
            due = parse_sleep(
                (opts or {}).get("duration"), op.get("name"), now, self._ex.clock.offset
            )
        except ValueError as exc:
            log.warning("%s: %s; sleeping 0 s", state.label(), exc)
            due = now
        rec = self._step(state, hashed, name, "sleep", StepStatus.SLEEPING)
        rec.until = due
        log.info("  %s: sleep %r for %s", state.label(), name, format_duration(max(due - now, 0)))

        def wake() -> None:
            rec.status, rec.ended_at = StepStatus.COMPLETED, self._ex.clock.now()
            log.info("  %s: sleep %r done", state.label(), name)
            self.settle(state, hashed, None)

        self._later(state, due, "sleep", wake)

    def _wait(self, state: RunState, hashed: str, name: str, op: dict[str, Any]) -> None:
        opts = op.get("opts") if isinstance(op.get("opts"), dict) else {}
        opts = opts or {}
        event = opts.get("event") or op.get("name") or ""
        condition = opts.get("if") if isinstance(opts.get("if"), str) else None
        timeout = _duration_or(opts.get("timeout"), DEFAULT_WAIT)
        now = self._ex.clock.now()
        rec = self._step(state, hashed, name, "wait_for_event", StepStatus.WAITING)
        rec.until = now + timeout
        wait = Wait(state, hashed, str(event), condition, rec)
        log.info(
            "  %s: step %r waits for %s%s (timeout %s)",
            state.label(),
            name,
            event,
            f" if {condition}" if condition else "",
            format_duration(timeout),
        )

        def expire() -> None:
            self._ex.remove_wait(wait)
            rec.status, rec.ended_at = StepStatus.TIMED_OUT, self._ex.clock.now()
            log.info("  %s: wait %r timed out", state.label(), name)
            self.settle(state, hashed, None)

        wait.timer = self._later(state, now + timeout, "wait", expire)
        self._ex.add_wait(wait)

    def fulfil(self, wait: Wait, event: dict[str, Any]) -> None:
        """A matching event arrived for ``wait``."""
        state = wait.state
        if wait.timer is not None:
            wait.timer.cancel()
            state.timers.discard(wait.timer)
        wait.record.status, wait.record.ended_at = StepStatus.COMPLETED, self._ex.clock.now()
        wait.record.output = event
        log.info("  %s: wait %r matched event %s", state.label(), wait.record.name, event.get("id"))
        self.settle(state, wait.hashed, event)

    def _invoke(
        self, state: RunState, hashed: str, name: str, op: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Start the invoked run; the memo to store at once if it cannot start."""
        opts = op.get("opts") if isinstance(op.get("opts"), dict) else {}
        opts = opts or {}
        rec = self._step(state, hashed, name, "invoke", StepStatus.INVOKING)
        function_id = str(opts.get("function_id", ""))
        fn = self._ex.find_function(function_id)
        if fn is None:
            error = {"name": "Error", "message": f"could not find function {function_id!r}"}
            rec.status, rec.error, rec.ended_at = StepStatus.FAILED, error, self._ex.clock.now()
            log.info("  %s: invoke %r failed: %s", state.label(), name, error["message"])
            return {"error": error}
        payload = opts.get("payload") if isinstance(opts.get("payload"), dict) else {}
        payload = payload or {}
        now = self._ex.clock.now()
        event: dict[str, Any] = {
            "name": "inngest/function.invoked",
            "data": payload.get("data") if isinstance(payload.get("data"), dict) else {},
            "id": ulid(now),
            "ts": int(now * 1000),
            "user": payload.get("user") if isinstance(payload.get("user"), dict) else {},
        }
        if isinstance(payload.get("v"), str):
            event["v"] = payload["v"]
        timeout = _duration_or(opts.get("timeout"), DEFAULT_WAIT)
        rec.until = now + timeout
        child = self._ex.start_run(fn, event, [event], parent=(state, hashed))
        log.info("  %s: step %r invokes %s (%s)", state.label(), name, fn.id, child.record.id)

        def expire() -> None:
            if hashed in state.steps:
                return
            rec.status, rec.ended_at = StepStatus.TIMED_OUT, self._ex.clock.now()
            error = {
                "name": "InngestInvokeTimeoutError",
                "message": "Timed out waiting for invoked function to complete",
            }
            rec.error = error
            self.settle(state, hashed, {"error": error})

        self._later(state, now + timeout, "invoke", expire)
        return None

    # --- the end ---------------------------------------------------------------------------

    def finish(
        self,
        state: RunState,
        status: RunStatus,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """End the run: record it, stop its timers and waits, resume an invoker, emit events."""
        if state.done:
            return
        ex = self._ex
        record = state.record
        record.status, record.ended_at = status, ex.clock.now()
        record.output, record.error = output, error
        for timer in state.timers:
            timer.cancel()
        state.timers.clear()
        ex.drop_waits(state)
        for rec in record.steps:
            if rec.ended_at is None:
                rec.ended_at = record.ended_at
                if status is RunStatus.CANCELLED:
                    rec.status = StepStatus.FAILED
        duration = format_duration(record.ended_at - record.started_at)
        if status is RunStatus.COMPLETED:
            log.info("%s completed in %s: %s", state.label(), duration, _short(output))
        elif status is RunStatus.FAILED:
            err = error or {}
            log.info(
                "%s failed after %s: %s: %s",
                state.label(),
                duration,
                err.get("name"),
                err.get("message"),
            )
        else:
            log.info("%s cancelled after %s", state.label(), duration)
        state.finished.set()
        if state.parent is not None:
            parent, hashed = state.parent
            parent_rec = parent.step_records.get(hashed)
            if status is RunStatus.COMPLETED:
                memo: dict[str, Any] = {"data": output}
            else:
                memo = {"error": _clean_error(error, status)}
            if parent_rec is not None and hashed not in parent.steps:
                parent_rec.ended_at = ex.clock.now()
                parent_rec.status = (
                    StepStatus.COMPLETED if status is RunStatus.COMPLETED else StepStatus.FAILED
                )
                parent_rec.output, parent_rec.error = output, memo.get("error")
            self.settle(parent, hashed, memo)
        data: dict[str, Any] = {
            "function_id": state.fn.id,
            "run_id": record.id,
            "event": record.event,
            "events": record.events,
        }
        if status is RunStatus.FAILED:
            ex.emit("inngest/function.failed", {**data, "error": _clean_error(error, status)})
        elif status is RunStatus.CANCELLED:
            ex.emit("inngest/function.cancelled", data)
        result = {"output": output} if status is RunStatus.COMPLETED else {"error": error}
        ex.emit("inngest/function.finished", {**data, **result})


class Wait:
    """A ``WaitForEvent`` step waiting for an event named ``event`` that satisfies ``condition``."""

    __slots__ = ("condition", "event", "hashed", "record", "state", "timer")

    def __init__(
        self,
        state: RunState,
        hashed: str,
        event: str,
        condition: str | None,
        record: StepRecord,
    ) -> None:
        self.state = state
        self.hashed = hashed
        self.event = event
        self.condition = condition
        self.record = record
        self.timer: Timer | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        """``event`` is the run's trigger and ``async`` the candidate, as on the server."""
        return event.get("name") == self.event and _expressions.matches(
            self.condition, {"event": self.state.record.event, "async": event}
        )


def _bad(status: int, message: str, *, name: str = "Error") -> Outcome:
    outcome = Outcome(status if status not in (200, 206) else 0)
    outcome.error = {"name": name, "message": message}
    return outcome


def _error_of(value: Any, status: int, content: bytes) -> dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        error = {
            "name": str(value.get("name") or "Error"),
            "message": value["message"],
        }
        if isinstance(value.get("stack"), str):
            error["stack"] = value["stack"]
        if isinstance(value.get("code"), str):
            error["code"] = value["code"]
        return error
    text = content[:300].decode("utf-8", "replace")
    return {"name": "Error", "message": f"HTTP {status}: {text}" if text else f"HTTP {status}"}


def _op_error(op: dict[str, Any]) -> dict[str, Any]:
    error = op.get("error")
    if isinstance(error, dict):
        return {
            "name": str(error.get("name") or "Error"),
            "message": str(error.get("message") or ""),
            **({"stack": error["stack"]} if isinstance(error.get("stack"), str) else {}),
        }
    return {"name": "Error", "message": str(error) if error is not None else "step failed"}


def _clean_error(error: dict[str, Any] | None, status: RunStatus) -> dict[str, Any]:
    if status is RunStatus.CANCELLED or not error:
        return {"name": "Error", "message": "the run was cancelled"}
    clean = {"name": error.get("name", "Error"), "message": error.get("message", "")}
    if isinstance(error.get("stack"), str):
        clean["stack"] = error["stack"]
    return clean


def _display_name(op: dict[str, Any]) -> str:
    userland = op.get("userland")
    for value in (
        op.get("displayName"),
        userland.get("id") if isinstance(userland, dict) else None,
        op.get("name"),
        op.get("id"),
    ):
        if isinstance(value, str) and value:
            return value
    return "?"


def _duration_or(value: Any, default: float) -> float:
    if isinstance(value, str) and value:
        try:
            return parse_duration(value)
        except ValueError:
            log.warning("unreadable duration %r; using %s", value, format_duration(default))
    return default


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."
