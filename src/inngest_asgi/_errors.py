"""Errors raised by inngest-asgi.

Public errors, raised by or to user code::

    Exception
    ├── InngestError                   base of every error this package raises on purpose
    │   ├── ConfigError                bad client or function configuration (raised at set-up time)
    │   └── SendEventsError            events could not be sent (``.ids`` holds the ids that were)
    ├── NonRetriableError              user code: fail the run now, do not retry
    ├── RetryAfterError                user code: retry, but not before ``retry_after``
    └── StepError                      a step failed for good; raised in user code on replay

Protocol errors are internal: each carries the HTTP status and the stable ``code`` that the
request handler turns into a JSON body (``{"code", "message", "name"}``)::

    ProtocolError
    ├── BadRequestError (400)          malformed body, missing query parameter, wrong types
    ├── UnauthorizedError (401)        missing, invalid or stale signature
    ├── FunctionNotFoundError (404)    unknown ``fnId``: retried, another replica may have it
    └── StepUnexpectedError,           the function misbehaved during replay (500, no retry)
        StepNestedError

Control flow uses :class:`BaseException` subclasses so that ``except Exception`` in user code
cannot swallow them (see ``_engine``).
"""

from __future__ import annotations

import datetime as _dt
from typing import ClassVar

__all__ = [
    "ConfigError",
    "InngestError",
    "NonRetriableError",
    "RetryAfterError",
    "SendEventsError",
    "StepError",
]


class InngestError(Exception):
    """Base class of the errors inngest-asgi raises on purpose."""


class ConfigError(InngestError):
    """The client, a function or the serve endpoint is configured wrongly."""


class SendEventsError(InngestError):
    """Sending events failed. ``ids`` lists the ids of the events that were accepted."""

    def __init__(self, message: str, ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.ids: list[str] = list(ids or [])


class NonRetriableError(Exception):
    """Raise in a function or step to fail the run at once, without retries.

    ``quiet=True`` keeps the error out of the SDK's error log.
    """

    def __init__(self, message: str | None = None, quiet: bool = False) -> None:
        super().__init__(message)
        self.message = message or ""
        self.quiet = quiet


class RetryAfterError(Exception):
    """Raise to have the attempt retried, but not before ``retry_after``.

    ``retry_after`` is a delay (int milliseconds or :class:`~datetime.timedelta`) or an aware
    :class:`~datetime.datetime`. A naive datetime is rejected: it would be read in the server's
    time zone, not yours.
    """

    def __init__(
        self,
        message: str | None,
        retry_after: int | _dt.timedelta | _dt.datetime,
        quiet: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message or ""
        self.quiet = quiet
        if isinstance(retry_after, _dt.datetime):
            if retry_after.tzinfo is None:
                raise ValueError(
                    "RetryAfterError: retry_after is a naive datetime; pass an aware one "
                    "(for example datetime.now(timezone.utc) + timedelta(minutes=5))"
                )
            self.retry_at = retry_after.astimezone(_dt.timezone.utc)
        elif isinstance(retry_after, _dt.timedelta):
            self.retry_at = _dt.datetime.now(_dt.timezone.utc) + retry_after
        elif isinstance(retry_after, int) and not isinstance(retry_after, bool):
            self.retry_at = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(
                milliseconds=retry_after
            )
        else:
            raise TypeError(
                "RetryAfterError: retry_after must be int milliseconds, a timedelta or an "
                f"aware datetime, not {type(retry_after).__name__}"
            )


class StepError(Exception):
    """A step failed for good (its last attempt raised).

    Raised in user code when the failed step is replayed; catch it to recover. ``name``,
    ``message`` and ``stack`` describe the original error.
    """

    def __init__(self, message: str, name: str, stack: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.stack = stack

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


# --- protocol errors (internal) ------------------------------------------------------------


class ProtocolError(Exception):
    """A request the handler refuses; turned into a JSON error response by the handler.

    Abstract: raise one of the subclasses, which carry the status and the stable code.
    """

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "unknown"
    #: Whether the Inngest server may retry the request (no ``x-inngest-no-retry`` header).
    retriable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise a ProtocolError subclass")
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class BadRequestError(ProtocolError):
    """The request is malformed; retrying the same bytes cannot help."""

    status = 400
    default_code = "bad_request"


class UnauthorizedError(ProtocolError):
    """Missing, malformed, stale or wrong signature."""

    status = 401
    default_code = "sig_verification_failed"
    # A request signed with a key this replica does not know yet may verify once a deploy
    # finishes rotating keys, so the server is allowed to retry.
    retriable = True


class FunctionNotFoundError(ProtocolError):
    """Unknown ``fnId``."""

    status = 404
    default_code = "function_not_found"
    # During a rolling deploy another replica may already serve the function.
    retriable = True


class ServerKindMismatchError(ProtocolError):
    """A dev server talks to a cloud-mode app, or the other way round."""

    status = 400
    default_code = "server_kind_mismatch"


class StepUnexpectedError(ProtocolError):
    """Replay met a step other than the one the server targeted."""

    status = 500
    default_code = "step_unexpected"


class StepNestedError(ProtocolError):
    """A step was called from inside another step's callable."""

    status = 500
    default_code = "step_nested"
