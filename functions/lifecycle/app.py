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


def look(record: SQSRecord, body: Any, lambda_context: LambdaContext | None = None) -> None:
    """One poll message, its body already read (None when it could not be).

    Once too little of the invocation is left for another look, the rest of the batch is put
    back on the queue at once rather than failed (which would delay it by the visibility
    timeout).
    """
    from wanflow.following import SETTLE, PollMessage

    if not isinstance(body, dict):
        raise ValueError(f"not a poll queue message: {record.body[:200]!r}")
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


#: Most looks of one batch under way at once (the poll queue's BatchSize is 10).
_PARALLEL_LOOKS = 10


def _read(record: SQSRecord) -> tuple[str, Any]:
    """The task a poll queue message is about (its message id when the body cannot be read),
    and its body (None then)."""
    try:
        body = json.loads(record.body)
    except ValueError:
        return record.message_id, None
    if not isinstance(body, dict):
        return record.message_id, None
    return str(body.get("task_id") or body.get("settle") or record.message_id), body


def _look_in_turn(messages: list[tuple[SQSRecord, Any]], context: LambdaContext) -> list[str]:
    """Look for each message in turn (one task's messages, in batch order); returns the message
    ids that failed, so SQS brings them back."""
    failed = []
    for record, body in messages:
        logger.thread_safe_clear_keys()
        try:
            look(record, body, context)
        except Exception:  # this message comes back; the others of the batch go on
            logger.exception("look failed", extra={"message_id": record.message_id})
            failed.append(record.message_id)
    return failed


def _looks(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A batch of looks, the tasks side by side (a look mostly waits on the upstream and
    DynamoDB: ten in turn made the last of a full batch up to ten looks late), each task's
    messages in turn (a redelivery and its twin never race past the duplicate guard)."""
    from concurrent.futures import ThreadPoolExecutor

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    by_task: dict[str, list[tuple[SQSRecord, Any]]] = {}
    for raw in event["Records"]:
        record = SQSRecord(raw)
        task, body = _read(record)
        by_task.setdefault(task, []).append((record, body))
    groups = list(by_task.values())
    if len(groups) == 1:
        failed = _look_in_turn(groups[0], context)
    else:
        with ThreadPoolExecutor(min(len(groups), _PARALLEL_LOOKS), "look") as pool:
            results = pool.map(lambda group: _look_in_turn(group, context), groups)
            failed = [message_id for ids in results for message_id in ids]
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}


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
