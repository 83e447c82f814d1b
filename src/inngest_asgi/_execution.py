"""Run one attempt of a function against a decoded call request; produce the HTTP outcome."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ._context import Context, ContextSync, ReplayAwareLogger, current_replay
from ._coroutines import first_slice, resume
from ._durations import iso_utc
from ._engine import (
    Interrupt,
    OutputUnserializableError,
    Replay,
    current_task,
    encode_output,
    error_body,
)
from ._errors import BadRequestError, NonRetriableError, ProtocolError, RetryAfterError, StepError
from ._function import Function
from ._invoke import Invoker
from ._messages import Request, Response
from ._middleware import (
    MiddlewareRunner,
    StepMemos,
    TransformOutputResult,
    TransformOutputStepInfo,
)
from ._step import Group, GroupSync, Step, StepSync
from ._wire import (
    CallRequest,
    Event,
    call_envelope_decoder,
    call_request_decoder,
    encoder,
    event_decoder,
    events_decoder,
)

if TYPE_CHECKING:
    from ._client import Inngest

__all__: list[str] = []

NO_RETRY = "x-inngest-no-retry"

T = TypeVar("T")


def _error(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers or {}, encoder.encode(body))


def protocol_error_response(exc: ProtocolError) -> Response:
    headers = {} if exc.retriable else {NO_RETRY: "true"}
    body = {"code": exc.code, "message": exc.message, "name": type(exc).__name__}
    return _error(exc.status, body, headers)


async def execute(
    fn: Function[Any],
    call: CallRequest,
    *,
    client: Inngest,
    request: Request,
    event: Event,
    events: list[Event],
    target: str | None,
    invoker: Invoker,
) -> Response:
    """Replay ``fn`` once. 206 with ops, 200 with its output, or 500 with its error."""
    cctx = call.ctx
    replay = Replay(
        call.steps,
        target=target,
        disable_immediate_execution=cctx.disable_immediate_execution,
        attempt=cctx.attempt,
        max_attempts=cctx.max_attempts,
    )
    factories = client.middleware + fn.middleware if fn.middleware else client.middleware
    mw = MiddlewareRunner.build(factories, client, request, invoker)
    logger = ReplayAwareLogger(client.logger, replay)
    fields = (cctx.attempt, event, events, logger, cctx.run_id, cctx.max_attempts)
    ctx: Context | ContextSync
    if fn.is_handler_async:
        ctx = Context(*fields, Step(replay, invoker, client, mw), Group(replay, invoker))
    else:
        ctx = ContextSync(*fields, StepSync(replay, invoker, client, mw), GroupSync(replay))
    failure: Exception | None = None
    output: Any = None
    token = current_replay.set(replay)
    try:
        if mw.active:
            await mw.call("transform_input", ctx, fn, StepMemos(call.steps))
            if not replay.replaying:
                await mw.start()
        if fn.is_handler_async:
            output = await _run_isolated(fn.handler(ctx), replay)
        else:
            output = await invoker.run_sync(fn.handler, ctx)
    except Interrupt:
        pass
    except Exception as exc:
        failure = exc
    finally:
        replay.release()
        current_replay.reset(token)

    try:
        if mw.started:
            await mw.call("after_execution", reverse=True)
        response = await _outcome(fn, replay, mw, output, failure, client.logger)
        if mw.active:
            await mw.call("before_response")
    except Exception as exc:  # a middleware hook failed: the attempt failed, and may be retried
        return _failure_response(fn, exc, client.logger)
    return response


async def _run_isolated(coro: Coroutine[Any, Any, Any], replay: Replay) -> Any:
    """Await the function with context variables of its own, so what it sets stays with this
    attempt even when the host serves several requests from one task (what a task does,
    without the cost of one)."""
    replay.owner = current_task()  # step calls from this task have no asyncio.gather siblings
    run = contextvars.copy_context().run
    done, value = first_slice(coro, run)
    return value if done else await resume(coro, value, run)


async def _outcome(
    fn: Function[Any],
    replay: Replay,
    mw: MiddlewareRunner,
    output: Any,
    failure: Exception | None,
    logger: logging.Logger,
) -> Response:
    # Recorded state wins over what user code did with the interrupt afterwards.
    if replay.fatal is not None:
        return protocol_error_response(replay.fatal)
    try:
        if replay.stopped is not None:
            if failure is not None or output is not None:
                logger.warning(
                    "function %s caught the step interrupt and went on; reporting the step "
                    "anyway (catch Exception, not BaseException, around steps)",
                    fn.id,
                )
            for op in replay.stopped:
                if op.op == "StepRun":
                    data = op.data
                    if mw.active:
                        info = TransformOutputStepInfo(id=op.id, op=op.op, opts=op.opts)
                        data, _ = await _transform(mw, data, None, info)
                    op.data = encode_output(data, f'step "{op.display_name}"')
                elif op.op == "InvokeFunction" and mw.active:
                    # Middleware may rewrite what is sent to the invoked function (its opts).
                    info = TransformOutputStepInfo(id=op.id, op=op.op, opts=op.opts)
                    await _transform(mw, None, None, info)
                    op.opts = info.opts
            return Response(206, {}, encoder.encode(replay.stopped))
        output, error = await _transform(mw, output, failure, None)
        if error is not None:
            return _failure_response(fn, error, logger)
        return Response(200, {}, bytes(encode_output(output, f'function "{fn.id}"')))
    except OutputUnserializableError as exc:
        return protocol_error_response(exc)


async def _transform(
    mw: MiddlewareRunner,
    output: Any,
    error: Exception | None,
    step: TransformOutputStepInfo | None,
) -> tuple[Any, Exception | None]:
    if not mw.active:
        return output, error
    result = TransformOutputResult(error=error, output=output, step=step)
    await mw.call("transform_output", result, reverse=True)
    if result.error is not None and not isinstance(result.error, Exception):
        raise TypeError("transform_output: error must be an Exception or None")
    return result.output, result.error


def _failure_response(fn: Function[Any], exc: Exception, logger: logging.Logger) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, StepError):
        code = "step_errored"
        headers[NO_RETRY] = "true"
    elif isinstance(exc, NonRetriableError):
        code = "non_retriable_error"
        headers[NO_RETRY] = "true"
    elif isinstance(exc, RetryAfterError):
        code = "retry_after_error"
        headers["retry-after"] = iso_utc(exc.retry_at)
    else:
        code = "unknown"
    if not getattr(exc, "quiet", False):
        logger.error("function %s failed: %s: %s", fn.id, type(exc).__name__, exc, exc_info=exc)
    return _error(500, error_body(exc, code), headers)


def decode_call(body: bytes) -> CallRequest:
    """Decode an execution request. In a large one, ``events`` is decoded only when it is not
    just ``[event]`` (the usual batch of one): the same event is not decoded twice."""
    if len(body) < LARGE_BODY:
        return _decode(call_request_decoder, body, "")
    envelope = _decode(call_envelope_decoder, body, "")
    event = _decode(event_decoder, envelope.event, "event") if envelope.event else None
    batch = envelope.events
    events: list[Event] | None
    if not batch:
        events = None
    elif event is not None and _is_batch_of(batch, envelope.event):
        events = [event]
    else:
        events = _decode(events_decoder, batch, "events")
    return CallRequest(
        ctx=envelope.ctx,
        event=event,
        events=events,
        steps=envelope.steps,
        use_api=envelope.use_api,
        version=envelope.version,
    )


#: Bodies from this size (bytes) on are decoded in two steps (see :func:`decode_call`); below
#: it, decoding the event twice costs less than the second step.
LARGE_BODY = 4 * 1024


def _is_batch_of(batch: msgspec.Raw, event: msgspec.Raw) -> bool:
    """Whether ``batch`` is exactly ``[`` + ``event`` + ``]``, compared without copying."""
    if len(batch) != len(event) + 2:
        return False
    view = memoryview(batch)
    return view[0] == ord("[") and view[-1] == ord("]") and view[1:-1] == memoryview(event)


def _decode(decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw, where: str) -> T:
    place = f" (in {where})" if where else ""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequestError(f"invalid request body{place}: {exc}", code="body_invalid") from None
    # Invalid UTF-8 inside a JSON string surfaces as UnicodeDecodeError, not DecodeError.
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadRequestError(
            f"request body is not valid JSON{place}: {exc}", code="body_invalid"
        ) from None
