"""Benchmark inngest-asgi against the official SDK, a minimal engine and a floor.

Run it with ``nox -s bench`` (which installs the official ``inngest`` SDK and FastAPI into the
bench session only), or directly in an environment that has them::

    python -m benchmarks.bench [--quick] [--no-e2e] [--json PATH]

Every app is called directly as an ASGI app (hand-built scope, receive and send: no server and
no HTTP client) in one process and one event loop. Cases are measured one after the other; in
each case the apps are interleaved, in a rotating order, for several repeats, and the median
time per request is reported. Every app's answer is checked before and after timing, and every
timed answer's status too, so a fast wrong answer cannot pass. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import gc
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from . import apps, cases
from .cases import MIB, call_body, check_inspection, check_signed, check_step, query

HERE = Path(__file__).resolve().parent

Check = Callable[[str, int, dict[str, str], bytes], None]

# --- calling an app directly -------------------------------------------------------------------

_DISCONNECT = {"type": "http.disconnect"}


def _scope(method: str, query_string: bytes, body: bytes, extra: list[tuple[bytes, bytes]]) -> dict:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"inngest-bench"),
        (b"content-type", b"application/json"),
        *extra,
    ]
    if method != "GET":
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": apps.SERVE_PATH,
        "raw_path": apps.SERVE_PATH.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def asgi_call(app: Any, scope: dict, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request, as an ASGI server makes it: ``receive`` gives the body, then (like uvicorn)
    waits until the response is complete before it reports ``http.disconnect``."""
    sent: list[dict] = []
    first = True
    complete = False
    waiter: asyncio.Future[None] | None = None

    async def receive() -> dict:
        nonlocal first, waiter
        if first:
            first = False
            return {"type": "http.request", "body": body, "more_body": False}
        if not complete:
            waiter = asyncio.get_running_loop().create_future()
            await waiter
        return _DISCONNECT

    async def send(message: dict) -> None:
        nonlocal complete
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete = True
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    await app(dict(scope), receive, send)
    start = sent[0]
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def _environ(method: str, query_string: bytes, body: bytes, extra: list) -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": apps.SERVE_PATH,
        "QUERY_STRING": query_string.decode(),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "inngest-bench",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in extra:
        environ["HTTP_" + name.decode().upper().replace("-", "_")] = value.decode()
    return environ


def wsgi_call(app: Any, environ: dict, body: bytes) -> tuple[int, dict[str, str], bytes]:
    environ = dict(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))

    chunks = app(environ, start_response)
    try:
        out = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    return int(status[:3]), {k.lower(): v for k, v in headers}, out


@dataclass
class Runner:
    """One app in one case: how to call it once and how to call it ``loops`` times."""

    name: str
    app: Any
    method: str
    query: bytes
    body: bytes
    check: Check
    ok_status: int
    headers: Callable[[], list[tuple[bytes, bytes]]] = list
    wsgi: bool = False
    scope: dict = field(default_factory=dict)

    def prepare(self) -> None:
        # Built per case (and again per sample for signed requests, whose timestamps age).
        build = _environ if self.wsgi else _scope
        self.scope = build(self.method, self.query, self.body, self.headers())

    def once(self, loop: asyncio.AbstractEventLoop) -> tuple[int, dict[str, str], bytes]:
        if self.wsgi:
            return wsgi_call(self.app, self.scope, self.body)
        return loop.run_until_complete(asgi_call(self.app, self.scope, self.body))

    def timed(self, loop: asyncio.AbstractEventLoop, loops: int) -> float:
        """Seconds per request over ``loops`` back-to-back requests (statuses checked)."""
        app, scope, body, ok = self.app, self.scope, self.body, self.ok_status
        if self.wsgi:
            start = time.perf_counter()
            for _ in range(loops):
                if wsgi_call(app, scope, body)[0] != ok:
                    raise cases.CheckError(f"{self.name}: wrong status while timing")
            return (time.perf_counter() - start) / loops

        async def batch() -> float:
            start = time.perf_counter()
            for _ in range(loops):
                if (await asgi_call(app, scope, body))[0] != ok:
                    raise cases.CheckError(f"{self.name}: wrong status while timing")
            return (time.perf_counter() - start) / loops

        return loop.run_until_complete(batch())

    def verify(self, loop: asyncio.AbstractEventLoop) -> float:
        """Call once, check the answer; return the time it took."""
        start = time.perf_counter()
        status, headers, body = self.once(loop)
        elapsed = time.perf_counter() - start
        self.check(self.name, status, headers, body)
        return elapsed


# --- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    label: str
    runners: list[Runner]
    note: str = ""


def _sdk(name: str) -> str:
    """The app a runner name stands for (``ours_wsgi`` -> ``ours``)."""
    return name.split("_", 1)[0]


