"""POST /v1/tasks: validate a request, create the upstream task, start following it."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow.errors import WanflowError
from wanflow.http import invocation_deadline, json_body, public_base_url, tenant_of, to_http
from wanflow.observability import log_metrics, logger, trace_handler
from wanflow.runtime import Runtime, init_environ

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())

app = APIGatewayRestResolver()


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status, "application/json", json.dumps(body))


@app.post("/v1/tasks")
def submit() -> Response[str]:
    """Submit one generation task."""
    key = app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get(
        "idempotency-key"
    )
    try:
        body = json_body(app.current_event.raw_event)
        tenant = tenant_of(app.current_event.raw_event.get("requestContext"))
        base_url = public_base_url(
            app.current_event.raw_event, http=runtime.config.allow_http_callbacks
        )
        task, created = runtime.submitter.submit(
            tenant,
            body,
            idempotency_key=key,
            public_base_url=base_url,
            deadline=invocation_deadline(getattr(app, "lambda_context", None)),
        )
    except WanflowError as exc:
        return _json(*to_http(exc))
    logger.info("task submitted", new_task=created, model=task.model, status=task.status.value)
    return _json(202, task.public().model_dump(mode="json"))


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: API Gateway requests (uploads have a function of their own)."""
    return app.resolve(event, context)
