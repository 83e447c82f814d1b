"""``inngest-asgi dev module:app``: serve an app and the local executor together.

The executor's API listens on 127.0.0.1:8288 (``--port``), the app on 127.0.0.1:8000
(``--app-port``); the app is synced, and every run's steps are printed as they happen.
``--send`` scripts events (each one is sent once the previous runs are waiting for an event
or done) and ``--exit-when-done`` exits when every run has finished: 0 if all completed, 1
otherwise. Needs the ``dev`` extra: ``pip install "inngest-asgi[dev]"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

log = logging.getLogger("inngest_asgi.executor")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inngest-asgi", description="inngest-asgi tools")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "dev",
        help="serve an app with the local executor",
        description="Serve MODULE:APP with uvicorn next to the local executor, sync it, and "
        "print each run's steps as they happen.",
    )
    dev.add_argument("app", metavar="MODULE:APP", help="the ASGI app, e.g. main:app")
    dev.add_argument("--host", default="127.0.0.1", help="interface for both servers")
    dev.add_argument("--port", type=int, default=8288, help="executor API port (0: any free)")
    dev.add_argument("--app-port", type=int, default=8000, help="app port (0: any free)")
    dev.add_argument("--path", default="/api/inngest", help="the app's serve path")
    dev.add_argument("--app-dir", default=".", help="directory to import the app from")
    dev.add_argument(
        "--signing-key",
        default=None,
        help="run in cloud mode: sign requests and check responses with this key",
    )
    dev.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="JSON",
        help="an event to send (repeatable); each waits until runs are idle or waiting",
    )
    dev.add_argument(
        "--exit-when-done",
        action="store_true",
        help="exit once every run has finished: 0 if all completed, 1 otherwise",
    )
    dev.add_argument(
        "--timeout", type=float, default=None, help="with --exit-when-done: give up after N s"
    )
    dev.add_argument("-v", "--verbose", action="store_true", help="log every HTTP request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``inngest-asgi`` console script."""
    args = _parser().parse_args(argv)
    events: list[Any] = []
    for text in args.send:
        try:
            events.append(json.loads(text))
        except json.JSONDecodeError as exc:
            print(f"inngest-asgi: --send {text!r} is not JSON: {exc}", file=sys.stderr)
            return 2
    try:
        import anyio
    except ImportError:  # pragma: no cover - anyio is a core dependency
        return 2
    _configure_logging(args.verbose)
    try:
        return anyio.run(_dev, args, events)
    except KeyboardInterrupt:
        return 130
    except _DevError as exc:
        print(f"inngest-asgi: {exc}", file=sys.stderr)
        return 1


class _DevError(Exception):
    pass


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for name in ("inngest_asgi.executor", "inngest_asgi"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("inngest_asgi").addHandler(handler)
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logging.getLogger("httpx").addHandler(handler)


async def _dev(args: argparse.Namespace, events: list[Any]) -> int:
    import anyio

    try:
        from uvicorn.importer import ImportFromStringError, import_from_string

        from .executor import Executor, SyncError, UvicornServer
    except ImportError as exc:
        raise _DevError(
            f"{exc.name} is missing: install the dev extra, pip install 'inngest-asgi[dev]'"
        ) from None

    async with (
        Executor(signing_key=args.signing_key) as executor,
        UvicornServer(executor.api, host=args.host, port=args.port) as api,
    ):
        # The app reads these when its client is created, so set them before importing it.
        os.environ["INNGEST_BASE_URL"] = api.url
        if args.signing_key:
            os.environ.setdefault("INNGEST_SIGNING_KEY", args.signing_key)
        else:
            os.environ.setdefault("INNGEST_DEV", "1")
        sys.path.insert(0, os.path.abspath(args.app_dir))
        try:
            app = import_from_string(args.app)
        except ImportFromStringError as exc:
            raise _DevError(str(exc)) from None
        async with UvicornServer(app, host=args.host, port=args.app_port) as served:
            url = served.url + "/" + args.path.strip("/")
            log.info("executor API on %s, app on %s", api.url, url)
            try:
                await executor.sync(url)
            except SyncError as exc:
                raise _DevError(str(exc)) from None
            if not events and not args.exit_when_done:
                log.info("ready: send events to %s/e/<any key>; Ctrl-C to stop", api.url)
                await anyio.sleep_forever()
            with anyio.move_on_after(args.timeout) as scope:
                for event in events:
                    while not executor.settled:
                        await anyio.sleep(0.05)
                    executor.send(event)
                if not args.exit_when_done:
                    await anyio.sleep_forever()
                while any(not run.status.finished for run in executor.runs):
                    await anyio.sleep(0.05)
            return _summary(executor.runs, timed_out=scope.cancelled_caught)


def _summary(runs: Sequence[Any], *, timed_out: bool) -> int:
    print()
    print(f"{len(runs)} run(s):")
    for run in runs:
        duration = "" if run.duration is None else f" in {run.duration:.1f} s"
        print(f"  {run.status.value:<10} {run.function_id} ({run.id}){duration}")
        for step in run.steps:
            took = "" if step.duration is None else f" {step.duration * 1000:.0f} ms"
            retries = f", {step.attempts} retr{'y' if step.attempts == 1 else 'ies'}"
            print(
                f"      {step.status.value:<10} {step.kind:<15} {step.name}{took}"
                + (retries if step.attempts else "")
            )
        if run.error:
            print(f"      error: {run.error.get('name')}: {run.error.get('message')}")
    if timed_out:
        print("timed out before every run finished")
        return 1
    if not runs:
        print("no run started")
        return 1
    return 0 if all(run.status.value == "Completed" for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
