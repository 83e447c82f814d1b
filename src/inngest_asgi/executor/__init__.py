"""A local Inngest executor: the server side of the protocol, in Python, for development and
tests (``pip install "inngest-asgi[dev]"``).

It syncs apps, accepts events, and drives runs by calling each app's serve endpoint exactly as
an Inngest server does: in-process for a mounted ASGI app, over HTTP for a URL. See
docs/local-development.md.

::

    from inngest_asgi.executor import Executor, VirtualClock

    async with Executor(clock=VirtualClock()) as ex:
        ex.mount("http://app.test", app)
        await ex.sync("http://app.test/api/inngest")
        ex.send({"name": "app/hello", "data": {}})
        await ex.run_until_idle()
        await ex.advance(60)          # fire sleeps and timeouts due in the next minute
"""

from ._clock import Clock, RealClock, VirtualClock
from ._executor import Executor
from ._records import Run, RunStatus, StepRecord, StepStatus
from ._registry import App, FunctionConfig, SyncError
from ._serve import UvicornServer

__all__ = [
    "App",
    "Clock",
    "Executor",
    "FunctionConfig",
    "RealClock",
    "Run",
    "RunStatus",
    "StepRecord",
    "StepStatus",
    "SyncError",
    "UvicornServer",
    "VirtualClock",
]
