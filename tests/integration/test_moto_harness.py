"""The moto harness: real state machine executions whose Lambda tasks run our handlers in-process.

One moto and one deploy of the toy stack in fixtures/harness/ serve the whole module; each test
starts its own executions under unique names.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kit.waiting import wait_for
from wanflow_local.aws import LocalAws, execution_history, wait_for_execution
from wanflow_local.deploy import DeployError, Stack, deploy

HARNESS = Path(__file__).resolve().parent / "fixtures" / "harness"


@pytest.fixture(scope="module")
def stack(aws: LocalAws) -> Iterator[Stack]:
    deployed = deploy(
        aws, HARNESS / "template.yaml", stack_name="harness", parameters={"TokenTtlSeconds": 600}
    )
    yield deployed
    deployed.close()


@pytest.fixture(scope="module")
def sfn(aws: LocalAws) -> Any:
    return aws.client("stepfunctions")


def start(sfn: Any, state_machine_arn: str, payload: dict[str, Any]) -> str:
    """Start an execution under a fresh name (moto names a nameless one `None`)."""
    name = f"run-{uuid.uuid4().hex[:12]}"
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
    )
    return str(response["executionArn"])


def run(
    sfn: Any, state_machine_arn: str, payload: dict[str, Any], timeout: float = 20
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run an execution to its end: its description (output parsed) and its history."""
    execution_arn = start(sfn, state_machine_arn, payload)
    description: dict[str, Any] = dict(wait_for_execution(sfn, execution_arn, timeout=timeout))
    if "output" in description:
        description["output"] = json.loads(description["output"])
    history: list[dict[str, Any]] = [dict(e) for e in execution_history(sfn, execution_arn)]
    return description, history


def of_type(history: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event for event in history if event["type"] == event_type]


def entered_states(history: list[dict[str, Any]]) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in history
        if "stateEnteredEventDetails" in event
    ]


# --- 0. The harness itself: stop() undoes start() (runs first, before the module's moto) ------


def test_stop_restores_moto_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config

    original_invoke = LambdaSimpleBackend.invoke
    config_before = {key: default_user_config.get(key) for key in ("lambda", "stepfunctions")}
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("MOTO_PORT", raising=False)
    local = LocalAws()
    try:
        local.start()
    except RuntimeError:
        pytest.skip("another test's LocalAws is running in this process (test order changed)")
    try:
        assert LambdaSimpleBackend.invoke is not original_invoke
        assert default_user_config["stepfunctions"] == {"execute_state_machine": True}
        assert os.environ["AWS_ENDPOINT_URL"] == local.endpoint_url
        assert os.environ["MOTO_PORT"] == local.endpoint_url.rsplit(":", 1)[1]
        assert "AWS_PROFILE" not in os.environ
        with pytest.raises(RuntimeError, match="already running"):
            LocalAws().start()
    finally:
        local.stop()
    local.stop()  # a second stop is harmless

    assert LambdaSimpleBackend.invoke is original_invoke
    assert {key: default_user_config.get(key) for key in config_before} == config_before
    assert os.environ["AWS_PROFILE"] == "someone-real"
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert "MOTO_PORT" not in os.environ


# --- 1. Task → Choice → Wait → Task → Succeed -----------------------------------------------


def test_pipeline_passes_handler_outputs_through_choice_and_wait(stack: Stack, sfn: Any) -> None:
    # GIVEN value 6, doubled to 12 by the first task: the Choice goes to the 1 s Wait
    started = time.monotonic()

    # WHEN the pipeline runs
    description, history = run(
        sfn, stack.ref("PipelineStateMachine"), {"value": 6, "wait_seconds": 1}
    )

    # THEN it succeeds with the second task's result, having passed every state
    assert description["status"] == "SUCCEEDED", description
    assert description["output"] == {"total": 13}
    assert entered_states(history) == ["Inspect", "Route", "Pause", "Finish", "Done"]
    assert time.monotonic() - started >= 1.0  # the Wait really waited its SecondsPath
    # ResultSelector/ResultPath saw the Lambda integration's shape ({StatusCode, Payload})
    inspect_exit = next(
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "Inspect"
    )
    assert inspect_exit["inspect"] == {
        "doubled": 12,
        "wait_seconds": 1,
        "function": stack.functions["WorkerFunction"].name,
        "status_code": 200,
    }