def build_cases(quick: bool) -> list[Case]:
    dev = {name: build("dev") for name, build in apps.BUILDERS.items()}
    cloud = {"ours": apps.ours_app("cloud"), "official": apps.official_app("cloud")}
    wsgi = apps.ours_wsgi_app("dev")
    four = ("ours", "official", "minimal", "floor")
    out: list[Case] = []

    def post_runners(body: bytes, n: int, fn: str, names: tuple[str, ...] = four) -> list[Runner]:
        return [
            Runner(
                name,
                dev[name],
                "POST",
                query(fn),
                body,
                partial(check_step, n),
                200 if name == "floor" else 206,
            )
            for name in names
        ]

    get_runners = [Runner(name, dev[name], "GET", b"", b"", check_inspection, 200) for name in four]
    out.append(Case("get", "GET introspection", get_runners))
    for n in (1, 10, 100, 1000):
        body = call_body(n)
        out.append(
            Case(
                f"post_n{n}",
                f"POST N={n}",
                post_runners(body, n, apps.FN_ASYNC),
                f"{len(body)} byte body",
            )
        )
    big = call_body(1, extra={"payload": cases.payload(MIB)})
    out.append(
        Case(
            "event_1mib",
            "POST 1 MiB event",
            post_runners(big, 1, apps.FN_ASYNC),
            f"N=1, {len(big)} byte body (the payload is in event and events[0])",
        )
    )
    body100 = call_body(100)
    sync_runners = post_runners(body100, 100, apps.FN_SYNC)
    sync_runners.insert(
        1,
        Runner(
            "ours_wsgi",
            wsgi,
            "POST",
            query(apps.FN_SYNC),
            body100,
            partial(check_step, 100),
            206,
            wsgi=True,
        ),
    )
    out.append(Case("sync_n100", "POST N=100, sync handler", sync_runners))
    body10 = call_body(10)

    def signed() -> list[tuple[bytes, bytes]]:
        return [(b"x-inngest-signature", cases.sign_request(body10).encode())]

    signed_check = partial(check_signed, partial(check_step, 10))
    cloud_runners = [
        Runner(name, cloud[name], "POST", query(apps.FN_ASYNC), body10, signed_check, 206, signed)
        for name in ("ours", "official")
    ]
    cloud_runners.insert(
        1,
        Runner(
            "ours_dev",
            dev["ours"],
            "POST",
            query(apps.FN_ASYNC),
            body10,
            partial(check_step, 10),
            206,
        ),
    )
    out.append(
        Case(
            "cloud_n10",
            "POST N=10, cloud mode (signed)",
            cloud_runners,
            "ours_dev: the same request in dev mode, interleaved, for the signing overhead",
        )
    )
    return out


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Timing:
    median: float
    samples: list[float]
    loops: int


def measure_case(
    case: Case, loop: asyncio.AbstractEventLoop, repeats: int, sample_time: float
) -> dict[str, Timing]:
    loops: dict[str, int] = {}
    for runner in case.runners:
        runner.prepare()
        # Warm up (imports, caches, first-call costs), check the answer, calibrate.
        first = min(runner.verify(loop) for _ in range(3))
        loops[runner.name] = max(1, min(20_000, round(sample_time / max(first, 1e-7))))
    samples: dict[str, list[float]] = {runner.name: [] for runner in case.runners}
    order = list(case.runners)
    for rep in range(repeats):
        for runner in order[rep % len(order) :] + order[: rep % len(order)]:
            runner.prepare()
            gc.collect()
            samples[runner.name].append(runner.timed(loop, loops[runner.name]))
    for runner in case.runners:
        runner.prepare()
        runner.verify(loop)  # still right after thousands of calls
    return {
        name: Timing(statistics.median(values), values, loops[name])
        for name, values in samples.items()
    }


def measure_memory(loop: asyncio.AbstractEventLoop, n: int = 1000) -> dict[str, int]:
    """Peak bytes traced by tracemalloc during one request at N=``n`` (body built before)."""
    body = call_body(n)
    peaks: dict[str, int] = {}
    for name, build in apps.BUILDERS.items():
        runner = Runner(
            name,
            build("dev"),
            "POST",
            query(apps.FN_ASYNC),
            body,
            partial(check_step, n),
            200 if name == "floor" else 206,
        )
        runner.prepare()
        runner.verify(loop)
        results = []
        for _ in range(3):
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            status, headers, answer = runner.once(loop)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            runner.check(name, status, headers, answer)
            results.append(peak - base)
        peaks[name] = int(statistics.median(results))
    return peaks


# --- targets -----------------------------------------------------------------------------------


