"""`wanflow redrive-uploads`: the upload events Lambda gave up on (kept in the upload function's
dead-letter queue, which SQS cannot redrive to a function) are invoked again, and each message
is deleted once its invocation was accepted."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from typing import Any

import pytest
from PIL import Image
from stackkit import request

from wanflow.errors import TaskNotFound
from wanflow.task import TaskStatus
from wanflow.uploads import upload_task_id
from wanflow_client.cli import main
from wanflow_local.aws import LocalAws
from wanflow_local.stack import LocalStack


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 400)).save(buf, format="PNG")
    return buf.getvalue()


def failed_upload(stack: LocalStack) -> tuple[str, str]:
    """An upload whose S3 event the upload function failed on, kept in its dead-letter queue
    as Lambda keeps it (the event as the body, the error as attributes); (task id, body)."""
    name = stack.stack.functions["UploadFunction"].name
    working = LocalAws.handler(name)
    assert working is not None
    got: list[Any] = []
    delivered = threading.Event()

    def down(event: Any, context: Any) -> Any:  # e.g. DynamoDB unreachable for hours
        got.append(event)
        delivered.set()
        raise RuntimeError("injected outage")

    LocalAws.register_handler(name, down)
    try:
        body = request("wan26_i2v")
        del body["input"]["img_url"]
        key = f"uploads/acme/{uuid.uuid4().hex}"
        stack.aws.client("s3").put_object(
            Bucket=stack.stack.ref("ResultsBucket"),
            Key=key,
            Body=png(),
            Metadata={"request": json.dumps(body)},
        )
        assert delivered.wait(10), "S3's notification never reached the upload function"
    finally:
        LocalAws.register_handler(name, working)
    stack.aws.client("sqs").send_message(
        QueueUrl=stack.stack.ref("SubmitDeadLetterQueue"),
        MessageBody=json.dumps(got[0]),
        MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": "injected outage"},
        },
    )
    return upload_task_id("acme", key), key


def queued(stack: LocalStack) -> int:
    attributes = stack.aws.client("sqs").get_queue_attributes(
        QueueUrl=stack.stack.ref("SubmitDeadLetterQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def appear(stack: LocalStack, task_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.store.get(task_id)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def redrive(stack: LocalStack, *extra: str) -> int:
    return main(
        [
            "redrive-uploads",
            "--queue-url",
            stack.stack.ref("SubmitDeadLetterQueue"),
            "--function",
            stack.stack.outputs["UploadFunctionName"],
            *extra,
        ]
    )


def test_a_failed_upload_event_is_redriven_and_its_message_deleted(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upload the function failed on: no task, its event in the dead-letter queue
    task_id, key = failed_upload(stack)
    with pytest.raises(TaskNotFound):
        stack.store.get(task_id)
    assert queued(stack) == 1
    # WHEN the operator redrives the queue (the outage over)
    code = redrive(stack)
    # THEN the upload became its task, the message is gone, and the command said so
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{key} (had failed: injected outage)" in out
    assert "1 event(s) redriven" in out
    record = appear(stack, task_id)
    assert record.status is not TaskStatus.FAILED, record.error
    assert queued(stack) == 0
    stack.finish(task_id)


def test_a_message_that_is_no_event_is_kept(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, url = stack.aws.client("sqs"), stack.stack.ref("SubmitDeadLetterQueue")
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    try:
        code = redrive(stack)
        out = capsys.readouterr().out
        assert code == 1, out
        assert "not an S3 event" in out
        assert "0 event(s) redriven" in out
        assert queued(stack) == 1  # hidden for the run's visibility timeout, not deleted
    finally:
        sqs.purge_queue(QueueUrl=url)
