"""POST /v1/callbacks/{task_id}?sig=…: upstream callbacks, answered well under a second."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow import runtime

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (API Gateway proxy event)."""
    task_id = str((event.get("pathParameters") or {}).get("task_id") or "")
    signature = (event.get("queryStringParameters") or {}).get("sig")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    logger.append_keys(task_id=task_id)
    reply = runtime.callback_receiver().receive(task_id, signature, body)
    return {
        "statusCode": reply.status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(reply.body),
    }
