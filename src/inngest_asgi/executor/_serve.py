"""Serve an ASGI app with uvicorn inside the current event loop (for ``dev`` and tests)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import Any, Literal

import anyio
import anyio.abc

__all__ = ["UvicornServer"]


class UvicornServer:
    """``async with UvicornServer(app, port=0) as server:`` serves ``app`` on 127.0.0.1.

    ``port=0`` picks a free port; read it back from :attr:`port` or :attr:`url`. Signals are
    left alone (several servers can share one process); leaving the block shuts it down.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        lifespan: Literal["auto", "on", "off"] = "auto",
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.lifespan = lifespan
        self._server: Any = None
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> UvicornServer:
        import uvicorn

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                yield

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level=self.log_level, lifespan=self.lifespan)
        server = self._server = _Server(config)
        stack = contextlib.AsyncExitStack()
        stack.callback(sock.close)  # after the server has stopped using it
        tg: anyio.abc.TaskGroup = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack

        async def serve() -> None:
            await server.serve(sockets=[sock])

        tg.start_soon(serve)
        with anyio.fail_after(10):
            while not server.started:
                if server.should_exit:
                    raise RuntimeError(f"uvicorn could not start on {self.url}")
                await anyio.sleep(0.01)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(None, None, None)
