"""DynamoDB saying "not now" becomes StoreUnavailable, the error the state machine retries.

Throttling and service errors come from a real DynamoDB client through botocore's Stubber (moto
never throttles); a refused connection is a real one, to a port nobody listens on.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from wanflow.store import TRANSIENT_CODES, StoreUnavailable, TaskStore, translate_errors
from wanflow.tenants import Tenants
from wanflow_local.stack import LocalStack


def dynamodb(endpoint_url: str | None = None, config: BotoConfig | None = None) -> Any:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        config=config,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = dynamodb()
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.mark.parametrize("code", sorted(TRANSIENT_CODES))
def test_throttling_and_service_errors_raise_store_unavailable(
    stubbed: tuple[Any, Stubber], code: str
) -> None:
    client, stubber = stubbed
    status = 500 if code == "InternalServerError" else 503 if code == "ServiceUnavailable" else 400
    stubber.add_client_error("get_item", service_error_code=code, http_status_code=status)
    with pytest.raises(StoreUnavailable, match=code):
        TaskStore("tasks", client).get("tsk_1")


def test_a_failed_condition_is_still_a_conflict_not_an_outage(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "put_item", service_error_code="ConditionalCheckFailedException", http_status_code=400
    )
    store = TaskStore("tasks", client)
    assert store.record_event("tsk_1", "ev", "upstream_callback", {}) is False
    # AND a request DynamoDB refuses for good stays a ClientError (retrying will not help)
    stubber.add_client_error(
        "get_item", service_error_code="ValidationException", http_status_code=400
    )
    with pytest.raises(ClientError):
        store.get("tsk_1")


def test_other_dynamodb_users_sharing_the_client_get_it_too(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "get_item", service_error_code="ThrottlingException", http_status_code=400
    )
    with pytest.raises(StoreUnavailable):
        Tenants("tasks", translate_errors(client)).webhook_secret("acme")


def test_an_unreachable_dynamodb_raises_store_unavailable() -> None:
    with socket.socket() as probe:  # a port bound, then released: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = dynamodb(
        endpoint_url=f"http://127.0.0.1:{port}",
        config=BotoConfig(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(StoreUnavailable, match="unreachable"):
        TaskStore("tasks", client).get("tsk_1")


def test_the_state_machine_sees_the_error_type_store_unavailable(stack: LocalStack) -> None:
    # GIVEN the functions' own DynamoDB client throttled (ProvisionedThroughputExceeded)
    lambdas = stack.aws.client("lambda")
    with Stubber(stack.function_runtime("LifecycleFunction").dynamodb) as stubber:
        stubber.add_client_error(
            "get_item",
            service_error_code="ProvisionedThroughputExceededException",
            http_status_code=400,
        )
        # WHEN a lifecycle step reads its task
        answer = lambdas.invoke(
            FunctionName=stack.stack.ref("LifecycleFunction"),
            Payload=json.dumps({"step": "finalize", "task_id": "tsk_throttled"}),
        )
    # THEN the function fails with the error type the state machine's Retry names
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "StoreUnavailable"
