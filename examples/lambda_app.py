"""The shop workflow on AWS Lambda: Mangum turns Lambda's HTTP events into ASGI calls of
``InngestASGI``. Exercised by tests/test_hosts_lambda.py with the events Lambda sends.

Deploy (any tool that packages a Python Lambda works; the handler is ``lambda_app.handler``)::

    pip install inngest-asgi mangum -t build/ && cp lambda_app.py build/
    (cd build && zip -r ../lambda.zip .)
    aws lambda create-function --function-name shop-inngest --runtime python3.12 \\
        --handler lambda_app.handler --zip-file fileb://lambda.zip --role <execution role ARN>
    aws lambda create-function-url-config --function-name shop-inngest --auth-type NONE

Put it behind a Function URL, an HTTP API (payload 2.0) or a REST API (proxy integration),
set INNGEST_SIGNING_KEY (and INNGEST_EVENT_KEY to send events) in the function's environment,
and sync the app at its public URL. Behind a REST API stage (``/prod``) or a custom domain,
also set INNGEST_SERVE_ORIGIN / INNGEST_SERVE_PATH: see docs/hosts/aws-lambda.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mangum import Mangum

import inngest_asgi as inngest

client = inngest.Inngest(app_id="shop-lambda")


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

handler = Mangum(inngest.InngestASGI(client, functions), lifespan="off")
