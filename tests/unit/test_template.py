"""template.yaml as CloudFormation would resolve it: names within AWS's limits, the bucket and
the state machine named one way everywhere, sizes and timeouts that hold at AWS's limits.

The template is resolved with the local deployer's resolver (wanflow_local.cfn), for a stack
name and id as CloudFormation gives them; nothing is created.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from wanflow.errors import ErrorBody
from wanflow.lifecycle import MAX_OUTPUT_BYTES
from wanflow_local.cfn import Resolver, load_template, merge_globals

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
#: /tmp the lifecycle function needs besides one spooled result (the runtime, the layer's
#: caches, Powertools): the EphemeralStorage must keep this much free at the cap.
TMP_HEADROOM_MB = 256
#: API Gateway's REST integration timeout.
API_GATEWAY_TIMEOUT_S = 29
LONGEST_STACK_NAME = "w" + "-stack" * 21 + "x"  # 128 characters, CloudFormation's limit


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resolver(template: dict[str, Any], stack_name: str = "wanflow", **overrides: Any) -> Resolver:
    resolved = Resolver.for_template(
        template,
        overrides={"UpstreamBaseUrl": "https://upstream.example", **overrides},
        stack_name=stack_name,
        region="us-east-1",
        account_id="123456789012",
    )
    # Resources resolve to their logical ids, as placeholders (nothing is created here).
    resolved.fallback_ref = lambda name: name
    resolved.fallback_attribute = lambda logical_id, attribute: f"{logical_id}.{attribute}"
    return resolved


def function_props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's Properties with the Globals merged in, as SAM merges them."""
    resource = template["Resources"][logical_id]
    return merge_globals(template["Globals"]["Function"], resource["Properties"])


def functions(template: dict[str, Any]) -> list[str]:
    return [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]


def statements(resolved: Resolver, props: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in props.get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            found += resolved.resolve(policy["Statement"])
    return found


# --- names --------------------------------------------------------------------------------------


def test_the_state_machine_name_fits_80_characters_for_the_longest_stack_name(
    template: dict[str, Any],
) -> None:
    assert len(LONGEST_STACK_NAME) == 128
    resolved = resolver(template, LONGEST_STACK_NAME)
    name = resolved.resolve(template["Resources"]["TaskLifecycle"]["Properties"]["Name"])
    assert len(name) <= 80, name
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name), name


def test_every_reference_to_the_state_machine_by_name_is_its_name(
    template: dict[str, Any],
) -> None:
    # GIVEN the state machine's resolved name and ARN
    resolved = resolver(template, LONGEST_STACK_NAME)
    name = resolved.resolve(template["Resources"]["TaskLifecycle"]["Properties"]["Name"])
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    # THEN what names it rather than !Ref it (to avoid a cycle) names the same machine
    lifecycle = resolved.resolve(function_props(template, "LifecycleFunction"))
    assert lifecycle["Environment"]["Variables"]["STATE_MACHINE_ARN"] == arn
    assert any(s["Resource"] == arn for s in statements(resolved, lifecycle))
    tasks = function_props(template, "TasksFunction")
    stop = [s for s in statements(resolved, tasks) if "states:StopExecution" in s["Action"]]
    assert [s["Resource"] for s in stop] == [
        f"arn:aws:states:us-east-1:123456789012:execution:{name}:*"
    ]
    log_group = template["Resources"]["TaskLifecycleLogGroup"]["Properties"]["LogGroupName"]
    assert resolved.resolve(log_group) == f"/aws/vendedlogs/states/{name}"


