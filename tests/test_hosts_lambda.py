"""AWS Lambda: ``Mangum(InngestASGI(...), lifespan="off")`` (examples/lambda_app.py) driven
with the events Lambda really sends, in the three HTTP shapes:

- ``rest_v1``: API Gateway REST API, Lambda proxy integration (payload 1.0): ``httpMethod``,
  ``path`` without the stage, ``headers`` in the client's case plus ``multiValueHeaders``,
  ``queryStringParameters`` / ``multiValueQueryStringParameters`` (null when empty),
  ``requestContext.path`` with the stage, ``body`` (null when empty) and ``isBase64Encoded``.
- ``http_v2``: API Gateway HTTP API (payload 2.0, ``$default`` stage): ``version: "2.0"``,
  ``rawPath``, ``rawQueryString``, lower-case ``headers`` (repeats joined with commas),
  ``queryStringParameters`` only when there is a query, ``requestContext.http.{method,path}``,
  ``body`` only when there is one.
- ``function_url``: a Lambda function URL: payload 2.0 with ``routeKey``/``stage``
  ``$default``, host ``<url-id>.lambda-url.<region>.on.aws``.

Sources: the AWS Lambda developer guide ("Invoking Lambda function URLs", request payload), the
API Gateway developer guide (HTTP API "payload format version 2.0"; REST API "input format of
a Lambda function for proxy integration"), and Mangum's handlers for what it reads.

Each shape runs with a text and with a base64 body (``isBase64Encoded: true``, as Lambda sends
bodies whose content type is not text). A warm function instance is played by
``FunctionRuntime``: the example module is imported once on its thread, as the Lambda Python
runtime does, then every invocation runs there.
"""

from __future__ import annotations

import base64
import dataclasses
import runpy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

pytest.importorskip("mangum")

from inngest_asgi.executor import Executor, UvicornServer, VirtualClock

from .conftest import HOST, FakeInngestAPI, free_port
from .protocol import (
    SIGNING_KEY,
    check_response_signature,
    drive,
    sign_body,
)
from .test_hosts_bridge import (
    EventTransport,
    FunctionRuntime,
    HttpCall,
    check_shop_runs,
    event_asgi_app,
    use_env,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lambda_app.py"
ORDER = {"order_id": 7, "items": [1, 2, 3]}
ACCOUNT = "123456789012"
API_ID = "a1b2c3d4e5"
URL_ID = "4ugmbwr2bmfkh5ks7ctlgrckba0uhxvd"
SOURCE_IP = "203.0.113.7"
STAGE = "prod"


@dataclasses.dataclass(frozen=True)
class Shape:
    """How one Lambda integration presents a request, and the public URL clients use."""

    name: str
    host: str
    stage_prefix: str  # in the public URL, not in the event's path (REST API only)
    base64: bool

    @property
    def path(self) -> str:
        return f"{self.stage_prefix}/api/inngest"

    @property
    def public_url(self) -> str:
        return f"https://{self.host}{self.path}"

    def to_event(self, call: HttpCall) -> tuple[dict[str, Any], Any]:
        path = call.path
        if self.stage_prefix and path.startswith(self.stage_prefix):
            path = path[len(self.stage_prefix) :]
        body: str | None = None
        if call.body:
            body = base64.b64encode(call.body).decode() if self.base64 else call.body.decode()
        # The platform's own connection headers replace the caller's Host.
        sent = [(k, v) for k, v in call.headers if k.lower() != "host"]
        platform = [
            ("Host", self.host),
            ("X-Forwarded-For", SOURCE_IP),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Proto", "https"),
            ("X-Amzn-Trace-Id", "Root=1-6650a3f1-0123456789abcdef01234567"),
        ]
        if self.name == "rest_v1":
            event = rest_v1_event(call.method, path, call.query, platform + sent, body)
        else:
            event = v2_event(self, call.method, path, call.query, platform + sent, body)
        if body is not None:
            event["isBase64Encoded"] = self.base64
        return event, LambdaContext()


@dataclasses.dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers commonly read."""

    function_name: str = "shop-inngest"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-inngest"
    memory_limit_in_mb: str = "512"
    aws_request_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/shop-inngest"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def rest_v1_event(
    method: str, path: str, query: str, headers: list[tuple[str, str]], body: str | None
) -> dict[str, Any]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value  # the last value wins in "headers"
        multi.setdefault(name, []).append(value)
    params = parse_qsl(query, keep_blank_values=True)
    multi_params: dict[str, list[str]] = {}
    for name, value in params:
        multi_params.setdefault(name, []).append(value)
    agent = single.get("user-agent", "")
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": dict(params) or None,
        "multiValueQueryStringParameters": multi_params or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "x1y2z3",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": "Yx0abcDEFghIJkl=",
            "requestTime": "01/Jan/2026:00:00:00 +0000",
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": 1767225600000,
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": SOURCE_IP,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": agent,
                "user": None,
            },
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def v2_event(
    shape: Shape,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: str | None,
) -> dict[str, Any]:
    joined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    url = shape.name == "function_url"
    api = URL_ID if url else API_ID
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default" if url else "ANY /api/inngest",
        "rawPath": path,
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous" if url else ACCOUNT,
            "apiId": api,
            "domainName": shape.host,
            "domainPrefix": api,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default" if url else "ANY /api/inngest",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "isBase64Encoded": False,
    }
    if query:
        grouped: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            grouped[name] = f"{grouped[name]},{value}" if name in grouped else value
        event["queryStringParameters"] = grouped
    if body is not None:
        event["body"] = body
    return event


def from_result(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Lambda's response dict (Mangum's output) as the HTTP response API Gateway sends."""
    assert isinstance(result["statusCode"], int)
    headers = list(result.get("headers", {}).items())
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, value) for value in values)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return result["statusCode"], headers, raw


