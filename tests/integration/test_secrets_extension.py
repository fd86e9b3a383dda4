"""Secrets reach the handlers through the Parameters and Secrets extension's HTTP API.

The local stack serves that API over moto's Secrets Manager, as the extension layer does on
Lambda, and the functions' environment (from template.yaml) says to use it.
"""

from __future__ import annotations

import socket

import pytest

from wanflow.secret_cache import SecretUnavailable, read_secret
from wanflow_local.stack import LocalStack


def test_the_functions_read_their_secrets_through_the_extension(stack: LocalStack) -> None:
    # GIVEN the stack deployed with the extension layer parameter
    assert stack.function_runtime("CallbackFunction").config.secrets_via_extension
    arn = stack.stack.ref("CallbackSigningSecret")
    stored = stack.aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    # WHEN a handler's code reads the callback-signing secret, in its function's environment
    # THEN it gets the stored value, over HTTP, with no Secrets Manager client
    assert read_secret(arn, stack.runtime("CallbackFunction").environ) == stored


def test_a_caller_without_the_session_token_is_refused(stack: LocalStack) -> None:
    arn = stack.stack.ref("CallbackSigningSecret")
    env = {**stack.runtime("CallbackFunction").environ, "AWS_SESSION_TOKEN": "not-this-function"}
    with pytest.raises(SecretUnavailable, match="401"):
        read_secret(arn, env)


def test_an_unknown_secret_is_a_clear_error(stack: LocalStack) -> None:
    with pytest.raises(SecretUnavailable, match="400"):
        read_secret(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",
            stack.runtime("CallbackFunction").environ,
        )


def test_no_extension_listening_is_a_clear_error(stack: LocalStack) -> None:
    # GIVEN a port nobody listens on (bound, then released)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **stack.runtime("CallbackFunction").environ,
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(port),
    }
    with pytest.raises(SecretUnavailable, match="unreachable"):
        read_secret(stack.stack.ref("CallbackSigningSecret"), env)
