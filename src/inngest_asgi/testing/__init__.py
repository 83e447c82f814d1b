"""Test Inngest functions in your own pytest suite, through the real protocol, in-process.

A harness serves your functions to the local executor (``inngest_asgi.executor``) on a virtual
clock: runs go through the same requests an Inngest server sends, and sleeps, wait timeouts
and retry delays take no time. Needs ``pip install "inngest-asgi[dev]"``. See
docs/testing.md.

::

    from inngest_asgi.testing import Harness, trigger

    def test_signup():
        result = trigger(onboard, inngest.Event(name="app/signup", data={"id": 1}),
                         step_stubs={"send-email": {"sent": True}})
        assert result.status == "completed"
        assert result.step("send-email").stubbed

    def test_approval():
        with Harness([process_order]) as harness:
            result = harness.trigger(process_order, inngest.Event(name="shop/order"))
            assert result.status == "waiting"
            harness.send(inngest.Event(name="shop/approved"))
            assert result.output == {"approved": True}

``AsyncHarness`` is the same for ``async def`` tests (every method awaited).
"""

from ._harness import AsyncHarness, Harness, NonDeterminismError, Timeout, trigger
from ._results import Error, Result, Status, StepResult

__all__ = [
    "AsyncHarness",
    "Error",
    "Harness",
    "NonDeterminismError",
    "Result",
    "Status",
    "StepResult",
    "Timeout",
    "trigger",
]
