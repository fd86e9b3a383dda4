"""The lifecycle function: the state machine's steps, dispatched on `step`."""

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
    """Run one step for one task; its exceptions propagate, so the state machine's Retry and
    Catch see them (by class name)."""
    step, task_id = event["step"], event["task_id"]
    correlate(task_id)
    logger.thread_safe_append_keys(step=step)
    if step == "follow":
        runtime.follower.follow(task_id, event["token"])
        return {}
    if step == "look":
        return runtime.follower.look(task_id, event["started_at"])
    steps = runtime.lifecycle
    if step == "finalize":
        return steps.finalize(task_id)
    if step == "time_out":
        return steps.time_out(task_id)
    if step == "record_failure":
        return steps.record_failure(task_id, event.get("error"))
    raise ValueError(f"unknown lifecycle step {step!r}")