SHAPES = [
    Shape("rest_v1", f"{API_ID}.execute-api.us-east-1.amazonaws.com", f"/{STAGE}", False),
    Shape("rest_v1", f"{API_ID}.execute-api.us-east-1.amazonaws.com", f"/{STAGE}", True),
    Shape("http_v2", f"{API_ID}.execute-api.us-east-1.amazonaws.com", "", False),
    Shape("http_v2", f"{API_ID}.execute-api.us-east-1.amazonaws.com", "", True),
    Shape("function_url", f"{URL_ID}.lambda-url.us-east-1.on.aws", "", False),
    Shape("function_url", f"{URL_ID}.lambda-url.us-east-1.on.aws", "", True),
]


def shape_id(shape: Shape) -> str:
    return f"{shape.name}-{'base64' if shape.base64 else 'text'}"


@pytest.fixture(params=SHAPES, ids=shape_id)
def shape(request: pytest.FixtureRequest) -> Shape:
    return request.param  # type: ignore[no-any-return]


def load_handler() -> Any:
    return runpy.run_path(str(EXAMPLE), run_name="lambda_example")["handler"]


@pytest.fixture
def lambda_http(shape: Shape) -> Iterator[httpx.Client]:
    """An HTTP client whose requests reach the example through ``shape``'s events."""
    with (
        FunctionRuntime(load_handler) as runtime,
        httpx.Client(
            transport=EventTransport(runtime, shape.to_event, from_result),
            base_url=f"https://{shape.host}",
        ) as http,
    ):
        yield http


def signed(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "x-inngest-signature": sign_body(body, SIGNING_KEY)}


# --- cloud mode: signatures on GET, PUT and POST -----------------------------------------------


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, inngest_api: FakeInngestAPI) -> FakeInngestAPI:
    use_env(monkeypatch, INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_API_BASE_URL=inngest_api.url)
    return inngest_api


def test_cloud_get_put_post(cloud: FakeInngestAPI, shape: Shape, lambda_http: httpx.Client) -> None:
    http = lambda_http
    assert http.get(shape.path).status_code == 401
    inspect = http.get(shape.path, headers={"x-inngest-signature": sign_body(b"", SIGNING_KEY)})
    assert inspect.status_code == 200
    check_response_signature(inspect, SIGNING_KEY)
    assert inspect.json()["function_count"] == 2
    assert inspect.json()["framework"] == "asgi"

    in_band = b'{"url":"' + shape.public_url.encode() + b'"}'
    sync = http.put(
        shape.path, content=in_band, headers={**signed(in_band), "x-inngest-sync-kind": "in_band"}
    )
    assert sync.status_code == 200, sync.text
    check_response_signature(sync, SIGNING_KEY)
    steps = {fn["id"]: fn["steps"]["step"]["runtime"]["url"] for fn in sync.json()["functions"]}
    assert steps["shop-lambda-process-order"] == (
        f"{shape.public_url}?fnId=shop-lambda-process-order&stepId=step"
    )

    event = {"name": "shop/order.placed", "data": ORDER}
    for fn_id in ("shop-lambda-process-order", "shop-lambda-refund-order"):
        run = drive(http, fn_id, path=shape.path, event=event, signing_key=SIGNING_KEY)
        assert run.status == 200, run.output
    assert run.output == {"order_id": 7, "amount": 60, "note": "refunded 60 cents"}

    forged = http.post(
        shape.path,
        params={"fnId": "shop-lambda-refund-order", "stepId": "step"},
        content=b"{}",
        headers={"x-inngest-signature": sign_body(b'{"a":1}', SIGNING_KEY)},
    )
    assert forged.status_code == 401


