"""End-to-end encryption of step outputs, function outputs and event data.

``pip install "inngest-asgi[encryption]"``, then::

    from inngest_asgi.encryption import EncryptionMiddleware

    client = inngest.Inngest(
        app_id="my-app",
        middleware=[EncryptionMiddleware.factory(os.environ["MY_ENCRYPTION_KEY"])],
    )

Only ciphertext reaches Inngest: every step output and function output, and the
``event_encryption_field`` (default ``"encrypted"``) of the data of events sent with
``client.send`` or passed to ``step.invoke``. Both are decrypted before user code sees them.

Wire format (the ``inngest/libsodium`` strategy of the official ``inngest_encryption`` package
and of ``@inngest/middleware-encryption``, so data can move between the SDKs)::

    {"__ENCRYPTED__": true, "__STRATEGY__": "inngest/libsodium", "data": "<base64>"}

* key: a ``str`` secret is hashed to 32 bytes with unkeyed BLAKE2b-256 of its UTF-8 bytes
  (libsodium's ``crypto_generichash``); a ``bytes`` secret is the hex spelling of a raw
  32-byte key, used as is.
* ``data``: standard base64 (with padding) of ``nonce || ciphertext``, where the nonce is 24
  random bytes and the ciphertext is XSalsa20-Poly1305 (``crypto_secretbox``) of the value's
  JSON text in UTF-8.

Decryption accepts exactly that shape; any other value (plaintext from before encryption was
turned on, or a marker of another strategy) passes through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

try:
    import nacl.exceptions
    import nacl.secret
    import nacl.utils
except ImportError as exc:
    raise ImportError(
        'inngest_asgi.encryption needs PyNaCl: pip install "inngest-asgi[encryption]"'
    ) from exc

import msgspec

from ._context import current_replay
from ._engine import encode_output
from ._errors import ConfigError, InngestError
from ._middleware import Middleware, StepMemos, TransformOutputResult
from ._wire import encoder

if TYPE_CHECKING:
    from ._client import Inngest
    from ._context import Context, ContextSync
    from ._engine import Replay
    from ._function import Function
    from ._messages import Request
    from ._wire import Event

__all__ = ["DecryptionError", "EncryptionMiddleware"]

ENCRYPTED = "__ENCRYPTED__"
STRATEGY = "__STRATEGY__"
LIBSODIUM = "inngest/libsodium"

Secret = str | bytes


class DecryptionError(InngestError):
    """An encrypted value could not be decrypted with the secret key or any fallback key."""


def derive_key(secret: Secret) -> bytes:
    """The 32-byte secretbox key for ``secret`` (see the module docstring)."""
    if isinstance(secret, str):
        if not secret:
            raise ConfigError("EncryptionMiddleware: the secret key is an empty string")
        return hashlib.blake2b(secret.encode(), digest_size=nacl.secret.SecretBox.KEY_SIZE).digest()
    if isinstance(secret, (bytes, bytearray)):
        try:
            key = binascii.unhexlify(bytes(secret))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != nacl.secret.SecretBox.KEY_SIZE:
            raise ConfigError(
                "EncryptionMiddleware: a bytes secret key must be the hex spelling of a raw "
                "32-byte key (64 hex digits), as in the official inngest_encryption package; "
                "pass a str to derive the key from a passphrase"
            )
        return key
    raise ConfigError(
        f"EncryptionMiddleware: the secret key must be str or bytes, not {type(secret).__name__}"
    )


def is_encrypted(value: object) -> bool:
    """True when ``value`` is a marker this middleware can decrypt."""
    return (
        isinstance(value, dict)
        and value.get(ENCRYPTED) is True
        and value.get(STRATEGY) == LIBSODIUM
        and isinstance(value.get("data"), str)
    )


def _check_field(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError("EncryptionMiddleware: event_encryption_field must be a field name")


class _Keyring:
    """Encrypts with the first key; decrypts with the first key that opens the box."""

    __slots__ = ("_boxes",)

    def __init__(self, secret: Secret, fallbacks: Sequence[Secret]) -> None:
        self._boxes = [nacl.secret.SecretBox(derive_key(s)) for s in (secret, *fallbacks)]

    def encrypt(self, plaintext: bytes) -> dict[str, Any]:
        """The marker holding ``plaintext`` (JSON text) sealed with the first key."""
        nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
        sealed = self._boxes[0].encrypt(plaintext, nonce)  # nonce || ciphertext
        return {ENCRYPTED: True, STRATEGY: LIBSODIUM, "data": base64.b64encode(sealed).decode()}

    def decrypt(self, marker: Mapping[str, Any], what: str) -> Any:
        try:
            sealed = base64.b64decode(marker["data"], validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError(f"{what}: the encrypted data is not valid base64") from None
        for box in self._boxes:
            try:
                plaintext = box.decrypt(sealed)
            except (nacl.exceptions.CryptoError, ValueError, TypeError):
                continue
            try:
                return json.loads(plaintext)
            except ValueError:
                raise DecryptionError(f"{what}: the decrypted data is not JSON") from None
        tried = len(self._boxes)
        keys = "the secret key" if tried == 1 else f"the secret key or {tried - 1} fallback key(s)"
        raise DecryptionError(
            f"{what} could not be decrypted with {keys}: it was encrypted with another key, or "
            "altered. When rotating keys, pass the old key in fallback_decryption_keys."
        )


class EncryptionMiddleware(Middleware):
    """Encrypts outgoing step outputs, function outputs and event fields; decrypts incoming ones.

    Build it with :meth:`factory` and pass that to ``Inngest(middleware=[...])`` or to
    ``create_function(middleware=[...])``. The hooks are sync, so the middleware works for sync
    and async functions and around ``send`` and ``send_sync`` alike.
    """

    #: How the invoke opcode names itself in ``TransformOutputResult.step.op``.
    INVOKE_OP: ClassVar[str] = "InvokeFunction"

    def __init__(
        self,
        client: Inngest,
        raw_request: Request | None,
        secret_key: Secret,
        *,
        decrypt_only: bool = False,
        event_encryption_field: str = "encrypted",
        fallback_decryption_keys: Sequence[Secret] | None = None,
    ) -> None:
        super().__init__(client, raw_request)
        _check_field(event_encryption_field)
        self._keys = _Keyring(secret_key, list(fallback_decryption_keys or ()))
        self._decrypt_only = decrypt_only
        self._field = event_encryption_field
        self._replay: Replay | None = None
        self._warned_strategies: set[str] = set()

    @classmethod
    def factory(
        cls,
        secret_key: Secret,
        *,
        decrypt_only: bool = False,
        event_encryption_field: str = "encrypted",
        fallback_decryption_keys: Sequence[Secret] | None = None,
    ) -> Callable[[Inngest, Request | None], EncryptionMiddleware]:
        """A middleware factory for ``Inngest(middleware=[...])`` or ``create_function``.

        ``secret_key`` encrypts and decrypts; ``fallback_decryption_keys`` only decrypt (old
        keys during a rotation). ``decrypt_only=True`` never encrypts: use it to roll out the
        middleware before any data is encrypted, or to phase encryption out.
        ``event_encryption_field`` names the field of event data that is encrypted on send and
        on invoke. Bad keys raise :class:`~inngest_asgi.ConfigError` here, not per request.
        """
        fallbacks = list(fallback_decryption_keys or ())
        _Keyring(secret_key, fallbacks)  # fail at set-up time on a malformed key
        _check_field(event_encryption_field)

        def build(client: Inngest, raw_request: Request | None) -> EncryptionMiddleware:
            return cls(
                client,
                raw_request,
                secret_key,
                decrypt_only=decrypt_only,
                event_encryption_field=event_encryption_field,
                fallback_decryption_keys=fallbacks,
            )

        return build

    # --- incoming ------------------------------------------------------------------------

    def transform_input(
        self, ctx: Context | ContextSync, function: Function[Any], steps: StepMemos
    ) -> None:
        """Decrypt the event data of ``ctx.event`` and ``ctx.events``, and every memo."""
        self._replay = current_replay.get()
        for event in (ctx.event, *ctx.events):
            self._decrypt_event(event)
        for hashed, memo in list(steps.items()):
            steps[hashed] = self._decrypt_memo(memo, hashed)

    def _decrypt(self, value: Any, what: str) -> Any:
        if is_encrypted(value):
            return self._keys.decrypt(value, what)
        if isinstance(value, dict) and value.get(ENCRYPTED) is True:
            strategy = str(value.get(STRATEGY))
            if strategy not in self._warned_strategies:
                self._warned_strategies.add(strategy)
                self.client.logger.warning(
                    "%s is marked encrypted with strategy %r, which EncryptionMiddleware cannot "
                    "decrypt; passing it through unchanged",
                    what,
                    strategy,
                )
        return value

    def _decrypt_fields(self, data: MutableMapping[str, Any], what: str) -> None:
        for name, value in data.items():
            if isinstance(value, dict) and ENCRYPTED in value:
                data[name] = self._decrypt(value, f"{what} field {name!r}")

    def _decrypt_event(self, event: Event) -> None:
        self._decrypt_fields(event.data, f"event {event.name!r}")
        # inngest/function.failed and .cancelled carry the run's trigger event in data.event.
        nested = event.data.get("event")
        if (
            event.name.startswith("inngest/function.")
            and isinstance(nested, dict)
            and isinstance(nested.get("data"), dict)
        ):
            self._decrypt_fields(nested["data"], f"event {nested.get('name')!r}")

    def _decrypt_memo(self, memo: Any, hashed: str) -> Any:
        wrapped = (
            isinstance(memo, dict)
            and "data" in memo
            and memo.keys() <= {"data", "error"}
            and memo.get("error") is None
        )
        value = memo["data"] if wrapped else memo
        what = f"the memoized output of step {hashed}"
        if is_encrypted(value):
            # Re-wrap: a decrypted ``{"data": ...}`` must not be read as a memo wrapper.
            return {"data": self._keys.decrypt(value, what)}
        value = self._decrypt(value, what)
        if isinstance(value, dict) and isinstance(value.get("data"), dict) and "name" in value:
            # An event returned by wait_for_event: decrypt its data like a trigger's.
            self._decrypt_fields(value["data"], f"event {value['name']!r}")
        return memo

    # --- outgoing ------------------------------------------------------------------------

    def transform_output(self, result: TransformOutputResult) -> None:
        """Encrypt a step's or the function's output (an error is left as it is)."""
        self._encrypt_invoke_payloads()
        if self._decrypt_only or result.error is not None:
            return
        step = result.step
        if step is None:
            result.output = self._encrypt_output(result.output, "the function")
        elif step.op == "StepRun":
            result.output = self._encrypt_output(result.output, f"step {step.id}")
        elif step.op == self.INVOKE_OP and step.opts is not None:
            self._encrypt_invoke_opts(step.opts)

    def _encrypt_output(self, value: Any, what: str) -> dict[str, Any]:
        # Encoded as the SDK encodes plaintext outputs; a bad value is a 500
        # output_unserializable naming its source.
        return self._keys.encrypt(bytes(encode_output(value, what)))

    def after_execution(self) -> None:
        self._encrypt_invoke_payloads()

    def before_send_events(self, events: list[Event]) -> None:
        """Encrypt the configured field of each event's data (``client.send``)."""
        if self._decrypt_only:
            return
        for index, event in enumerate(events):
            data = self._encrypt_field(event.data, f"event {event.name!r}")
            if data is not event.data:
                # A copy: the caller's Event and its data dict stay plaintext.
                events[index] = msgspec.structs.replace(event, data=data)

    def _encrypt_field(self, data: Any, what: str) -> Any:
        """``data`` with its configured field encrypted: a new dict, or ``data`` itself when
        there is nothing to encrypt (no such field, null, or encrypted already)."""
        if not isinstance(data, Mapping) or self._field not in data:
            return data
        value = data[self._field]
        if value is None or is_encrypted(value):  # null holds no secret (as in the official)
            return data
        try:
            plaintext = encoder.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"{what} field {self._field!r} cannot be serialized to JSON: {exc}"
            ) from None
        return {**data, self._field: self._keys.encrypt(plaintext)}

    def _encrypt_invoke_opts(self, opts: dict[str, Any]) -> None:
        payload = opts.get("payload")
        if isinstance(payload, dict):
            fn = opts.get("function_id")
            payload["data"] = self._encrypt_field(payload.get("data"), f"invoke of {fn!r} data")

    def _encrypt_invoke_payloads(self) -> None:
        # The invoke opcode gets no transform_output call of its own: encrypt the payloads of
        # the opcodes this request is about to report, before the response is encoded.
        if self._decrypt_only or self._replay is None or not self._replay.stopped:
            return
        for op in self._replay.stopped:
            if op.op == self.INVOKE_OP and op.opts is not None:
                self._encrypt_invoke_opts(op.opts)
