"""Uploads become tasks: an image under uploads/<tenant>/ with its request as metadata."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

from PIL import Image
from stackkit import invoke, request

from wanflow.submission import task_id_for
from wanflow.task import TaskStatus
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
    return task_id_for(tenant, f"upload:{key}:{etag}"), key, etag


def appear(stack: LocalStack, task_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.store.get(task_id)
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
    assert invoke(stack, "SubmitFunction", event) == {"tasks": [task_id]}
    # THEN no second upstream task
    assert len(stack.sim.requests("create")) == creates
    assert stack.store.get(task_id).created_at == first.created_at
    stack.finish(task_id)
