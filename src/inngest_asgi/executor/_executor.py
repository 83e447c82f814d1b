"""``Executor``: a local Inngest server that syncs apps, accepts events and drives runs."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import anyio
import anyio.abc
import httpx
import msgspec

from . import _cron, _expressions
from ._api import ExecutorAPI
from ._clock import Clock, RealClock, Timer, TimerQueue, VirtualClock
from ._durations import parse_duration
from ._ids import ulid
from ._loop import RunLoop, RunState, Wait, default_backoff, encode_body
from ._records import Run, RunStatus
from ._registry import (
    App,
    FunctionConfig,
    RegisterRequest,
    SyncError,
    check_function,
    event_matches_name,
    register_decoder,
    warn_unsupported,
)
from ._signing import SignatureError, check_key, sign, verify_response
from ._transport import Transport

__all__ = ["Executor", "SyncError"]

log = logging.getLogger("inngest_asgi.executor")

#: How long an event id (or an idempotency key) suppresses duplicates.
IDEMPOTENCY_WINDOW = 24 * 3600.0


class Executor:
    """A local stand-in for the Inngest server, driving apps over the real protocol.

    Use it as an async context manager; runs progress in background tasks of its own::

        async with Executor(clock=VirtualClock()) as ex:
            ex.mount("http://app.test", app)               # in-process: no sockets
            await ex.sync("http://app.test/api/inngest")    # or an http://127.0.0.1:... URL
            [event_id] = ex.send({"name": "app/hello", "data": {"n": 1}})
            await ex.run_until_idle()
            await ex.advance(_dt.timedelta(minutes=5))       # virtual time: sleeps, timeouts
            run = ex.runs_for("my-app-hello")[0]

    ``signing_key`` turns on cloud mode: requests are signed, responses must carry a valid
    signature, syncs are in-band, and API calls need the key's bearer token. ``event_key``, when
    set, is the only key ``POST /e/{key}`` accepts (dev mode accepts any). ``api`` is the ASGI
    app of the executor's HTTP API (``/fn/register``, ``/e/{key}``, ``/v0/runs/...``).

    ``backoff(attempt)`` gives the delay in seconds before retrying a failed attempt
    (default 1, 2, 4 ... s, at most 5 minutes). ``use_api_threshold``: when the memoized steps
    and events of a run encode to more bytes than this, requests carry ``use_api: true`` and
    the app loads them from ``/v0/runs/{id}/actions`` and ``/batch`` instead.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        signing_key: str | None = None,
        event_key: str | None = None,
        request_timeout: float = 120.0,
        backoff: Callable[[int], float] = default_backoff,
        use_api_threshold: int | None = None,
    ) -> None:
        if signing_key is not None:
            check_key(signing_key)
        self.clock: Clock = clock or RealClock()
        self.signing_key = signing_key
        self.event_key = event_key
        self.backoff = backoff
        self.use_api_threshold = use_api_threshold
        self.transport = Transport(timeout=request_timeout)
        self._loop = RunLoop(self)
        self._apps: dict[str, App] = {}
        self._functions: dict[str, FunctionConfig] = {}
        self._runs: dict[str, RunState] = {}
        self._waits: list[Wait] = []
        self._events: list[dict[str, Any]] = []
        self._seen_event_ids: dict[str, float] = {}
        self._idempotency_keys: dict[tuple[str, str], float] = {}
        self._batches: dict[tuple[str, str], tuple[list[dict[str, Any]], Timer]] = {}
        self._crons: dict[str, list[Timer]] = {}
        self._timers = TimerQueue()
        self._syncs = 0
        self._last_app: App | None = None
        self._busy = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._wakeup = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        #: The executor's HTTP API as an ASGI app (serve it on 127.0.0.1:8288 for ``dev``).
        self.api = ExecutorAPI(self)

    @property
    def server_kind(self) -> Literal["dev", "cloud"]:
        """``cloud`` with a signing key, else ``dev``: sent as ``x-inngest-server-kind``."""
        return "cloud" if self.signing_key else "dev"

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Executor:
        stack = contextlib.AsyncExitStack()
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        stack.push_async_callback(self.transport.aclose)
        self._stack = stack
        if self.clock.realtime:
            self._tg.start_soon(self._scheduler)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        stack, self._stack, self._tg = self._stack, None, None
        if stack is not None:
            await stack.__aexit__(None, None, None)

    def spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``func(*args)`` as a background task counted by :meth:`run_until_idle`."""
        if self._tg is None:
            raise RuntimeError("the executor is not running: use `async with Executor() as ex:`")
        self._busy += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._tg.start_soon(self._tracked, func, args)

    async def _tracked(self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await func(*args)
        except Exception:
            log.exception("executor task %s failed", getattr(func, "__name__", func))
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    # --- time ------------------------------------------------------------------------------

    def schedule(self, due: float, callback: Callable[[], None], kind: str) -> Timer:
        """Call ``callback`` at unix time ``due`` on the executor's clock; at once if past."""
        timer = Timer(due, callback, kind)
        if due <= self.clock.now():

            async def now() -> None:
                self._fire(timer)

            self.spawn(now)
        else:
            self._timers.push(timer)
            self._wakeup.set()
        return timer

    def _fire(self, timer: Timer) -> None:
        if timer.cancelled:
            return
        timer.cancelled = True  # fired timers are spent
        try:
            timer.callback()
        except Exception:
            log.exception("executor timer %s failed", timer.label)

    async def _scheduler(self) -> None:
        while True:
            self._wakeup = anyio.Event()
            while (timer := self._timers.pop_due(self.clock.now())) is not None:
                self._fire(timer)
            due = self._timers.next_due()
            delay = None if due is None else max(due - self.clock.now(), 0.0)
            with anyio.move_on_after(delay):
                await self._wakeup.wait()

    async def run_until_idle(self) -> None:
        """Wait until no request is in flight and nothing is due now.

        With a :class:`VirtualClock`, timers that are due (by real time passing) fire here;
        later ones wait for :meth:`advance`.
        """
        while True:
            await self._idle.wait()
            if self.clock.realtime:
                return
            timer = self._timers.pop_due(self.clock.now())
            if timer is None:
                return
            self._fire(timer)

    async def advance(self, by: float | _dt.timedelta) -> None:
        """Move a :class:`VirtualClock` forward by ``by`` (seconds or a timedelta), firing
        every timer that falls due on the way, in order, each followed by what it starts."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError("advance() needs Executor(clock=VirtualClock())")
        seconds = by.total_seconds() if isinstance(by, _dt.timedelta) else float(by)
        if seconds < 0:
            raise ValueError("advance() cannot go back in time")
        await self.run_until_idle()
        target = clock.now() + seconds
        while (due := self._timers.next_due()) is not None and due <= target:
            clock.move_to(due)
            timer = self._timers.pop_due(clock.now())
            if timer is not None:
                self._fire(timer)
            await self.run_until_idle()
        clock.move_to(target)
        await self.run_until_idle()

    @property
    def settled(self) -> bool:
        """True when nothing is in flight or about to be: every unfinished run is waiting
        for an event (or for a run it invoked). Sleeps, retries and batches are not settled."""
        if self._busy:
            return False
        return not self._timers.kinds() & {"sleep", "retry", "batch"}

    async def wait_for_run(self, run_id: str, *, timeout: float | None = None) -> Run:
        """Wait until run ``run_id`` finishes and return it (TimeoutError after ``timeout`` s).

        With a virtual clock only :meth:`advance` moves sleeping runs on, so prefer
        :meth:`run_until_idle` and :meth:`advance` there.
        """
        state = self._state(run_id)
        with anyio.fail_after(timeout):
            await state.finished.wait()
        return state.record

    # --- apps ------------------------------------------------------------------------------

    def mount(self, origin: str, app: Any) -> None:
        """Reach URLs at ``origin`` (``http://app.test``) by calling ASGI ``app`` in-process."""
        self.transport.mount(origin, app)

    def register(
        self, body: bytes | RegisterRequest, *, expected_server_kind: str | None = None
    ) -> tuple[App, bool]:
        """Apply a registration (the body of ``POST /fn/register``); returns the app and
        whether anything changed. Raises :class:`SyncError` when the body is refused."""
        if expected_server_kind and expected_server_kind != self.server_kind:
            raise SyncError(
                f"the app expects a {expected_server_kind} server, but this executor runs in "
                f"{self.server_kind} mode"
                + (" (start it with a signing key)" if expected_server_kind == "cloud" else "")
            )
        if isinstance(body, bytes):
            try:
                request = register_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise SyncError(f"invalid registration: {exc}") from None
        else:
            request = body
        name = request.app_name
        functions: dict[str, FunctionConfig] = {}
        for fn in request.functions:
            check_function(fn)
            if fn.id in functions:
                raise SyncError(f"function id {fn.id!r} appears twice")
            functions[fn.id] = fn
        app = App(
            name=name,
            url=request.url,
            sdk=request.sdk_ident,
            framework=request.framework,
            functions=functions,
        )
        old = self._apps.get(name)
        modified = old is None or msgspec.json.encode(old) != msgspec.json.encode(app)
        if old is not None:
            for fn_id in old.functions:
                self._functions.pop(fn_id, None)
                for timer in self._crons.pop(fn_id, []):
                    timer.cancel()
        self._apps[name] = app
        for fn in functions.values():
            self._functions[fn.id] = fn
            warn_unsupported(fn)
            self._schedule_crons(fn)
        self._syncs += 1
        self._last_app = app
        log.info(
            "synced app %s (%d function%s) at %s",
            name,
            len(functions),
            "" if len(functions) == 1 else "s",
            request.url,
        )
        return app, modified

    async def sync(self, url: str) -> App:
        """Sync the app served at ``url`` by sending it a PUT, as the dev server does.

        Without a signing key the app answers by posting its functions to this executor's
        ``/fn/register`` (out-of-band), so the executor's API must be reachable at the app's
        API origin. With one, the sync is in-band: the functions come back in the signed
        response and no API call is needed.
        """
        headers = {"content-type": "application/json", "x-inngest-server-kind": self.server_kind}
        body = b""
        if self.signing_key:
            body = encode_body({"url": url})
            headers["x-inngest-sync-kind"] = "in_band"
            headers["x-inngest-signature"] = sign(body, self.signing_key, int(time.time()))
        before = self._syncs
        try:
            response = await self.transport.request("PUT", url, headers, body)
        except httpx.HTTPError as exc:
            raise SyncError(f"could not reach {url}: {type(exc).__name__}: {exc}") from None
        text = response.text[:500]
        if response.status_code != 200:
            raise SyncError(f"sync of {url} failed: HTTP {response.status_code}: {text}")
        if self.signing_key:
            try:
                verify_response(
                    response.headers.get("x-inngest-signature"),
                    response.content,
                    self.signing_key,
                    int(time.time()),
                )
            except SignatureError as exc:
                raise SyncError(f"sync of {url}: {exc}") from None
        if response.headers.get("x-inngest-sync-kind") == "in_band":
            try:
                reply = msgspec.json.decode(response.content, type=RegisterRequest)
            except msgspec.DecodeError as exc:
                raise SyncError(f"sync of {url}: unreadable in-band reply: {exc}") from None
            if not reply.sdk:  # the reply names its language and version; the header, the SDK
                sdk = response.headers.get("x-inngest-sdk") or reply.sdk_ident
                reply = msgspec.structs.replace(reply, sdk=sdk)
            app, _ = self.register(reply)
            return app
        if self._syncs == before or self._last_app is None:
            raise SyncError(f"sync of {url} answered 200 but the app never registered: {text}")
        return self._last_app

    @property
    def apps(self) -> Mapping[str, App]:
        """Synced apps by name."""
        return dict(self._apps)

    def find_function(self, function_id: str) -> FunctionConfig | None:
        """A synced function by composite id (``<app>-<fn>``)."""
        return self._functions.get(function_id)

    def _schedule_crons(self, fn: FunctionConfig) -> None:
        for trigger in fn.triggers:
            if trigger.cron:
                self._schedule_cron(fn, trigger.cron)

    def _schedule_cron(self, fn: FunctionConfig, expression: str) -> None:
        due = _cron.next_fire(expression, self.clock.now())

        def tick() -> None:
            timers = self._crons.get(fn.id, [])
            if timer in timers:
                timers.remove(timer)
            if self._functions.get(fn.id) is not fn:
                return  # re-synced or removed since
            now = self.clock.now()
            event = {
                "name": "inngest/scheduled.timer",
                "data": {"cron": expression},
                "id": ulid(now),
                "ts": int(now * 1000),
                "user": {},
            }
            self._events.append(event)
            log.info("cron %r of %s fired", expression, fn.id)
            self._trigger(fn, event)
            self._schedule_cron(fn, expression)

        timer = self.schedule(due, tick, "cron")
        self._crons.setdefault(fn.id, []).append(timer)

    # --- events ----------------------------------------------------------------------------

    def send(self, events: Any) -> list[str]:
        """Accept one event or a list (dicts or :class:`inngest_asgi.Event`); return their ids.

        Each event settles waits it matches, cancels runs it matches, and starts the functions
        it triggers. An event whose ``id`` was seen in the last 24 hours is accepted but
        ignored (idempotency). Raises ValueError for an event without a name.
        """
        items = events if isinstance(events, (list, tuple)) else [events]
        normalized = [self._normalize(item) for item in items]
        ids: list[str] = []
        now = self.clock.now()
        for event in normalized:
            ids.append(event["id"])
            seen = self._seen_event_ids.get(event["id"])
            if seen is not None and now - seen < IDEMPOTENCY_WINDOW:
                log.info("event %s (%s) was already received; ignored", event["id"], event["name"])
                continue
            self._seen_event_ids[event["id"]] = now
            self._dispatch(event)
        return ids

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Send an internal event (``inngest/function.failed``...) through the same matching."""
        now = self.clock.now()
        self._dispatch({"name": name, "data": data, "id": ulid(now), "ts": int(now * 1000)})

    def _normalize(self, item: Any) -> dict[str, Any]:
        if isinstance(item, msgspec.Struct):
            item = msgspec.to_builtins(item)
        if not isinstance(item, Mapping):
            raise ValueError(f"an event must be a JSON object, not {type(item).__name__}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("every event needs a non-empty name")
        data = item.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"event {name!r}: data must be an object")
        now = self.clock.now()
        event: dict[str, Any] = {
            "name": name,
            "data": data,
            "id": str(item.get("id") or ulid(now)),
            "ts": int(item.get("ts") or now * 1000),
            "user": item.get("user") if isinstance(item.get("user"), dict) else {},
        }
        if isinstance(item.get("v"), str):
            event["v"] = item["v"]
        return event

    def _dispatch(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        name = event["name"]
        for wait in list(self._waits):
            if wait in self._waits and wait.matches(event):
                self._waits.remove(wait)
                self._loop.fulfil(wait, event)
        for state in list(self._runs.values()):
            if not state.done and state.fn.cancel and self._cancels(state, event):
                log.info("%s cancelled by event %s (%s)", state.label(), event["id"], name)
                self._loop.finish(state, RunStatus.CANCELLED)
        for fn in list(self._functions.values()):
            if any(
                t.event
                and event_matches_name(t.event, name)
                and _expressions.matches(t.expression, {"event": event})
                for t in fn.triggers
            ):
                self._trigger(fn, event)

    def _cancels(self, state: RunState, event: dict[str, Any]) -> bool:
        now = self.clock.now()
        for cancel in state.fn.cancel or ():
            if cancel.event != event["name"]:
                continue
            if cancel.timeout and now - state.record.started_at > parse_duration(cancel.timeout):
                continue
            if _expressions.matches(cancel.if_exp, {"event": state.record.event, "async": event}):
                return True
        return False

    def _trigger(self, fn: FunctionConfig, event: dict[str, Any]) -> None:
        if fn.idempotency:
            try:
                key = str(_expressions.evaluate(fn.idempotency, {"event": event}))
            except _expressions.ExpressionError as exc:
                log.warning("%s: idempotency key not computed (%s); running anyway", fn.id, exc)
            else:
                now = self.clock.now()
                seen = self._idempotency_keys.get((fn.id, key))
                if seen is not None and now - seen < IDEMPOTENCY_WINDOW:
                    log.info(
                        "%s: idempotency key %r was used in the last 24 h; skipped", fn.id, key
                    )
                    return
                self._idempotency_keys[(fn.id, key)] = now
        if fn.batchEvents is not None:
            self._batch(fn, event)
            return
        self.start_run(fn, event, [event])

    def _batch(self, fn: FunctionConfig, event: dict[str, Any]) -> None:
        config = fn.batchEvents
        assert config is not None
        if not _expressions.matches(config.if_exp, {"event": event}):
            self.start_run(fn, event, [event])
            return
        key = ""
        if config.key:
            try:
                key = str(_expressions.evaluate(config.key, {"event": event}))
            except _expressions.ExpressionError:
                key = ""
        slot = (fn.id, key)
        pending = self._batches.get(slot)
        if pending is None:
            due = self.clock.now() + parse_duration(config.timeout)
            timer = self.schedule(due, lambda: self._flush(slot), "batch")
            pending = ([], timer)
            self._batches[slot] = pending
        pending[0].append(event)
        if len(pending[0]) >= config.maxSize:
            self._flush(slot)

    def _flush(self, slot: tuple[str, str]) -> None:
        pending = self._batches.pop(slot, None)
        if pending is None:
            return
        events, timer = pending
        timer.cancel()
        fn = self._functions.get(slot[0])
        if fn is not None and events:
            self.start_run(fn, events[0], events)

    def start_run(
        self,
        fn: FunctionConfig,
        event: dict[str, Any],
        events: list[dict[str, Any]],
        *,
        parent: tuple[RunState, str] | None = None,
    ) -> RunState:
        """Create a run of ``fn`` and send its first request."""
        now = self.clock.now()
        record = Run(
            id=ulid(now),
            function_id=fn.id,
            event=event,
            events=events,
            status=RunStatus.RUNNING,
            started_at=now,
            parent_run_id=parent[0].record.id if parent else None,
        )
        state = RunState(record, fn, parent)
        self._runs[record.id] = state
        log.info("run %s (%s) started by %s", record.id, fn.id, event["name"])
        self._loop.discover(state)
        return state

    # --- waits (used by the run loop) ------------------------------------------------------

    def add_wait(self, wait: Wait) -> None:
        self._waits.append(wait)

    def remove_wait(self, wait: Wait) -> None:
        if wait in self._waits:
            self._waits.remove(wait)

    def drop_waits(self, state: RunState) -> None:
        self._waits = [w for w in self._waits if w.state is not state]

    # --- queries ---------------------------------------------------------------------------

    @property
    def runs(self) -> list[Run]:
        """Every run so far, oldest first."""
        return [state.record for state in self._runs.values()]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event received or emitted, oldest first."""
        return list(self._events)

    def runs_for(self, function_id: str) -> list[Run]:
        """Runs of one function (composite id ``<app>-<fn>``), oldest first."""
        return [s.record for s in self._runs.values() if s.fn.id == function_id]

    def get_run(self, run_id: str) -> Run:
        """A run by id; KeyError if unknown."""
        return self._state(run_id).record

    def _state(self, run_id: str) -> RunState:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}") from None

    def run_steps(self, run_id: str) -> dict[str, Any]:
        """The memoized steps of a run (what ``/v0/runs/{id}/actions`` serves)."""
        return dict(self._state(run_id).steps)

    def cancel(self, run_id: str) -> None:
        """Cancel a running run (emits ``inngest/function.cancelled``)."""
        state = self._state(run_id)
        self._loop.finish(state, RunStatus.CANCELLED)
