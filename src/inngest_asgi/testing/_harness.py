"""``AsyncHarness`` and ``Harness``: the executor, the app and a virtual clock in one object."""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import anyio.from_thread
import msgspec

from inngest_asgi._asgi import InngestASGI
from inngest_asgi._client import Inngest
from inngest_asgi._engine import hash_step_id
from inngest_asgi._function import Function
from inngest_asgi._registration import functions_config, register_body
from inngest_asgi._wire import Event
from inngest_asgi.executor import Executor, VirtualClock
from inngest_asgi.executor._clock import Timer
from inngest_asgi.executor._ids import ulid

from . import _capture
from ._results import Result
from ._wire import Stub, Wire

__all__ = ["AsyncHarness", "Harness", "NonDeterminismError", "Timeout", "trigger"]

T = TypeVar("T")

ORIGIN = "http://inngest-asgi.test"
PATH = "/api/inngest"
#: Timers the harness fires on its own when ``auto_advance`` is on.
_AUTO_TIMERS = frozenset({"sleep", "retry", "batch"})
#: Rounds of (run until idle, deliver events, advance) before the harness gives up.
MAX_ROUNDS = 10_000


class _TimeoutStub:
    """The stub value of a ``wait_for_event`` that timed out (the step returns None)."""

    _instance: _TimeoutStub | None = None

    def __new__(cls) -> _TimeoutStub:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Timeout"


#: Stub value for a ``wait_for_event`` that timed out: ``step_stubs={"approval": Timeout}``.
Timeout = _TimeoutStub()


class NonDeterminismError(AssertionError):
    """The replay check saw a function take a different path when a request was replayed."""


EventLike = Event | Mapping[str, Any]


class _Executor(Executor):
    """The executor, keeping track of the timers it schedules (to know when to fast-forward)."""

    def __init__(self) -> None:
        super().__init__(clock=VirtualClock())
        self.timers: list[Timer] = []

    def schedule(self, due: float, callback: Callable[[], None], kind: str) -> Timer:
        timer = super().schedule(due, callback, kind)
        self.timers = [t for t in self.timers if not t.cancelled]
        self.timers.append(timer)
        return timer

    def next_due(self, kinds: frozenset[str]) -> float | None:
        dues = [t.due for t in self.timers if not t.cancelled and t.label in kinds]
        return min(dues) if dues else None