def evaluate(times: dict[str, dict[str, float]], memory: dict[str, int], e2e: dict) -> list[dict]:
    """Each issue-6 target: the measured value, the bound, and whether it is met."""
    targets: list[dict] = []

    def add(name: str, value: float | None, bound: float, higher_is_better: bool) -> None:
        met = None if value is None else (value >= bound if higher_is_better else value <= bound)
        targets.append(
            {
                "target": name,
                "value": None if value is None else round(value, 3),
                "bound": (">= " if higher_is_better else "<= ") + f"{bound:g}",
                "met": met,
            }
        )

    def ratio(case: str, a: str, b: str) -> float | None:
        row = times.get(case, {})
        return row[a] / row[b] if a in row and b in row else None

    add("POST N=100: official / ours", ratio("post_n100", "official", "ours"), 10, True)
    add("POST N=1000: official / ours", ratio("post_n1000", "official", "ours"), 20, True)
    add("POST N=100: ours / minimal", ratio("post_n100", "ours", "minimal"), 1.5, False)
    add("POST N=1000: ours / minimal", ratio("post_n1000", "ours", "minimal"), 1.5, False)
    if all(k in times for k in ("post_n1", "post_n100", "post_n1000")):
        t1, t100, t1000 = (times[k]["ours"] for k in ("post_n1", "post_n100", "post_n1000"))
        per_100, per_1000 = (t100 - t1) / 99, (t1000 - t1) / 999
        add("per memoized step: N=1000 / N=100", per_1000 / per_100, 1.3, False)
    add("GET: official / ours", ratio("get", "official", "ours"), 10, True)
    add("POST N=1: official / ours", ratio("post_n1", "official", "ours"), 10, True)
    add("1 MiB event: ours / floor", ratio("event_1mib", "ours", "floor"), 1.3, False)
    if "sync_n100" in times and "post_n100" in times:
        async_t = times["post_n100"]["ours"]
        add("sync N=100 ASGI / async N=100", times["sync_n100"]["ours"] / async_t, 2, False)
        add("sync N=100 WSGI / async N=100", times["sync_n100"]["ours_wsgi"] / async_t, 2, False)
    if memory:
        add("peak memory N=1000: ours / floor", memory["ours"] / memory["floor"], 1.5, False)
    cloud = ratio("cloud_n10", "ours", "ours_dev")
    add("cloud N=10: signing overhead (cloud / dev - 1)", None if cloud is None else cloud - 1, 0.2,
        False)  # fmt: skip
    # The target is uvicorn as the bench session installs it (uvicorn[standard]) and runs it by
    # default: uvloop + httptools. The pure-Python stack is reported beside it: there the server
    # caps every app, the floor included, below 5x the official SDK.
    stacks = e2e.get("stacks", {})
    default = stacks.get("uvloop+httptools")
    value = None if default is None else default["rps"]["ours"] / default["rps"]["official"]
    add("uvicorn (default: uvloop+httptools) N=10 rps: ours / official", value, 5, True)
    if "asyncio+h11" in stacks:
        rps = stacks["asyncio+h11"]["rps"]
        targets.append(
            {
                "target": "uvicorn (asyncio+h11) N=10 rps: ours / official",
                "value": round(rps["ours"] / rps["official"], 3),
                "bound": f"the floor app reaches {rps['floor'] / rps['official']:.2f}x",
                "met": None,
            }
        )
    sync = e2e.get("sync_n100")
    if sync:
        rps = sync["rps"]
        targets.append(
            {
                "target": "sync N=100 / async N=100 under uvicorn load (time per request)",
                "value": round(rps[apps.FN_ASYNC] / rps[apps.FN_SYNC], 3),
                "bound": "the in-process row is the target",
                "met": None,
            }
        )
    return targets


# --- reporting ---------------------------------------------------------------------------------


