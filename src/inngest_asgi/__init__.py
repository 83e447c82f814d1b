"""inngest-asgi: Inngest functions served by one framework-agnostic ASGI app (and a WSGI bridge).

::

    import inngest_asgi as inngest

    client = inngest.Inngest(app_id="my-app")

    @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="app/hello"))
    async def hello(ctx: inngest.Context) -> str:
        name = await ctx.step.run("load", lambda: ctx.event.data.get("name", "world"))
        return f"Hello, {name}!"

    app = inngest.InngestASGI(client, [hello])   # uvicorn module:app
"""

from ._asgi import InngestASGI
from ._client import Inngest
from ._context import Context, ContextSync, ReplayFilter
from ._errors import (
    ConfigError,
    InngestError,
    NonRetriableError,
    RetryAfterError,
    SendEventsError,
    StepError,
)
from ._function import Function
from ._handler import Streaming
from ._middleware import (
    Middleware,
    MiddlewareSync,
    SendEventsResult,
    StepMemos,
    TransformOutputResult,
    TransformOutputStepInfo,
)
from ._options import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
)
from ._step import Group, GroupSync, ParallelMode, Step, StepSync
from ._triggers import TriggerCron, TriggerEvent
from ._version import __version__
from ._wire import Event
from ._wsgi import InngestWSGI

__all__ = [
    "Batch",
    "Cancel",
    "Concurrency",
    "ConfigError",
    "Context",
    "ContextSync",
    "Debounce",
    "Event",
    "Function",
    "Group",
    "GroupSync",
    "Inngest",
    "InngestASGI",
    "InngestError",
    "InngestWSGI",
    "Middleware",
    "MiddlewareSync",
    "NonRetriableError",
    "ParallelMode",
    "Priority",
    "RateLimit",
    "ReplayFilter",
    "RetryAfterError",
    "SendEventsError",
    "SendEventsResult",
    "Singleton",
    "Step",
    "StepError",
    "StepMemos",
    "StepSync",
    "Streaming",
    "Throttle",
    "Timeouts",
    "TransformOutputResult",
    "TransformOutputStepInfo",
    "TriggerCron",
    "TriggerEvent",
    "__version__",
]