def test_event_shapes_carry_query_and_body(shape: Shape) -> None:
    """The events built here have the platform's shape (checked against the docs' fields)."""
    body = b'{"a": 1}'
    event, _ = shape.to_event(
        HttpCall(
            "POST",
            f"{shape.stage_prefix}/api/inngest",
            "fnId=f&stepId=step",
            [("content-type", "application/json")],
            body,
        )
    )
    encoded = event["body"]
    assert event["isBase64Encoded"] is shape.base64
    assert (base64.b64decode(encoded) if shape.base64 else encoded.encode()) == body
    if shape.name == "rest_v1":
        assert event["path"] == "/api/inngest"
        assert event["requestContext"]["path"] == f"/{STAGE}/api/inngest"
        assert event["multiValueQueryStringParameters"] == {"fnId": ["f"], "stepId": ["step"]}
        assert event["headers"]["Host"] == shape.host
    else:
        assert event["version"] == "2.0"
        assert event["rawQueryString"] == "fnId=f&stepId=step"
        assert event["requestContext"]["http"]["method"] == "POST"
        assert event["headers"]["host"] == shape.host


# --- the registered URL -----------------------------------------------------------------------


def registered_url(api: FakeInngestAPI, http: httpx.Client, shape: Shape) -> str:
    sync = http.put(shape.path, headers={"x-inngest-server-kind": "cloud"})
    assert sync.status_code == 200, sync.text
    [registration] = api.registrations
    assert registration.headers["authorization"].startswith("Bearer ")
    url: str = registration.json()["url"]
    return url


def test_registered_url_without_serve_settings(
    cloud: FakeInngestAPI, shape: Shape, lambda_http: httpx.Client
) -> None:
    url = registered_url(cloud, lambda_http, shape)
    if shape.name == "rest_v1":
        # A REST API's event path has no stage, so the URL lacks "/prod": the server could not
        # call it back. This is why the docs ask for INNGEST_SERVE_PATH behind a REST API.
        assert url == f"https://{shape.host}/api/inngest"
        assert url != shape.public_url
    else:
        assert url == shape.public_url


@pytest.mark.parametrize(
    ("origin", "path", "expected"),
    [
        (None, f"/{STAGE}/api/inngest", "https://{host}/" + STAGE + "/api/inngest"),
        ("https://jobs.example.com", None, "https://jobs.example.com/api/inngest"),
        ("jobs.example.com", "/inngest", "https://jobs.example.com/inngest"),
    ],
)
def test_registered_url_with_serve_settings(
    monkeypatch: pytest.MonkeyPatch,
    cloud: FakeInngestAPI,
    shape: Shape,
    origin: str | None,
    path: str | None,
    expected: str,
) -> None:
    if origin:
        monkeypatch.setenv("INNGEST_SERVE_ORIGIN", origin)
    if path:
        monkeypatch.setenv("INNGEST_SERVE_PATH", path)
    with (
        FunctionRuntime(load_handler) as runtime,
        httpx.Client(
            transport=EventTransport(runtime, shape.to_event, from_result),
            base_url=f"https://{shape.host}",
        ) as http,
    ):
        assert registered_url(cloud, http, shape) == expected.format(host=shape.host)


# --- the example, end to end through the built-in executor ------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("shape", [s for s in SHAPES if s.base64], ids=shape_id)
async def test_example_through_the_executor(monkeypatch: pytest.MonkeyPatch, shape: Shape) -> None:
    """The executor calls a socket whose requests become Lambda events. The events name the
    platform's host, so the app learns where it is reachable from serve_origin / serve_path,
    as docs/hosts/aws-lambda.md recommends; the executor then calls exactly that URL."""
    port = free_port()
    public = f"http://{HOST}:{port}{shape.stage_prefix}/api/inngest"
    async with (
        Executor(clock=VirtualClock()) as ex,
        UvicornServer(ex.api) as api,
    ):
        use_env(
            monkeypatch,
            INNGEST_DEV="1",
            INNGEST_API_BASE_URL=api.url,
            INNGEST_EVENT_API_BASE_URL=api.url,
            INNGEST_SERVE_ORIGIN=f"http://{HOST}:{port}",
            INNGEST_SERVE_PATH=f"{shape.stage_prefix}/api/inngest",
        )
        with FunctionRuntime(load_handler) as runtime:
            app = event_asgi_app(runtime, shape.to_event, from_result)
            async with UvicornServer(app, port=port):
                synced = await ex.sync(public)
                assert synced.url == public
                ex.send(
                    [
                        {"name": "shop/order.placed", "data": ORDER},
                        {"name": "shop/order.refunded", "data": ORDER},
                    ]
                )
                await ex.run_until_idle()
                await ex.advance(2)  # the cool-down sleeps
                await ex.run_until_idle()
            # Every call reached the function as an event of this shape.
            assert runtime.invocations
            assert all(
                ("httpMethod" in e) == (shape.name == "rest_v1") for e in runtime.invocations
            )
    check_shop_runs(ex, "shop-lambda")