def test_the_bucket_name_is_valid_and_differs_between_stacks(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["ResultsBucket"]["Properties"]["BucketName"]
    names = {resolver(template, stack).resolve(bucket) for stack in ("A", "a", LONGEST_STACK_NAME)}
    assert len(names) == 3
    for name in names:
        # S3's rules: 3-63 characters, lowercase letters, digits and hyphens (no dots here)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name), name


def test_functions_name_the_bucket_as_a_string_never_by_ref(template: dict[str, Any]) -> None:
    # A !Ref or !GetAtt of the bucket from a function it notifies is a circular dependency
    # after the SAM transform (local/check_transformed.py sees it; CloudFormation refuses it).
    resolved = resolver(template)
    bucket = resolved.resolve(template["Resources"]["ResultsBucket"]["Properties"]["BucketName"])
    assert (
        resolved.resolve(template["Globals"]["Function"])["Environment"]["Variables"]["BUCKET_NAME"]
        == bucket
    )
    for logical_id in functions(template):
        props = function_props(template, logical_id)
        assert "ResultsBucket" not in resolved.references(props), logical_id
        for statement in statements(resolved, props):
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                if str(resource).startswith("arn:aws:s3:::"):
                    assert str(resource).startswith(f"arn:aws:s3:::{bucket}/"), logical_id


def test_only_this_bucket_of_this_account_may_trigger_the_upload_function(
    template: dict[str, Any],
) -> None:
    resolved = resolver(template)
    resources = template["Resources"]
    bucket = resolved.resolve(resources["ResultsBucket"]["Properties"]["BucketName"])
    permission = resolved.resolve(resources["UploadFunctionS3Permission"]["Properties"])
    assert permission["SourceArn"] == f"arn:aws:s3:::{bucket}"
    assert permission["SourceAccount"] == "123456789012"
    assert permission["FunctionName"] == "UploadFunction.Arn"
    (notification,) = resolved.resolve(resources["ResultsBucket"]["Properties"])[
        "NotificationConfiguration"
    ]["LambdaConfigurations"]
    assert notification["Function"] == "UploadFunction.Arn"
    assert resources["ResultsBucket"]["DependsOn"] == "UploadFunctionS3Permission"
    # and no function has a SAM S3 event (its permission would have no SourceArn)
    for logical_id in functions(template):
        events = resources[logical_id]["Properties"].get("Events") or {}
        assert all(e["Type"] != "S3" for e in events.values()), logical_id


def test_the_image_reader_role_reads_uploads_only(template: dict[str, Any]) -> None:
    resolved = resolver(template)
    role = resolved.resolve(template["Resources"]["UpstreamImageReaderRole"]["Properties"])
    bucket = resolved.resolve(template["Resources"]["ResultsBucket"]["Properties"]["BucketName"])
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"arn:aws:s3:::{bucket}/uploads/*",
        }
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert role["MaxSessionDuration"] == 3600
    # Only the function that presigns the upstream's image URLs may assume it.
    for logical_id in functions(template):
        props = resolved.resolve(function_props(template, logical_id))
        variables = (props.get("Environment") or {}).get("Variables") or {}
        assume = [s for s in statements(resolved, props) if "sts:AssumeRole" in s["Action"]]
        if logical_id == "UploadFunction":
            assert variables["IMAGE_READER_ROLE_ARN"] == "UpstreamImageReaderRole.Arn"
            assert [s["Resource"] for s in assume] == ["UpstreamImageReaderRole.Arn"]
        else:
            assert "IMAGE_READER_ROLE_ARN" not in variables, logical_id
            assert assume == [], logical_id


# --- sizes and timeouts -----------------------------------------------------------------------


def test_the_lifecycle_tmp_holds_the_largest_result_with_headroom(
    template: dict[str, Any],
) -> None:
    # finalize spools one result at a time to /tmp, up to the largest cap
    size_mb = int(function_props(template, "LifecycleFunction")["EphemeralStorage"]["Size"])
    # Lambda counts EphemeralStorage in MB; read as 10^6 bytes, the smaller reading
    assert max(MAX_OUTPUT_BYTES.values()) <= (size_mb - TMP_HEADROOM_MB) * 10**6
    assert size_mb <= 10240  # Lambda's largest


def test_functions_behind_the_api_answer_within_its_29_seconds(template: dict[str, Any]) -> None:
    behind_api = [
        logical_id
        for logical_id in functions(template)
        if any(
            e["Type"] == "Api"
            for e in (template["Resources"][logical_id]["Properties"].get("Events") or {}).values()
        )
    ]
    assert {"SubmitFunction", "TasksFunction", "CallbackFunction"} <= set(behind_api)
    for logical_id in [*behind_api, "AuthorizerFunction"]:
        timeout = int(function_props(template, logical_id)["Timeout"])
        assert timeout < API_GATEWAY_TIMEOUT_S, (logical_id, timeout)


