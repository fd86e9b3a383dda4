"""What the upload intake does at AWS's edges, on moto: the image URLs handed to the upstream are
signed with an image reader session that outlives them (a URL dies with the credentials that
signed it), only our bucket's events are taken, and an S3 error that may pass is retried, never
turned into a failed task."""

from __future__ import annotations

import dataclasses
import io
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from PIL import Image
from simkit import Naps
from stackkit import request

from wanflow.errors import TaskNotFound
from wanflow.runtime import Runtime
from wanflow.task import TaskStatus
from wanflow.uploads import (
    IMAGE_READER_SESSION_S,
    S3_BACKOFF_S,
    SESSION_MARGIN_S,
    ImageUrls,
    upload_task_id,
)
from wanflow_local.stack import LocalStack

TTL_S = 1374  # the slowest model's: wan26_i2v 1080P 15 s (tests/unit/test_image_urls.py)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), (10, 200, 90)).save(buf, format="PNG")
    return buf.getvalue()


def _query(url: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}


def _signer_of(stack: LocalStack, url: str) -> str:
    """The identity whose credentials signed a presigned URL (the session its key belongs to,
    as moto's STS holds it: IAM is enforced, so a borrowed key cannot simply ask STS)."""
    from moto.sts.models import sts_backends

    access_key = _query(url)["X-Amz-Credential"].split("/")[0]
    session = sts_backends[stack.aws.account_id]["aws"].get_assumed_role_from_access_key(access_key)
    assert session is not None, f"{access_key} is no session of this moto"
    return str(session.arn)


@pytest.fixture
def runtime(stack: LocalStack) -> Runtime:
    """A runtime of the upload function's own (its environment, clients of its own)."""
    return stack.runtime("UploadFunction")


@pytest.fixture
def bucket(stack: LocalStack) -> str:
    return str(stack.stack.ref("ResultsBucket"))


@pytest.fixture
def reader_role(stack: LocalStack) -> str:
    """The image reader role, as template.yaml declares it: only the upload function's policy
    lets it assume it (moto's IAM checks that), and it may read uploads only."""
    return stack.stack.arn("UpstreamImageReaderRole")


