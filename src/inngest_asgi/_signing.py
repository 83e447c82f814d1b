"""Request and response signing (HMAC-SHA256), pure functions with the clock passed in.

Rules (see PROTOCOL.md §6):

* A signing key ``signkey-<env>-<hex>`` loses its prefix; the HMAC key is the ASCII bytes of the
  hex string (not the decoded bytes). The key's *hash*, used as the outbound bearer token and in
  introspection, is ``sha256(bytes.fromhex(hex))``.
* A request signature is ``t=<unix s>&s=hex(HMAC(key, JCS(body) + str(t)))``. The server already
  sends canonical (JCS, RFC 8785) bytes, so the raw body is tried first and the body is only
  re-canonicalised when that fails (a proxy may have re-encoded it).
* A response signature covers the exact bytes sent, never canonicalised.
* Timestamps more than :data:`MAX_SKEW` seconds away from ``now``, in either direction, are
  rejected; keys are tried primary first, then the fallback, compared in constant time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Sequence

import msgspec
import rfc8785

from ._errors import UnauthorizedError

__all__: list[str] = []

#: Largest accepted distance, in seconds, between a signature's timestamp and now.
MAX_SKEW = 5 * 60

_PREFIX = re.compile(r"^signkey-\w+-")


def normalize_key(key: str) -> str:
    """Strip the ``signkey-<env>-`` prefix, leaving the hex part."""
    return _PREFIX.sub("", key, count=1)


def hash_signing_key(key: str) -> str:
    """The hashed form of a signing key: sha256 of its decoded hex, in lowercase hex."""
    hex_part = normalize_key(key)
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        raise ValueError(
            "signing key is not valid: expected 'signkey-<env>-<hex>' with an even number of "
            "hex digits after the prefix"
        ) from None
    return hashlib.sha256(raw).hexdigest()


def hash_event_key(key: str) -> str:
    """sha256 of the UTF-8 event key, in hex (used only in introspection)."""
    return hashlib.sha256(key.encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def _keyed(key: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with ``key`` and fed nothing: copied for each use, so the key is
    set up once."""
    return hmac.new(normalize_key(key).encode(), digestmod=hashlib.sha256)


def _mac(key: str, body: bytes, timestamp: str) -> str:
    mac = _keyed(key).copy()
    mac.update(body)  # the body is not copied to append the timestamp
    mac.update(timestamp.encode())
    return mac.hexdigest()


def sign(body: bytes, key: str, at: int) -> str:
    """The ``x-inngest-signature`` value for ``body`` (exact bytes) at unix time ``at``."""
    return f"t={at}&s={_mac(key, body, str(at))}"


def canonicalize(body: bytes) -> bytes:
    """RFC 8785 (JCS) form of a JSON body; an empty body stays empty.

    Raises :class:`ValueError` if the body is not JSON or holds numbers JCS cannot represent.
    """
    if not body:
        return body
    try:
        return rfc8785.dumps(msgspec.json.decode(body))
    except (msgspec.DecodeError, rfc8785.CanonicalizationError) as exc:
        raise ValueError(f"body cannot be canonicalised: {exc}") from None


def verify(header: str | None, body: bytes, keys: Sequence[str], now: int) -> str:
    """Check a request signature; return the key that matched.

    Raises :class:`UnauthorizedError` with a message naming what is wrong (never the keys).
    """
    if not header:
        raise UnauthorizedError("missing x-inngest-signature header")
    stamp, _, sig = header.partition("&s=")
    if stamp.startswith("t=") and "&" not in stamp and "&" not in sig:
        stamp = stamp[2:]  # the form servers send: t=<unix s>&s=<hex>
    else:
        fields: dict[str, str] = {}
        for part in header.split("&"):  # a query string; the first of a repeated field wins
            name, _, value = part.partition("=")
            fields.setdefault(name, value)
        sig = fields.get("s", "")
        stamp = fields.get("t", "")
    if not sig or not stamp:
        raise UnauthorizedError("malformed x-inngest-signature header: expected t=<unix s>&s=<hex>")
    try:
        at = int(stamp)
    except ValueError:
        raise UnauthorizedError(
            "malformed x-inngest-signature header: t is not an integer"
        ) from None
    if abs(now - at) > MAX_SKEW:
        raise UnauthorizedError(
            "x-inngest-signature timestamp is outside the accepted 5 minute window"
        )
    # The raw body first: the server sends canonical bytes, and canonicalising is costly.
    matched = _match(keys, body, stamp, sig)
    if matched is None:
        try:
            canonical = canonicalize(body)
        except ValueError:
            canonical = body
        if canonical != body:
            matched = _match(keys, canonical, stamp, sig)
    if matched is None:
        raise UnauthorizedError("x-inngest-signature does not match the request")
    return matched


def _match(keys: Sequence[str], signed: bytes, stamp: str, sig: str) -> str | None:
    for key in keys:
        if hmac.compare_digest(_mac(key, signed, stamp), sig):
            return key
    return None