class AsyncHarness:
    """Serve ``functions`` to a local executor on a virtual clock, in-process, for tests.

    ::

        async with AsyncHarness([process_order]) as harness:
            result = await harness.trigger(process_order, inngest.Event(name="shop/order"))
            assert result.status == "waiting"               # at its wait_for_event
            await harness.send(inngest.Event(name="shop/approved", data={"id": 1}))
            assert result.status == "completed"

    Every function of the client's app that a test needs (invoke targets included) goes in
    ``functions``; ``client`` defaults to theirs. Options:

    * ``step_stubs``: ``{step_id: value}`` for every run (see :meth:`trigger`).
    * ``auto_advance`` (default True): after each action, virtual time jumps over sleeps,
      retry delays and batch timeouts until every run has finished or waits for an event or
      an invoked run. False leaves the clock to :meth:`advance`.
    * ``deliver_events`` (default False): events that functions send are always recorded in
      :attr:`sent_events`; with True they are also delivered, starting the functions they
      trigger and fulfilling waits.
    * ``replay_check`` (default False): replay every request from scratch and raise
      :class:`NonDeterminismError` if a replay reports a different step.
    """

    def __init__(
        self,
        functions: Iterable[Function[Any]],
        *,
        client: Inngest | None = None,
        step_stubs: Mapping[str, Any] | None = None,
        auto_advance: bool = True,
        deliver_events: bool = False,
        replay_check: bool = False,
    ) -> None:
        self._functions = list(functions)
        if not self._functions:
            raise ValueError("AsyncHarness needs at least one function")
        for fn in self._functions:
            if not isinstance(fn, Function):
                raise TypeError(
                    f"functions must hold functions made by client.create_function, "
                    f"not {type(fn).__name__}"
                )
        self.client: Inngest = client or self._functions[0]._client
        self.auto_advance = auto_advance
        self.deliver_events = deliver_events
        self._app = InngestASGI(self.client, self._functions)
        self._wire = Wire(
            self._app,
            ORIGIN,
            signing_key=self.client.signing_key,
            server_kind=self.client.mode,
            replay_check=replay_check,
        )
        self._wire.default_stubs = _stubs(step_stubs)
        self.executor: Executor = _Executor()
        self._sent: list[Event] = []
        self._undelivered: list[Event] = []
        self._lock = threading.Lock()
        self._stack: contextlib.AsyncExitStack | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncHarness:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.executor)
            stack.push_async_callback(self._wire.aclose)
            _capture.install(self._record)
            stack.callback(_capture.uninstall, self._record)
            self.executor.mount(ORIGIN, self._wire)
            url = f"{ORIGIN}{PATH}"
            body = register_body(
                app_id=self.client.app_id,
                app_version=self.client.app_version,
                framework="asgi",
                functions=functions_config(self._app.handler.functions.values(), url),
                url=url,
            )
            self.executor.register(msgspec.json.encode(body))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    # --- actions ---------------------------------------------------------------------------

    async def trigger(
        self,
        fn: Function[Any],
        event: EventLike | Sequence[EventLike],
        *,
        step_stubs: Mapping[str, Any] | None = None,
    ) -> Result:
        """Start a run of ``fn`` with ``event`` (or a batch of events) and drive it.

        The run starts whatever ``fn``'s triggers say (as the official ``mocked.trigger``
        does). It returns once the run has finished, or waits for something only the test can
        bring: an event, or with ``auto_advance=False`` a timer.

        ``step_stubs`` maps step ids to values memoized instead of running the step (they
        replace the harness-wide ones for this run): any JSON value for ``step.run`` or an
        ``invoke``; an exception instance for a step that failed (the function sees a
        ``StepError``); an event for ``wait_for_event``, or :data:`Timeout`. Use
        ``"id:1"`` for the second use of an id in the same run.
        """
        self._check_open()
        config = self.executor.find_function(getattr(fn, "id", ""))
        if config is None or not isinstance(fn, Function):
            served = ", ".join(repr(f.id) for f in self._functions)
            raise ValueError(
                f"{fn!r} is not served by this harness (it serves {served}); "
                f"pass it in functions=[...]"
            )
        events = [self._event(e) for e in _as_list(event)]
        if not events:
            raise ValueError("trigger() needs at least one event")
        state = self.executor.start_run(config, events[0], events)
        if step_stubs is not None:
            self._wire.set_stubs(state.record.id, _stubs(step_stubs))
        await self._drive()
        return Result(state.record, self._wire)

    async def send(self, event: EventLike | Sequence[EventLike]) -> list[str]:
        """Send events as a test would (they fulfil waits, trigger functions, cancel runs),
        then drive every run as far as it goes; return the event ids."""
        self._check_open()
        events = [self._event(e) for e in _as_list(event)]
        ids = self.executor.send(events)
        await self._drive()
        return ids

    async def advance(self, by: float | _dt.timedelta) -> None:
        """Move virtual time forward by ``by`` (seconds or a timedelta), firing what falls
        due on the way (sleeps, wait and invoke timeouts, retries, crons), then drive runs."""
        self._check_open()
        await self.executor.advance(by)
        await self._drive()

    # --- reading ---------------------------------------------------------------------------

    def runs(self, fn: Function[Any] | None = None) -> list[Result]:
        """Every run so far (of ``fn`` only, when given), oldest first."""
        records = self.executor.runs if fn is None else self.executor.runs_for(fn.id)
        return [Result(run, self._wire) for run in records]

    @property
    def sent_events(self) -> list[Event]:
        """Events the functions sent (``client.send``, ``step.send_event``), in order."""
        with self._lock:
            return list(self._sent)

    # --- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._stack is None:
            raise RuntimeError("open the harness first: `async with AsyncHarness([...]) as h:`")

    def _event(self, item: EventLike) -> dict[str, Any]:
        raw: Any = msgspec.to_builtins(item) if isinstance(item, Event) else item
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise ValueError(f"an event needs a name: got {item!r}")
        now = self.executor.clock.now()
        data = raw.get("data")
        event: dict[str, Any] = {
            "name": raw["name"],
            "data": dict(data) if isinstance(data, Mapping) else {},
            "id": str(raw.get("id") or ulid(now)),
            "ts": int(raw.get("ts") or now * 1000),
            "user": dict(raw["user"]) if isinstance(raw.get("user"), Mapping) else {},
        }
        if isinstance(raw.get("v"), str):
            event["v"] = raw["v"]
        return event

    def _record(self, events: list[Any]) -> None:
        with self._lock:
            self._sent.extend(events)
            if self.deliver_events:
                self._undelivered.extend(events)

    async def _drive(self) -> None:
        ex = self.executor
        assert isinstance(ex, _Executor)
        for _ in range(MAX_ROUNDS):
            await ex.run_until_idle()
            with self._lock:
                pending, self._undelivered = self._undelivered, []
            if pending:
                ex.send([self._event(e) for e in pending])
                continue
            due = ex.next_due(_AUTO_TIMERS) if self.auto_advance else None
            if due is None:
                break
            await ex.advance(max(due - ex.clock.now(), 0.0))
        else:
            raise RuntimeError(
                f"runs were still sleeping or retrying after {MAX_ROUNDS} rounds: does a "
                f"function loop forever? Use auto_advance=False and advance() to step through"
            )
        self._raise_violations()

    def _raise_violations(self) -> None:
        violations, self._wire.violations = self._wire.violations, []
        if violations:
            raise NonDeterminismError(
                "replay check: a function took a different path when a request was replayed\n  "
                + "\n  ".join(dict.fromkeys(violations))
                + "\nStep ids and their order must be the same on every replay: build step ids "
                "from the event and from step outputs (never from random(), time.time() or "
                "state kept between calls), and read clocks and random values inside "
                "ctx.step.run so that they are memoized."
            )


