"""POST /v1/callbacks/{task_id}?sig=…: upstream callbacks, answered well under a second.

Not traced by the X-Ray SDK (the function's own Lambda segment still is, with `Tracing:
Active`): the SDK imports botocore's session and client, and a forged callback must be refused
without loading them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow.http import (
    RequestRefused,
    error_body,
    json_body,
    plausible_id,
    query_params,
    to_http,
)
from wanflow.observability import correlate, log_metrics, logger
from wanflow.runtime import Runtime, init_environ

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())

#: Largest callback read: the upstream posts its task object, a few KB. The body is kept in one
#: DynamoDB item (400 KB), as JSON text in which a character may take up to 12 bytes escaped.
MAX_CALLBACK_BYTES = 32 * 1024


@logger.inject_lambda_context(clear_state=True)
@log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (API Gateway proxy event)."""
    task_id = str((event.get("pathParameters") or {}).get("task_id") or "")
    correlate(task_id)
    try:
        # First, and without the AWS SDK: a hostile request (forged or not) is refused before
        # the secret is read or anything is touched.
        signature = query_params(event).get("sig")
        json_body(event, max_bytes=MAX_CALLBACK_BYTES)
    except RequestRefused as exc:
        return _reply(*to_http(exc))
    if not plausible_id(task_id):
        return _reply(404, error_body("task_not_found", "no such task", "not_found", "task_id"))
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    reply = runtime.callback_receiver.receive(task_id, signature, body)
    return _reply(reply.status_code, reply.body)


def _reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
