"""``inngest-asgi dev`` end to end: the demo app on real uvicorn servers, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLACED = {"name": "demo/order.placed", "data": {"order_id": 7, "items": [1, 2]}}
APPROVED = {"name": "demo/order.approved", "data": {"order_id": 7}}


def dev(*args: str, timeout: float = 45) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "inngest_asgi", "dev", "--port", "0", "--app-port", "0"]
    return subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.timeout(60)
def test_demo_runs_to_completion() -> None:
    result = dev(
        "--app-dir",
        "examples",
        "demo_app:app",
        "--send",
        json.dumps(PLACED),
        "--send",
        json.dumps(APPROVED),
        "--exit-when-done",
        "--timeout",
        "30",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "synced app demo-app (1 function)" in out
    for step in ("price-order", "reserve-stock", "check-fraud", "send-receipt"):
        assert f"step {step!r} completed" in out
    assert "sleep 'cool-down' done" in out
    assert "wait 'await-approval' matched event" in out
    assert "Completed  demo-app-process-order" in out


@pytest.mark.timeout(60)
def test_unfinished_run_exits_non_zero() -> None:
    # No approval is sent: the run is still waiting when the timeout hits.
    result = dev(
        "--app-dir",
        "examples",
        "demo_app:app",
        "--send",
        json.dumps(PLACED),
        "--exit-when-done",
        "--timeout",
        "4",
    )
    assert result.returncode == 1
    assert "timed out before every run finished" in result.stdout
    assert "Waiting" in result.stdout


def test_bad_arguments() -> None:
    assert dev("nowhere:app", "--exit-when-done").returncode == 1
    assert dev("examples.demo_app:app", "--send", "{not json").returncode == 2
