"""The end-to-end figure: each app under uvicorn (one worker, 127.0.0.1), N=10, 64 connections.

The load generator is ``wrk`` when it is installed (``apt-get install wrk``), with a Lua script
that compares every response's status and body with the answer checked beforehand; otherwise a
small asyncio client in this file does the same (it needs a core of its own, so on a small
machine it understates the fastest apps). Every run is bounded in time and stays on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from . import apps
from .cases import call_body, check_step, query

HERE = Path(__file__).resolve().parent
CONNECTIONS = 64
APPS = ("ours", "official", "minimal", "floor")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def uvicorn(app: str, stack: tuple[str, str]) -> Iterator[str]:
    """Start ``benchmarks/serve.py`` for ``app`` on ``(loop, http)``; yield its URL; stop it."""
    port = _free_port()
    env = {**os.environ, "BENCH_APP": app}
    cmd = [sys.executable, "-m", "uvicorn", "benchmarks.serve:app", "--app-dir", str(HERE.parent)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--loop", stack[0], "--http", stack[1], "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + apps.SERVE_PATH, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn for {app} did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
local function slurp(path)
  local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s
end
function init(args)
  wrk.method = "POST"
  wrk.body = slurp(args[1])
  wrk.headers["Content-Type"] = "application/json"
  expected = slurp(args[2])
  status_ok = tonumber(args[3])
  bad = 0
end
function response(status, headers, body)
  if status ~= status_ok or body ~= expected then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("BAD %d\n", total))
end
"""


def _wrk(url: str, body: bytes, expected: bytes, status: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, name) for name in ("bench.lua", "body.json", "expected.json")]
        paths[0].write_text(_LUA)
        paths[1].write_bytes(body)
        paths[2].write_bytes(expected)
        cmd = ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds:g}s", "--timeout", "5s"]
        cmd += ["-s", str(paths[0]), url, "--", str(paths[1]), str(paths[2]), str(status)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    bad = int(re.search(r"BAD (\d+)", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", text)
    return {"rps": rps, "bad": bad, "socket_errors": errors.group(1) if errors else None}


async def _python_load(
    url: str, body: bytes, expected: bytes, status: int, seconds: float
) -> dict[str, Any]:
    """64 keep-alive connections, each sending the request and reading the whole answer."""
    parts = httpx.URL(url)
    target = f"{parts.raw_path.decode()}"
    request = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    want = f" {status} ".encode()
    count = bad = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal count, bad
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                answer = await reader.readexactly(length)
                count += 1
                if want not in head.split(b"\r\n", 1)[0] or answer != expected:
                    bad += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    return {"rps": count / (time.perf_counter() - start), "bad": bad, "socket_errors": None}


def run_one(app: str, stack: tuple[str, str], seconds: float) -> dict[str, Any]:
    with uvicorn(app, stack) as base:
        return _load(base, app, apps.FN_ASYNC, 10, seconds)


def _load(base: str, app: str, fn: str, n: int, seconds: float) -> dict[str, Any]:
    """Check one answer of ``fn`` (N=``n``) at ``base``, then load it for ``seconds``."""
    body = call_body(n)
    ok = 200 if app == "floor" else 206
    url = f"{base}{apps.SERVE_PATH}?{query(fn).decode()}"
    reply = httpx.post(url, content=body, headers={"content-type": "application/json"})
    check_step(n, app, reply.status_code, dict(reply.headers), reply.content)
    expected = reply.content
    if shutil.which("wrk"):
        _wrk(url, body, expected, ok, min(2.0, seconds))  # warm-up
        result = _wrk(url, body, expected, ok, seconds)
    else:
        asyncio.run(_python_load(url, body, expected, ok, min(2.0, seconds)))
        result = asyncio.run(_python_load(url, body, expected, ok, seconds))
    if result["bad"]:
        raise AssertionError(f"{app}: {result['bad']} wrong answers under load")
    return result


def sync_under_load(stack: tuple[str, str], seconds: float) -> dict[str, Any]:
    """``ours`` on ``stack``, N=100, the async function and then the sync one: what the
    sync handler costs when the event loop is busy (beside the in-process ``sync_n100``)."""
    with uvicorn("ours", stack) as base:
        runs = {fn: _load(base, "ours", fn, 100, seconds) for fn in (apps.FN_ASYNC, apps.FN_SYNC)}
    return {"stack": "+".join(stack), "rps": {fn: run["rps"] for fn, run in runs.items()}}


def stacks() -> list[tuple[str, str]]:
    """uvicorn's pure-Python stack always; uvloop + httptools too when installed
    (``uvicorn[standard]``, the usual production set-up)."""
    import importlib.util

    found = [("asyncio", "h11")]
    if importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools"):
        found.append(("uvloop", "httptools"))
    return found


def run_all(seconds: float) -> dict[str, Any]:
    generator = "wrk" if shutil.which("wrk") else "python asyncio client"
    out: dict[str, Any] = {
        "load_generator": f"{generator}, {CONNECTIONS} connections, {seconds:g} s per app",
        "server": "uvicorn, 1 worker, 127.0.0.1",
        "case": "POST N=10",
        "stacks": {},
    }
    for stack in stacks():
        name = "+".join(stack)
        rps: dict[str, float] = {}
        runs: dict[str, Any] = {}
        for app in APPS:
            print(f"uvicorn ({name}): {app} ...", file=sys.stderr, flush=True)
            runs[app] = run_one(app, stack, seconds)
            rps[app] = runs[app]["rps"]
        out["stacks"][name] = {"rps": rps, "runs": runs}
    stack = stacks()[-1]
    print(f"uvicorn ({'+'.join(stack)}): ours, sync and async N=100 ...", file=sys.stderr)
    out["sync_n100"] = sync_under_load(stack, seconds)
    return out


def describe(e2e: dict[str, Any]) -> str:
    lines = [f"end to end, {e2e['case']}, requests/s ({e2e['server']}; {e2e['load_generator']})"]
    for name, result in e2e["stacks"].items():
        rps = result["rps"]
        cells = "  ".join(f"{app}: {rps[app]:,.0f}" for app in APPS if app in rps)
        ratio = rps["ours"] / rps["official"]
        lines.append(f"  {name:<18} {cells}  (ours / official: {ratio:.2f}x)")
    sync = e2e.get("sync_n100")
    if sync:
        rps = sync["rps"]
        lines.append(
            f"  ours, POST N=100 on {sync['stack']}: async {rps[apps.FN_ASYNC]:,.0f}  "
            f"sync {rps[apps.FN_SYNC]:,.0f}  (time per request, sync / async: "
            f"{rps[apps.FN_ASYNC] / rps[apps.FN_SYNC]:.2f}x)"
        )
    return "\n".join(lines)
