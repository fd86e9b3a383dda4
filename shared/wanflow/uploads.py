"""Uploads become tasks: an image put at `uploads/<tenant>/<upload id>` with its request.

The request (a model's JSON body) travels as the object's `request` metadata. When S3 reports
the object, the image is checked like a data URI would be (format, size, sides, no alpha), a
presigned GET URL of it goes into the request's image field, and the task is submitted with an
idempotency key made of the object's key and ETag, so S3 delivering the event twice makes one
task. A bad upload becomes a failed task that says why, never a retry loop.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from wanflow.catalog import MODELS
from wanflow.errors import InvalidRequest
from wanflow.images import MAX_IMAGE_BYTES, ImageProblem, check_image_bytes
from wanflow.store import TaskRecord
from wanflow.submission import Submitter, UpstreamDown, UpstreamRefused, task_id_for
from wanflow.task import TaskError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

UPLOAD_PREFIX = "uploads/"
#: How long the upstream may fetch an uploaded image: the task's queue and run fit in it.
IMAGE_URL_TTL_S = 24 * 3600
#: Sides checked when the model's seed gives no range: any image the formats allow.
_ANY_SIDE = (1, 100_000)


class BadUpload(Exception):
    """An upload that cannot become a task; `code`, `message` and `param` say why."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


@dataclass
class UploadIntake:
    """Turns uploaded objects into tasks; collaborators are passed in."""

    submitter: Submitter
    s3: S3Client

    def handle(self, bucket: str, key: str, etag: str) -> TaskRecord | None:
        """Submit the task of one uploaded object; None for a key that is not an upload."""
        key = unquote_plus(key)
        parts = key.split("/")
        if len(parts) != 3 or f"{parts[0]}/" != UPLOAD_PREFIX or not all(parts):
            logger.warning("not an upload key", extra={"key": key})
            return None
        tenant = parts[1]
        idempotency_key = f"upload:{key}:{etag}"
        task_id = task_id_for(tenant, idempotency_key)
        body: Any = None
        try:
            body, data = self._read(bucket, key)
            # A replay matches on the upload's own request: the presigned URL changes every second.
            request = body
            body = self._with_image(body, data, bucket, key)
            record, _ = self.submitter.submit(
                tenant, body, idempotency_key=idempotency_key, identity=request
            )
        except BadUpload as bad:
            error = TaskError(code=bad.code, message=bad.message, retryable=False)
            return self.submitter.reject(tenant, task_id, body, error)
        except InvalidRequest as invalid:
            first = invalid.items[0]
            message = f"{first.param or 'request'}: {first.message}"
            error = TaskError(code=first.code, message=message, retryable=False)
            return self.submitter.reject(tenant, task_id, body, error)
        except (UpstreamRefused, UpstreamDown) as failed:  # recorded as failed already
            return failed.task
        return record

    def _read(self, bucket: str, key: str) -> tuple[Any, bytes]:
        head = self.s3.head_object(Bucket=bucket, Key=key)
        raw = head.get("Metadata", {}).get("request")
        if not raw:
            raise BadUpload("upload_request_missing", "the upload carries no request metadata")
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadUpload("upload_request_invalid", "the upload's request is not JSON") from None
        if head.get("ContentLength", 0) > MAX_IMAGE_BYTES:
            raise BadUpload("image_too_large", "the uploaded image is larger than 10 MB", "image")
        data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_IMAGE_BYTES + 1)
        return body, data

    def _with_image(self, body: Any, data: bytes, bucket: str, key: str) -> Any:
        model = body.get("model") if isinstance(body, dict) else None
        spec = MODELS.get(model) if isinstance(model, str) else None
        if spec is None:
            return body  # validation names the missing or unknown model
        try:
            check_image_bytes(data, *(spec.image_sides or _ANY_SIDE))
        except ImageProblem as problem:
            raise BadUpload(problem.code, f"uploaded image: {problem.message}", "image") from None
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=IMAGE_URL_TTL_S
        )
        try:
            return spec.with_image(body, url)
        except ValueError as exc:
            raise BadUpload("model_takes_no_image", str(exc), "model") from None
