"""IAM on the local stack: each function signs as its own role, and moto checks its policies.

These call AWS as a deployed function would (with the credentials its environment holds) and
check that what its role's policies allow works and that the rest is refused, as on AWS.
"""

from __future__ import annotations

from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from wanflow_local.aws import check_moto_version
from wanflow_local.stack import LocalStack


def _as(stack: LocalStack, function: str, service: str) -> Any:
    """A client signing as a function of the stack does (its role's session, from its
    environment)."""
    env = stack.stack.functions[function].lambda_environment
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=stack.aws.endpoint_url,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )


def _refused(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_each_function_signs_as_its_own_role(stack: LocalStack) -> None:
    for logical_id, function in stack.stack.functions.items():
        identity = _as(stack, logical_id, "sts").get_caller_identity()
        role = function.role_arn.rsplit("/", 1)[-1]
        assert f":assumed-role/{role}/{function.name}" in identity["Arn"]


def test_a_function_may_make_the_calls_its_policy_names_on_its_table_and_no_other(
    stack: LocalStack,
) -> None:
    table = stack.stack.ref("TasksTable")
    key = {"pk": {"S": "KEY#nobody"}, "sk": {"S": "KEY"}}
    dynamodb = _as(stack, "AuthorizerFunction", "dynamodb")
    assert "Item" not in dynamodb.get_item(TableName=table, Key=key)  # GetItem: allowed

    with pytest.raises(ClientError) as put:
        dynamodb.put_item(TableName=table, Item=key)  # the authorizer only reads
    assert _refused(put) == "AccessDeniedException"

    other = "not-the-tasks-table"
    stack.aws.client("dynamodb").create_table(
        TableName=other,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ClientError) as elsewhere:
        dynamodb.get_item(TableName=other, Key={"pk": {"S": "x"}})
    assert _refused(elsewhere) == "AccessDeniedException"


def test_a_query_of_an_index_needs_the_index_in_the_policy(stack: LocalStack) -> None:
    table = stack.stack.ref("TasksTable")
    query = {
        "TableName": table,
        "IndexName": "by_tenant",
        "KeyConditionExpression": "gsi1pk = :t",
        "ExpressionAttributeValues": {":t": {"S": "TENANT#nobody"}},
    }
    # The tasks function lists a tenant's tasks: its policy names the index.
    assert _as(stack, "TasksFunction", "dynamodb").query(**query)["Items"] == []
    # The lifecycle function may query the table, not the index.
    with pytest.raises(ClientError) as refused:
        _as(stack, "LifecycleFunction", "dynamodb").query(**query)
    assert _refused(refused) == "AccessDeniedException"


def test_a_secret_is_read_only_by_the_functions_whose_role_names_it(stack: LocalStack) -> None:
    upstream_key = stack.stack.ref("UpstreamApiKey")
    assert _as(stack, "SubmitFunction", "secretsmanager").get_secret_value(SecretId=upstream_key)
    # The authorizer reads API keys from the table; it has no business with the upstream's key.
    with pytest.raises(ClientError) as refused:
        _as(stack, "AuthorizerFunction", "secretsmanager").get_secret_value(SecretId=upstream_key)
    assert _refused(refused) == "AccessDeniedException"


def test_a_url_presigned_by_a_role_reads_only_what_the_role_may(stack: LocalStack) -> None:
    bucket = stack.stack.ref("ResultsBucket")
    operator = stack.aws.client("s3")
    operator.put_object(Bucket=bucket, Key="results/iam/a.txt", Body=b"result")
    operator.put_object(Bucket=bucket, Key="uploads/iam/b.png", Body=b"upload")
    # The tasks function presigns results (s3:GetObject on results/*), never uploads.
    s3 = _as(stack, "TasksFunction", "s3")
    result, upload = (
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
        for key in ("results/iam/a.txt", "uploads/iam/b.png")
    )
    assert "X-Amz-Security-Token" in result
    allowed = httpx.get(result)
    assert (allowed.status_code, allowed.content) == (200, b"result")
    refused = httpx.get(upload)
    assert refused.status_code == 403
    assert b"AccessDenied" in refused.content


def test_only_the_upload_function_may_assume_the_image_reader_role(stack: LocalStack) -> None:
    role = stack.stack.arn("UpstreamImageReaderRole")
    session = _as(stack, "UploadFunction", "sts").assume_role(RoleArn=role, RoleSessionName="probe")
    assert session["AssumedRoleUser"]["Arn"].endswith(
        ":assumed-role/" + role.split("/")[-1] + "/probe"
    )
    with pytest.raises(ClientError) as refused:
        _as(stack, "TasksFunction", "sts").assume_role(RoleArn=role, RoleSessionName="probe")
    assert _refused(refused) == "AccessDenied"


def test_keys_moto_does_not_know_are_refused(stack: LocalStack) -> None:
    stranger = boto3.client(
        "dynamodb",
        endpoint_url=stack.aws.endpoint_url,
        region_name=stack.aws.region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    with pytest.raises(ClientError) as refused:
        stranger.list_tables()
    assert _refused(refused) == "UnrecognizedClientException"


def test_the_patches_refuse_a_moto_release_they_were_not_made_for() -> None:
    import moto

    check_moto_version(str(moto.__version__))
    with pytest.raises(RuntimeError, match=r"moto 6\.0\.0 is installed.*MOTO_VERSIONS"):
        check_moto_version("6.0.0")
