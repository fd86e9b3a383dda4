"""POST /v1/callbacks/{task_id}?sig=…: upstream callbacks in, answered well under a second.

Not traced by the X-Ray SDK (the function's own Lambda segment still is, with `Tracing:
Active`): the SDK imports botocore's session and client, and a forged callback must be refused
without loading them.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from wanflow.api import json_response, reply, request_body, resolver
from wanflow.errors import TaskNotFound
from wanflow.http import MAX_QUERY_CHARS, json_body, plausible_id
from wanflow.observability import correlate, log_metrics, logger
from wanflow.runtime import Runtime, init_environ
from wanflow.schema import Schema

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())

app = resolver()

#: Largest callback read: the upstream posts its task object, a few KB. The body is kept in one
#: DynamoDB item (400 KB), as JSON text in which a character may take up to 12 bytes escaped.
MAX_CALLBACK_BYTES = 32 * 1024


class CallbackReply(Schema):
    """What the callback receiver answers the upstream."""

    received: bool = Field(description="Always true: the callback was recorded.")
    duplicate: bool | None = Field(default=None, description="Whether it was seen before.")
    ignored: str | None = Field(default=None, description="Why it changed nothing, if so.")


class CallbackProblem(Schema):
    """Why a callback was refused."""

    code: str = Field(description="`bad_signature` or `task_not_found`.")
    message: str = Field(description="What is wrong.")


class CallbackError(Schema):
    """A refused callback (the upstream's own retry policy reads only the status code)."""

    error: CallbackProblem = Field(description="Why it was refused.")


@app.post(
    "/v1/callbacks/<task_id>",
    operation_id="receiveCallback",
    tags=["upstream"],
    summary="Upstream callback (not for clients)",
    description="Where the upstream reports a task's end. No API key: the `sig` in the URL "
    "wanflow gave the upstream is checked instead. Duplicates answer 200 and change nothing.",
    responses={
        200: reply("Received (or a duplicate, which changes nothing).", CallbackReply),
        401: reply("The signature is missing or wrong; nothing was read.", CallbackError),
        404: reply("No such task.", CallbackError),
    },
    openapi_extensions=request_body(
        {"type": "object", "description": "The upstream's task report, as it sends it."},
        required=False,
    ),
)
def receive_callback(
    task_id: Annotated[str, Path(min_length=1, description="The task the callback is about.")],
    sig: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY_CHARS,
            description="HMAC of the task id that wanflow put in the callback URL.",
        ),
    ] = None,
) -> Response[str]:
    """Verify, record and act on one callback."""
    correlate(task_id)
    event = app.current_event.raw_event
    # First, and without the AWS SDK: a hostile request (forged or not) is refused before the
    # secret is read or anything is touched.
    json_body(event, max_bytes=MAX_CALLBACK_BYTES)
    if not plausible_id(task_id):
        raise TaskNotFound("no such task")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    return json_response(200, runtime.callback_receiver.receive(task_id, sig, body))


@logger.inject_lambda_context(clear_state=True)
@log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (API Gateway proxy event)."""
    return app.resolve(event, context)