def test_image_urls_are_signed_by_a_session_that_outlives_them(
    stack: LocalStack, runtime: Runtime, bucket: str, reader_role: str
) -> None:
    # GIVEN an uploaded image, and the production signer with the image reader role
    key = f"uploads/acme/{uuid.uuid4().hex}"
    stack.aws.client("s3").put_object(Bucket=bucket, Key=key, Body=_png())
    now = [time.time()]
    sts_calls: list[str] = []
    sts = runtime.client("sts")  # its own: the hook below counts only these calls
    sts.meta.events.register("before-call.sts.AssumeRole", lambda **_: sts_calls.append("x"))
    urls = ImageUrls(
        own=runtime.s3,
        role_arn=reader_role,
        sts=lambda: sts,
        client_with=runtime.s3_with,
        clock=lambda: now[0],
    )
    assert sts_calls == []  # nothing assumed before a URL is asked for
    # WHEN a URL is signed
    first = urls.url(bucket, key, TTL_S, "image/png")
    # THEN it lives TTL_S, is signed by a session of the role, and works
    assert _query(first)["X-Amz-Expires"] == str(TTL_S)
    assert _query(first)["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    signer = _signer_of(stack, first)
    assert signer.endswith("/wanflow-image-urls")
    assert f":assumed-role/{reader_role.rsplit('/', 1)[1]}/" in signer
    assert httpx.get(first, timeout=10).content == _png()
    # a second URL, while the session outlives it, reuses the session
    now[0] += IMAGE_READER_SESSION_S - TTL_S - SESSION_MARGIN_S - 60
    second = urls.url(bucket, key, TTL_S, "image/png")
    assert _signer_of(stack, second) == signer
    assert len(sts_calls) == 1
    # once the session would end before a new URL (and the margin), a new one is assumed
    now[0] += 120
    third = urls.url(bucket, key, TTL_S, "image/png")
    assert len(sts_calls) == 2
    assert _query(third)["X-Amz-Credential"] != _query(first)["X-Amz-Credential"]
    assert _signer_of(stack, third).endswith("/wanflow-image-urls")


def test_without_the_role_image_urls_are_signed_by_the_function_and_it_is_logged(
    runtime: Runtime, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    def no_sts() -> Any:
        raise AssertionError("STS must not be called without a role")

    urls = ImageUrls(own=runtime.s3, role_arn="", sts=no_sts, client_with=runtime.s3_with)
    url = urls.url(bucket, "uploads/acme/x", TTL_S, "image/png")
    assert _query(url)["X-Amz-Expires"] == str(TTL_S)
    own = runtime.session.get_credentials()
    assert own is not None
    assert _query(url)["X-Amz-Credential"].split("/")[0] == own.access_key
    assert "IMAGE_READER_ROLE_ARN is not set" in caplog.text


# --- the S3 event ------------------------------------------------------------------------------


def _body() -> dict[str, Any]:
    body = request("wan26_i2v")
    del body["input"]["img_url"]
    return body


def test_an_event_of_another_bucket_is_ignored(stack: LocalStack, runtime: Runtime) -> None:
    key = f"uploads/acme/{uuid.uuid4().hex}"
    assert runtime.uploads.handle("someone-elses-bucket", key) is None
    with pytest.raises(TaskNotFound):
        stack.store.get(upload_task_id("acme", key))


def test_an_object_s3_says_is_not_there_is_upload_missing(runtime: Runtime, bucket: str) -> None:
    key = f"uploads/acme/{uuid.uuid4().hex}"
    record = runtime.uploads.handle(bucket, key)  # never put: HeadObject answers 404
    assert record is not None
    assert record.status is TaskStatus.FAILED
    assert record.error is not None
    assert (record.error.code, record.error.retryable) == ("upload_missing", False)


def _stubbed(stack: LocalStack, failures: int, data: bytes, body: dict[str, Any]) -> Any:
    """A new production S3 client whose HeadObject fails with 503 SlowDown `failures` times."""
    client = stack.runtime("UploadFunction").s3
    stubber = Stubber(client)
    for _ in range(failures):
        stubber.add_client_error(
            "head_object", "SlowDown", "Please reduce your request rate.", http_status_code=503
        )
    if failures <= len(S3_BACKOFF_S):
        stubber.add_response(
            "head_object",
            {
                "ContentLength": len(data),
                "Metadata": {"request": json.dumps(body)},
                "LastModified": datetime.now(UTC),
            },
        )
        stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))})
    stubber.activate()
    return client


def test_a_transient_head_object_error_is_retried_and_the_upload_becomes_a_task(
    stack: LocalStack, runtime: Runtime, bucket: str
) -> None:
    # GIVEN an upload whose first two HeadObject answers are 503 SlowDown
    key = f"uploads/acme/{uuid.uuid4().hex}"
    data, body = _png(), _body()
    stack.aws.client("s3").put_object(
        Bucket=bucket, Key=key, Body=data, Metadata={"request": json.dumps(body)}
    )
    naps = Naps()
    intake = dataclasses.replace(
        runtime.uploads, s3=_stubbed(stack, len(S3_BACKOFF_S), data, body), sleep=naps
    )
    # WHEN S3 reports it
    record = intake.handle(bucket, key)
    # THEN it was retried with the backoff, and became a task that runs
    assert naps.delays == list(S3_BACKOFF_S)
    assert record is not None
    assert record.status is not TaskStatus.FAILED, record.error
    # (S3's own notification of the object reaches the upload function too, as a second
    # delivery of one event would: both make the same task, which either may start; so the
    # task is awaited, not this call's execution)
    done = stack.wait_terminal(record.id, timeout=60)
    assert done.status is TaskStatus.SUCCEEDED


def test_a_transient_error_that_outlasts_the_retries_is_raised_not_a_failed_task(
    stack: LocalStack, runtime: Runtime, bucket: str
) -> None:
    key = f"uploads/acme/{uuid.uuid4().hex}"
    naps = Naps()
    intake = dataclasses.replace(
        runtime.uploads, s3=_stubbed(stack, len(S3_BACKOFF_S) + 1, b"", {}), sleep=naps
    )
    # WHEN every try fails, the error reaches Lambda (which retries the event, then keeps it in
    # the dead-letter queue) ...
    with pytest.raises(ClientError) as raised:
        intake.handle(bucket, key)
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert naps.delays == list(S3_BACKOFF_S)
    # ... and no task says the upload is missing: the retried event can still make it
    with pytest.raises(TaskNotFound):
        stack.store.get(upload_task_id("acme", key))
