"""ULIDs for run and event ids: 48-bit millisecond time then 80 random bits, Crockford base32."""

from __future__ import annotations

import os

__all__: list[str] = []

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now: float) -> str:
    """A new ULID for unix time ``now`` (seconds)."""
    value = (int(now * 1000) & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))