class Harness:
    """:class:`AsyncHarness` for plain (sync) tests: the same options and methods, without
    ``await``. Its executor runs on an event loop in a background thread.

    ::

        with Harness([process_order]) as harness:
            result = harness.trigger(process_order, inngest.Event(name="shop/order"))
    """

    def __init__(
        self,
        functions: Iterable[Function[Any]],
        *,
        client: Inngest | None = None,
        step_stubs: Mapping[str, Any] | None = None,
        auto_advance: bool = True,
        deliver_events: bool = False,
        replay_check: bool = False,
    ) -> None:
        self._async = AsyncHarness(
            functions,
            client=client,
            step_stubs=step_stubs,
            auto_advance=auto_advance,
            deliver_events=deliver_events,
            replay_check=replay_check,
        )
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._stack: contextlib.ExitStack | None = None

    @property
    def executor(self) -> Executor:
        return self._async.executor

    @property
    def client(self) -> Inngest:
        return self._async.client

    def __enter__(self) -> Harness:
        with contextlib.ExitStack() as stack:
            self._portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            stack.enter_context(self._portal.wrap_async_context_manager(self._async))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        stack, self._stack, self._portal = self._stack, None, None
        if stack is not None:
            stack.__exit__(*exc_info)

    def _call(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> T:
        if self._portal is None:
            raise RuntimeError("open the harness first: `with Harness([...]) as harness:`")
        return cast(T, self._portal.call(functools.partial(func, *args, **kw)))

    def trigger(
        self,
        fn: Function[Any],
        event: EventLike | Sequence[EventLike],
        *,
        step_stubs: Mapping[str, Any] | None = None,
    ) -> Result:
        """See :meth:`AsyncHarness.trigger`."""
        return self._call(self._async.trigger, fn, event, step_stubs=step_stubs)

    def send(self, event: EventLike | Sequence[EventLike]) -> list[str]:
        """See :meth:`AsyncHarness.send`."""
        return self._call(self._async.send, event)

    def advance(self, by: float | _dt.timedelta) -> None:
        """See :meth:`AsyncHarness.advance`."""
        self._call(self._async.advance, by)

    def runs(self, fn: Function[Any] | None = None) -> list[Result]:
        """See :meth:`AsyncHarness.runs`."""
        return self._async.runs(fn)

    @property
    def sent_events(self) -> list[Event]:
        """See :attr:`AsyncHarness.sent_events`."""
        return self._async.sent_events


def trigger(
    fn: Function[Any],
    event: EventLike | Sequence[EventLike],
    client: Inngest | None = None,
    *,
    step_stubs: Mapping[str, Any] | None = None,
    functions: Iterable[Function[Any]] = (),
    replay_check: bool = False,
) -> Result:
    """Run ``fn`` once with ``event`` as far as it goes, like the official ``mocked.trigger``.

    Sleeps and retries pass instantly; a ``wait_for_event`` without a stub leaves the run
    ``waiting``. Events the function sends are captured and dropped. To assert on them, to
    send events or to advance time, use :class:`Harness`. ``functions`` adds other functions
    to serve next to ``fn`` (targets of ``step.invoke``).
    """
    served = [fn, *(f for f in functions if f is not fn)]
    with Harness(served, client=client, replay_check=replay_check) as harness:
        return harness.trigger(fn, event, step_stubs=step_stubs)


def _as_list(event: EventLike | Sequence[EventLike]) -> list[EventLike]:
    if isinstance(event, (Event, Mapping)):
        return [event]
    return list(event)


def _stubs(step_stubs: Mapping[str, Any] | None) -> dict[str, Stub]:
    """``{user step id: value}`` as wire stubs keyed by hashed id."""
    stubs: dict[str, Stub] = {}
    for key, value in (step_stubs or {}).items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"step_stubs keys are step ids (strings), not {key!r}")
        name = key.rsplit(":", 1)[0] if _is_repeat(key) else key
        if value is Timeout:
            stub = Stub(name, timed_out=True)
        elif isinstance(value, Event):
            data = {k: v for k, v in msgspec.to_builtins(value).items() if v is not None}
            stub = Stub(name, data=data)
        elif isinstance(value, BaseException):
            stub = Stub(name, error={"name": type(value).__name__, "message": str(value)})
        else:
            try:
                data = msgspec.to_builtins(value)
            except TypeError as exc:
                raise TypeError(f"step_stubs[{key!r}] cannot be sent as JSON: {exc}") from None
            stub = Stub(name, data=data)
        stubs[hash_step_id(key)] = stub
    return stubs


def _is_repeat(key: str) -> bool:
    _, sep, count = key.rpartition(":")
    return bool(sep) and count.isdigit()
