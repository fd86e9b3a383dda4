"""Configuration comes from the environment template.yaml sets, and fails fast when wrong."""

from __future__ import annotations

import pytest

from wanflow.config import Config, ConfigError

ENV = {
    "TABLE_NAME": "t",
    "BUCKET_NAME": "b",
    "UPSTREAM_BASE_URL": "https://upstream.example",
    "UPSTREAM_KEY_SECRET_ARN": "arn:key",
    "CALLBACK_SECRET_ARN": "arn:cb",
}


def test_defaults_apply_when_optional_settings_are_absent() -> None:
    config = Config.from_env(ENV)
    assert (config.time_scale, config.upstream_read_timeout_s) == (1.0, 30.0)
    assert config.submit_settle_s == 120  # past the submit function's 90 s timeout
    assert not config.allow_http_callbacks
    assert not config.secrets_via_extension


def test_secrets_are_read_through_the_extension_only_when_the_template_says_so() -> None:
    assert Config.from_env({**ENV, "WANFLOW_SECRETS_VIA_EXTENSION": "1"}).secrets_via_extension
    # The template sets "0" when no extension layer is given.
    assert not Config.from_env({**ENV, "WANFLOW_SECRETS_VIA_EXTENSION": "0"}).secrets_via_extension


def test_the_upstream_read_timeout_is_a_parameter() -> None:
    assert Config.from_env({**ENV, "UPSTREAM_READ_TIMEOUT_S": "12"}).upstream_read_timeout_s == 12


def test_the_submit_settle_window_is_a_parameter() -> None:
    # No SQS delay bounds it any more: an hour is taken as given.
    assert Config.from_env({**ENV, "SUBMIT_SETTLE_S": "3600"}).submit_settle_s == 3600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPSTREAM_READ_TIMEOUT_S", "soon"),
        ("UPSTREAM_READ_TIMEOUT_S", "0"),
        ("TIME_SCALE", "-1"),
        ("SUBMIT_SETTLE_S", "1.5"),
        ("SUBMIT_SETTLE_S", "0"),
    ],
)
def test_a_malformed_setting_fails_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({**ENV, name: value})


@pytest.mark.parametrize("missing", sorted(ENV))
def test_a_missing_resource_name_fails_fast(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Config.from_env(env)
