"""Uploads become tasks: POST /v1/uploads grants a presigned PUT for an image whose request is
kept in the table; an image put under uploads/<tenant>/ with its request as metadata works too."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import httpx
from PIL import Image
from stackkit import event, invoke, request

from wanflow import keys
from wanflow.task import TaskStatus
from wanflow.uploads import upload_task_id
from wanflow_local.s3events import object_created
from wanflow_local.stack import LocalStack


def png(width: int = 400, height: int = 400, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def upload(stack: LocalStack, data: bytes, body: Any | None, tenant: str = "acme") -> str:
    """Put an image as a client's presigned PUT would; the task id it must become."""
    return put(stack, data, body, tenant)[0]


def put(
    stack: LocalStack, data: bytes, body: Any | None, tenant: str = "acme"
) -> tuple[str, str, str]:
    """Put an image with its request; (task id, key, ETag)."""
    key = f"uploads/{tenant}/{uuid.uuid4().hex}"
    s3 = stack.aws.client("s3")
    metadata = {} if body is None else {"request": json.dumps(body)}
    done = s3.put_object(
        Bucket=stack.stack.ref("ResultsBucket"), Key=key, Body=data, Metadata=metadata
    )
    etag = done["ETag"].strip('"')
    return upload_task_id(tenant, key), key, etag


def appear(stack: LocalStack, task_id: str, timeout: float = 20.0) -> Any:
    """The task of an upload once it is recorded and, unless it failed at once, followed (its
    execution started: submit starts it just before it records the task)."""
    sfn = stack.aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        try:
            record = stack.store.get(task_id)
            if record.status is not TaskStatus.FAILED:
                sfn.describe_execution(executionArn=stack.execution_arn(task_id))
            return record
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_an_uploaded_image_becomes_a_task_that_succeeds(stack: LocalStack) -> None:
    body = request("wan26_i2v")
    del body["input"]["img_url"]
    task_id = upload(stack, png(), body)
    appear(stack, task_id)
    record, execution = stack.finish(task_id)
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    # the upstream got a presigned URL of the uploaded object, not the bytes
    sent = record.request["input"]["img_url"]
    assert sent.startswith(stack.aws.endpoint_url)
    assert "/uploads/acme/" in sent
    assert stack.objects(f"results/acme/{task_id}/")


def test_a_bad_upload_is_a_failed_task_with_the_reason(stack: LocalStack) -> None:
    assert stack.sim is not None
    creates = len(stack.sim.requests("create"))
    body = request("wan26_i2v")
    cases = {
        upload(stack, png(mode="RGBA"), body): "image_has_alpha",
        upload(stack, png(200, 200), body): "image_dimensions",
        upload(stack, b"not an image", body): "invalid_image",
        upload(stack, png(), None): "upload_request_missing",
        upload(stack, png(), {"model": "wan26_i2v", "input": {}, "x": 1}): "unknown_field",
        upload(stack, png(), request("wan2.6-t2v") | {"duration": 7}): "invalid_value",
    }
    for task_id, code in cases.items():
        record = appear(stack, task_id)
        assert record.status is TaskStatus.FAILED, code
        assert record.error is not None
        assert (record.error.code, record.error.retryable) == (code, False)
    assert len(stack.sim.requests("create")) == creates  # nothing was sent upstream


def test_the_same_notification_twice_makes_one_task(stack: LocalStack) -> None:
    assert stack.sim is not None
    body = request("wan26_i2i-edit")
    body["input"]["messages"][0]["content"] = [{"text": "make it a watercolor"}]
    task_id, key, etag = put(stack, png(512, 512), body)
    first = appear(stack, task_id)
    creates = len(stack.sim.requests("create"))
    # WHEN S3 delivers the same event again (it may), a little later: the image URL we would
    # presign now differs from the first one
    time.sleep(1.1)
    event = object_created(stack.stack.ref("ResultsBucket"), key, etag, 1, "us-east-1")
    assert invoke(stack, "UploadFunction", event) == {"tasks": [task_id]}
    # THEN no second upstream task
    assert len(stack.sim.requests("create")) == creates
    assert stack.store.get(task_id).created_at == first.created_at
    stack.finish(task_id)


