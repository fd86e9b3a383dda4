"""The client API but submit: tasks, cancel, deliveries, uploads, models, webhook secret, docs.

Every route is scoped by the tenant the authorizer put in the request context.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow import runtime
from wanflow.http import decode_cursor, encode_cursor, error_body, tenant_of
from wanflow.results import present
from wanflow.store import TaskNotFound
from wanflow.task import TaskStatus

logger = Logger()
app = APIGatewayRestResolver()
MAX_LIMIT = 100


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status, "application/json", json.dumps(body))


def _tenant() -> str:
    return tenant_of(app.current_event.raw_event.get("requestContext"))


def _not_found(task_id: str) -> Response[str]:
    return _json(404, error_body("task_not_found", f"no task {task_id}", "not_found", "task_id"))


@app.get("/v1/tasks/<task_id>")
def get_task(task_id: str) -> Response[str]:
    """One task; another tenant's task answers exactly as a missing one."""
    logger.append_keys(task_id=task_id)
    try:
        record = runtime.store().get(task_id)
    except TaskNotFound:
        return _not_found(task_id)
    if record.tenant != _tenant():
        return _not_found(task_id)
    task = present(record, runtime.s3(), runtime.config().bucket_name)
    return _json(200, task.model_dump(mode="json"))


@app.get("/v1/tasks")
def list_tasks() -> Response[str]:
    """The tenant's tasks, newest first, filtered by status and model, a page at a time."""
    params = app.current_event.query_string_parameters or {}
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
        cursor = decode_cursor(params.get("cursor"))
    except ValueError as exc:
        return _json(400, error_body("invalid_value", str(exc), "invalid_request_error", "cursor"))
    records, last = runtime.store().list_for_tenant(
        _tenant(), limit=limit, cursor=cursor, status=status, model=params.get("model")
    )
    s3, bucket = runtime.s3(), runtime.config().bucket_name
    tasks = [present(r, s3, bucket).model_dump(mode="json") for r in records]
    return _json(200, {"tasks": tasks, "next_cursor": encode_cursor(last)})


# --- cancel, models, uploads, OpenAPI and docs -----------------------------------------------


# --- client webhooks: deliveries and redelivery ------------------------------------------------


# --- tenants: the webhook secret ------------------------------------------------------------------


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
