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

from wanflow import runtime
from wanflow.http import RequestRefused, json_body, to_http
from wanflow.observability import correlate, log_metrics, logger


@logger.inject_lambda_context(clear_state=True)
@log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (API Gateway proxy event)."""
    task_id = str((event.get("pathParameters") or {}).get("task_id") or "")
    signature = (event.get("queryStringParameters") or {}).get("sig")
    correlate(task_id)
    try:
        # First, and with nothing but the standard library: a hostile body (forged or not) is
        # refused before the secret is read or anything is touched.
        json_body(event)
    except RequestRefused as exc:
        return _reply(*to_http(exc))
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    reply = runtime.callback_receiver().receive(task_id, signature, body)
    return _reply(reply.status_code, reply.body)


def _reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