def test_pipeline_choice_default_fails_without_waiting(stack: Stack, sfn: Any) -> None:
    description, history = run(
        sfn, stack.ref("PipelineStateMachine"), {"value": 2, "wait_seconds": 1}
    )

    assert description["status"] == "FAILED"
    assert (description["error"], description["cause"]) == ("TooSmall", "doubled value under 10")
    assert entered_states(history) == ["Inspect", "Route", "TooSmall"]


# --- 2. Retry and Catch on the handler's exception class -------------------------------------


def test_retry_on_exception_class_name_recovers(stack: Stack, sfn: Any) -> None:
    # GIVEN a handler that raises TransientUpstreamError on its first attempt only
    description, history = run(sfn, stack.ref("RetryStateMachine"), {"op": "flaky"})

    # THEN the Retry on that class name runs it again and the execution succeeds
    assert description["status"] == "SUCCEEDED", description
    assert description["output"] == {"attempts": 2}
    failures = [e["taskFailedEventDetails"] for e in of_type(history, "TaskFailed")]
    assert [f["error"] for f in failures] == ["TransientUpstreamError"]
    cause = json.loads(failures[0]["cause"])
    assert cause["errorType"] == "TransientUpstreamError"
    assert cause["errorMessage"].startswith("first attempt for run-")
    assert len(of_type(history, "TaskSucceeded")) == 1


def test_catch_routes_a_permanent_error_to_recovery(stack: Stack, sfn: Any) -> None:
    # GIVEN a handler that always raises PermanentUpstreamError, which no Retry names
    description, history = run(sfn, stack.ref("RetryStateMachine"), {"op": "fail"})

    # THEN one attempt fails and the Catch on States.ALL routes to Recover with the Lambda error
    assert description["status"] == "SUCCEEDED", description
    output = description["output"]
    assert output["recovered"] is True
    assert output["error"] == "PermanentUpstreamError"
    assert output["cause"]["errorMessage"] == "upstream said no"
    assert "worker/app.py" in output["cause"]["stackTrace"][0]
    assert [e["taskFailedEventDetails"]["error"] for e in of_type(history, "TaskFailed")] == [
        "PermanentUpstreamError"
    ]
    assert entered_states(history) == ["Call", "Recover"]


def test_direct_invoke_returns_the_lambda_error_shape(stack: Stack, aws: LocalAws) -> None:
    lambda_client = aws.client("lambda")
    function = stack.functions["WorkerFunction"]

    failed = lambda_client.invoke(FunctionName=function.name, Payload=b'{"op": "fail"}')
    ok = lambda_client.invoke(FunctionName=function.arn, Payload=b'{"op": "context"}')

    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == (
        "PermanentUpstreamError",
        "upstream said no",
    )
    assert isinstance(error["stackTrace"], list)
    assert "FunctionError" not in ok
    context = json.loads(ok["Payload"].read())
    assert context["function_name"] == function.name
    assert context["invoked_function_arn"] == function.arn
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 10_000
    assert uuid.UUID(context["aws_request_id"])


# --- 3. waitForTaskToken: SendTaskSuccess, and States.Timeout ---------------------------------


def _wait_for_token(aws: LocalAws, table: str, task_id: str, timeout: float = 10) -> str:
    dynamodb = aws.client("dynamodb")

    def token() -> str | None:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": task_id}}).get("Item")
        return str(item["token"]["S"]) if item else None

    return wait_for(token, timeout=timeout, what=f"the token of {task_id} to be stored")


def test_send_task_success_resumes_the_execution(stack: Stack, sfn: Any, aws: LocalAws) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    sent_at: list[float] = []

    def callback() -> None:
        # Another thread, as the webhook receiver would be: read the stored token, resume.
        token = _wait_for_token(aws, stack.ref("TokensTable"), task_id)
        sent_at.append(time.time())
        aws.client("stepfunctions").send_task_success(
            taskToken=token, output=json.dumps({"upstream_status": "done"})
        )

    sender = threading.Thread(target=callback)
    sender.start()
    description, history = run(
        sfn, stack.ref("CallbackStateMachine"), {"task_id": task_id, "timeout_seconds": 30}
    )
    sender.join(timeout=5)

    assert description["status"] == "SUCCEEDED", description
    output = description["output"]
    assert output["callback"] == {"upstream_status": "done"}
    assert entered_states(history) == ["WaitForCallback", "Resumed"]
    assert len(of_type(history, "TaskSubmitted")) == 1
    # The next state's handler ran soon after SendTaskSuccess (figure in the bench).
    assert 0 <= output["resumed"]["called_at"] - sent_at[0] < 5


