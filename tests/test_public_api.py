"""The public surface: exactly the names re-exported from the package, sorted."""

from __future__ import annotations

import types

import inngest_asgi


def test_all_is_sorted_and_complete() -> None:
    public = [
        name
        for name, value in vars(inngest_asgi).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    assert inngest_asgi.__all__ == sorted(
        inngest_asgi.__all__, key=lambda n: (n.startswith("_"), n)
    )
    assert set(public) == {n for n in inngest_asgi.__all__ if not n.startswith("_")}


def test_compatible_names_exist() -> None:
    # Names code written for the official SDK imports (see the migration guide).
    for name in (
        "Inngest",
        "Function",
        "Context",
        "ContextSync",
        "Step",
        "StepSync",
        "Event",
        "TriggerEvent",
        "TriggerCron",
        "ParallelMode",
        "NonRetriableError",
        "RetryAfterError",
        "StepError",
    ):
        assert hasattr(inngest_asgi, name), name
