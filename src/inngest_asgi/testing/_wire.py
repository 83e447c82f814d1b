"""The wire between the executor and the app under test: stubs, the replay check, signing.

The harness mounts a :class:`Wire` in the executor instead of the app. Every request passes
through it unchanged, except in three cases, each done with the protocol itself:

* **Stubs.** While a run has stubs not used yet, each discovery request is first sent as a
  *probe*: the same memos, with ``disable_immediate_execution: true``, so the SDK reports the
  next step(s) without running anything (PROTOCOL.md §10.6). If a reported step is stubbed,
  the wire answers the executor itself with a ``StepRun`` (or ``StepFailed``) op carrying the
  stub, as if the step had run: the executor memoizes it and records it in the timeline, and
  the step's callable never runs. Otherwise the real request goes through.
* **Replay check.** After each discovery request that answered 200 or 206, the request is
  replayed from scratch: once with no memo, once with the first memo, and so on, always with
  immediate execution disabled. With memos ``[s1 ... sk]`` (in the order the steps settled),
  the replay that has only ``s1 ... sj`` must report ``s(j+1)`` next. A deterministic function
  does; one whose step ids or order depend on ``random()``, the clock, or anything else outside
  a step sooner or later does not, and the difference is recorded as a violation.
* **Signing.** The executor runs in dev mode; when the client under test is in cloud mode,
  the wire signs what it forwards with the client's signing key.

Probes and replays run user code outside steps again (which every replay does anyway), never
a step's callable; events sent during them are dropped (see :mod:`._capture`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import msgspec
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from inngest_asgi._version import SDK_IDENT
from inngest_asgi.executor._loop import encode_body
from inngest_asgi.executor._signing import sign

from . import _capture

__all__: list[str] = []

DISCOVERY = "step"
#: A run sending more requests than this is failed: its steps never settle.
MAX_REQUESTS_PER_RUN = 1000
_decoder = msgspec.json.Decoder()
_DROPPED_REQUEST_HEADERS = {"host", "content-length", "x-inngest-signature"}
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding"}


@dataclasses.dataclass(frozen=True)
class Stub:
    """A value to memoize for a step instead of running it."""

    name: str
    data: Any = None
    error: dict[str, Any] | None = None
    #: A ``wait_for_event`` that timed out (``data`` is None).
    timed_out: bool = False

    def op(self, hashed: str) -> dict[str, Any]:
        op: dict[str, Any] = {
            "op": "StepFailed" if self.error is not None else "StepRun",
            "id": hashed,
            "name": self.name,
            "displayName": self.name,
            "opts": None,
            "userland": {"id": self.name},
        }
        if self.error is not None:
            op["error"] = self.error
        else:
            op["data"] = self.data
        return op


@dataclasses.dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def ops(self) -> list[dict[str, Any]] | None:
        """The ops of a 206 answer (a streamed one unwrapped), else None."""
        status, body = self.status, self.body
        try:
            if status == 201:
                wrapped = _decoder.decode(body)
                status, body = int(wrapped["status"]), str(wrapped["body"]).encode()
            value = _decoder.decode(body) if status == 206 else None
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            return None
        if isinstance(value, dict):
            value = [value]
        if isinstance(value, list) and all(isinstance(op, dict) for op in value):
            return value
        return None

    def summary(self) -> str:
        text = self.body[:300].decode("utf-8", "replace")
        try:
            value = _decoder.decode(self.body)
        except msgspec.DecodeError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            text = f"{value.get('name') or 'Error'}: {value['message']}"
        return f"HTTP {self.status}" + (f" ({text})" if text else "")


class _RunNotes:
    """What the wire learned about one run."""

    def __init__(self, stubs: Mapping[str, Stub]) -> None:
        #: Unused stubs by hashed step id.
        self.stubs = dict(stubs)
        #: Stubbed steps by hashed id: the stub and the kind of step it stood for.
        self.stubbed: dict[str, tuple[Stub, str]] = {}
        #: Every step id the app reported for this run (or a stub stood for).
        self.known: set[str] = set()
        #: Steps reported as part of a race group.
        self.raced: set[str] = set()
        #: Steps reported next by earlier replays, by the memos they had (in settle order).
        self.seen: dict[tuple[str, ...], set[str]] = {}
        #: Execution requests the executor sent for this run.
        self.requests = 0


class Wire:
    """An ASGI app standing between the executor and the app under test (see module doc)."""

    def __init__(
        self,
        app: Any,
        origin: str,
        *,
        signing_key: str | None,
        server_kind: str,
        replay_check: bool,
    ) -> None:
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=origin, timeout=120.0
        )
        self._signing_key = signing_key
        self._server_kind = server_kind
        self.replay_check = replay_check
        self.default_stubs: dict[str, Stub] = {}
        self._runs: dict[str, _RunNotes] = {}
        #: Hashed step id -> the id the user wrote, from every op seen.
        self.names: dict[str, str] = {}
        #: Replay-check failures, as messages, not reported to the test yet.
        self.violations: list[str] = []

    async def aclose(self) -> None:
        await self._http.aclose()

    def set_stubs(self, run_id: str, stubs: Mapping[str, Stub]) -> None:
        """Stubs for one run, replacing the harness-wide ones; before its first request."""
        self._runs[run_id] = _RunNotes(stubs)

    def stubbed(self, run_id: str, hashed: str) -> tuple[Stub, str] | None:
        """The stub that stood for a step, and the kind of step it was; None if it ran."""
        notes = self._runs.get(run_id)
        return None if notes is None else notes.stubbed.get(hashed)

    def _notes(self, run_id: str) -> _RunNotes:
        notes = self._runs.get(run_id)
        if notes is None:
            notes = self._runs[run_id] = _RunNotes(self.default_stubs)
        return notes

    # --- ASGI ------------------------------------------------------------------------------

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        if scope["method"] == "POST" and "fnId" in query and "probe" not in query:
            answer = await self._execute(path, query, headers, body)
        else:
            answer = await self._forward(scope["method"], path, query, headers, body)
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        out.append((b"content-length", str(len(answer.body)).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": out,
                "trailers": False,
            }
        )
        await send({"type": "http.response.body", "body": answer.body, "more_body": False})

    async def _forward(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Answer:
        sent = {k: v for k, v in headers.items() if k not in _DROPPED_REQUEST_HEADERS}
        sent["x-inngest-server-kind"] = self._server_kind
        if self._signing_key:
            sent["x-inngest-signature"] = sign(body, self._signing_key, int(time.time()))
        url = f"{path}?{urlencode(query)}" if query else path
        response = await self._http.request(method, url, headers=sent, content=body)
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in _DROPPED_RESPONSE_HEADERS
        ]
        return _Answer(response.status_code, kept, response.content)

    # --- execution requests ----------------------------------------------------------------

    async def _execute(
        self, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> _Answer:
        try:
            call = _decoder.decode(body)
            run_id = str(call["ctx"]["run_id"])
            memo_ids = [str(h) for h in call["ctx"]["stack"]["stack"]]
        except (msgspec.DecodeError, KeyError, TypeError):
            return await self._forward("POST", path, query, headers, body)
        notes = self._notes(run_id)
        notes.requests += 1
        if notes.requests > MAX_REQUESTS_PER_RUN:
            return _failure(
                "RunawayRunError",
                f"run {run_id} sent more than {MAX_REQUESTS_PER_RUN} requests: does a step id "
                "change on every replay (random(), time.time())? replay_check=True says which",
            )
        discovery = query.get("stepId", DISCOVERY) == DISCOVERY
        if discovery and notes.stubs:
            stubbed = await self._try_stubs(path, query, headers, call, memo_ids, notes)
            if stubbed is not None:
                return stubbed
        answer = await self._forward("POST", path, query, headers, body)
        ops = answer.ops()
        self._learn(notes, ops or [])
        if discovery and ops is not None:
            notes.seen.setdefault(tuple(memo_ids), {str(op.get("id")) for op in ops})
        if self.replay_check and discovery and answer.status in (200, 201, 206):
            violation = await self._check_replays(path, query, headers, call, memo_ids, notes)
            if violation is not None:
                # Stop the run here: it would otherwise go on taking new paths.
                return _failure("NonDeterminismError", violation)
        return answer

    def _learn(self, notes: _RunNotes, ops: list[dict[str, Any]]) -> None:
        for op in ops:
            hashed = op.get("id")
            if not isinstance(hashed, str):
                continue
            notes.known.add(hashed)
            self.names.setdefault(hashed, _op_name(op))
            opts = op.get("opts")
            if isinstance(opts, dict) and opts.get("parallelMode") == "race":
                notes.raced.add(hashed)

    async def _replay(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        call: dict[str, Any],
        memo_ids: list[str],
    ) -> _Answer:
        """Replay ``call`` with only ``memo_ids`` memoized and immediate execution off."""
        steps = call.get("steps") or {}
        replayed = {
            **call,
            "steps": {h: steps[h] for h in memo_ids if h in steps},
            "ctx": {
                **call["ctx"],
                "disable_immediate_execution": True,
                "stack": {"stack": memo_ids, "current": len(memo_ids)},
            },
        }
        token = _capture.PROBING.set(True)
        try:
            return await self._forward(
                "POST", path, {**query, "stepId": DISCOVERY}, headers, encode_body(replayed)
            )
        finally:
            _capture.PROBING.reset(token)

    async def _try_stubs(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        call: dict[str, Any],
        memo_ids: list[str],
        notes: _RunNotes,
    ) -> _Answer | None:
        """Answer with the stubs of the steps the app reports next, if any are stubbed."""
        probe = await self._replay(path, query, headers, call, memo_ids)
        ops = probe.ops()
        if not ops or not any(op.get("id") in notes.stubs for op in ops):
            return None
        self._learn(notes, ops)
        answer: list[dict[str, Any]] = []
        for op in ops:
            hashed = op.get("id")
            stub = notes.stubs.pop(hashed, None) if isinstance(hashed, str) else None
            if stub is None or not isinstance(hashed, str):
                answer.append(op)
                continue
            notes.stubbed[hashed] = (stub, _KINDS.get(str(op.get("op")), "run"))
            answer.append(stub.op(hashed))
        return _Answer(206, _plain_headers(probe.headers), msgspec.json.encode(answer))

    async def _check_replays(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        call: dict[str, Any],
        memo_ids: list[str],
        notes: _RunNotes,
    ) -> str | None:
        """Replay the request with each prefix of its memos; the first difference, if any."""
        run = f"run {call['ctx']['run_id']} of {query.get('fnId')}"
        for j, expected in enumerate(memo_ids):
            prefix = memo_ids[:j]
            probe = await self._replay(path, query, headers, call, prefix)
            ops = probe.ops()
            if ops is None:
                return self._violation(
                    run,
                    memo_ids,
                    prefix,
                    f"answered {probe.summary()} instead of reporting step "
                    f"{self._name(expected)!r}",
                )
            reported = [str(op.get("id")) for op in ops]
            unknown = [h for h in reported if h not in notes.known and h not in memo_ids]
            if unknown or (expected not in reported and expected not in notes.raced):
                found = ", ".join(self._describe(h, ops, notes) for h in reported) or "nothing"
                return self._violation(
                    run,
                    memo_ids,
                    prefix,
                    f"reported {found} where {self._name(expected)!r} was expected",
                )
            earlier = notes.seen.setdefault(tuple(prefix), set(reported))
            if earlier != set(reported):
                found = ", ".join(repr(self._name(h)) for h in reported)
                before = ", ".join(repr(self._name(h)) for h in sorted(earlier))
                return self._violation(
                    run,
                    memo_ids,
                    prefix,
                    f"reported {found} where an earlier replay with the same steps memoized "
                    f"reported {before}",
                )
        return None

    def _violation(self, run: str, memo_ids: list[str], prefix: list[str], what: str) -> str:
        done = [self._name(h) for h in memo_ids]
        kept = f"only {[self._name(h) for h in prefix]}" if prefix else "no step"
        message = f"{run}: after steps {done}, a replay with {kept} memoized {what}"
        self.violations.append(message)
        return message

    def _name(self, hashed: str) -> str:
        return self.names.get(hashed, hashed)

    def _describe(self, hashed: str, ops: list[dict[str, Any]], notes: _RunNotes) -> str:
        name = next((_op_name(op) for op in ops if op.get("id") == hashed), self._name(hashed))
        return repr(name) if hashed in notes.known else f"{name!r} (a step id never seen before)"


_KINDS = {
    "Sleep": "sleep",
    "WaitForEvent": "wait_for_event",
    "InvokeFunction": "invoke",
}


def _op_name(op: Mapping[str, Any]) -> str:
    userland = op.get("userland")
    for value in (
        userland.get("id") if isinstance(userland, dict) else None,
        op.get("displayName"),
        op.get("name"),
        op.get("id"),
    ):
        if isinstance(value, str) and value:
            return value
    return "?"


def _failure(name: str, message: str) -> _Answer:
    """A final (no-retry) function error, answered by the wire itself."""
    body = msgspec.json.encode({"code": "unknown", "name": name, "message": message})
    headers = [
        ("content-type", "application/json"),
        ("x-inngest-sdk", SDK_IDENT),
        ("x-inngest-req-version", "2"),
        ("x-inngest-no-retry", "true"),
    ]
    return _Answer(500, headers, body)


def _plain_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Response headers for an answer the wire writes itself (no signature, not streamed)."""
    dropped = ("x-inngest-signature", "content-type")
    kept = [(k, v) for k, v in headers if k.lower() not in dropped]
    return [*kept, ("content-type", "application/json")]
