"""The notify queue's consumer: posts each client webhook event, signed, and logs the attempt.

A message whose post failed is not reported as failed: the deliverer has already put the next
attempt on the queue with its delay. Only a message that could not be handled at all (the store
or the queue unreachable) is reported in `batchItemFailures`, so SQS brings it back.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow.observability import correlate, log_metrics, logger, trace_handler
from wanflow.runtime import Runtime, init_environ

#: This function's collaborators, from its own environment: a setting missing from it fails
#: the function's init, as on Lambda.
runtime = Runtime.from_environ(init_environ())

processor = BatchProcessor(event_type=EventType.SQS)


#: Time an attempt may need (the 10 s receiver timeout and the writes around it).
_RESERVE_MS = 12_000


class NoTimeLeft(Exception):
    """Too little of the invocation is left to post another event: SQS brings it back."""


def deliver(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
    """Post one queued event (the parameter must be named `record` for Powertools).

    A batch of slow receivers must not run the function out of time (Lambda would then return
    the whole batch, posting the delivered events again): once too little time is left, the
    remaining records are reported as failed and come back after the visibility timeout.
    """
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < _RESERVE_MS:
        raise NoTimeLeft("not enough time left in this invocation")
    message = record.json_body
    # Per record: a batch holds events of several tasks.
    correlate(message.get("task_id"))
    logger.thread_safe_append_keys(webhook_id=message.get("webhook_id"))
    return runtime.deliverer.handle(message)


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: a batch of notify queue messages, reported item by item."""
    return dict(
        process_partial_response(
            event=event, record_handler=deliver, processor=processor, context=context
        )
    )
