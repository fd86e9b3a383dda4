"""S3 ObjectCreated under uploads/: each uploaded image becomes a task (a bad one, a failed task).

A function of its own, not behind API Gateway: S3 invokes it asynchronously, so its Timeout may
cover the longest upstream create, which the API's 29 s cannot. An event that still fails after
Lambda's retries goes to the dead-letter queue (`wanflow redrive-uploads` invokes it again).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow.observability import correlate, log_metrics, logger, trace_handler
from wanflow.runtime import Runtime, init_environ

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: an S3 notification; returns the ids of the tasks it made."""
    intake = runtime.uploads
    tasks = []
    for record in event["Records"]:
        s3 = record["s3"]
        correlate(None)  # each upload is a task of its own: the submitter correlates it
        task = intake.handle(s3["bucket"]["name"], s3["object"]["key"])
        if task is not None:
            logger.info("upload submitted", task_id=task.id, status=task.status.value)
            tasks.append(task.id)
    return {"tasks": tasks}
