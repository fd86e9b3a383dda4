"""Uploads become tasks: an image put at `uploads/<tenant>/<upload id>` with its request.

Two ways in, one way out:
- `POST /v1/uploads` (`UploadIntake.grant`): the request (a model's body without its image) is
  validated at once, with a stand-in image URL, so a bad parameter is refused before any upload;
  it is kept in the table (`pk=UPLOAD#<tenant>/<upload id>`: S3 user metadata is capped at 2 KB)
  and the client gets a presigned PUT for the object, valid for an hour, that writes it once;
- an object put straight into the bucket carries its request as its `request` metadata.
When S3 reports the object (`UploadIntake.handle`), the image is checked like a data URI would
be (format, size, sides, no alpha), a presigned GET URL of it goes into the request's image
field (valid until the task's deadline and a margin, signed by `ImageUrls` with credentials that
last longer), and the task is submitted with an idempotency key made of the object's key alone: the
task id is known when the upload is granted, and S3 delivering the event twice makes one task.
A bad upload becomes a failed task that says why, never a retry loop.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from wanflow import clock, keys
from wanflow.catalog import MODELS, validate
from wanflow.catalog.base import Timing
from wanflow.errors import ErrorItem, InvalidRequest
from wanflow.images import MAX_IMAGE_BYTES, ImageProblem, check_image_bytes
from wanflow.store import TaskRecord
from wanflow.submission import (
    IdempotencyConflict,
    Submitter,
    UpstreamDown,
    UpstreamRefused,
    task_id_for,
    webhook_of,
)
from wanflow.task import TaskError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

UPLOAD_PREFIX = "uploads/"
#: Added to a task's deadline for its image URL's life: the submit handing the URL over, and
#: clock skew between us, S3 and the upstream. Past the deadline the task is timed out and
#: nothing fetches its image any more.
IMAGE_URL_MARGIN_S = 300
#: How long an image reader session lasts: a role assumed with a role's credentials (a
#: Lambda's) is "role chaining", which AWS caps at one hour whatever the role's
#: MaxSessionDuration.
IMAGE_READER_SESSION_S = 3600
#: A session is assumed again when less than a URL's life plus this remains of it.
SESSION_MARGIN_S = 300
#: The longest image URL: a fresh session must outlive it by the margin, with room to spare.
#: Every model's deadline fits (tests/unit/test_image_urls.py checks the catalog's worst cases).
MAX_IMAGE_URL_TTL_S = IMAGE_READER_SESSION_S - 2 * SESSION_MARGIN_S
#: How long a granted upload URL may be used.
UPLOAD_URL_TTL_S = 3600
#: How long a granted upload's request is kept (DynamoDB TTL): past the URL's life, so a late
#: or repeated S3 event still finds it.
PENDING_TTL_S = UPLOAD_URL_TTL_S + 7 * 24 * 3600
#: Largest request kept for an upload (a DynamoDB item holds 400 KB).
MAX_REQUEST_BYTES = 256 * 1024
#: The headers a granted PUT is signed with: S3 refuses the PUT without them. `If-None-Match: *`
#: makes the object write-once, so the image checked is the image the upstream gets.
UPLOAD_HEADERS = {"Content-Type": "application/octet-stream", "If-None-Match": "*"}
#: Sides checked when the model's seed gives no range: any image the formats allow.
_ANY_SIDE = (1, 100_000)
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}
#: Waits between tries of an S3 read of an upload (on top of botocore's own retries): short,
#: the event is retried by Lambda if the error outlasts them.
S3_BACKOFF_S = (0.2, 0.8)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_TRANSIENT_CODES = frozenset(
    {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout", "RequestLimitExceeded"}
)
_T = TypeVar("_T")


class BadUpload(Exception):
    """An upload that cannot become a task; `code`, `message` and `param` say why."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


@dataclass(frozen=True)
class Grant:
    """A granted upload: the presigned PUT (its URL and the headers it was signed with), the
    task the image will become, and when the URL stops working."""

    upload_id: str
    task_id: str
    url: str
    headers: dict[str, str]
    expires_at: str


def upload_key(tenant: str, upload_id: str) -> str:
    """The S3 key of an upload's object."""
    return f"{UPLOAD_PREFIX}{tenant}/{upload_id}"


