"""Run one attempt of a function against a decoded call request; produce the HTTP outcome."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from ._context import Context, ContextSync, ReplayAwareLogger
from ._durations import iso_utc
from ._engine import Interrupt, OutputUnserializableError, Replay, encode_output, error_body
from ._errors import BadRequestError, NonRetriableError, ProtocolError, RetryAfterError, StepError
from ._function import Function
from ._invoke import Invoker
from ._messages import Response
from ._step import Group, GroupSync, Step, StepSync
from ._wire import CallRequest, Event, call_request_decoder, encoder

__all__: list[str] = []

NO_RETRY = "x-inngest-no-retry"


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
    event: Event,
    events: list[Event],
    target: str | None,
    invoker: Invoker,
    logger: logging.Logger,
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
    fields: dict[str, Any] = {
        "attempt": cctx.attempt,
        "event": event,
        "events": events,
        "logger": ReplayAwareLogger(logger, replay),
        "run_id": cctx.run_id,
        "max_attempts": cctx.max_attempts,
    }
    failure: Exception | None = None
    output: Any = None
    try:
        if fn.is_handler_async:
            step = Step(replay, invoker, fn.app_id)
            output = await fn.handler(Context(step=step, group=Group(replay, invoker), **fields))
        else:
            step_sync = StepSync(replay, invoker, fn.app_id)
            ctx = ContextSync(step=step_sync, group=GroupSync(replay), **fields)
            output = await invoker.run_sync(fn.handler, ctx)
    except Interrupt:
        pass
    except Exception as exc:
        failure = exc

    # Recorded state wins over what user code did with the interrupt afterwards.
    if replay.fatal is not None:
        return protocol_error_response(replay.fatal)
    if replay.stopped is not None:
        if failure is not None or output is not None:
            logger.warning(
                "function %s caught the step interrupt and went on; reporting the step anyway "
                "(catch Exception, not BaseException, around steps)",
                fn.id,
            )
        return Response(206, {}, encoder.encode(replay.stopped))
    if failure is not None:
        return _failure_response(fn, failure, logger)
    try:
        body = encode_output(output, f'function "{fn.id}"')
    except OutputUnserializableError as exc:
        return protocol_error_response(exc)
    return Response(200, {}, bytes(body))


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
    try:
        return call_request_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequestError(f"invalid request body: {exc}", code="body_invalid") from None
    except msgspec.DecodeError as exc:
        raise BadRequestError(
            f"request body is not valid JSON: {exc}", code="body_invalid"
        ) from None
