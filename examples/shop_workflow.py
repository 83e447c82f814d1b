"""The workflow every framework example serves: ``client`` and ``functions``.

``fulfil-order`` (async), started by ``shop/order.placed``:

1. ``price-order``: a step;
2. ``reserve-stock`` and ``check-fraud``: a parallel group;
3. ``charge-card``: a step that fails on its first attempt and succeeds on the retry;
4. ``cool-down``: a 2-second sleep;
5. ``await-shipping``: waits up to a day for ``shop/order.shipped`` with the same ``order_id``;
6. ``send-receipt``: invokes the second function, ``render-receipt`` (sync), and returns its
   output.

The client reads its mode and keys from the environment: ``INNGEST_DEV=1`` locally,
``INNGEST_SIGNING_KEY`` in production (see docs/configuration.md). The framework examples
import this module, so run them from this directory (or with ``examples/`` on ``sys.path``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import inngest_asgi as inngest

client = inngest.Inngest(app_id="shop")


def price(items: list[int]) -> int:
    return sum(items) * 10


@client.create_function(
    fn_id="render-receipt", trigger=inngest.TriggerEvent(event="shop/receipt.requested")
)
def render_receipt(ctx: inngest.ContextSync) -> str:
    data = ctx.event.data
    return ctx.step.run("render", lambda: f"order {data['order_id']}: {data['total']} cents")


@client.create_function(
    fn_id="fulfil-order", trigger=inngest.TriggerEvent(event="shop/order.placed"), retries=2
)
async def fulfil_order(ctx: inngest.Context) -> dict[str, Any]:
    order_id = ctx.event.data["order_id"]
    total = await ctx.step.run("price-order", price, ctx.event.data.get("items", []))

    async def reserve() -> str:
        return f"reserved-{order_id}"

    stock, fraud = await ctx.group.parallel(
        (
            lambda: ctx.step.run("reserve-stock", reserve),
            lambda: ctx.step.run("check-fraud", lambda: {"score": 0.02}),
        )
    )

    def charge() -> str:
        if ctx.attempt == 0:  # the payment gateway times out once; the retry succeeds
            raise ConnectionError("payment gateway timed out")
        return f"charged {total} cents"

    charge_result = await ctx.step.run("charge-card", charge)
    await ctx.step.sleep("cool-down", dt.timedelta(seconds=2))
    shipped = await ctx.step.wait_for_event(
        "await-shipping",
        event="shop/order.shipped",
        if_exp="async.data.order_id == event.data.order_id",
        timeout=dt.timedelta(days=1),
    )
    if shipped is None:
        return {"order_id": order_id, "status": "never shipped"}
    receipt = await ctx.step.invoke(
        "send-receipt", function=render_receipt, data={"order_id": order_id, "total": total}
    )
    return {
        "order_id": order_id,
        "status": "done",
        "stock": stock,
        "fraud": fraud,
        "charge": charge_result,
        "carrier": shipped.data.get("carrier"),
        "receipt": receipt,
    }


functions = [fulfil_order, render_receipt]
