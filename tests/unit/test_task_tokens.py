"""A task token nobody waits on any more is not an error: SendTaskSuccess may answer
`TaskDoesNotExist` (the execution ended or was stopped by a cancel), `TaskTimedOut` (the
callback wait gave way to polling) or `InvalidToken` (used already), all handled alike.

moto answers `InvalidToken` for a stopped execution's token, so these tests give a real
Step Functions client AWS's own error through botocore's Stubber.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber

from wanflow.config import Config
from wanflow.following import Follower

ENV = {
    "TABLE_NAME": "t",
    "BUCKET_NAME": "b",
    "UPSTREAM_BASE_URL": "https://upstream.invalid",
    "UPSTREAM_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:up",
    "CALLBACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cb",
}


@pytest.fixture
def sfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def follower(client: Any) -> Follower:
    # Sending a token back needs Step Functions only.
    return Follower(Config.from_env(ENV), cast(Any, None), client)


@pytest.mark.parametrize("code", ["TaskDoesNotExist", "InvalidToken", "TaskTimedOut"])
def test_resuming_a_token_nobody_waits_on_is_not_an_error(
    sfn: tuple[Any, Stubber], code: str
) -> None:
    client, stubber = sfn
    stubber.add_client_error("send_task_success", service_error_code=code, http_status_code=400)
    # WHEN follow sends back a token whose execution is gone, THEN nothing is raised (the
    # step would fail, and its retries fail alike)
    follower(client).resume("token-of-a-stopped-execution", "ended")


def test_other_step_functions_errors_still_raise(sfn: tuple[Any, Stubber]) -> None:
    client, stubber = sfn
    stubber.add_client_error(
        "send_task_success", service_error_code="KmsThrottlingException", http_status_code=400
    )
    with pytest.raises(client.exceptions.KmsThrottlingException):
        follower(client).resume("token", "ended")
