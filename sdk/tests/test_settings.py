"""Where configure() sends spans: arguments, then THINKMETER_*, then the standard OTEL_* variables."""

from __future__ import annotations

import pytest

from thinkmeter_sdk.settings import ConfigurationError, resolve

KEY = {"THINKMETER_API_KEY": "tm_key"}


def test_endpoint_is_a_base_url_and_v1_traces_is_added() -> None:
    settings = resolve(endpoint="http://127.0.0.1:8000/", api_key="k", env={})
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.traces_url == "http://127.0.0.1:8000/v1/traces"
    assert settings.api_url == "http://127.0.0.1:8000/api/v1"
    assert settings.headers == {"authorization": "Bearer k"}


def test_base_url_with_a_path_prefix() -> None:
    settings = resolve(endpoint="https://tm.example.com/thinkmeter", api_key="k", env={})
    assert settings.traces_url == "https://tm.example.com/thinkmeter/v1/traces"
    assert settings.api_url == "https://tm.example.com/thinkmeter/api/v1"


def test_a_base_url_ending_in_v1_traces_is_not_doubled() -> None:
    settings = resolve(endpoint="http://h:8000/v1/traces", api_key="k", env={})
    assert settings.traces_url == "http://h:8000/v1/traces"
    assert settings.base_url == "http://h:8000"


def test_precedence_argument_then_thinkmeter_then_otel() -> None:
    env = {
        **KEY,
        "THINKMETER_ENDPOINT": "http://tm:8000",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom/traces",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
    }
    assert resolve(endpoint="http://arg:1", env=env).traces_url == "http://arg:1/v1/traces"
    assert resolve(env=env).traces_url == "http://tm:8000/v1/traces"
    del env["THINKMETER_ENDPOINT"]
    # The only full URL: used exactly as given.
    assert resolve(env=env).traces_url == "http://collector:4318/custom/traces"
    del env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    assert resolve(env=env).traces_url == "http://otel:4318/v1/traces"
    del env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    settings = resolve(env=env)
    assert (settings.traces_url, settings.source) == ("http://127.0.0.1:8000/v1/traces", "default")


def test_full_traces_url_gives_the_api_base() -> None:
    settings = resolve(env={**KEY, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://tm.example.com/v1/traces"})
    assert settings.api_url == "https://tm.example.com/api/v1"


def test_key_from_environment_or_otel_headers() -> None:
    assert resolve(env=KEY).api_key == "tm_key"
    settings = resolve(env={"OTEL_EXPORTER_OTLP_HEADERS": "x-team=ml,Authorization=Bearer%20tm_from_headers"})
    assert settings.api_key == "tm_from_headers"
    assert settings.headers == {"x-team": "ml", "authorization": "Bearer tm_from_headers"}
    # The signal-specific variable wins over the generic one.
    settings = resolve(env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer a",
                            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer b"})
    assert settings.api_key == "b"


def test_key_is_not_in_the_repr() -> None:
    assert "secret" not in repr(resolve(api_key="secret", env={}))


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="THINKMETER_API_KEY"):
        resolve(env={})
    assert resolve(env={}, require_key=False).api_key == ""


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://h", "http://", "http://h/?x=1"])
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(ConfigurationError, match="endpoint"):
        resolve(endpoint=url, api_key="k", env={})


def test_bad_otlp_headers_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="key=value"):
        resolve(env={**KEY, "OTEL_EXPORTER_OTLP_HEADERS": "justtext"})


def test_sdk_disabled_needs_no_key() -> None:
    settings = resolve(env={"OTEL_SDK_DISABLED": "true"})
    assert settings.disabled and settings.api_key == ""


def test_capture_content_flag() -> None:
    assert resolve(env=KEY).capture_content is False
    assert resolve(env={**KEY, "THINKMETER_CAPTURE_CONTENT": "true"}).capture_content is True
    assert resolve(capture_content=False, env={**KEY, "THINKMETER_CAPTURE_CONTENT": "1"}).capture_content is False
    with pytest.raises(ConfigurationError, match="THINKMETER_CAPTURE_CONTENT"):
        resolve(env={**KEY, "THINKMETER_CAPTURE_CONTENT": "maybe"})


def test_service_name() -> None:
    assert resolve(service_name="billing", env=KEY).service_name == "billing"
    assert resolve(env=KEY).service_name is None  # left to OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
