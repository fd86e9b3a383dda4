"""A Runtime is built from the environment it is given, and from nothing else."""

from __future__ import annotations

import os

import pytest

from wanflow.config import ConfigError
from wanflow.runtime import Runtime, function_environ, init_environ

ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDFUNCTION",
    "AWS_SECRET_ACCESS_KEY": "function-secret",
    "AWS_SESSION_TOKEN": "function-token",
    "AWS_REGION": "eu-west-1",
    "TABLE_NAME": "tasks",
    "BUCKET_NAME": "results",
    "UPSTREAM_BASE_URL": "https://upstream.invalid",
    "UPSTREAM_KEY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:up-AbCdEf",
    "CALLBACK_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cb-AbCdEf",
}


@pytest.fixture
def other_process_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.environ with another function's credentials, region and endpoint."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDOTHER",
        "AWS_SECRET_ACCESS_KEY": "other-secret",
        "AWS_SESSION_TOKEN": "other-token",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)


def test_a_missing_variable_fails_at_once_naming_it() -> None:
    environ = {k: v for k, v in ENV.items() if k != "TABLE_NAME"}
    with pytest.raises(ConfigError, match="TABLE_NAME"):
        Runtime.from_environ(environ)


def test_the_runtime_keeps_its_own_copy_of_the_environment() -> None:
    environ = dict(ENV)
    runtime = Runtime.from_environ(environ)
    environ["TABLE_NAME"] = "changed"
    assert runtime.environ["TABLE_NAME"] == "tasks"
    assert runtime.config.table_name == "tasks"


@pytest.mark.usefixtures("other_process_environ")
def test_clients_take_the_environment_given_never_os_environ() -> None:
    runtime = Runtime.from_environ(ENV)
    # WHEN clients are built while os.environ holds another function's settings
    credentials = runtime.session.get_credentials()
    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    # THEN they have this environment's credentials, region and (no) endpoint
    assert (frozen.access_key, frozen.token) == ("AKIDFUNCTION", "function-token")
    assert runtime.sfn.meta.region_name == "eu-west-1"
    assert runtime.sfn.meta.endpoint_url == "https://states.eu-west-1.amazonaws.com"
    # AND an endpoint of the environment's own is taken, by service where one is named
    local = Runtime.from_environ(
        {
            **ENV,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "AWS_ENDPOINT_URL_SFN": "http://127.0.0.1:8083",
        }
    )
    assert local.sfn.meta.endpoint_url == "http://127.0.0.1:8083"
    assert local.s3.meta.endpoint_url == "http://127.0.0.1:4566"


def test_a_session_without_credentials_in_the_environment_is_refused() -> None:
    runtime = Runtime.from_environ({k: v for k, v in ENV.items() if k != "AWS_ACCESS_KEY_ID"})
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
        runtime.session  # noqa: B018


def test_collaborators_are_built_once_per_runtime_and_never_shared() -> None:
    first, second = Runtime.from_environ(ENV), Runtime.from_environ(ENV)
    assert first.store is first.store
    assert first.store is not second.store
    assert first.dynamodb is not second.dynamodb


def test_init_environ_is_os_environ_unless_a_function_environ_is_given() -> None:
    assert init_environ() is os.environ
    with function_environ(ENV):
        assert dict(init_environ()) == ENV
    assert init_environ() is os.environ
