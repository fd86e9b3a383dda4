"""Submitting a task: validate, start following it, record, create upstream.

The order is what makes a task impossible to lose or to pay for twice:
1. validate against the catalog (nothing is spent on a bad request);
2. start the execution named by the task id (`following.start_execution`; starting it again is
   harmless): from here on, whatever stops this submit, that execution settles the task (see
   following.py). When Step Functions cannot start it, nothing was recorded or created: 503;
3. put the task (`accepted`) with a conditional write, so of two identical requests with the
   same idempotency key only one goes on;
4. create the upstream task (only the writer of step 3 does), passing our signed callback URL
   to a model that takes one;
5. move the task to `queued` with the upstream id.
A failure at 4 is written on the task (failed, retryable or not). A submit that dies during 4
or before 5 leaves the task `accepted`: its execution fails it with `submit_interrupted` once
the submit has surely ended (whether the upstream created the task is unknown, and it is never
created twice); one that dies before 3 leaves no task, and its execution just ends.

A body may carry wanflow's own `webhook: {url, events}`, checked with the model's fields and
reported with them; the flash model's own `callback_url` is taken as the webhook instead (wanflow
still puts its own signed callback URL upstream). A task failed at step 3, or rejected after it
was recorded (a bad upload), sends `task.failed` to its webhook; a request refused at step 1
records nothing and sends nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT

from wanflow import observability
from wanflow.catalog import MODELS, ValidatedRequest, validate
from wanflow.catalog.base import Timing
from wanflow.clock import now_iso
from wanflow.config import Config
from wanflow.errors import (
    IDEMPOTENCY,
    UPSTREAM,
    ErrorItem,
    InvalidRequest,
    TaskNotFound,
    WanflowError,
    error_body,
)
from wanflow.following import start_execution
from wanflow.images import is_data_uri
from wanflow.signing import callback_url
from wanflow.store import StaleWrite, TaskExists, TaskRecord, TaskStore
from wanflow.task import TaskError, TaskStatus, WebhookTarget
from wanflow.upstream import (
    CreateOutcomeUnknown,
    UpstreamClient,
    UpstreamError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.client_webhooks.queue import Notifications

logger = logging.getLogger(__name__)

#: Time kept, out of a submit's deadline, for what follows the upstream create: recording it
#: (one conditional write), starting its execution, and answering.
WRITES_AFTER_CREATE_S = 4.0


class IdempotencyConflict(WanflowError):
    """The idempotency key was used before with a different request."""

    code = "idempotency_key_reused"
    status = 409
    kind = IDEMPOTENCY
    param = "Idempotency-Key"


class UpstreamRefused(WanflowError):
    """The upstream rejected the request; the task is recorded as failed."""

    code = "upstream_rejected"
    status = 400
    kind = UPSTREAM

    def __init__(self, message: str, task: TaskRecord, upstream_code: str | None) -> None:
        super().__init__(message)
        self.task: TaskRecord = task
        self.upstream_code = upstream_code

    def error_json(self) -> dict[str, Any]:
        """Under the upstream's own code, as its documentation names it."""
        return error_body(self.upstream_code or self.code, self.message, self.kind)


class UpstreamDown(WanflowError):
    """The upstream could not take the task now; it is recorded as failed and retryable."""

    code = "upstream_unavailable"
    status = 503
    kind = UPSTREAM

    def __init__(self, message: str, task: TaskRecord) -> None:
        super().__init__(message)
        self.task: TaskRecord = task

    def error_json(self) -> dict[str, Any]:
        """Under the failed task's own code: `upstream_create_outcome_unknown` and the retryable
        ones differ in what the client must do."""
        code = self.task.error.code if self.task.error is not None else self.code
        return error_body(code, self.message, self.kind)


#: What a client whose create ended with an unknown outcome should do, in the task's error.
OUTCOME_UNKNOWN_ADVICE = (
    "The upstream may have created this task, and may bill it, but gave wanflow no id to follow "
    "it by, so wanflow does not create it again. This Idempotency-Key keeps returning this failed "
    "task. To run the request again, check GET /v1/tasks that you have not already resubmitted "
    "it, then submit it with a new Idempotency-Key."
)


def _request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def webhook_of(
    body: dict[str, Any], *, allow_http: bool
) -> tuple[dict[str, Any], WebhookTarget | None, list[ErrorItem]]:
    """Split wanflow's webhook out of a submit body: the body the catalog checks, the webhook
    (None without one, or when it is invalid), and the problems with it.

    `webhook` is wanflow's own field. A callback model's `callback_url` is the client's webhook
    URL (all events): the catalog never sees it, and giving both is refused.
    """
    from wanflow.client_webhooks.targets import check_url, parse_target

    rest = {k: v for k, v in body.items() if k != "webhook"}
    webhook, problems = parse_target(body.get("webhook"), allow_http=allow_http)
    model = body.get("model")
    spec = MODELS.get(model) if isinstance(model, str) else None
    client_url = rest.pop("callback_url", None) if spec and spec.accepts_callback else None
    if client_url is None:
        return rest, webhook, problems
    if body.get("webhook") is not None:
        message = "callback_url: give either webhook or callback_url, not both"
        problems.append(
            ErrorItem(code="forbidden_combination", message=message, param="callback_url")
        )
        return rest, None, problems
    found = check_url(client_url, "callback_url", "invalid_callback_url", allow_http=allow_http)
    return rest, None if found else WebhookTarget(url=client_url), problems + found


def task_id_for(tenant: str, idempotency_key: str | None) -> str:
    """A new random task id, or the one an idempotency key always maps to for its tenant."""
    if idempotency_key is None:
        return "tsk_" + uuid.uuid4().hex
    digest = hashlib.sha256(f"{tenant}\0{idempotency_key}".encode()).hexdigest()
    return "tsk_" + digest[:32]


# --- what a task keeps of its request ------------------------------------------------------------

#: Longest text a task keeps as is in its stored request. No documented text field is longer
#: (prompts stop at 800 to 2000 characters, URLs at 2048); wan2.6 documents no limit.
STORED_TEXT_CHARS = 4096
#: Most a stored request takes of its task's DynamoDB item (400 KB, moto enforces it too), which
#: also holds the outputs, warnings, webhook and error.
STORED_REQUEST_BYTES = 96 * 1024


def _digest(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _kept_string(value: str) -> Any:
    if is_data_uri(value):
        header, _, payload = value.partition(",")
        try:
            data = base64.b64decode(payload)
        except (binascii.Error, ValueError):
            data = value.encode()
        media_type = header[5:].split(";")[0] or "text/plain"
        return {"omitted": "inline image", "media_type": media_type, **_digest(data)}
    if len(value) <= STORED_TEXT_CHARS:
        return value
    return {"omitted": "text", "start": value[:200], **_digest(value.encode())}


def _kept_number(value: float) -> Any:
    try:
        DYNAMODB_CONTEXT.create_decimal(Decimal(repr(value)))
    except ArithmeticError:  # over 38 digits, or out of DynamoDB's range: kept as text
        return repr(value)
    return value


def stored_request(request: dict[str, Any]) -> dict[str, Any]:
    """The request as its task keeps it (only for people: what went upstream is not re-read).

    Each inline image (data URI) becomes `{"omitted": "inline image", media_type, bytes, sha256}`
    (the decoded image's size and hash), any other text over STORED_TEXT_CHARS `{"omitted":
    "text", start, bytes, sha256}`, and a number DynamoDB cannot hold its text. Should that still
    be over STORED_REQUEST_BYTES, the task keeps `{"omitted": "request", bytes, sha256}`. So an
    item stays under DynamoDB's 400 KB whatever the request (a data URI of 300 KB made it fail).
    """

    def keep(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: keep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [keep(v) for v in value]
        if isinstance(value, str):
            return _kept_string(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _kept_number(value)
        return value

    kept: dict[str, Any] = keep(request)
    text = json.dumps(kept).encode()
    if len(text) <= STORED_REQUEST_BYTES:
        return kept
    whole = json.dumps(request).encode()
    return {"omitted": "request", **_digest(whole)}


@dataclass
class Submitter:
    """Submits tasks; collaborators are passed in."""

    config: Config
    store: TaskStore
    upstream: UpstreamClient
    sfn: SFNClient
    #: The callback-signing secret, or its getter (a cache with a TTL: a rotated secret reaches
    #: a warm submitter).
    callback_secret: str | Callable[[], str]
    new_task_id: Callable[[str, str | None], str] = field(default=task_id_for)
    #: Where task.failed goes for a task that fails here (None: no client webhooks).
    notifications: Notifications | None = None

    def submit(
        self,
        tenant: str,
        body: Any,
        *,
        idempotency_key: str | None = None,
        public_base_url: str | None = None,
        identity: Any = None,
        deadline: float | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Submit a request; returns the task and whether this call created it.

        `identity` is what a replay with the same idempotency key must match (the body, unless
        the caller built the body from something steadier, like an upload's own request).
        `deadline` (time.monotonic() seconds) is when the caller must have answered (an API
        request's Lambda timeout): the upstream create ends `WRITES_AFTER_CREATE_S` before it,
        and is not started when too little is left (`CreateNotStarted`: failed, retryable).

        Raises InvalidRequest or ExecutionNotStarted (nothing recorded), IdempotencyConflict,
        UpstreamRefused or UpstreamDown (the task is recorded as failed in both).
        """
        validated, webhook = self._validate(body)
        task_id = self.new_task_id(tenant, idempotency_key)
        observability.correlate(task_id)
        # The operator's CALLBACK_BASE_URL first: behind a custom domain whose base path drops
        # the stage, the URL API Gateway was reached by (domainName/stage) would not route.
        base = self.config.callback_base_url or public_base_url
        hook = None
        if validated.accepts_callback and base:
            secret = self.callback_secret
            hook = callback_url(
                base,
                task_id,
                secret() if callable(secret) else secret,
                allow_http=self.config.allow_http_callbacks,
            )
        fingerprint = _request_hash(body if identity is None else identity)
        record = self._new_record(task_id, tenant, validated, fingerprint, hook is not None)
        record = record.model_copy(update={"webhook": webhook})
        # First: whatever stops this submit later, the execution settles its task.
        if not start_execution(self.sfn, self.config, record):
            return self._replay(task_id, fingerprint), False
        try:
            self.store.create(record)
        except TaskExists:
            return self._replay(task_id, fingerprint), False
        observability.task_submitted(record.model)
        record = self._create_upstream(record, validated, hook, deadline)
        return record, True

    def reject(self, tenant: str, task_id: str, body: Any, error: TaskError) -> TaskRecord:
        """Record a task that failed before anything was sent upstream (a bad upload, say).

        The client sees it like any failed task, with the reason; a repeated rejection of the
        same task id (an event delivered twice) returns the first record.
        """
        observability.correlate(task_id)
        model = body.get("model") if isinstance(body, dict) else None
        now = now_iso()
        record = TaskRecord(
            id=task_id,
            tenant=tenant,
            model=str(model or "unknown"),
            mode="unknown",
            status=TaskStatus.FAILED,
            completion="poll",
            request=stored_request(body) if isinstance(body, dict) else {},
            request_hash=_request_hash(body),
            timing=Timing(expected_s=0, low_s=0, high_s=0, deadline_s=0),
            error=error,
            webhook=self._lenient_webhook(body),
            created_at=now,
            updated_at=now,
            completed_at=now,
        )
        try:
            self.store.create(record)
        except TaskExists:
            return self.store.get(task_id)
        # A client's word as a metric dimension only when it is a model of the catalog.
        model_name = record.model if record.model in MODELS else "unknown"
        observability.task_submitted(model_name)
        observability.task_ended(model_name, record.status.value)
        self._notify_failed(record)
        return record

    def _validate(self, body: Any) -> tuple[ValidatedRequest, WebhookTarget | None]:
        """The catalog's check of the model's fields and wanflow's of the webhook, every problem
        reported together (the model's first)."""
        if not isinstance(body, dict):
            return validate(body), None
        rest, webhook, problems = webhook_of(body, allow_http=self.config.allow_http_callbacks)
        try:
            validated = validate(rest)
        except InvalidRequest as invalid:
            raise InvalidRequest(invalid.items + problems) from None
        if problems:
            raise InvalidRequest(problems)
        return validated, webhook

    def _lenient_webhook(self, body: Any) -> WebhookTarget | None:
        """The webhook of a body rejected for another reason, when that part of it is valid."""
        if not isinstance(body, dict):
            return None
        _, webhook, _ = webhook_of(body, allow_http=self.config.allow_http_callbacks)
        return webhook

    def _notify_failed(self, record: TaskRecord) -> None:
        if self.notifications is None or record.webhook is None:
            return
        from wanflow.client_webhooks.queue import NotifyUnavailable

        try:
            self.notifications.task_event(record, "task.failed")
        except NotifyUnavailable:
            # The answer to the client already says the task failed; the log says why the
            # webhook did not go out.
            logger.exception("task.failed not queued", extra={"task_id": record.id})

    def _new_record(
        self,
        task_id: str,
        tenant: str,
        validated: ValidatedRequest,
        fingerprint: str,
        callback: bool,
    ) -> TaskRecord:
        now = now_iso()
        return TaskRecord(
            id=task_id,
            tenant=tenant,
            model=validated.model,
            mode=validated.mode,
            status=TaskStatus.ACCEPTED,
            completion="callback" if callback else "poll",
            request=stored_request(validated.request),
            request_hash=fingerprint,
            warnings=[w.message for w in validated.warnings],
            timing=validated.timing,
            created_at=now,
            updated_at=now,
        )

    def _replay(self, task_id: str, fingerprint: str) -> TaskRecord:
        try:
            existing = self.store.get(task_id)
        except TaskNotFound:
            # Its execution exists and is not this request's running one: it ended (an earlier
            # submit with this key stopped before recording its task, and that execution found
            # none), or a different request with this key runs now. Either way this id can
            # never be followed: creating its task would leave it unfollowed.
            raise IdempotencyConflict(
                "this Idempotency-Key belongs to another request, or to an earlier submit that"
                " stopped before recording its task (nothing was created): submit with a new"
                " Idempotency-Key"
            ) from None
        if existing.request_hash != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request body"
            )
        return existing

    def _create_upstream(
        self,
        record: TaskRecord,
        validated: ValidatedRequest,
        hook: str | None,
        deadline: float | None,
    ) -> TaskRecord:
        # Not started when it could not end in time (CreateNotStarted, an UpstreamUnavailable:
        # failed retryable, nothing sent): an answer now beats API Gateway's 504 and a task
        # created upstream that this submit could no longer record. Leaving the task to its
        # execution instead would fail it minutes later as submit_interrupted, which says the
        # upstream may have created it: not true here.
        until = None if deadline is None else deadline - WRITES_AFTER_CREATE_S
        try:
            created = self.upstream.create(validated, hook, deadline=until)
        except UpstreamRejected as exc:
            failed = self._fail(record, "upstream_rejected", exc.message, exc.upstream_code, False)
            raise UpstreamRefused(exc.message, failed, exc.upstream_code) from exc
        except (UpstreamUnavailable, UpstreamThrottled) as exc:
            failed = self._fail(record, exc.code, exc.message, None, True)
            raise UpstreamDown(exc.message, failed) from exc
        except CreateOutcomeUnknown as exc:
            # The upstream may have created (and will bill) the task: never create it again.
            message = f"{exc.message}. {OUTCOME_UNKNOWN_ADVICE}"
            failed = self._fail(record, exc.code, message, None, False)
            raise UpstreamDown(message, failed) from exc
        try:
            return self.store.advance(
                record.id,
                TaskStatus.QUEUED,
                {"upstream_id": created.task_id, "upstream_status": created.snapshot.raw_status},
            )
        except StaleWrite as lost:  # its execution failed it as interrupted: a submit past its time
            self._cancel(record, created.task_id, deadline)
            current = lost.current or self.store.get(record.id)
            raise UpstreamDown("the submission took too long and was stopped", current) from None

    def _cancel(self, record: TaskRecord, upstream_id: str, deadline: float | None) -> None:
        """Cancel an upstream task no record will follow (best effort: it may still bill)."""
        logger.error("upstream task left behind", extra={"upstream_id": upstream_id})
        try:
            self.upstream.cancel(record.model, upstream_id, deadline=deadline)
        except UpstreamError:  # CancelNotSupported too
            logger.exception("upstream task not cancelled", extra={"upstream_id": upstream_id})

    def _fail(
        self, record: TaskRecord, code: str, message: str, upstream: str | None, retry: bool
    ) -> TaskRecord:
        error = TaskError(code=code, message=message, upstream_code=upstream, retryable=retry)
        try:
            failed = self.store.advance(record.id, TaskStatus.FAILED, {"error": error})
        except StaleWrite as lost:  # its execution failed it as interrupted: that failure stands
            return lost.current or self.store.get(record.id)
        observability.task_ended(failed.model, failed.status.value)
        self._notify_failed(failed)
        return failed
