"""Development tasks: ``python3 -m nox -s <session>`` (``nox -l`` lists them)."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = False

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# Run on the interpreters this machine has; never download one.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
# pyenv's shims only answer for active versions (and `pyenv exec` pins PYENV_VERSION to the one
# running nox): make every installed 3.10-3.13 active, keeping the current one first.
_pyenv = shutil.which("pyenv")
if _pyenv:
    _installed = subprocess.run(
        [_pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
    ).stdout.split()
    _current = (
        os.environ.get("PYENV_VERSION")
        or subprocess.run(
            [_pyenv, "version-name"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    _wanted = [v for v in _installed if v.startswith(tuple(f"{p}." for p in PYTHONS))]
    if _wanted:
        os.environ["PYENV_VERSION"] = ":".join(
            dict.fromkeys([*filter(None, _current.split(":")), *_wanted])
        )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite, once per installed Python 3.10-3.13."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    paths = ("src", "tests", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[test]", "mypy>=1.11")
    session.run("mypy", "--strict", "src")


@nox.session
def demo(session: nox.Session) -> None:
    """Run examples/demo_app.py end to end with `inngest-asgi dev`; fails if the run does not
    complete."""
    session.install(".[dev]")
    session.run(
        "inngest-asgi",
        "dev",
        "--app-dir",
        "examples",
        "demo_app:app",
        "--port",
        "0",
        "--app-port",
        "0",
        "--send",
        '{"name": "demo/order.placed", "data": {"order_id": 42, "items": [3, 4]}}',
        "--send",
        '{"name": "demo/order.approved", "data": {"order_id": 42}}',
        "--exit-when-done",
        "--timeout",
        "40",
    )


@nox.session
def encryption_compat(session: nox.Session) -> None:
    """Round trips in both directions against the official inngest_encryption package
    (docs/encryption.md); only this session installs it."""
    session.install("-e", ".[test,encryption]", "inngest-encryption>=0.1,<0.2")
    session.run("python", "-c", "import inngest_encryption")  # never a silent skip here
    session.run(
        "pytest", "tests/test_encryption_compat.py", "tests/test_encryption.py", *session.posargs
    )


@nox.session
def interop(session: nox.Session) -> None:
    """The executor drives workflows written with the official inngest SDK from PyPI (served by
    its FastAPI adapter, in cloud and dev mode); only this session installs that package."""
    session.install("-e", ".[test,dev]", "inngest")
    session.run("python", "-c", "import inngest")  # never a silent skip here
    session.run("pytest", "tests/test_interop_official.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark against the official SDK, a minimal engine and a floor (docs/benchmarks.md).

    Writes benchmarks/results/<date>.json and .md; extra arguments go to the script
    (``nox -s bench -- --quick``). The uvicorn figure uses wrk when installed."""
    session.install(".[dev]", "inngest", "fastapi", "uvicorn[standard]")
    stem = f"benchmarks/results/{datetime.date.today().isoformat()}"
    session.run(
        "python",
        "-m",
        "benchmarks.bench",
        "--json",
        f"{stem}.json",
        "--markdown",
        f"{stem}.md",
        *session.posargs,
    )


@nox.session
def soak(session: nox.Session) -> None:
    """The load and fault tests with soak-sized counts (INNGEST_SOAK=1): thousands of runs
    under uvicorn and gunicorn, 150k requests for the memory check. Prints each test's
    figures (docs/reliability.md)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/test_load.py",
        "tests/test_faults.py",
        "-s",
        "--timeout=1800",
        *session.posargs,
        env={"INNGEST_SOAK": "1"},
    )
