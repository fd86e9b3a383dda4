"""The client API but submit: tasks, cancel, deliveries, uploads, models, webhook secret, docs.

Every route is scoped by the tenant the authorizer put in the request context. Routes take
typed parameters and raise wanflow errors; the resolver's one exception handler answers them
(`wanflow.api`). The models only these routes answer with are defined here, next to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from wanflow.api import errors, json_response, reply, request_body, resolver
from wanflow.catalog import MODELS
from wanflow.client_webhooks.delivery_log import Delivery
from wanflow.clock import UtcTimestamp
from wanflow.errors import ErrorBody, ErrorWithTask, TaskNotFound
from wanflow.http import (
    MAX_QUERY_CHARS,
    RequestRefused,
    decode_cursor,
    encode_cursor,
    invocation_deadline,
    json_body,
    plausible_id,
    public_base_url,
    tenant_of,
)
from wanflow.observability import correlate, log_metrics, logger, trace_handler
from wanflow.results import present
from wanflow.runtime import Runtime, init_environ
from wanflow.schema import Schema
from wanflow.task import WEBHOOK_EVENTS, Billing, Task, TaskStatus, WebhookEvent

if TYPE_CHECKING:
    from wanflow.store import TaskRecord

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())


def _present(record: TaskRecord) -> Task:
    return present(record, runtime.s3, runtime.config.bucket_name)


app = resolver(present=_present)
MAX_LIMIT = 100
TASK_ID_DOC = "The task id (`tsk_…`) returned when the task was submitted."


# --- what these routes answer with ---------------------------------------------------------


class TaskPage(Schema):
    """A page of the tenant's tasks, newest first."""

    tasks: list[Task] = Field(description="The tasks of this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class CancelResult(Schema):
    """The answer to a cancel: the task as it now is, and what happened upstream."""

    task: Task = Field(description="The task, now `canceled`.")
    upstream_canceled: bool = Field(
        description="Whether the upstream task was stopped. False for a model the upstream "
        "cannot cancel: its task keeps running and is billed; wanflow no longer follows it."
    )
    billed: Billing = Field(description="What the upstream billed, as far as it says.")


class CatalogEntry(Schema):
    """One model of the catalog (`ModelSpec.describe()`)."""

    id: str = Field(description="The model id to send as `model`.")
    title: str = Field(description="A name for people.")
    output: Literal["video", "image"] = Field(description="What the model produces.")
    modes: list[str] = Field(description="The modes it runs in (t2v, i2v, r2v, edit, ...).")
    family: str = Field(description="The upstream API family it is created through.")
    create_path: str = Field(description="The upstream path tasks are created at.")
    status_path: str = Field(description="The upstream path of a task's status.")
    accepts_callback: bool = Field(description="Whether the upstream calls back when done.")
    statuses: str = Field(description="The upstream status vocabulary it uses.")
    request_schema: dict[str, Any] = Field(
        description="JSON Schema of the request (the body of POST /v1/tasks for this model)."
    )


class ModelList(Schema):
    """The catalog."""

    models: list[CatalogEntry] = Field(description="Every model wanflow runs.")


class DeliveryList(Schema):
    """A task's webhook delivery attempts."""

    deliveries: list[Delivery] = Field(description="Every delivery attempt, oldest first.")


class RedeliverRequest(Schema):
    """Which event to send again (the body of a redelivery; optional)."""

    event: WebhookEvent | None = Field(
        default=None, description="The event to send again; the task's latest one by default."
    )


class Redelivery(Schema):
    """A redelivery that was queued."""

    enqueued: list[str] = Field(description="The webhook-ids queued (the events' original ids).")


class UploadTarget(Schema):
    """How to send the image: one HTTP request, exactly as given."""

    method: Literal["PUT"] = Field(default="PUT", description="The HTTP method.")
    url: str = Field(description="Presigned S3 URL of the upload's object.")
    headers: dict[str, str] = Field(
        description="Headers the PUT must carry, as given: the URL is signed with them."
    )


class UploadTicket(Schema):
    """A granted upload: where to PUT the image, and the task it will become."""

    upload_id: str = Field(description="The upload's id.")
    task_id: str = Field(
        description="The task the image becomes once uploaded (GET /v1/tasks/{id} answers 404 "
        "until then). A bad image makes it a failed task saying why."
    )
    upload: UploadTarget = Field(description="The request that uploads the image.")
    expires_at: UtcTimestamp = Field(description="When the upload URL stops working.")


class WebhookSecret(Schema):
    """The tenant's webhook signing secret."""

    secret: str = Field(
        pattern="^whsec_", description="The `whsec_` secret (Standard Webhooks) to verify with."
    )


# --- the caller and its tasks --------------------------------------------------------------

TaskId = Annotated[str, Path(min_length=1, description=TASK_ID_DOC)]


def _tenant() -> str:
    return tenant_of(app.current_event.raw_event.get("requestContext"))


def _own_task(task_id: str) -> TaskRecord:
    """The caller's task; TaskNotFound for a missing one and for another tenant's alike."""
    correlate(task_id)
    tenant = _tenant()  # first: no tenant is a 401, whether the task exists or not
    if not plausible_id(task_id):
        raise TaskNotFound(f"no task {task_id}")
    record = runtime.store.get(task_id)
    if record.tenant != tenant:
        raise TaskNotFound(f"no task {task_id}")
    return record


def _deadline() -> float | None:
    return invocation_deadline(getattr(app, "lambda_context", None))


def _base_url() -> str | None:
    return public_base_url(app.current_event.raw_event, http=runtime.config.allow_http_callbacks)


# --- tasks -------------------------------------------------------------------------------------


@app.get(
    "/v1/tasks/<task_id>",
    operation_id="getTask",
    tags=["tasks"],
    summary="Get a task",
    description="The task with its status, progress, warnings, usage and, once succeeded, its "
    "outputs as presigned URLs to wanflow's own copy (a new URL on every read).",
    responses={200: reply("The task; outputs as short-lived presigned URLs.", Task), **errors(404)},
)
def get_task(task_id: TaskId) -> Response[str]:
    """One task; another tenant's task answers exactly as a missing one."""
    return json_response(200, _present(_own_task(task_id)))


@app.get(
    "/v1/tasks",
    operation_id="listTasks",
    tags=["tasks"],
    summary="List tasks",
    description="The tenant's tasks, newest first, a page at a time; pass `next_cursor` back as "
    "`cursor` for the next page (it is null on the last one). The listing is read from an index "
    "that is eventually consistent: a task just submitted may be missing from it, and a task "
    "that just changed may show its previous status, for a moment (usually under a second). "
    "`GET /v1/tasks/{id}` always reads the task as it is: use it, not the listing, to follow a "
    "task you submitted.",
    responses={200: reply("A page of tasks.", TaskPage), **errors(400)},
)
def list_tasks(
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status.")] = None,
    model: Annotated[
        str | None, Query(max_length=MAX_QUERY_CHARS, description="Only tasks of this model id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_QUERY_CHARS, description="`next_cursor` of the previous page."),
    ] = None,
) -> Response[str]:
    """The tenant's tasks, newest first, filtered by status and model, a page at a time."""
    tenant = _tenant()
    records, last = runtime.store.list_for_tenant(
        tenant,
        limit=limit,
        cursor=decode_cursor(cursor, tenant),
        status=status.value if status else None,
        model=model,
    )
    page = TaskPage(tasks=[_present(r) for r in records], next_cursor=encode_cursor(last))
    return json_response(200, page)


@app.post(
    "/v1/tasks/<task_id>/cancel",
    operation_id="cancelTask",
    tags=["tasks"],
    summary="Cancel a task",
    description="Cancels the task upstream where the model allows it and stops following it; "
    "the answer says what happened and what was billed. It takes no body (or `{}`).",
    responses={
        200: reply("What the cancel did.", CancelResult),
        **errors(400, 404),
        409: reply("The task has ended; `task` is as it now is.", ErrorWithTask),
        **errors(413, 415, 503),
    },
)
def cancel_task(task_id: TaskId) -> Response[str]:
    """Cancel the caller's task: says whether the upstream stopped it and what was billed."""
    correlate(task_id)
    if json_body(app.current_event.raw_event, optional=True):
        message = "cancel takes no parameters: send no body, or {}"
        raise RequestRefused(400, "invalid_body", message)
    tenant = _tenant()  # no tenant is a 401 first, as for any task
    if not plausible_id(task_id):
        raise TaskNotFound(f"no task {task_id}")
    done = runtime.canceller.cancel(tenant, task_id, deadline=_deadline())
    logger.info("task canceled", upstream_canceled=done.upstream_canceled)
    result = CancelResult(
        task=_present(done.record), upstream_canceled=done.upstream_canceled, billed=done.billed
    )
    return json_response(200, result)


# --- client webhooks: deliveries and redelivery ------------------------------------------------


@app.get(
    "/v1/tasks/<task_id>/deliveries",
    operation_id="listDeliveries",
    tags=["webhooks"],
    summary="List a task's webhook deliveries",
    description="Every attempt to post the task's events to its webhook, oldest first.",
    responses={200: reply("The task's delivery log.", DeliveryList), **errors(404)},
)
def list_deliveries(task_id: TaskId) -> Response[str]:
    """The task's webhook delivery attempts, oldest first; another tenant's task is a 404."""
    from wanflow.client_webhooks.delivery_log import list_deliveries

    _own_task(task_id)
    return json_response(200, DeliveryList(deliveries=list_deliveries(runtime.store, task_id)))


def _redelivery(event: dict[str, Any]) -> RedeliverRequest:
    """The redelivery body: empty, `{}` or `{"event": "<event name>"}`; 400 naming `event`."""
    from pydantic import ValidationError

    shape = 'the body must be empty or {"event": "<event name>"}'
    try:
        body = json_body(event, optional=True) or {}
    except RequestRefused as exc:
        if exc.code == "invalid_body":  # JSON, but not an object: say what the body holds
            raise RequestRefused(400, "invalid_value", shape, "event") from None
        raise
    if set(body) - {"event"}:
        raise RequestRefused(400, "invalid_value", shape, "event")
    try:
        return RedeliverRequest.model_validate(body)
    except ValidationError:
        message = f"event must be one of {', '.join(WEBHOOK_EVENTS)}"
        raise RequestRefused(400, "invalid_value", message, "event") from None


@app.post(
    "/v1/tasks/<task_id>/deliveries/redeliver",
    operation_id="redeliverWebhook",
    tags=["webhooks"],
    summary="Redeliver a task's webhook",
    description="Posts an event of the task to its webhook again, with its original "
    "`webhook-id`: the task's latest event, or the one named in the (optional) body.",
    responses={
        202: reply("The redelivery was queued.", Redelivery),
        **errors(400, 404),
        409: reply("The task has no webhook, or no event to send yet.", ErrorBody),
        **errors(413, 415),
    },
    openapi_extensions=request_body(RedeliverRequest, required=False),
)
def redeliver(task_id: TaskId) -> Response[str]:
    """Send an event of the task again with its original webhook-id (202: queued)."""
    wanted = _redelivery(app.current_event.raw_event)
    record = _own_task(task_id)
    enqueued = runtime.notifications.redeliver(record, wanted.event)
    return json_response(202, Redelivery(enqueued=enqueued))


@app.get(
    "/v1/webhooks/secret",
    operation_id="getWebhookSecret",
    tags=["webhooks"],
    summary="Get the webhook signing secret",
    description="The tenant's `whsec_` secret: webhooks are signed the Standard Webhooks way "
    "(`webhook-id`, `webhook-timestamp`, `webhook-signature`); verify them with it.",
    responses={200: reply("The tenant's secret.", WebhookSecret)},
)
def webhook_secret() -> Response[str]:
    """The caller's `whsec_` secret, to verify the webhooks wanflow sends it."""
    return json_response(200, WebhookSecret(secret=runtime.tenants.webhook_secret(_tenant())))


# --- uploads and models ------------------------------------------------------------------------


@app.post(
    "/v1/uploads",
    operation_id="createUpload",
    tags=["uploads"],
    summary="Create an upload",
    description="A presigned S3 upload for an input image. Once the image is written, it "
    "becomes a task with the request given here (the image goes in the model's image field).",
    responses={
        201: reply("Where and how to upload the image.", UploadTicket),
        **errors(400, 413, 415),
    },
    openapi_extensions=request_body(
        {
            "type": "object",
            "description": "A model's request as for POST /v1/tasks, without its image.",
            "required": ["model"],
            "properties": {"model": {"type": "string", "enum": list(MODELS)}},
        }
    ),
)
def create_upload() -> Response[str]:
    """Validate a request without its image and grant a presigned PUT for the image (201)."""
    tenant = _tenant()
    grant = runtime.uploads.grant(tenant, json_body(app.current_event.raw_event))
    logger.info("upload granted", upload_id=grant.upload_id, task_id=grant.task_id)
    ticket = UploadTicket(
        upload_id=grant.upload_id,
        task_id=grant.task_id,
        upload=UploadTarget(url=grant.url, headers=grant.headers),
        expires_at=grant.expires_at,
    )
    return json_response(201, ticket)


@app.get(
    "/v1/models",
    operation_id="listModels",
    tags=["models"],
    summary="List models",
    description="The catalog: each model's modes, limits, defaults and request schema.",
    responses={200: reply("The catalog.", ModelList)},
)
def list_models() -> Response[str]:
    """The catalog: every model with its modes, route, statuses and request schema."""
    _tenant()  # the catalog is for callers with a key, like every route but the docs
    return json_response(200, {"models": [spec.describe() for spec in MODELS.values()]})


# --- the OpenAPI document and its Swagger UI -----------------------------------------------------


@app.get(
    "/openapi.json",
    operation_id="getOpenApi",
    tags=["docs"],
    summary="This document",
    description="The OpenAPI 3.1 document of the API, its `servers` set to the URL it was read "
    "from.",
    responses={200: reply("The document.", {"type": "object"})},
)
def openapi_document() -> Response[str]:
    """The committed OpenAPI document, its `servers` set to the URL the caller reached."""
    from wanflow import api_docs  # only the docs routes need it: not on every cold start

    return json_response(200, api_docs.published(_base_url()))


@app.get(
    "/docs",
    operation_id="getDocs",
    tags=["docs"],
    summary="API documentation",
    description="Swagger UI for this document; its assets are served inline (no CDN).",
    responses={200: reply("An HTML page.", {"type": "string"}, "text/html")},
)
def docs(
    format: Annotated[
        Literal["json"] | None, Query(description="`json`: the document itself.")
    ] = None,
) -> Response[str]:
    """Swagger UI for the document; `?format=json` is the document (Swagger UI links it)."""
    from wanflow import api_docs

    document = api_docs.published(_base_url())
    if format == "json":
        return json_response(200, document)
    return Response(200, "text/html; charset=utf-8", api_docs.docs_page(document))


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