def upload_task_id(tenant: str, key: str) -> str:
    """The task id an uploaded object becomes: from its key alone, so it is known in advance."""
    return task_id_for(tenant, f"upload:{key}")


@dataclass
class PendingUploads:
    """Requests of granted uploads, in the tasks table until their image arrives."""

    table: str
    client: DynamoDBClient

    def put(self, tenant: str, upload_id: str, body: dict[str, Any], ttl_s: int) -> None:
        """Keep an upload's request (as its JSON text, exactly as sent) for `ttl_s` seconds."""
        item = {
            **keys.upload_key(tenant, upload_id),
            "request": {"S": json.dumps(body)},
            "expires_at": {"N": str(int(clock.epoch_s()) + ttl_s)},
        }
        self.client.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, tenant: str, upload_id: str) -> Any:
        """The request of a granted upload; None when none was granted under that id."""
        got = self.client.get_item(
            TableName=self.table, Key=keys.upload_key(tenant, upload_id), ConsistentRead=True
        )
        raw = got.get("Item", {}).get("request", {}).get("S")
        return None if raw is None else json.loads(raw)


def _invalid(code: str, message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest([ErrorItem(code=code, message=message, param=param)])


def image_url_ttl(timing: Timing) -> int:
    """Seconds an image URL handed to the upstream must work: the task's deadline (counted from
    its creation, which follows at once) and a margin, at most MAX_IMAGE_URL_TTL_S."""
    ttl = math.ceil(timing.deadline_s) + IMAGE_URL_MARGIN_S
    if ttl > MAX_IMAGE_URL_TTL_S:
        logger.warning(
            "deadline past the longest image URL", extra={"ttl_s": ttl, "max": MAX_IMAGE_URL_TTL_S}
        )
    return min(ttl, MAX_IMAGE_URL_TTL_S)


@dataclass
class ImageUrls:
    """Presigned GETs of uploaded images for the upstream, signed with credentials that outlive
    them.

    A presigned URL stops working when the credentials that signed it expire, whatever its
    `ExpiresIn`; a Lambda's own credentials end when Lambda rotates them, at no time the code
    can know. So URLs are signed with a session of `role_arn` (s3:GetObject on uploads/*),
    assumed for IMAGE_READER_SESSION_S, kept, and assumed again when less than the URL's life
    and SESSION_MARGIN_S remains. STS is called on the first URL signed, never before.

    Without a role (`role_arn` ""), URLs are signed with `own`, the function's S3 client.
    """

    own: S3Client
    role_arn: str
    #: Builds the STS client (on the first assume).
    sts: Callable[[], Any]
    #: An S3 client signing with an STS `Credentials` dict.
    client_with: Callable[[dict[str, Any]], S3Client]
    clock: Callable[[], float] = field(default=time.time)
    _signer: S3Client | None = field(default=None, init=False, repr=False)
    _ends_at: float = field(default=0.0, init=False, repr=False)
    _warned: bool = field(default=False, init=False, repr=False)

    def url(self, bucket: str, key: str, ttl_s: int, content_type: str) -> str:
        """A GET URL of `key` working for `ttl_s` seconds, served as `content_type`."""
        params = {"Bucket": bucket, "Key": key, "ResponseContentType": content_type}
        return self._client(ttl_s).generate_presigned_url(
            "get_object", Params=params, ExpiresIn=ttl_s
        )

    def _client(self, ttl_s: int) -> S3Client:
        if not self.role_arn:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "IMAGE_READER_ROLE_ARN is not set: image URLs are signed with the "
                    "function's own credentials and may stop working before they expire"
                )
            return self.own
        if self._signer is None or self._ends_at - self.clock() < ttl_s + SESSION_MARGIN_S:
            got = self.sts().assume_role(
                RoleArn=self.role_arn,
                RoleSessionName="wanflow-image-urls",
                DurationSeconds=IMAGE_READER_SESSION_S,
            )
            credentials = got["Credentials"]
            self._signer = self.client_with(credentials)
            self._ends_at = credentials["Expiration"].timestamp()
            logger.info("image reader session assumed", extra={"ends_at": self._ends_at})
        return self._signer


