"""How the executor reaches apps: in-process for mounted ASGI apps, real HTTP for the rest.

Both transports are httpx clients, so the engine sees one interface and the same bytes cross
either one: an app mounted at ``http://app.test`` is called through
:class:`httpx.ASGITransport` without sockets; any other URL (``http://127.0.0.1:8000/...``)
goes over the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__: list[str] = []


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lowercased, default ports dropped."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class Transport:
    """Routes requests by origin: mounted ASGI apps first, then the network."""

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._mounted: dict[str, httpx.AsyncClient] = {}
        self._network: httpx.AsyncClient | None = None

    def mount(self, origin: str, app: Any) -> None:
        """Serve requests for ``origin`` by calling the ASGI ``app`` in-process."""
        key = origin_of(origin)
        self._mounted[key] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=key,
            timeout=self._timeout,
        )

    def is_mounted(self, url: str) -> bool:
        return origin_of(url) in self._mounted

    def _client(self, url: str) -> httpx.AsyncClient:
        client = self._mounted.get(origin_of(url))
        if client is not None:
            return client
        if self._network is None:
            # trust_env=False: a proxy configured for the internet must not see local apps.
            self._network = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
        return self._network

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> httpx.Response:
        """Send one request; network errors propagate as :class:`httpx.HTTPError`."""
        return await self._client(url).request(method, url, headers=headers, content=body)

    async def aclose(self) -> None:
        for client in self._mounted.values():
            await client.aclose()
        if self._network is not None:
            await self._network.aclose()
            self._network = None
