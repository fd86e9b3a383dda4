"""AWS's limits hold on the local stack (Lambda, Step Functions, SQS), as `wanflow_local.limits`
lists them: what only works thanks to moto's leniency must fail here first.

One moto and one deploy of the toy stack in fixtures/harness/ serve the module; each test puts
its own handler on a function and takes it off again. API Gateway's limits are tested over
HTTP in tests/e2e/test_gateway_limits_e2e.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from wanflow_local import limits
from wanflow_local.aws import LocalAws, wait_for_execution
from wanflow_local.deploy import Stack, deploy

HARNESS = Path(__file__).resolve().parent / "fixtures" / "harness"
#: Over Lambda's 6 MB, under API Gateway's 10 MB.
SEVEN_MB = 7 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(aws: LocalAws) -> Iterator[Stack]:
    deployed = deploy(aws, HARNESS / "template.yaml", stack_name="limits")
    yield deployed
    deployed.close()


@pytest.fixture
def handler_of(stack: Stack) -> Iterator[Callable[[str, Callable[..., Any]], str]]:
    """Put a handler on a function of the stack for the test: returns the function's name."""
    replaced: dict[str, Any] = {}

    def put(logical_id: str, handler: Callable[..., Any]) -> str:
        name = str(stack.ref(logical_id))
        replaced.setdefault(name, LocalAws.handler(name))
        LocalAws.register_handler(name, handler)
        return name

    yield put
    for name, handler in replaced.items():
        if handler is None:
            LocalAws.unregister_handler(name)
        else:
            LocalAws.register_handler(name, handler)


def error_of(payload: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(payload)
    return error


# --- Lambda: a function past its Timeout ------------------------------------------------------


def test_a_function_past_its_timeout_times_out_at_its_deadline(
    aws: LocalAws, handler_of: Callable[[str, Callable[..., Any]], str]
) -> None:
    # GIVEN a function with a 1 s Timeout whose handler takes 2.5 s, then writes down it ended
    ended = threading.Event()

    def slow(event: Any, context: Any) -> dict[str, str]:
        time.sleep(2.5)
        ended.set()
        return {"late": "result"}

    name = handler_of("WorkerFunction", slow)
    lambdas = aws.client("lambda")
    before = lambdas.get_function_configuration(FunctionName=name)["Timeout"]
    lambdas.update_function_configuration(FunctionName=name, Timeout=1)
    try:
        # WHEN it is invoked
        started = time.monotonic()
        answer = lambdas.invoke(FunctionName=name, Payload=b"{}")
        waited = time.monotonic() - started
    finally:
        lambdas.update_function_configuration(FunctionName=name, Timeout=before)

    # THEN the caller has Lambda's timeout error at the deadline, not when the handler ended
    error = error_of(answer["Payload"].read())
    assert answer["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "late" not in json.dumps(error)
    assert 1.0 <= waited < 2.0, waited
    assert not ended.is_set()
    # and the handler, which cannot be stopped here, still runs to its end (unlike on AWS)
    assert ended.wait(timeout=5)


# --- Lambda: 6 MB request and response --------------------------------------------------------


def test_an_invocation_over_6_mb_is_refused_before_the_function_runs(
    aws: LocalAws, handler_of: Callable[[str, Callable[..., Any]], str]
) -> None:
    # GIVEN a function that counts its invocations
    calls: list[int] = []

    def counted(event: Any, context: Any) -> dict[str, Any]:
        calls.append(1)
        return {}

    name = handler_of("WorkerFunction", counted)
    lambdas = aws.client("lambda")
    # WHEN it is invoked with 7 MB
    with pytest.raises(ClientError) as refused:
        lambdas.invoke(FunctionName=name, Payload=json.dumps({"pad": "x" * SEVEN_MB}))
    # THEN Lambda's 413 RequestEntityTooLargeException, and the function never ran
    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6291456 bytes" in refused.value.response["Error"]["Message"]
    assert calls == []
    # while 6 MB less a little (the limit counts the whole payload) is run
    fits = json.dumps({"pad": "x" * (limits.LAMBDA_SYNC_REQUEST_MAX_BYTES - 20)})
    assert len(fits) <= limits.LAMBDA_SYNC_REQUEST_MAX_BYTES
    assert "FunctionError" not in lambdas.invoke(FunctionName=name, Payload=fits)
    assert calls == [1]


def test_a_response_over_6_mb_fails_the_invocation_on_every_path(
    stack: Stack, handler_of: Callable[[str, Callable[..., Any]], str]
) -> None:
    # GIVEN a function answering 7 MB
    handler_of("WorkerFunction", lambda event, context: {"pad": "x" * SEVEN_MB})
    # WHEN a trigger (SQS, S3) or API Gateway runs it: the in-process path, which moto's own
    # check of the Lambda API's response does not see
    ran = stack.functions["WorkerFunction"].invoke({})
    # THEN the invocation failed with Lambda's error, the 7 MB dropped
    assert ran is not None
    payload, failed = ran
    assert failed
    error = error_of(payload)
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291556 bytes)" in error["errorMessage"]
    assert len(payload) < 1000


# --- Step Functions: 256 KB state payload ----------------------------------------------------


def test_start_execution_over_256_kb_is_refused(stack: Stack, aws: LocalAws) -> None:
    sfn = aws.client("stepfunctions")
    arn = stack.ref("StorageStateMachine")
    name = f"big-{uuid.uuid4().hex[:12]}"
    over = json.dumps({"pad": "x" * limits.SFN_PAYLOAD_MAX_BYTES})
    # WHEN an execution is started with an input over 256 KB
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=arn, name=name, input=over)
    # THEN the call is refused, as AWS does, and no execution exists
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "262144" in refused.value.response["Error"]["Message"]
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert name not in {execution["name"] for execution in listed}


