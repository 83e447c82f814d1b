"""What-if estimates for docs/benchmarks.md "Known gaps": each proposal, monkeypatched in.

``python -m benchmarks.whatif [rounds]`` times ``ours`` at N=1, 10, 100, 1000 and cloud N=10
with each patch alone and all together (best of ``rounds`` samples, interleaved). The patches
copy the SDK's internals as of the results commit; when src/ changes they may stop applying,
which is fine: they are evidence for the proposals, not part of the benchmark.
"""

import asyncio
import functools
import gc
import hmac
import logging
import sys
from urllib.parse import unquote_plus

import anyio.lowlevel

from inngest_asgi import _asgi as A
from inngest_asgi import _engine as E
from inngest_asgi import _handler as H
from inngest_asgi import _signing as SG
from inngest_asgi import _step as S
from inngest_asgi import _types as T
from inngest_asgi._messages import Request

from . import apps, bench, cases
from .cases import call_body, query

orig = {}


def patch(mod, name, value):
    orig.setdefault((mod, name), getattr(mod, name))
    setattr(mod, name, value)


def undo():
    for (mod, name), v in orig.items():
        setattr(mod, name, v)
    orig.clear()


_code_cache = {}
_decl = T.declared_output_type


def declared_fast(fn):
    ann = getattr(fn, "__annotations__", None)
    if not ann or "return" not in ann:
        return None
    key = getattr(fn, "__code__", fn)
    try:
        return _code_cache[key]
    except (KeyError, TypeError):
        pass
    r = _decl(fn)
    _code_cache[key] = r
    return r


_unwrap = E._unwrap_memo


def unwrap_fast(memo):
    if type(memo) is dict and len(memo) == 1 and "data" in memo:
        return memo["data"], None
    return _unwrap(memo)


_run = S.Step.run


async def run_fast(self, step_id, handler, *handler_args, output_type=S.EMPTY):
    replay = self._replay
    info, value = replay.lookup(step_id)
    if value is not S.MISSING:
        if self._mw and not replay.replaying:
            await self._mw.start()
        if output_type is S.EMPTY:
            output_type = S.declared_output_type(handler)
        return value if output_type is None else S.convert_output(value, output_type)
    if self._mw and not replay.replaying:
        await self._mw.start()
    await replay.settle(info, None)
    replay.plan_run(info)
    try:
        output = await S.call_user(handler, handler_args, self._invoker)
    except Exception as exc:
        replay.step_failed(exc)
    replay.step_done(output)


def query_fast(request):
    out = {}
    for part in request.url.partition("?")[2].split("&"):
        if part:
            k, _, v = part.partition("=")
            if "%" in part or "+" in part:
                k, v = unquote_plus(k), unquote_plus(v)
            out.setdefault(k, v)
    return out


async def cp_fast():
    await asyncio.sleep(0)


@functools.lru_cache(maxsize=8)
def _hkey(key):
    return SG.normalize_key(key).encode()


def mac_fast(key, body, ts):
    return hmac.digest(_hkey(key), body + ts.encode(), "sha256").hex()


def parse_qs_fast(s, keep_blank_values=False):
    out = {}
    for part in s.split("&"):
        k, _, v = part.partition("=")
        out.setdefault(k, []).append(v)
    return out


async def serve_nowatch(self, scope, receive, send):
    headers = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    request = Request(scope["method"], A._url(scope, headers), headers, b"".join(chunks))
    await A._respond(send, await self.handler.handle(request, self._invoker))


CONFIGS = {
    "no_disconnect_watch": [(A.InngestASGI, "_serve", serve_nowatch)],
    "baseline": [],
    "output_type_cache": [(S, "declared_output_type", declared_fast)],
    "unwrap_fast": [(E, "_unwrap_memo", unwrap_fast)],
    "run_inline": [(S.Step, "run", run_fast)],
    "query_fast": [(H, "_query", query_fast)],
    "checkpoint_sleep0": [(anyio.lowlevel, "checkpoint", cp_fast)],
    "sign_fast": [(SG, "_mac", mac_fast), (SG, "parse_qs", parse_qs_fast)],
}
CONFIGS["all"] = [p for k, v in CONFIGS.items() for p in v]
CONFIGS = {"baseline": [], **CONFIGS}

logging.disable(logging.WARNING)
loop = asyncio.new_event_loop()
runners = {}
for n in (1, 10, 100, 1000):
    body = call_body(n)
    runners[f"N={n}"] = bench.Runner(
        "ours",
        apps.ours_app(),
        "POST",
        query(apps.FN_ASYNC),
        body,
        functools.partial(cases.check_step, n),
        206,
    )
b10 = call_body(10)
runners["cloud N=10"] = bench.Runner(
    "ours",
    apps.ours_app("cloud"),
    "POST",
    query(apps.FN_ASYNC),
    b10,
    functools.partial(cases.check_signed, functools.partial(cases.check_step, 10)),
    206,
    lambda: [(b"x-inngest-signature", cases.sign_request(b10).encode())],
)
loops = {"N=1": 1000, "N=10": 700, "N=100": 150, "N=1000": 15, "cloud N=10": 700}
res = {c: {r: [] for r in runners} for c in CONFIGS}
for _round in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    for c, patches in CONFIGS.items():
        for p in patches:
            patch(*p)
        for name, r in runners.items():
            r.prepare()
            r.verify(loop)
            gc.collect()
            res[c][name].append(r.timed(loop, loops[name]))
        undo()
base = {k: min(v) for k, v in res["baseline"].items()}
print(f"{'config':<20}" + "".join(f"{k:>18}" for k in runners))
for c in CONFIGS:
    med = {k: min(v) for k, v in res[c].items()}
    print(
        f"{c:<20}"
        + "".join(
            f"{med[k] * 1e6:>9.1f}us ({(med[k] / base[k] - 1) * 100:+4.0f}%)" for k in runners
        )
    )
