"""The poll chain's first message, counted from the task's creation (following.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stackkit import request, submit

from wanflow import runtime
from wanflow.catalog.base import Timing
from wanflow.following import Follower
from wanflow.schedule import callback_wait_s, next_poll
from wanflow.task import TaskStatus
from wanflow_local.stack import LocalStack


@pytest.mark.parametrize(
    ("example", "how", "first_look_s"),
    [
        ("wan26_i2i-edit", "poll", lambda timing: next_poll(timing, 0, None, 0).wait_s),
        ("wan2.6-image-to-video-flash", "callback", callback_wait_s),
    ],
)
def test_a_late_start_does_not_delay_the_first_look(
    stack: LocalStack, example: str, how: str, first_look_s: Callable[[Timing], float]
) -> None:
    # GIVEN a task created long ago, all but 3 s of its first look's wait ago, whose execution
    # only now follows it (a slow start), on a clock running at upstream speed and with a poll
    # queue of its own
    _, task = submit(stack, request(example))
    template = stack.store.get(task["id"])
    due_s = first_look_s(template.timing)
    created = datetime.now(UTC) - timedelta(seconds=due_s - 3)
    record = template.model_copy(
        update={
            "id": f"{template.id}-late",
            "status": TaskStatus.QUEUED,
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "task_token": None,
            "polls": 0,
        }
    )
    stack.store.create(record)
    sqs = runtime.sqs()
    queue = sqs.create_queue(QueueName=f"first-look-{record.id[-12:]}")["QueueUrl"]
    config = replace(runtime.config(), poll_queue_url=queue, time_scale=1.0)
    follower = Follower(config, replace(runtime.lifecycle(), config=config), sqs, runtime.sfn())
    # WHEN it is followed
    started = time.monotonic()
    follower.follow(record.id, "token-of-a-late-execution", how)
    # THEN its first look comes when it was due since the task's creation, not a whole first
    # wait after now
    got: list[Any] = []
    while not got and time.monotonic() - started < due_s:
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    waited = time.monotonic() - started
    assert got, f"no look within {due_s:.0f} s"
    assert 1.5 <= waited <= 5.0, waited
