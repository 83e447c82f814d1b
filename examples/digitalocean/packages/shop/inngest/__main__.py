"""The shop workflow as a DigitalOcean web function. Exercised by tests/test_hosts_digitalocean.py
with the ``web: raw`` events DigitalOcean sends.

Deploy from examples/digitalocean/ (``project.yml`` sets ``web: raw``, which the SDK needs)::

    doctl serverless connect
    echo "INNGEST_SIGNING_KEY=signkey-prod-..." > .env    # and INNGEST_EVENT_KEY to send events
    doctl serverless deploy .
    doctl sls fn get shop/inngest --url                    # the URL to sync in Inngest Cloud

``build.sh`` installs ``requirements.txt`` into the function's virtualenv at deploy time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import inngest_asgi as inngest
from inngest_asgi.digital_ocean import serve

client = inngest.Inngest(app_id="shop-digitalocean")


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

main = serve(client, functions)