def test_a_task_result_over_256_kb_fails_the_execution(
    stack: Stack, aws: LocalAws, handler_of: Callable[[str, Callable[..., Any]], str]
) -> None:
    # GIVEN the Store task's function answers 300 KB (moto 5.2.5 enforces this one itself)
    handler_of("StorageFunction", lambda event, context: {"pad": "x" * 300 * 1024})
    sfn = aws.client("stepfunctions")
    # WHEN the state machine runs
    started = sfn.start_execution(
        stateMachineArn=stack.ref("StorageStateMachine"),
        name=f"result-{uuid.uuid4().hex[:12]}",
        input="{}",
    )
    description = wait_for_execution(sfn, started["executionArn"], timeout=20)
    # THEN the execution fails with States.DataLimitExceeded
    assert description["status"] == "FAILED", description
    assert description.get("error") == "States.DataLimitExceeded", description


# --- SQS: message size, delay, visibility (moto 5.2.5 enforces each) -------------------------


def test_sqs_refuses_a_message_over_1_mib(stack: Stack, aws: LocalAws) -> None:
    sqs, queue = aws.client("sqs"), stack.ref("WorkQueue")
    fits = "x" * limits.SQS_MESSAGE_MAX_BYTES
    sqs.send_message(QueueUrl=queue, MessageBody=fits)
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=queue, MessageBody=fits + "x")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    # a batch counts its messages together
    half = "x" * (limits.SQS_MESSAGE_MAX_BYTES // 2 + 1)
    with pytest.raises(ClientError) as batch:
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": "a", "MessageBody": half}, {"Id": "b", "MessageBody": half}],
        )
    assert batch.value.response["Error"]["Code"] == "AWS.SimpleQueueService.BatchRequestTooLong"
    sqs.purge_queue(QueueUrl=queue)


def test_sqs_refuses_a_delay_over_900_s_and_a_visibility_over_12_h(
    stack: Stack, aws: LocalAws
) -> None:
    sqs, queue = aws.client("sqs"), stack.ref("DeadLetterQueue")
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=queue, MessageBody="{}", DelaySeconds=901)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    # in a batch, the entry fails and the others are sent
    sent = sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "late", "MessageBody": "{}", "DelaySeconds": 901},
            {"Id": "now", "MessageBody": "{}", "DelaySeconds": 0},
        ],
    )
    assert [entry["Id"] for entry in sent["Failed"]] == ["late"]
    assert [entry["Id"] for entry in sent["Successful"]] == ["now"]
    # a received message's visibility cannot go past 12 hours
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    with pytest.raises(ClientError) as too_long:
        sqs.change_message_visibility(
            QueueUrl=queue,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=limits.SQS_VISIBILITY_MAX_S + 1,
        )
    assert too_long.value.response["Error"]["Code"] == "InvalidParameterValue"
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
