"""Client configuration: options in code, INNGEST_* variables, and their precedence."""

from __future__ import annotations

import datetime as dt

import pytest

import inngest_asgi as inngest

from .protocol import SIGNING_KEY

_VARS = [
    "INNGEST_DEV",
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "INNGEST_EVENT_KEY",
    "INNGEST_ENV",
    "INNGEST_BASE_URL",
    "INNGEST_API_BASE_URL",
    "INNGEST_EVENT_API_BASE_URL",
    "INNGEST_API_ORIGIN",
    "INNGEST_EVENT_API_ORIGIN",
    "INNGEST_SERVE_ORIGIN",
    "INNGEST_SERVE_PATH",
    "RAILWAY_GIT_BRANCH",
    "RENDER_GIT_BRANCH",
    "VERCEL_GIT_COMMIT_REF",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, "cloud"),
        ("", "cloud"),
        ("0", "cloud"),
        ("FALSE", "cloud"),
        ("1", "dev"),
        ("true", "dev"),
    ],
)
def test_mode_from_inngest_dev(clean_env: pytest.MonkeyPatch, value: str | None, mode: str) -> None:
    if value is not None:
        clean_env.setenv("INNGEST_DEV", value)
    assert inngest.Inngest(app_id="a").mode == mode


def test_code_option_wins_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INNGEST_DEV", "1")
    assert inngest.Inngest(app_id="a", is_production=True).mode == "cloud"
    clean_env.setenv("INNGEST_DEV", "0")
    assert inngest.Inngest(app_id="a", is_production=False).mode == "dev"


def test_default_origins() -> None:
    dev = inngest.Inngest(app_id="a", is_production=False)
    assert (dev.api_origin, dev.event_api_origin) == ("http://127.0.0.1:8288",) * 2
    assert dev.event_key == "NO_EVENT_KEY_SET"
    cloud = inngest.Inngest(app_id="a", is_production=True)
    assert (cloud.api_origin, cloud.event_api_origin) == (
        "https://api.inngest.com",
        "https://inn.gs",
    )
    assert cloud.event_key is None


def test_origin_precedence(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INNGEST_DEV", "http://dev-server:9999")
    client = inngest.Inngest(app_id="a")
    assert client.mode == "dev"
    assert client.api_origin == "http://dev-server:9999"
    clean_env.setenv("INNGEST_BASE_URL", "base.example")
    assert inngest.Inngest(app_id="a").api_origin == "http://base.example"
    clean_env.setenv("INNGEST_API_BASE_URL", "https://api.example/")
    clean_env.setenv("INNGEST_EVENT_API_ORIGIN", "https://events.example")
    client = inngest.Inngest(app_id="a")
    assert client.api_origin == "https://api.example"
    assert client.event_api_origin == "https://events.example"
    coded = inngest.Inngest(app_id="a", api_base_url="code.example", event_api_base_url="e.example")
    assert coded.api_origin == "http://code.example"
    assert coded.event_api_origin == "http://e.example"


def test_scheme_defaults_to_https_in_cloud_mode(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INNGEST_BASE_URL", "inngest.internal:8288")
    assert (
        inngest.Inngest(app_id="a", is_production=True).api_origin
        == "https://inngest.internal:8288"
    )


def test_keys_and_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INNGEST_SIGNING_KEY", SIGNING_KEY)
    clean_env.setenv("INNGEST_EVENT_KEY", "ek")
    clean_env.setenv("VERCEL_GIT_COMMIT_REF", "feature-x")
    client = inngest.Inngest(app_id="a")
    assert (client.signing_key, client.event_key, client.env) == (SIGNING_KEY, "ek", "feature-x")
    clean_env.setenv("INNGEST_ENV", "staging")
    assert inngest.Inngest(app_id="a").env == "staging"
    assert inngest.Inngest(app_id="a", env="code", event_key="k2").env == "code"


def test_secrets_stay_out_of_reprs(clean_env: pytest.MonkeyPatch) -> None:
    client = inngest.Inngest(app_id="a", signing_key=SIGNING_KEY, event_key="secret-event-key")
    for text in (repr(client), repr(client.settings), str(client.settings)):
        assert "secret-event-key" not in text
        assert SIGNING_KEY.split("-", 2)[2] not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"app_id": ""}, "app_id"),
        ({"app_id": "a", "signing_key": "signkey-prod-xyz"}, "signing_key"),
        ({"app_id": "a", "request_timeout": 0}, "request_timeout"),
        ({"app_id": "a", "request_timeout": "5s"}, "request_timeout"),
    ],
)
def test_bad_client_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(inngest.ConfigError, match=message):
        inngest.Inngest(**kwargs)  # type: ignore[arg-type]


def test_request_timeout_forms() -> None:
    assert inngest.Inngest(app_id="a", request_timeout=1500).settings.request_timeout == 1.5
    ms = inngest.Inngest(app_id="a", request_timeout=dt.timedelta(seconds=2))
    assert ms.settings.request_timeout == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fn_id": "", "trigger": inngest.TriggerEvent(event="e")}, "fn_id"),
        ({"fn_id": "f", "trigger": []}, "trigger"),
        ({"fn_id": "f", "trigger": "app/event"}, "TriggerEvent or TriggerCron"),
        ({"fn_id": "f", "trigger": inngest.TriggerEvent(event="")}, "event name"),
        ({"fn_id": "f", "trigger": inngest.TriggerCron(cron=" ")}, "cron"),
        ({"fn_id": "f", "trigger": inngest.TriggerEvent(event="e"), "retries": 21}, "retries"),
        ({"fn_id": "f", "trigger": inngest.TriggerEvent(event="e"), "retries": True}, "retries"),
        ({"fn_id": "f", "trigger": inngest.TriggerEvent(event="e"), "name": 3}, "name"),
    ],
)
def test_bad_function_options_name_the_option(kwargs: dict[str, object], message: str) -> None:
    client = inngest.Inngest(app_id="a", is_production=False)
    with pytest.raises(inngest.ConfigError, match=message):
        client.create_function(**kwargs)  # type: ignore[arg-type]


def test_function_properties() -> None:
    client = inngest.Inngest(app_id="shop", is_production=False)

    @client.create_function(fn_id="charge", trigger=inngest.TriggerCron(cron="0 * * * *"))
    def charge(ctx: inngest.ContextSync) -> None:
        return None

    @client.create_function(fn_id="refund", trigger=inngest.TriggerEvent(event="shop/refund"))
    async def refund(ctx: inngest.Context) -> None:
        return None

    assert (charge.id, charge.local_id, charge.name) == ("shop-charge", "charge", "charge")
    assert (charge.is_handler_async, refund.is_handler_async) == (False, True)