def test_callback_timeout_is_caught_as_states_timeout(
    stack: Stack, sfn: Any, aws: LocalAws
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"

    description, history = run(
        sfn, stack.ref("CallbackStateMachine"), {"task_id": task_id, "timeout_seconds": 1}
    )

    assert description["status"] == "SUCCEEDED", description
    assert description["output"]["fell_back"] is True
    assert description["output"]["timeout"]["Error"] == "States.Timeout"
    assert entered_states(history) == ["WaitForCallback", "Fallback"]
    assert len(of_type(history, "TaskTimedOut")) == 1
    # The handler did run (and stored its token) before the wait timed out.
    assert _wait_for_token(aws, stack.ref("TokensTable"), task_id, timeout=1)


def test_an_unknown_token_is_refused(sfn: Any) -> None:
    with pytest.raises(ClientError) as raised:
        sfn.send_task_success(taskToken="no-such-token", output="{}")
    assert raised.value.response["Error"]["Code"] == "InvalidToken"


# --- 4. Resources as the template describes them ---------------------------------------------


def test_table_has_the_template_keys_index_and_ttl(stack: Stack, aws: LocalAws) -> None:
    dynamodb = aws.client("dynamodb")
    name = stack.ref("TokensTable")

    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_status"
    assert index["KeySchema"] == [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert (ttl["TimeToLiveStatus"], ttl.get("AttributeName")) == ("ENABLED", "expires_at")
    pitr = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
    assert pitr == "ENABLED"
    assert stack.arn("TokensTable") == table["TableArn"]


def test_bucket_queue_and_secret_have_the_template_properties(stack: Stack, aws: LocalAws) -> None:
    s3, sqs = aws.client("s3"), aws.client("sqs")
    bucket = stack.ref("Bucket")

    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (rule["ID"], rule["Expiration"]["Days"]) == ("expire-results", 7)
    attributes = sqs.get_queue_attributes(QueueUrl=stack.ref("WorkQueue"), AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == stack.arn("DeadLetterQueue")
    assert int(redrive["maxReceiveCount"]) == 3
    assert attributes["Attributes"]["VisibilityTimeout"] == "60"
    secret = json.loads(
        aws.client("secretsmanager").get_secret_value(SecretId=stack.ref("SigningSecret"))[
            "SecretString"
        ]
    )
    assert secret["kid"] == "v1"
    assert len(secret["key"]) == 48
    assert secret["key"].isalnum()


def test_a_declared_role_is_created_with_its_trust_policy(stack: Stack, aws: LocalAws) -> None:
    role = aws.client("iam").get_role(RoleName=stack.ref("StatesRole"))["Role"]
    assert role["Arn"] == stack.arn("StatesRole")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}


def test_stack_reports_environment_skips_events_and_outputs(stack: Stack) -> None:
    worker = stack.functions["WorkerFunction"]
    assert worker.environment == {
        "TOKENS_TABLE": stack.ref("TokensTable"),
        "BUCKET_NAME": stack.ref("Bucket"),
        "TOKEN_TTL_SECONDS": "600",  # the parameter override, resolved through !Ref
        "STAGE": "test",
    }
    # What Lambda adds: region, name, and the session of the function's own role.
    assert worker.lambda_environment.items() >= worker.environment.items()
    assert worker.lambda_environment["AWS_LAMBDA_FUNCTION_NAME"] == worker.name
    assert worker.lambda_environment["AWS_SESSION_TOKEN"]
    assert worker.role_arn == stack.arn("WorkerFunctionRole")  # SAM's role for it, created
    assert stack.environment == {}  # no Powertools setting to share: nothing in os.environ
    layer = next(name for name in stack.skipped if name.startswith("SharedLayer"))
    assert set(stack.skipped) == {
        layer,
        "QueueDepthAlarm",
        "ProdOnlyQueue",
        "ServerlessRestApi",
        "ServerlessRestApiProdStage",
        next(name for name in stack.skipped if name.startswith("ServerlessRestApiDeployment")),
        "WorkerFunctionPokePermissionProd",
        "WorkerFunctionWork",
    }
    assert "condition IsProd is false" in stack.skipped["ProdOnlyQueue"]
    assert "served by the local API Gateway" in stack.skipped["ServerlessRestApi"]
    sqs_events = [e for e in stack.event_sources if e.type == "SQS"]
    assert [(e.target, e.properties["EventSourceArn"]) for e in sqs_events] == [
        ("WorkerFunction", stack.arn("WorkQueue"))
    ]
    assert stack.may_invoke(
        worker.name,
        "apigateway.amazonaws.com",
        f"arn:aws:execute-api:us-east-1:123456789012:{stack.ref('ServerlessRestApi')}/Prod/POST/poke",
    )
    assert stack.outputs["PipelineArn"] == stack.ref("PipelineStateMachine")
    assert stack.outputs["WorkQueueUrl"] == stack.ref("WorkQueue")
    assert stack.outputs["ApiUrl"].startswith(f"https://{stack.ref('ServerlessRestApi')}.")
    assert "ProdQueueUrl" not in stack.outputs
    assert all(f.in_process for f in stack.functions.values())


def test_functions_disagreeing_on_a_powertools_setting_are_refused(
    aws: LocalAws, tmp_path: Path
) -> None:
    """Powertools' settings are the only process-wide ones (the shared library's logger reads
    them at import): two functions may not set them differently."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    functions = {
        name: {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "fn",
                "Handler": "app.handler",
                "Runtime": "python3.12",
                "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": name}},
            },
        }
        for name in ("One", "Two")
    }
    template = tmp_path / "template.json"
    template.write_text(
        json.dumps({"Transform": "AWS::Serverless-2016-10-31", "Resources": functions})
    )

    with pytest.raises(DeployError, match="POWERTOOLS_SERVICE_NAME differs between functions"):
        deploy(aws, template, stack_name="conflict")


def test_a_transition_to_a_missing_state_is_refused(aws: LocalAws, tmp_path: Path) -> None:
    definition = {
        "StartAt": "First",
        "States": {"First": {"Type": "Pass", "Next": "Nowhere"}},
    }
    machine = {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"Definition": definition}}
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"Resources": {"Broken": machine}}))

    with pytest.raises(DeployError, match="state First goes to 'Nowhere'"):
        deploy(aws, template, stack_name="broken")


# --- 5. A handler calling DynamoDB and S3 from inside an execution ----------------------------


def test_handler_uses_dynamodb_and_s3_inside_an_execution(
    stack: Stack, sfn: Any, aws: LocalAws
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"

    description, _ = run(sfn, stack.ref("StorageStateMachine"), {"task_id": task_id})

    assert description["status"] == "SUCCEEDED", description
    assert description["output"] == {
        "status": "stored",
        "object_key": f"results/{task_id}.json",
        "object": {"task_id": task_id},
    }
    item = aws.client("dynamodb").get_item(
        TableName=stack.ref("TokensTable"), Key={"pk": {"S": task_id}}
    )
    assert item["Item"]["status"] == {"S": "stored"}
    body = aws.client("s3").get_object(Bucket=stack.ref("Bucket"), Key=f"results/{task_id}.json")
    assert json.loads(body["Body"].read()) == {"task_id": task_id}


# --- Sequential tasks (the bench times them) -------------------------------------------------


def test_ten_sequential_lambda_tasks(stack: Stack, sfn: Any, aws: LocalAws) -> None:
    function_arn = stack.arn("WorkerFunction")
    states = {
        f"Step{i}": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
            "OutputPath": "$.Payload",
            **({"Next": f"Step{i + 1}"} if i < 9 else {"End": True}),
        }
        for i in range(10)
    }
    definition = {"StartAt": "Step0", "States": states}
    chain = sfn.create_state_machine(
        name="harness-chain",
        definition=json.dumps(definition),
        # The pipeline's role may invoke the worker (IAM is enforced).
        roleArn=sfn.describe_state_machine(stateMachineArn=stack.ref("PipelineStateMachine"))[
            "roleArn"
        ],
    )["stateMachineArn"]

    description, history = run(sfn, chain, {"op": "increment", "count": 0})

    assert description["status"] == "SUCCEEDED", description
    assert description["output"] == {"op": "increment", "count": 10}
    assert len(of_type(history, "TaskSucceeded")) == 10
