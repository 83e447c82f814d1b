"""The shop workflow under Tornado: ``InngestWSGI`` in Tornado's ``WSGIContainer``, whose thread
pool runs each Inngest request (so sync functions never block the IOLoop), routed with a
``FallbackHandler`` next to native Tornado handlers. Exercised by tests/test_hosts_tornado.py.

Run it against the built-in executor (or the Inngest dev server on port 8288)::

    pip install "inngest-asgi[dev]" tornado
    INNGEST_DEV=1 python examples/tornado_app.py          # serves http://127.0.0.1:8000
    curl -X PUT http://127.0.0.1:8000/api/inngest         # sync, or let the dev server find it

In production set INNGEST_SIGNING_KEY instead of INNGEST_DEV.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
from typing import Any

import tornado.web
import tornado.wsgi

import inngest_asgi as inngest

client = inngest.Inngest(app_id="shop-tornado")


def price(items: list[int]) -> int:
    return sum(items) * 10


@client.create_function(
    fn_id="process-order", trigger=inngest.TriggerEvent(event="shop/order.placed")
)
async def process_order(ctx: inngest.Context) -> dict[str, Any]:
    order_id = ctx.event.data["order_id"]
    total = await ctx.step.run("price-order", price, ctx.event.data.get("items", []))
    reservation = await ctx.step.run("reserve-stock", lambda: f"reserved-{order_id}")
    await ctx.step.sleep("cool-down", dt.timedelta(seconds=1))
    receipt = await ctx.step.run("send-receipt", lambda: f"receipt for {total} cents")
    return {"order_id": order_id, "total": total, "reservation": reservation, "receipt": receipt}


@client.create_function(
    fn_id="refund-order", trigger=inngest.TriggerEvent(event="shop/order.refunded")
)
def refund_order(ctx: inngest.ContextSync) -> dict[str, Any]:
    order_id = ctx.event.data["order_id"]
    amount = ctx.step.run("price-refund", price, ctx.event.data.get("items", []))
    ctx.step.sleep("cool-down", dt.timedelta(seconds=1))
    note = ctx.step.run("issue-refund", lambda: f"refunded {amount} cents")
    return {"order_id": order_id, "amount": amount, "note": note}


functions = [process_order, refund_order]


class HealthHandler(tornado.web.RequestHandler):
    """A native Tornado handler, served by the IOLoop itself."""

    def get(self) -> None:
        self.write({"ok": True})


def make_app(
    client: inngest.Inngest, functions: list[inngest.Function[Any]]
) -> tornado.web.Application:
    inngest_app = tornado.wsgi.WSGIContainer(
        inngest.InngestWSGI(client, functions),
        executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
    )
    return tornado.web.Application(
        [
            (r"/api/inngest/?", tornado.web.FallbackHandler, {"fallback": inngest_app}),
            (r"/health", HealthHandler),
        ]
    )


async def main() -> None:
    make_app(client, functions).listen(8000, address="127.0.0.1")
    await asyncio.Event().wait()  # serve until interrupted


if __name__ == "__main__":
    asyncio.run(main())
