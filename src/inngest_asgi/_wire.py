"""msgspec models for every JSON body on the wire, and the decoders and encoder built once.

Inbound bodies are validated at decode time; a failure is a :class:`msgspec.ValidationError`
whose message names the JSON path (``... at `$.ctx.run_id```), which the handler relays in a
400 response.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, TypeVar, cast

import msgspec
from msgspec import UNSET, UnsetType

from ._types import convert_output

__all__ = ["Event"]

T = TypeVar("T")


class Event(msgspec.Struct, kw_only=True):
    """An Inngest event.

    ``Event(name="app/user.signup", data={"id": 1})``. ``id`` is an idempotency key when set;
    ``ts`` (unix milliseconds) is filled in on send when it is 0.
    """

    name: str
    data: dict[str, Any] = {}
    id: str = ""
    ts: int = 0
    user: dict[str, Any] | None = None
    v: str | None = None

    def data_as(self, data_type: type[T]) -> T:
        """``data`` decoded into a typed model: a msgspec Struct, a dataclass, a TypedDict or a
        pydantic model. Raises :class:`msgspec.ValidationError` (or pydantic's) naming the
        field that does not fit."""
        return cast(T, convert_output(self.data, data_type))


class CallStack(msgspec.Struct):
    stack: list[str] = []
    current: int = 0


class CallContext(msgspec.Struct):
    run_id: str
    attempt: int = 0
    max_attempts: int | None = None
    disable_immediate_execution: bool = False
    use_api: bool = False
    stack: CallStack | None = None


class CallRequest(msgspec.Struct):
    """Body of a POST (execution) request. Unknown fields are ignored."""

    ctx: CallContext
    event: Event | None = None
    events: list[Event] | None = None
    steps: dict[str, Any] = {}
    use_api: bool = False
    version: int = -1


class CallEnvelope(msgspec.Struct):
    """:class:`CallRequest` with ``event`` and ``events`` left as raw JSON: the batch usually
    repeats the event byte for byte, and is then not decoded a second time."""

    ctx: CallContext
    event: msgspec.Raw = msgspec.Raw()
    events: msgspec.Raw = msgspec.Raw()
    steps: dict[str, Any] = {}
    use_api: bool = False
    version: int = -1


class Userland(msgspec.Struct):
    id: str
    index: int | None = None


class ErrorBody(msgspec.Struct):
    """The error object of StepError/StepFailed ops and of function-level error responses."""

    code: str
    message: str
    name: str
    stack: str | None = None


class Op(msgspec.Struct, rename={"display_name": "displayName"}):
    """One step opcode in a 206 response."""

    display_name: str
    id: str
    name: str
    op: str
    userland: Userland
    opts: dict[str, Any] | None = None
    data: Any = None
    error: ErrorBody | UnsetType = UNSET


class ErrorResponse(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    name: str


def _enc_hook(obj: Any) -> Any:
    # Types msgspec does not encode natively but users commonly return.
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    model_dump = getattr(obj, "model_dump", None)  # pydantic v2 models
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"objects of type {type(obj).__name__} are not JSON serializable")


encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
call_request_decoder = msgspec.json.Decoder(CallRequest)
call_envelope_decoder = msgspec.json.Decoder(CallEnvelope)
event_decoder = msgspec.json.Decoder(Event | None)
events_decoder = msgspec.json.Decoder(list[Event] | None)
any_decoder = msgspec.json.Decoder()