# --- POST /v1/uploads ------------------------------------------------------------------------


def grant(stack: LocalStack, body: Any, tenant: str = "acme") -> httpx.Response:
    """POST /v1/uploads through the tasks function (events/api/uploads.json carrying `body`)."""
    ev = event("api/uploads")
    ev["body"] = json.dumps(body)
    ev["requestContext"]["authorizer"] = {"tenant": tenant}
    answer = invoke(stack, "TasksFunction", ev)
    return httpx.Response(answer["statusCode"], content=answer["body"].encode())


def pending_uploads(stack: LocalStack, tenant: str) -> int:
    """How many upload requests the table keeps for a tenant."""
    got = stack.aws.client("dynamodb").scan(
        TableName=stack.stack.ref("TasksTable"),
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": keys.upload_pk_prefix(tenant)}},
    )
    return len(got["Items"])


def test_a_granted_upload_with_a_request_over_2_kb_becomes_a_task(stack: LocalStack) -> None:
    # GIVEN a request too big for S3 metadata (2 KB): a prompt the upstream would truncate
    body = request("wan26_i2v")
    del body["input"]["img_url"]
    body["input"]["prompt"] = "a kitten running on the grass, " * 100
    assert len(json.dumps(body)) > 2048
    # WHEN the client asks for an upload and PUTs its image as told
    answer = grant(stack, body)
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert ticket["upload"]["method"] == "PUT"
    assert ticket["expires_at"]
    put = httpx.put(
        ticket["upload"]["url"], content=png(), headers=ticket["upload"]["headers"], timeout=10
    )
    assert put.status_code == 200, put.text
    # THEN the task named in the answer appears and succeeds, with the prompt as sent upstream
    task_id = ticket["task_id"]
    appear(stack, task_id)
    record, execution = stack.finish(task_id)
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    assert record.warnings  # the prompt was truncated, as the upstream would
    assert f"/uploads/acme/{ticket['upload_id']}" in record.request["input"]["img_url"]


def test_a_bad_request_is_refused_naming_the_field_before_any_upload(stack: LocalStack) -> None:
    body = request("wan26_i2v")
    del body["input"]["img_url"]
    cases = {
        "parameters.resolution": body | {"parameters": {"resolution": "480P"}},
        "model": body | {"model": "wan9"},
        "webhook.url": body | {"webhook": {"events": ["task.succeeded"]}},
    }
    for param, bad in cases.items():
        answer = grant(stack, bad, tenant="hooli")
        assert answer.status_code == 400, (param, answer.text)
        assert answer.json()["error"]["param"] == param
        assert "upload" not in answer.json()
    not_json = event("api/uploads") | {"body": "{"}
    not_json["requestContext"]["authorizer"] = {"tenant": "hooli"}
    assert invoke(stack, "TasksFunction", not_json)["statusCode"] == 400
    assert pending_uploads(stack, "hooli") == 0  # nothing kept, no URL handed out


def test_the_upload_url_needs_its_signed_headers_and_writes_once(stack: LocalStack) -> None:
    body = request("wan22_i2v_flash")
    del body["input"]["img_url"]
    ticket = grant(stack, body).json()
    url, headers = ticket["upload"]["url"], ticket["upload"]["headers"]
    # a PUT without the headers the URL was signed with is refused by S3
    assert httpx.put(url, content=png(), timeout=10).status_code == 403
    # with them it is taken, once: the image checked is the image the upstream gets
    assert httpx.put(url, content=png(), headers=headers, timeout=10).status_code == 200
    again = httpx.put(url, content=png(640, 640), headers=headers, timeout=10)
    assert again.status_code == 412
    record, _ = stack.finish(appear(stack, ticket["task_id"]).id)
    assert record.status is TaskStatus.SUCCEEDED
