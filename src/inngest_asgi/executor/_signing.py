"""The server's half of signing (PROTOCOL.md §6), written independently of the SDK's own code
so that each checks the other.

* Requests: ``t=<unix s>&s=hex(HMAC_SHA256(ascii(K), body || ascii(t)))`` where ``body`` is
  already canonical (JCS) because the executor always sends JCS bytes.
* Responses: the same HMAC over the exact response bytes, verified with the key that signed
  the request, within :data:`MAX_SKEW` of wall time.
* API calls from the SDK carry ``authorization: Bearer <sha256(bytes.fromhex(K))>``, with or
  without the ``signkey-<env>-`` prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import parse_qs

__all__: list[str] = []

MAX_SKEW = 300
_PREFIX = re.compile(r"^signkey-\w+-")


class SignatureError(Exception):
    """A response signature that is missing, malformed, stale or wrong."""


def key_hex(key: str) -> str:
    return _PREFIX.sub("", key, count=1)


def hashed_key(key: str) -> str:
    """``sha256`` of the decoded hex of ``key``, in hex: the SDK's bearer token."""
    return hashlib.sha256(bytes.fromhex(key_hex(key))).hexdigest()


def check_key(key: str) -> None:
    """Raise ValueError if ``key`` is not ``signkey-<env>-<hex>`` (or bare hex)."""
    try:
        hashed_key(key)
    except ValueError:
        raise ValueError("signing key must look like signkey-<env>-<hex digits>") from None


def _mac(key: str, body: bytes, stamp: str) -> str:
    return hmac.new(key_hex(key).encode(), body + stamp.encode(), hashlib.sha256).hexdigest()


def sign(body: bytes, key: str, at: int) -> str:
    """The ``x-inngest-signature`` header for a request body (already JCS) at unix time ``at``."""
    return f"t={at}&s={_mac(key, body, str(at))}"


def verify_response(header: str | None, body: bytes, key: str, now: int) -> None:
    """Check a response signature; raise :class:`SignatureError` saying what is wrong."""
    if not header:
        raise SignatureError("the response has no x-inngest-signature header")
    fields = parse_qs(header, keep_blank_values=True)
    stamp, sig = fields.get("t", [""])[0], fields.get("s", [""])[0]
    if not stamp.isdigit() or not sig:
        raise SignatureError(f"malformed response signature {header!r}")
    if abs(now - int(stamp)) > MAX_SKEW:
        raise SignatureError("the response signature's timestamp is more than 5 minutes off")
    if not hmac.compare_digest(_mac(key, body, stamp), sig):
        raise SignatureError("the response signature does not match its body")


def bearer_ok(header: str | None, key: str) -> bool:
    """Whether an ``authorization`` header carries ``key``'s hash (either form) or the key."""
    if not header or not header.lower().startswith("bearer "):
        return False
    token = header[7:].strip()
    expected = hashed_key(key)
    return any(
        hmac.compare_digest(candidate, expected)
        for candidate in (token, key_hex(token))
        if candidate
    ) or hmac.compare_digest(token, key)
