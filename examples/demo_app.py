"""A small multi-step workflow, run end to end by ``nox -s demo``.

::

    pip install "inngest-asgi[dev]"
    inngest-asgi dev --app-dir examples demo_app:app \\
        --send '{"name": "demo/order.placed", "data": {"order_id": 42, "items": [3, 4]}}' \\
        --send '{"name": "demo/order.approved", "data": {"order_id": 42}}' \\
        --exit-when-done

The first event starts ``process-order``: it prices the order, reserves stock and checks for
fraud in parallel, sleeps 2 s, waits for the approval event (the second ``--send``, matched on
``order_id``), and sends a receipt.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import inngest_asgi as inngest

client = inngest.Inngest(app_id="demo-app", is_production=False)


def price(items: list[int]) -> int:
    return sum(items) * 10


@client.create_function(
    fn_id="process-order", trigger=inngest.TriggerEvent(event="demo/order.placed"), retries=2
)
async def process_order(ctx: inngest.Context) -> dict[str, Any]:
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
    await ctx.step.sleep("cool-down", dt.timedelta(seconds=2))
    approval = await ctx.step.wait_for_event(
        "await-approval",
        event="demo/order.approved",
        if_exp="async.data.order_id == event.data.order_id",
        timeout=dt.timedelta(minutes=1),
    )
    if approval is None:
        return {"order_id": order_id, "status": "expired"}
    receipt = await ctx.step.run("send-receipt", lambda: f"receipt for {total} cents")
    return {
        "order_id": order_id,
        "status": "done",
        "stock": stock,
        "fraud": fraud,
        "receipt": receipt,
    }


app = inngest.InngestASGI(client, [process_order])
