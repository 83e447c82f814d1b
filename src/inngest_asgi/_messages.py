"""The values the sans-IO core consumes and produces; shells translate to and from them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__: list[str] = []


@dataclasses.dataclass(slots=True)
class Request:
    """One HTTP request to the serve endpoint.

    ``url`` is absolute, with its query string, as the client addressed it; ``headers`` has
    lowercase names (the first value of a repeated header wins).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclasses.dataclass(slots=True)
class Response:
    """The answer: status, headers (lowercase names) and the exact body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes
