"""The client API but submit: tasks, cancel, deliveries, uploads, models, webhook secret, docs.

Every route is scoped by the tenant the authorizer put in the request context.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow.http import (
    RequestRefused,
    Unauthenticated,
    decode_cursor,
    encode_cursor,
    error_body,
    invocation_deadline,
    json_body,
    plausible_id,
    public_base_url,
    query_params,
    tenant_of,
    to_http,
)
from wanflow.observability import correlate, log_metrics, logger, trace_handler
from wanflow.results import present
from wanflow.runtime import Runtime, init_environ
from wanflow.store import StoreUnavailable, TaskNotFound, TaskRecord
from wanflow.task import TaskStatus

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())

app = APIGatewayRestResolver()
MAX_LIMIT = 100


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status, "application/json", json.dumps(body))


def _tenant() -> str:
    return tenant_of(app.current_event.raw_event.get("requestContext"))


def _not_found(task_id: str) -> Response[str]:
    return _json(404, error_body("task_not_found", f"no task {task_id}", "not_found", "task_id"))


def _own_task(task_id: str) -> TaskRecord | None:
    """The caller's task; None for a missing one and for another tenant's alike."""
    correlate(task_id)
    tenant = _tenant()  # first: no tenant is a 401, whether the task exists or not
    if not plausible_id(task_id):
        return None
    try:
        record = runtime.store.get(task_id)
    except TaskNotFound:
        return None
    return record if record.tenant == tenant else None


@app.get("/v1/tasks/<task_id>")
def get_task(task_id: str) -> Response[str]:
    """One task; another tenant's task answers exactly as a missing one."""
    record = _own_task(task_id)
    if record is None:
        return _not_found(task_id)
    task = present(record, runtime.s3, runtime.config.bucket_name)
    return _json(200, task.model_dump(mode="json"))


@app.get("/v1/tasks")
def list_tasks() -> Response[str]:
    """The tenant's tasks, newest first, filtered by status and model, a page at a time."""
    params = query_params(app.current_event.raw_event)
    try:
        limit = int(params.get("limit", "20"))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        message = f"limit must be an integer from 1 to {MAX_LIMIT}"
        return _json(400, error_body("invalid_value", message, "invalid_request_error", "limit"))
    status = params.get("status")
    if status and status not in {s.value for s in TaskStatus}:
        message = f"status must be one of {', '.join(s.value for s in TaskStatus)}"
        return _json(400, error_body("invalid_value", message, "invalid_request_error", "status"))
    try:
        cursor = decode_cursor(params.get("cursor"), _tenant())
    except ValueError as exc:
        return _json(400, error_body("invalid_value", str(exc), "invalid_request_error", "cursor"))
    records, last = runtime.store.list_for_tenant(
        _tenant(), limit=limit, cursor=cursor, status=status, model=params.get("model")
    )
    s3, bucket = runtime.s3, runtime.config.bucket_name
    tasks = [present(r, s3, bucket).model_dump(mode="json") for r in records]
    return _json(200, {"tasks": tasks, "next_cursor": encode_cursor(last)})


# --- cancel, models, uploads, OpenAPI and docs -----------------------------------------------


@app.post("/v1/tasks/<task_id>/cancel")
def cancel_task(task_id: str) -> Response[str]:
    """Cancel the caller's task: says whether the upstream stopped it and what was billed."""
    from wanflow.cancellation import CancelResult, NotCancelable
    from wanflow.upstream import UpstreamThrottled, UpstreamUnavailable

    correlate(task_id)
    if json_body(app.current_event.raw_event, optional=True):
        message = "cancel takes no parameters: send no body, or {}"
        return _json(400, error_body("invalid_body", message, "invalid_request_error"))
    if not plausible_id(task_id):
        _tenant()  # no tenant is a 401 first, as for any task
        return _not_found(task_id)
    s3, bucket = runtime.s3, runtime.config.bucket_name
    try:
        done = runtime.canceller.cancel(
            _tenant(), task_id, deadline=invocation_deadline(getattr(app, "lambda_context", None))
        )
    except TaskNotFound:
        return _not_found(task_id)
    except NotCancelable as exc:
        body = error_body(exc.code, exc.message, "conflict_error", "task_id")
        task = present(exc.task, s3, bucket).model_dump(mode="json")
        return _json(409, {**body, "task": task})
    except (UpstreamUnavailable, UpstreamThrottled) as exc:
        message = f"the upstream could not be asked to cancel, so nothing changed: {exc.message}"
        return _json(503, error_body(exc.code, message, "upstream_error"))
    result = CancelResult(
        task=present(done.record, s3, bucket),
        upstream_canceled=done.upstream_canceled,
        billed=done.billed,
    )
    logger.info("task canceled", upstream_canceled=done.upstream_canceled)
    return _json(200, result.model_dump(mode="json"))


@app.get("/v1/models")
def list_models() -> Response[str]:
    """The catalog: every model with its modes, route, statuses and request schema."""
    from wanflow.catalog import MODELS

    _tenant()  # the catalog is for callers with a key, like every route but the docs
    return _json(200, {"models": [spec.describe() for spec in MODELS.values()]})


@app.post("/v1/uploads")
def create_upload() -> Response[str]:
    """Validate a request without its image and grant a presigned PUT for the image (201)."""
    from wanflow.errors import InvalidRequest

    tenant = _tenant()
    body = json_body(app.current_event.raw_event)
    try:
        ticket = runtime.uploads.grant(tenant, body)
    except InvalidRequest as exc:
        return _json(*to_http(exc))
    logger.info("upload granted", upload_id=ticket.upload_id, task_id=ticket.task_id)
    return _json(201, ticket.model_dump(mode="json"))


def _base_url() -> str | None:
    return public_base_url(app.current_event.raw_event, http=runtime.config.allow_http_callbacks)


@app.get("/openapi.json")
def openapi_document() -> Response[str]:
    """The committed OpenAPI document, its `servers` set to the URL the caller reached."""
    from wanflow import openapi  # only the docs routes need it: not on every cold start

    return _json(200, openapi.published(_base_url()))


@app.get("/docs")
def docs() -> Response[str]:
    """Swagger UI for the document; `?format=json` is the document (Swagger UI links it)."""
    from wanflow import openapi

    document = openapi.published(_base_url())
    if query_params(app.current_event.raw_event).get("format") == "json":
        return _json(200, document)
    return Response(200, "text/html; charset=utf-8", openapi.docs_page(document))


# --- client webhooks: deliveries and redelivery ------------------------------------------------


def _bad_event(message: str) -> Response[str]:
    return _json(400, error_body("invalid_value", message, "invalid_request_error", "event"))


@app.get("/v1/tasks/<task_id>/deliveries")
def list_deliveries(task_id: str) -> Response[str]:
    """The task's webhook delivery attempts, oldest first; another tenant's task is a 404."""
    from wanflow.client_webhooks.delivery_log import DeliveryList, list_deliveries

    if _own_task(task_id) is None:
        return _not_found(task_id)
    listed = DeliveryList(deliveries=list_deliveries(runtime.store, task_id))
    return _json(200, listed.model_dump(mode="json"))


@app.post("/v1/tasks/<task_id>/deliveries/redeliver")
def redeliver(task_id: str) -> Response[str]:
    """Send an event of the task again with its original webhook-id (202: queued). The body
    `{"event": ...}` is optional: the task's latest event by default."""
    from wanflow.client_webhooks.queue import EventNotAvailable, NoWebhook, Redelivery
    from wanflow.task import WEBHOOK_EVENTS

    shape = 'the body must be empty or {"event": "<event name>"}'
    try:
        body = json_body(app.current_event.raw_event, optional=True) or {}
    except RequestRefused as exc:
        if exc.code == "invalid_body":  # JSON, but not an object: say what the body holds
            return _bad_event(shape)
        raise
    record = _own_task(task_id)
    if record is None:
        return _not_found(task_id)
    if set(body) - {"event"}:
        return _bad_event(shape)
    event = body.get("event")
    if event is not None and event not in WEBHOOK_EVENTS:
        return _bad_event(f"event must be one of {', '.join(WEBHOOK_EVENTS)}")
    try:
        enqueued = runtime.notifications.redeliver(record, event)
    except NoWebhook as exc:
        return _json(409, error_body(exc.code, exc.message, "conflict_error"))
    except EventNotAvailable as exc:
        if event is not None:  # the client named an event this task cannot send
            return _bad_event(exc.message)
        return _json(409, error_body(exc.code, exc.message, "conflict_error"))
    return _json(202, Redelivery(enqueued=enqueued).model_dump(mode="json"))


# --- tenants: the webhook secret ------------------------------------------------------------------


# Powertools leaves this decorator unannotated, hence the ignore.
@app.exception_handler(Unauthenticated)  # type: ignore[untyped-decorator]
def _unauthenticated(exc: Unauthenticated) -> Response[str]:
    """No tenant from the authorizer: 401 on every route, never a guessed tenant."""
    return _json(*to_http(exc))


@app.exception_handler(RequestRefused)  # type: ignore[untyped-decorator]
def _refused(exc: RequestRefused) -> Response[str]:
    """A body or query that cannot be read at all: 400, 413 or 415, on every route."""
    return _json(*to_http(exc))


@app.exception_handler(StoreUnavailable)  # type: ignore[untyped-decorator]
def _store_unavailable(exc: StoreUnavailable) -> Response[str]:
    """DynamoDB throttled or down past botocore's retries: 503, try again (never a bare 502)."""
    return _json(*to_http(exc))


@app.get("/v1/webhooks/secret")
def webhook_secret() -> Response[str]:
    """The caller's `whsec_` secret, to verify the webhooks wanflow sends it."""
    return _json(200, {"secret": runtime.tenants.webhook_secret(_tenant())})


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
