"""The lifecycle function: the state machine's steps (dispatched on `step`) and the poll queue's
consumer (an SQS batch, each message one look at one task, or a submit's settling look)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from wanflow import runtime
from wanflow.observability import correlate, log_metrics, logger, trace_handler

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

#: Time one look may need: the upstream read timeout with its retries, and the writes around it.
_RESERVE_MS = 70_000


def look(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """One poll message (the parameter must be named `record` for Powertools).

    Once too little of the invocation is left for another look, the rest of the batch is put
    back on the queue at once rather than failed (which would delay it by the visibility
    timeout).
    """
    from wanflow.following import SETTLE, PollMessage

    body = json.loads(record.body)
    if SETTLE in body:  # a submit's settling look
        correlate(str(body[SETTLE]))
        logger.thread_safe_append_keys(step="settle")
        runtime.follower().settle(str(body[SETTLE]))
        return
    message = PollMessage.from_body(body)
    correlate(message.task_id)
    logger.thread_safe_append_keys(step="poll")
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < _RESERVE_MS:
        runtime.follower().defer(message)
        return
    runtime.follower().poll(message, redelivered=record.attributes.approximate_receive_count != "1")


def _looks(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported here: the state machine's steps, most of the invocations, never need it.
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(
            event=event, record_handler=look, processor=processor, context=context
        )
    )


@logger.inject_lambda_context(clear_state=True)
@log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one step for one task, or a batch of looks; a step's exceptions propagate so the
    state machine's Retry sees them, a look's are reported per message."""
    if "Records" in event:
        return _looks(event, context)
    step, task_id = event["step"], event["task_id"]
    correlate(task_id)
    logger.thread_safe_append_keys(step=step)
    if step == "follow":
        runtime.follower().follow(task_id, event["token"], event["how"])
        return {}
    steps = runtime.lifecycle()
    if step == "finalize":
        return steps.finalize(task_id)
    if step == "time_out":
        return steps.time_out(task_id)
    if step == "record_failure":
        return steps.record_failure(task_id, event.get("error"))
    raise ValueError(f"unknown lifecycle step {step!r}")