@dataclass
class UploadIntake:
    """Grants uploads and turns uploaded objects into tasks; collaborators are passed in.

    `submitter` is built on first use: the API function that grants uploads never submits, and
    has no access to what a Submitter needs (the callback signing secret).
    """

    submitter: Callable[[], Submitter]
    s3: S3Client
    bucket: str
    pending: PendingUploads
    #: Signs the image URLs handed to the upstream; a getter, so granting never reaches STS.
    image_urls: Callable[[], ImageUrls]
    allow_http_webhooks: bool = False
    now: Callable[[], datetime] = field(default=clock.now)
    sleep: Callable[[float], None] = field(default=time.sleep)

    # --- POST /v1/uploads -----------------------------------------------------------------------

    def grant(self, tenant: str, body: Any) -> Grant:
        """Validate an upload's request and grant a presigned PUT for its image.

        Raises InvalidRequest (each problem naming its field) before anything is stored.
        """
        if not isinstance(body, dict):
            raise _invalid("invalid_body", "the request body must be a JSON object")
        upload_id = "upl_" + uuid.uuid4().hex
        key = upload_key(tenant, upload_id)
        self._check(body, self._stand_in_url(key))
        if len(json.dumps(body).encode()) > MAX_REQUEST_BYTES:
            raise _invalid(
                "request_too_large",
                f"the request is larger than {MAX_REQUEST_BYTES // 1024} KB; pass other images "
                "by URL rather than as data URIs",
            )
        self.pending.put(tenant, upload_id, body, PENDING_TTL_S)
        url = self.s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": UPLOAD_HEADERS["Content-Type"],
                "IfNoneMatch": UPLOAD_HEADERS["If-None-Match"],
            },
            ExpiresIn=UPLOAD_URL_TTL_S,
        )
        expires = self.now().timestamp() + UPLOAD_URL_TTL_S
        return Grant(
            upload_id=upload_id,
            task_id=upload_task_id(tenant, key),
            url=url,
            headers=dict(UPLOAD_HEADERS),
            expires_at=clock.iso(expires),
        )

    def _check(self, body: dict[str, Any], image_url: str) -> None:
        """Validate the request as the upload will make it, with `image_url` as its image, and
        its webhook as submit will (the body is kept as sent: submit splits the webhook out)."""
        rest, _, problems = webhook_of(body, allow_http=self.allow_http_webhooks)
        try:
            self._check_model(rest, image_url)
        except InvalidRequest as invalid:
            raise InvalidRequest(invalid.items + problems) from None
        if problems:
            raise InvalidRequest(problems)

    @staticmethod
    def _check_model(request: dict[str, Any], image_url: str) -> None:
        model = request.get("model")
        spec = MODELS.get(model) if isinstance(model, str) else None
        if spec is None:
            validate(request)  # names the missing or unknown model
            return
        try:
            with_image = spec.with_image(request, image_url)
        except ValueError as exc:
            raise _invalid("model_takes_no_image", str(exc), "model") from None
        except (TypeError, AttributeError):
            validate(request)  # a malformed body the image cannot go into: say where
            raise _invalid(
                "invalid_body", "the request is not shaped like a model's body"
            ) from None
        spec.validate(with_image)

    def _stand_in_url(self, key: str) -> str:
        """Where the image will be, for checking a request before it is: the models check an
        image URL's form, never fetch it, and the real URL is signed only when it is handed
        over."""
        return f"https://{self.bucket}.s3.amazonaws.com/{key}"

    # --- the S3 notification --------------------------------------------------------------------

    def handle(self, bucket: str, key: str) -> TaskRecord | None:
        """Submit the task of one uploaded object; None for a key that is not an upload, or an
        event of another bucket than ours.

        Idempotent: the task id comes from the key, so a repeated event returns the same task.
        S3 errors that may pass (throttling, 5xx, connection) are retried a few times, then
        raised: the event is kept (Lambda's retries, then the dead-letter queue), not turned
        into a failed task. Only an object S3 says is not there is `upload_missing`.
        """
        if bucket != self.bucket:
            # The trigger's permission names our bucket; an event of another is not ours to act on.
            logger.warning("event of another bucket ignored", extra={"bucket": bucket})
            return None
        key = unquote_plus(key)
        parts = key.split("/")
        if len(parts) != 3 or f"{parts[0]}/" != UPLOAD_PREFIX or not all(parts):
            logger.warning("not an upload key", extra={"key": key})
            return None
        tenant, upload_id = parts[1], parts[2]
        task_id = upload_task_id(tenant, key)
        submitter = self.submitter()
        body: Any = None
        try:
            body, data = self._read(bucket, key, tenant, upload_id)
            # A replay matches on the upload's own request: the presigned URL changes every second.
            request = body
            body = self._with_image(body, data, bucket, key)
            record, _ = submitter.submit(
                tenant, body, idempotency_key=f"upload:{key}", identity=request
            )
        except BadUpload as bad:
            error = TaskError(code=bad.code, message=bad.message, retryable=False)
            return submitter.reject(tenant, task_id, body, error)
        except InvalidRequest as invalid:
            first = invalid.items[0]
            message = f"{first.param or 'request'}: {first.message}"
            error = TaskError(code=first.code, message=message, retryable=False)
            return submitter.reject(tenant, task_id, body, error)
        except IdempotencyConflict:
            # The object was overwritten with another request: its first task stands.
            logger.warning("upload rewritten; keeping its first task", extra={"key": key})
            return submitter.store.get(task_id)
        except (UpstreamRefused, UpstreamDown) as failed:  # recorded as failed already
            return failed.task
        return record

    def _read(self, bucket: str, key: str, tenant: str, upload_id: str) -> tuple[Any, bytes]:
        head = self._from_s3(lambda: self.s3.head_object(Bucket=bucket, Key=key))
        body = self.pending.get(tenant, upload_id)
        if body is None:
            body = self._metadata_request(head.get("Metadata", {}))
        if head.get("ContentLength", 0) > MAX_IMAGE_BYTES:
            raise BadUpload("image_too_large", "the uploaded image is larger than 10 MB", "image")
        data = self._from_s3(
            lambda: self.s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_IMAGE_BYTES + 1)
        )
        return body, data

    def _from_s3(self, call: Callable[[], _T]) -> _T:
        """`call`'s answer, transient errors retried with backoff; BadUpload when the object is
        not there, any other error raised."""
        for attempt in range(len(S3_BACKOFF_S) + 1):
            try:
                return call()
            except ClientError as exc:
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                # HeadObject has no body, so its 404 has the status as its code. (Without
                # s3:ListBucket S3 answers 403 for a missing key: that is raised, not "missing".)
                if error.get("Code") in _MISSING_CODES:
                    raise BadUpload("upload_missing", "the uploaded object is gone") from None
                if error.get("Code") not in _TRANSIENT_CODES and status < 500:
                    raise
                failure: Exception = exc
            except (BotoConnectionError, HTTPClientError) as exc:
                failure = exc
            if attempt == len(S3_BACKOFF_S):
                raise failure
            logger.warning("S3 error, retrying", extra={"error": str(failure)})
            self.sleep(S3_BACKOFF_S[attempt])
        raise AssertionError("unreachable")

    @staticmethod
    def _metadata_request(metadata: dict[str, str]) -> Any:
        raw = metadata.get("request")
        if not raw:
            raise BadUpload("upload_request_missing", "the upload carries no request")
        try:
            return json.loads(raw)
        except ValueError:
            raise BadUpload("upload_request_invalid", "the upload's request is not JSON") from None

    def _with_image(self, body: Any, data: bytes, bucket: str, key: str) -> Any:
        model = body.get("model") if isinstance(body, dict) else None
        spec = MODELS.get(model) if isinstance(model, str) else None
        if spec is None:
            return body  # validation names the missing or unknown model
        try:
            info = check_image_bytes(data, *(spec.image_sides or _ANY_SIDE))
        except ImageProblem as problem:
            raise BadUpload(problem.code, f"uploaded image: {problem.message}", "image") from None
        try:
            stand_in = spec.with_image(body, self._stand_in_url(key))
        except ValueError as exc:
            raise BadUpload("model_takes_no_image", str(exc), "model") from None
        except (TypeError, AttributeError):
            return body  # malformed where the image goes: validation says where
        # The URL lives as long as the task may use it, so its timing is needed first; a
        # request that fails here is refused as submit would refuse it, no URL signed.
        ttl_s = image_url_ttl(spec.validate(stand_in).timing)
        # The upload's own Content-Type is whatever the client sent; the upstream gets the type
        # of what the bytes are.
        mime = _MIME.get(info.format, "application/octet-stream")
        return spec.with_image(body, self.image_urls().url(bucket, key, ttl_s, mime))