def _mark(target: dict[str, Any], yes: str, no: str) -> str:
    """How a target row reads: met, missed, informational (no bound), or not measured."""
    if target["met"] is None:
        return "n/a" if target["value"] is None else "info"
    return yes if target["met"] else no


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(cases_: list[Case], times: dict[str, dict[str, float]]) -> list[str]:
    head = (
        f"{'case':<32} {'ours':>9} {'official':>10} {'minimal':>9} {'floor':>9}"
        f" {'off/ours':>9} {'ours/min':>9} {'ours/floor':>10}"
    )
    lines = ["median microseconds per request (lower is better)", head, "-" * len(head)]
    for case in cases_:
        row = times[case.key]
        ours, off, mini, floor = (row.get(k) for k in ("ours", "official", "minimal", "floor"))
        lines.append(
            f"{case.label:<32} {_us(ours):>9} {_us(off):>10} {_us(mini):>9} {_us(floor):>9}"
            f" {_x(off / ours if off and ours else None):>9}"
            f" {_x(ours / mini if mini and ours else None):>9}"
            f" {_x(ours / floor if floor and ours else None):>10}"
        )
        for extra in row:
            if extra not in ("ours", "official", "minimal", "floor"):
                lines.append(f"  {extra:<30} {_us(row[extra]):>9}")
    return lines


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in (
        "inngest-asgi",
        "inngest",
        "fastapi",
        "starlette",
        "pydantic",
        "msgspec",
        "anyio",
        "asgiref",
        "uvicorn",
        "uvloop",
        "httptools",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if dirty:
            commit += " (+ uncommitted changes in src/)"
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": versions,
        "commit": commit,
        "load_average_at_start": _loadavg(),
        "cpus_used": len(os.sched_getaffinity(0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here (default: stdout only)")
    parser.add_argument("--markdown", type=Path, help="write a short markdown summary here")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sample-time", type=float, default=0.15, help="seconds per sample")
    parser.add_argument("--quick", action="store_true", help="3 repeats, short samples")
    parser.add_argument("--no-e2e", action="store_true", help="skip the uvicorn figure")
    parser.add_argument("--e2e-seconds", type=float, default=10.0)
    parser.add_argument("--only", help="comma-separated case keys to run")
    parser.add_argument(
        "--one-cpu",
        action="store_true",
        help="run on one CPU (with every thread): a thread hop is then a context switch, not "
        "a wake-up of another, idle CPU",
    )
    args = parser.parse_args(argv)
    if args.one_cpu:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.quick:
        args.repeats, args.sample_time, args.e2e_seconds = 3, 0.03, 3.0
    logging.disable(logging.WARNING)  # both SDKs log; the benchmark must not time log I/O

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    all_cases = build_cases(args.quick)
    if args.only:
        keep = set(args.only.split(","))
        all_cases = [c for c in all_cases if c.key in keep]
    gc.freeze()  # the apps and bodies built above are not garbage; keep gc passes short
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, Any] = {"machine": machine(), "settings": settings}
    times: dict[str, dict[str, float]] = {}
    detail: dict[str, Any] = {}
    for case in all_cases:
        print(f"measuring {case.label} ...", file=sys.stderr, flush=True)
        timing = measure_case(case, loop, args.repeats, args.sample_time)
        times[case.key] = {name: t.median for name, t in timing.items()}
        detail[case.key] = {
            "label": case.label,
            "note": case.note,
            "apps": {
                name: {"median_s": t.median, "samples_s": t.samples, "loops": t.loops}
                for name, t in timing.items()
            },
        }
    memory: dict[str, int] = {}
    if not args.only or "memory" in args.only:
        print("measuring peak memory ...", file=sys.stderr, flush=True)
        memory = measure_memory(loop)
    loop.close()
    results["machine"]["load_average_after_in_process_cases"] = _loadavg()
    e2e: dict[str, Any] = {}
    if not args.no_e2e and (not args.only or "e2e" in args.only):
        from . import e2e as e2e_mod

        e2e = e2e_mod.run_all(args.e2e_seconds)
    targets = evaluate(times, memory, e2e)
    results.update(cases=detail, peak_memory_bytes=memory, e2e=e2e, targets=targets)

    lines = table(all_cases, times)
    if memory:
        lines += ["", "peak memory of one N=1000 request (tracemalloc, KiB)"]
        lines.append("  " + "  ".join(f"{k}: {v / 1024:,.0f}" for k, v in memory.items()))
    if e2e:
        lines += ["", e2e_mod.describe(e2e)]
    lines += ["", "targets (issue 6)"]
    for t in targets:
        mark = {True: "met", False: "MISSED", None: "info" if t["value"] is not None else "n/a"}[
            t["met"]
        ]
        bound = t["bound"] if mark == "info" else f"want {t['bound']}"
        lines.append(f"  {mark:<6} {t['target']:<48} {t['value']!s:>9}  ({bound})")
    print("\n".join(lines))
    results["table"] = lines
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results))
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    out = [
        f"# Benchmark results, {m['date'][:10]}",
        "",
        f"- Machine: {m['nproc']} CPUs, {m['cpu']}; {m['platform']}",
        f"- Python: {m['implementation']} {m['python']}",
        f"- Load average (1, 5, 15 min) at start: {m['load_average_at_start']}, after the "
        f"in-process cases: {m.get('load_average_after_in_process_cases')}",
        f"- Packages: {packages}",
        f"- Commit: {m['commit']}; settings: {results['settings']['repeats']} repeats of "
        f"{results['settings']['sample_time']} s per app and case",
        "",
        "```",
        *results["table"],
        "```",
        "",
        "| target | value | bound | met |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a" if t["value"] is None else "info"}[
            t["met"]
        ]
        out.append(f"| {t['target']} | {t['value']} | {t['bound']} | {met} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