def test_a_look_settles_a_submit_only_after_every_submitting_function_has_stopped(
    template: dict[str, Any],
) -> None:
    # The lifecycle function's looks read the window; it must outlast every submitting
    # function's Timeout, or a look could fail a task whose submit is still creating it.
    settle = int(template["Parameters"]["SubmitSettleSeconds"]["Default"])
    lifecycle = function_props(template, "LifecycleFunction")
    assert lifecycle["Environment"]["Variables"]["SUBMIT_SETTLE_S"] == {
        "Ref": "SubmitSettleSeconds"
    }
    submitting = [
        logical_id
        for logical_id in functions(template)
        if "states:StartExecution"
        in json.dumps(template["Resources"][logical_id]["Properties"].get("Policies"))
    ]
    assert sorted(submitting) == ["SubmitFunction", "UploadFunction"]
    for logical_id in submitting:
        assert settle > int(function_props(template, logical_id)["Timeout"]), logical_id


def test_the_webhook_reserves_concurrency_only_when_asked(template: dict[str, Any]) -> None:
    props = function_props(template, "CallbackFunction")
    assert "ReservedConcurrentExecutions" not in resolver(template).resolve(props)
    reserved = resolver(template, WebhookConcurrency="50").resolve(props)
    assert reserved["ReservedConcurrentExecutions"] == "50"


# --- alarms and gateway responses ---------------------------------------------------------------


def test_the_errors_alarm_reads_each_function_of_this_stack(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["LambdaErrorsAlarm"]["Properties"]
    assert "MetricName" not in alarm  # an undimensioned Errors is the whole account's
    read = {}
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            assert (metric["Namespace"], metric["MetricName"]) == ("AWS/Lambda", "Errors")
            ((dimension),) = metric["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            read[query["Id"]] = dimension["Value"]["Ref"]
    assert sorted(read.values()) == sorted(functions(template))
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData")]
    assert set(re.findall(r"\w+", expression["Expression"])) == {"SUM", *read}
    assert len(alarm["Metrics"]) <= 10  # CloudWatch's limit per alarm


def test_the_alarm_topic_is_one_cloudwatch_can_publish_to(template: dict[str, Any]) -> None:
    # CloudWatch alarms cannot publish to a topic under the AWS managed key alias/aws/sns
    props = template["Resources"]["AlarmTopic"].get("Properties") or {}
    assert props.get("KmsMasterKeyId") in (None, "")


GATEWAY_RESPONSES = [
    "UNAUTHORIZED",
    "ACCESS_DENIED",
    "INTEGRATION_TIMEOUT",
    "INTEGRATION_FAILURE",
    "REQUEST_TOO_LARGE",
    "THROTTLED",
    "QUOTA_EXCEEDED",
    "MISSING_AUTHENTICATION_TOKEN",
    "BAD_REQUEST_BODY",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
]


@pytest.mark.parametrize("kind", GATEWAY_RESPONSES)
def test_api_gateways_own_answers_are_in_wanflows_error_shape(
    template: dict[str, Any], kind: str
) -> None:
    spec = template["Resources"]["Api"]["Properties"]["GatewayResponses"][kind]
    text = (
        spec["ResponseTemplates"]["application/json"]
        .replace("$context.error.messageString", json.dumps('a "quoted" message'))
        .replace("$context.error.responseType", kind)
        .replace("$context.requestId", "c0ffee")
    )
    body = ErrorBody.model_validate_json(text)
    assert body.errors == [body.error]
    status = spec.get("StatusCode")
    assert status is None or 400 <= int(status) <= 599
    assert (status is None) == kind.startswith("DEFAULT_")  # the defaults keep AWS's status


def test_a_body_too_large_points_to_uploads(template: dict[str, Any]) -> None:
    spec = template["Resources"]["Api"]["Properties"]["GatewayResponses"]["REQUEST_TOO_LARGE"]
    assert spec["StatusCode"] == 413
    assert "POST /v1/uploads" in spec["ResponseTemplates"]["application/json"]
