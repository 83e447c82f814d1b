"""Function options: their registration form (PROTOCOL.md §9, §14.5) and their checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, cast

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_asgi as inngest
from inngest_asgi._registration import function_config

from .conftest import FakeInngestAPI
from .core import URL, handler, json, send
from .protocol import SIGNING_KEY, sign_body

APP = "my-app"
EVENT = inngest.TriggerEvent(event="app/x")


def dev_client(**kwargs: Any) -> inngest.Inngest:
    return inngest.Inngest(app_id=APP, is_production=False, **kwargs)


def config_of(**options: Any) -> dict[str, Any]:
    """The registration entry of a function ``f`` created with ``options``, as JSON sees it."""
    client = dev_client()
    fn = client.create_function(fn_id="f", trigger=EVENT, **options)(_noop)
    config: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(function_config(fn, URL)))
    return config


async def _noop(ctx: inngest.Context) -> None:
    return None


def _only_options(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("id", "name", "triggers", "steps")}


# --- the §14.5 fixture, through a real sync -------------------------------------------------

STEP_URL = "http://testserver/api/inngest?fnId={}&stepId=step"

#: ``hello`` and its on_failure function exactly as PROTOCOL.md §14.5 and §9 show them.
HELLO = {
    "concurrency": [{"key": "event.data.user_id", "limit": 5, "scope": "fn"}],
    "id": "my-app-hello",
    "name": "Hello",
    "steps": {
        "step": {
            "id": "step",
            "name": "step",
            "retries": {"attempts": 3},
            "runtime": {"type": "http", "url": STEP_URL.format("my-app-hello")},
        }
    },
    "triggers": [{"event": "app/hello", "expression": "event.data.n > 0"}, {"cron": "0 0 * * *"}],
}
HELLO_FAILURE = {
    "id": "my-app-hello-failure",
    "name": "Hello (failure)",
    "cancel": [],
    "concurrency": [],
    "steps": {
        "step": {
            "id": "step",
            "name": "step",
            "retries": {"attempts": 0},
            "runtime": {"type": "http", "url": STEP_URL.format("my-app-hello-failure")},
        }
    },
    "triggers": [
        {
            "event": "inngest/function.failed",
            "expression": "event.data.function_id == 'my-app-hello'",
        }
    ],
}
#: "Fields from other functions in the same fixture", verbatim from §14.5.
OTHER_FIELDS = msgspec.json.decode(
    b'{"batchEvents":{"maxSize":10,"timeout":"5s","key":"event.data.k"},'
    b'"cancel":[{"event":"app/cancel","if":"async.data.id == event.data.id","timeout":"1h"}],'
    b'"idempotency":"event.data.id","priority":{"run":"event.data.vip ? 120 : 0"},'
    b'"rateLimit":{"key":"event.data.k","limit":10,"period":"1m"},'
    b'"throttle":{"limit":2,"period":"10s","burst":3},"timeouts":{"start":"5m","finish":"2h"},'
    b'"singleton":{"key":"event.data.k","mode":"skip"},'
    b'"debounce":{"key":"event.data.k","period":"30s","timeout":"5m"}}'
)


def fixture_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    async def failed(ctx: inngest.Context) -> None:
        return None

    @client.create_function(
        fn_id="hello",
        name="Hello",
        trigger=[
            inngest.TriggerEvent(event="app/hello", expression="event.data.n > 0"),
            inngest.TriggerCron(cron="0 0 * * *"),
        ],
        retries=3,
        concurrency=[inngest.Concurrency(limit=5, key="event.data.user_id", scope="fn")],
        on_failure=failed,
    )
    async def hello(ctx: inngest.Context) -> str:
        await ctx.step.run("my-step", lambda: {"ok": True})
        return "done"

    @client.create_function(
        fn_id="other",
        trigger=inngest.TriggerEvent(event="app/other"),
        batch_events=inngest.Batch(
            max_size=10, timeout=dt.timedelta(seconds=5), key="event.data.k"
        ),
        cancel=[
            inngest.Cancel(
                event="app/cancel", if_exp="async.data.id == event.data.id", timeout=3_600_000
            )
        ],
        idempotency="event.data.id",
        priority=inngest.Priority(run="event.data.vip ? 120 : 0"),
        rate_limit=inngest.RateLimit(limit=10, period="1m", key="event.data.k"),
        throttle=inngest.Throttle(limit=2, period=10_000, burst=3),
        timeouts=inngest.Timeouts(start="5m", finish=dt.timedelta(hours=2)),
        singleton=inngest.Singleton(key="event.data.k", mode="skip"),
        debounce=inngest.Debounce(key="event.data.k", period="30s", timeout=300_000),
    )
    def other(ctx: inngest.ContextSync) -> None:
        return None

    return [hello, other]


def test_out_of_band_sync_registers_every_option(inngest_api: FakeInngestAPI) -> None:
    client = dev_client(api_base_url=inngest_api.url)
    serve = handler(client, fixture_functions(client))
    response = send(serve, "PUT", "deployId=dep-123", headers={"x-inngest-server-kind": "dev"})
    assert response.status == 200, response.body

    (sent,) = inngest_api.registrations
    hello, failure, other = sent.json()["functions"]
    assert hello == HELLO
    assert failure == HELLO_FAILURE
    assert _only_options(other) == OTHER_FIELDS
    assert other["id"] == "my-app-other"
    assert "retries" not in other["steps"]["step"]  # unset: the server's default applies


def test_in_band_sync_registers_the_same_configs() -> None:
    client = inngest.Inngest(app_id=APP, is_production=True, signing_key=SIGNING_KEY)
    serve = handler(client, fixture_functions(client))
    body = b'{"url":"http://testserver/api/inngest"}'
    headers = {
        "x-inngest-sync-kind": "in_band",
        "x-inngest-server-kind": "cloud",
        "x-inngest-signature": sign_body(body, SIGNING_KEY),
    }
    response = send(serve, "PUT", body=body, headers=headers)
    assert response.status == 200, response.body
    hello, failure, other = json(response)["functions"]
    assert (hello, failure) == (HELLO, HELLO_FAILURE)
    assert _only_options(other) == OTHER_FIELDS
    assert json(response)["inspection"]["function_count"] == 2  # companions not counted


# --- each option on its own -------------------------------------------------------------------

ONE_OPTION: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"batch_events": inngest.Batch(max_size=1)}, {"batchEvents": {"maxSize": 1}}),
    (
        {"batch_events": inngest.Batch(max_size=100, timeout=60_000, if_exp="event.data.ok")},
        {"batchEvents": {"maxSize": 100, "timeout": "1m", "if": "event.data.ok"}},
    ),
    ({"cancel": [inngest.Cancel(event="app/stop")]}, {"cancel": [{"event": "app/stop"}]}),
    (
        {"cancel": inngest.Cancel(event="app/stop", timeout="1d")},
        {"cancel": [{"event": "app/stop", "timeout": "1d"}]},
    ),
    (
        {"cancel": (inngest.Cancel(event="a/1"), inngest.Cancel(event="a/2", if_exp="x"))},
        {"cancel": [{"event": "a/1"}, {"event": "a/2", "if": "x"}]},
    ),
    ({"concurrency": [inngest.Concurrency(limit=1)]}, {"concurrency": [{"limit": 1}]}),
    (
        {
            "concurrency": [
                inngest.Concurrency(limit=10, key='"openai"', scope="account"),
                inngest.Concurrency(limit=2, key="event.data.user", scope="env"),
            ]
        },
        {
            "concurrency": [
                {"limit": 10, "key": '"openai"', "scope": "account"},
                {"limit": 2, "key": "event.data.user", "scope": "env"},
            ]
        },
    ),
    ({"debounce": inngest.Debounce(period="7d")}, {"debounce": {"period": "1w"}}),
    ({"debounce": inngest.Debounce(period=1000)}, {"debounce": {"period": "1s"}}),
    ({"idempotency": "event.data.order_id"}, {"idempotency": "event.data.order_id"}),
    ({"priority": inngest.Priority(run="600")}, {"priority": {"run": "600"}}),
    (
        {"rate_limit": inngest.RateLimit(limit=1, period=dt.timedelta(hours=24))},
        {"rateLimit": {"limit": 1, "period": "1d"}},
    ),
    (
        {"throttle": inngest.Throttle(limit=5, period="90s")},
        {"throttle": {"limit": 5, "period": "90s", "burst": 1}},
    ),
    (
        {"throttle": inngest.Throttle(limit=5, period="1h30m", key="event.data.k", burst=2)},
        {"throttle": {"limit": 5, "period": "90m", "burst": 2, "key": "event.data.k"}},
    ),
    ({"timeouts": inngest.Timeouts(start="30s")}, {"timeouts": {"start": "30s"}}),
    ({"timeouts": inngest.Timeouts(finish=7_200_000)}, {"timeouts": {"finish": "2h"}}),
    ({"singleton": inngest.Singleton(mode="cancel")}, {"singleton": {"mode": "cancel"}}),
    ({"retries": 0}, {}),
]


@pytest.mark.parametrize(("options", "expected"), ONE_OPTION)
def test_each_option_is_registered(options: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _only_options(config_of(**options)) == expected


def test_no_options_registers_only_the_basics() -> None:
    config = config_of()
    assert set(config) == {"id", "name", "triggers", "steps"}
    assert config["steps"]["step"] == {
        "id": "step",
        "name": "step",
        "runtime": {"type": "http", "url": STEP_URL.format("my-app-f")},
    }


def test_function_keeps_what_it_was_given() -> None:
    client = dev_client()

    class Mw(inngest.Middleware):
        pass

    fn = client.create_function(
        fn_id="f", trigger=EVENT, middleware=[Mw], output_type=int, idempotency="event.id"
    )(_noop)
    assert fn.middleware == [Mw]
    assert fn.output_type is int
    assert fn.options == {"idempotency": "event.id"}
    assert fn.companions == ()
    assert fn.on_failure_fn_id is None
    assert fn.on_cancel_fn_id is None


def test_models_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        inngest.Batch(10)  # type: ignore[call-arg]
    model = inngest.Throttle(limit=1, period="1s")
    with pytest.raises(AttributeError):
        model.limit = 2  # type: ignore[misc]
    assert model == inngest.Throttle(limit=1, period="1s")
    assert model.burst is None
    assert model.key is None
    assert inngest.Concurrency(limit=1).scope is None
    assert inngest.Timeouts() == inngest.Timeouts(start=None, finish=None)


# --- durations --------------------------------------------------------------------------------

WHOLE_SECONDS = st.integers(min_value=1, max_value=60 * 60 * 24 * 365)


@given(seconds=WHOLE_SECONDS)
def test_duration_forms_register_alike(seconds: int) -> None:
    forms: list[int | dt.timedelta | str] = [
        seconds * 1000,
        dt.timedelta(seconds=seconds),
        f"{seconds}s",
    ]
    wires = {
        config_of(timeouts=inngest.Timeouts(finish=form))["timeouts"]["finish"] for form in forms
    }
    (wire,) = wires
    # The largest unit dividing the value exactly (PROTOCOL.md §9).
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            assert wire == f"{seconds // size}{unit}"
            break


@given(
    hours=st.integers(min_value=0, max_value=23),
    minutes=st.integers(min_value=0, max_value=59),
    secs=st.integers(min_value=0, max_value=59),
)
def test_compound_duration_strings(hours: int, minutes: int, secs: int) -> None:
    total = hours * 3600 + minutes * 60 + secs
    text = "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    if total == 0:
        return
    same = config_of(rate_limit=inngest.RateLimit(limit=1, period=text))["rateLimit"]
    assert (
        same == config_of(rate_limit=inngest.RateLimit(limit=1, period=total * 1000))["rateLimit"]
    )


@given(ms=st.integers(min_value=1, max_value=10**9).filter(lambda ms: ms % 1000))
def test_sub_second_durations_are_refused(ms: int) -> None:
    with pytest.raises(inngest.ConfigError, match=r"debounce\.period"):
        config_of(debounce=inngest.Debounce(period=ms))


@given(seconds=st.integers(min_value=1, max_value=60))
def test_batch_timeout_up_to_a_minute(seconds: int) -> None:
    config = config_of(batch_events=inngest.Batch(max_size=2, timeout=seconds * 1000))
    assert config["batchEvents"]["timeout"] in (f"{seconds}s", "1m")


@given(seconds=st.integers(min_value=61, max_value=10**6))
def test_batch_timeout_over_a_minute_is_refused(seconds: int) -> None:
    with pytest.raises(inngest.ConfigError, match=r"batch_events\.timeout must be at most 1m"):
        config_of(batch_events=inngest.Batch(max_size=2, timeout=dt.timedelta(seconds=seconds)))


# --- invalid values -----------------------------------------------------------------------------


#: The package seen untyped, to build the wrongly typed values a type checker would stop.
loose: Any = inngest


def _bad(**kwargs: Any) -> dict[str, Any]:
    return kwargs


INVALID: list[tuple[dict[str, Any], str]] = [
    # batch_events
    (_bad(batch_events={"max_size": 10}), r"batch_events must be a Batch\(\.\.\.\), not dict"),
    (_bad(batch_events=inngest.Batch(max_size=0)), r"batch_events\.max_size must be an int"),
    (_bad(batch_events=inngest.Batch(max_size=True)), r"batch_events\.max_size"),
    (_bad(batch_events=loose.Batch(max_size="10")), r"batch_events\.max_size"),
    (_bad(batch_events=inngest.Batch(max_size=5, timeout="2m")), r"batch_events\.timeout"),
    (_bad(batch_events=inngest.Batch(max_size=5, timeout=500)), r"batch_events\.timeout"),
    (_bad(batch_events=inngest.Batch(max_size=5, timeout="soon")), r"batch_events\.timeout"),
    (_bad(batch_events=loose.Batch(max_size=5, key=3)), r"batch_events\.key"),
    (_bad(batch_events=inngest.Batch(max_size=5, if_exp="")), r"batch_events\.if_exp"),
    # cancel
    (_bad(cancel="app/stop"), r"cancel must be a list of Cancel\(\.\.\.\), not str"),
    (_bad(cancel=["app/stop"]), r"cancel\[0\] must be a Cancel\(\.\.\.\), not str"),
    (_bad(cancel=[]), r"cancel must hold at least one Cancel"),
    (_bad(cancel=[inngest.Cancel(event="")]), r"cancel\[0\]\.event"),
    (
        _bad(cancel=[inngest.Cancel(event="a"), inngest.Cancel(event="b", timeout=0)]),
        r"cancel\[1\]\.timeout",
    ),
    (_bad(cancel=[loose.Cancel(event="a", if_exp=1)]), r"cancel\[0\]\.if_exp"),
    # concurrency
    (_bad(concurrency=5), r"concurrency must be a list of Concurrency\(\.\.\.\), not int"),
    (
        _bad(concurrency=[inngest.Concurrency(limit=0)]),
        r"concurrency\[0\]\.limit must be an int of at least 1",
    ),
    (_bad(concurrency=[inngest.Concurrency(limit=-3)]), r"concurrency\[0\]\.limit"),
    (_bad(concurrency=[loose.Concurrency(limit=1.5)]), r"concurrency\[0\]\.limit"),
    (
        _bad(concurrency=[loose.Concurrency(limit=1, scope="global")]),
        r"concurrency\[0\]\.scope must be 'account', 'env' or 'fn'",
    ),
    (
        _bad(concurrency=[inngest.Concurrency(limit=1)] * 3),
        r"concurrency takes at most 2 entries, not 3",
    ),
    # debounce
    (_bad(debounce=inngest.Debounce(period=999)), r"debounce\.period"),
    (_bad(debounce=inngest.Debounce(period="500ms")), r"debounce\.period"),
    (_bad(debounce=inngest.Debounce(period="8d")), r"debounce\.period must be at most 1w"),
    (_bad(debounce=inngest.Debounce(period="1m", timeout=-5)), r"debounce\.timeout"),
    (_bad(debounce=loose.Debounce(period=1.5)), r"debounce\.period must be int milliseconds"),
    (_bad(debounce=dt.timedelta(seconds=5)), r"debounce must be a Debounce"),
    # idempotency
    (_bad(idempotency=""), r"idempotency must be a CEL expression string"),
    (_bad(idempotency=42), r"idempotency must be a CEL expression string"),
    # priority
    (_bad(priority=loose.Priority(run=100)), r"priority\.run must be a CEL expression string"),
    (_bad(priority="event.data.p"), r"priority must be a Priority"),
    # rate_limit
    (_bad(rate_limit=inngest.RateLimit(limit=0, period="1m")), r"rate_limit\.limit"),
    (
        _bad(rate_limit=inngest.RateLimit(limit=1, period="25h")),
        r"rate_limit\.period must be at most 1d",
    ),
    (_bad(rate_limit=loose.RateLimit(limit=1, period=None)), r"rate_limit\.period"),
    # throttle
    (_bad(throttle=inngest.Throttle(limit=0, period="1s")), r"throttle\.limit"),
    (_bad(throttle=inngest.Throttle(limit=1, period="1s", burst=0)), r"throttle\.burst"),
    (_bad(throttle=inngest.Throttle(limit=1, period="0s")), r"throttle\.period"),
    (
        _bad(throttle=inngest.RateLimit(limit=1, period="1s")),
        r"throttle must be a Throttle\(\.\.\.\), not RateLimit",
    ),
    # timeouts
    (_bad(timeouts=inngest.Timeouts()), r"timeouts: set start, finish or both"),
    (_bad(timeouts=inngest.Timeouts(start="1.5s")), r"timeouts\.start"),
    (_bad(timeouts=inngest.Timeouts(finish="forever")), r"timeouts\.finish"),
    # singleton
    (
        _bad(singleton=loose.Singleton(mode="queue")),
        r"singleton\.mode must be 'skip' or 'cancel'",
    ),
    (_bad(singleton=inngest.Singleton(mode="skip", key="")), r"singleton\.key"),
    # handlers and middleware
    (_bad(on_failure="notify"), r"on_failure must be a function"),
    (_bad(on_cancel=42), r"on_cancel must be a function"),
    (_bad(middleware=object()), r"middleware must be a list"),
    (_bad(middleware=[42]), r"middleware must hold Middleware subclasses"),
]


@pytest.mark.parametrize(("options", "message"), INVALID)
def test_invalid_values_name_the_option(options: dict[str, Any], message: str) -> None:
    client = dev_client()
    with pytest.raises(inngest.ConfigError, match=message) as info:
        client.create_function(fn_id="f", trigger=EVENT, **options)
    assert str(info.value).startswith("create_function(fn_id='f'): ")


def test_errors_come_before_decorating() -> None:
    # Nothing to decorate is needed: the mistake surfaces where the options are written.
    client = dev_client()
    with pytest.raises(inngest.ConfigError, match="throttle"):
        client.create_function(
            fn_id="f", trigger=EVENT, throttle=inngest.Throttle(limit=0, period=1)
        )


@dataclasses.dataclass
class _NotAModel:
    max_size: int = 1


def test_lookalike_objects_are_refused() -> None:
    with pytest.raises(
        inngest.ConfigError, match=r"batch_events must be a Batch\(\.\.\.\), not _NotAModel"
    ):
        dev_client().create_function(fn_id="f", trigger=EVENT, batch_events=cast(Any, _NotAModel()))


# --- triggers -----------------------------------------------------------------------------------


def test_several_triggers_and_cron_jitter() -> None:
    client = dev_client()
    fn = client.create_function(
        fn_id="f",
        trigger=[
            inngest.TriggerEvent(event="app/a"),
            inngest.TriggerEvent(event="app/b", expression="event.data.ok"),
            inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * MON", jitter="30s"),
        ],
    )(_noop)
    config = msgspec.json.decode(msgspec.json.encode(function_config(fn, URL)))
    assert config["triggers"] == [
        {"event": "app/a"},
        {"event": "app/b", "expression": "event.data.ok"},
        {"cron": "TZ=Europe/Paris 0 9 * * MON", "jitter": "30s"},
    ]


@pytest.mark.parametrize("jitter", ["soon", "500ms", "0s"])
def test_bad_cron_jitter_is_refused(jitter: str) -> None:
    with pytest.raises(inngest.ConfigError, match=r"TriggerCron\.jitter"):
        dev_client().create_function(
            fn_id="f", trigger=inngest.TriggerCron(cron="* * * * *", jitter=jitter)
        )
