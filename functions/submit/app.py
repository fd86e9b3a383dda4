"""POST /v1/tasks: validate a request, create the upstream task, start following it."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow.api import CATALOG_REQUEST, errors, json_response, reply, request_body, resolver
from wanflow.errors import ErrorWithTask
from wanflow.http import MAX_BODY_BYTES, invocation_deadline, json_body, public_base_url, tenant_of
from wanflow.observability import log_metrics, logger, trace_handler
from wanflow.runtime import Runtime, init_environ
from wanflow.task import Task

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())

app = resolver()

SUBMIT_DESCRIPTION = (
    "The body is one model's request exactly as the upstream documents it (see "
    "`GET /v1/models`), plus an optional `webhook`. It is checked against the model's "
    "documented limits before anything is spent; every problem is reported at once, "
    "each naming its field. With an `Idempotency-Key`, repeating the same request "
    "returns the same task, and reusing the key with another body is a 409. Images may "
    "be inline (data URIs) while the whole body stays within "
    f"{MAX_BODY_BYTES:,} bytes (one image of about 4.6 MB, or four of 1.1 MB); "
    "larger ones go through `POST /v1/uploads`."
)
UNAVAILABLE = (
    "The upstream could not take the task; `task` is the failed task, and its "
    "`error` says what happened. `retryable: true` (`upstream_unavailable`, "
    "`upstream_throttled`, `upstream_create_not_started`): nothing was created "
    "upstream; submit again later. `retryable: false` "
    "(`upstream_create_outcome_unknown`: the upstream answered the create with a "
    "5xx, or no answer came): the upstream may have created the task and may "
    "bill it, but wanflow cannot follow it and never creates it again; before "
    "submitting again, check `GET /v1/tasks` that you have not already done so. "
    "Either way the same `Idempotency-Key` keeps returning this failed task: "
    "submit again with a new key. Without `task` "
    "(`orchestration_unavailable`, `store_unavailable`): nothing was recorded "
    "or created; send the same request again shortly."
)


@app.post(
    "/v1/tasks",
    operation_id="submitTask",
    tags=["tasks"],
    summary="Submit a generation task",
    description=SUBMIT_DESCRIPTION,
    responses={
        202: reply("The task was accepted and is being followed.", Task),
        400: reply(
            "Invalid request, or the upstream refused it (then `task` is the failed task).",
            ErrorWithTask,
        ),
        **errors(409, 413, 415),
        503: reply(UNAVAILABLE, ErrorWithTask),
    },
    openapi_extensions=request_body(CATALOG_REQUEST),
)
def submit(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Any string of yours: the same key and body always give the same task.",
        ),
    ] = None,
) -> Response[str]:
    """Submit one generation task: the body is a raw dict, validated by the model's catalog
    entry (its errors carry the upstream's own codes)."""
    event = app.current_event.raw_event
    body = json_body(event)
    tenant = tenant_of(event.get("requestContext"))
    task, created = runtime.submitter.submit(
        tenant,
        body,
        idempotency_key=idempotency_key,
        public_base_url=public_base_url(event, http=runtime.config.allow_http_callbacks),
        deadline=invocation_deadline(getattr(app, "lambda_context", None)),
    )
    logger.info("task submitted", new_task=created, model=task.model, status=task.status.value)
    return json_response(202, task.public())


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: API Gateway requests (uploads have a function of their own)."""
    return app.resolve(event, context)
