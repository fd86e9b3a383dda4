"""When the poll chain looks (following.py): counted from the task's creation, and ahead of
the lateness its looks show. Each test follows a copy of a submitted task with a Follower of
its own, on a clock running at upstream speed and with a poll queue of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from stackkit import request, submit

from wanflow import runtime
from wanflow.catalog.base import Timing
from wanflow.following import Follower, PollMessage
from wanflow.schedule import callback_wait_s, next_poll, step_s
from wanflow.store import TaskRecord
from wanflow.task import TaskStatus
from wanflow_local.simulator.faults import Faults
from wanflow_local.stack import LocalStack


@pytest.fixture
def follower(stack: LocalStack) -> Iterator[Follower]:
    """A Follower at time scale 1 (upstream seconds are seconds) on a poll queue of its own."""
    sqs = runtime.sqs()
    queue = sqs.create_queue(QueueName=f"own-polls-{time.monotonic_ns()}")["QueueUrl"]
    config = replace(runtime.config(), poll_queue_url=queue, time_scale=1.0)
    yield Follower(config, replace(runtime.lifecycle(), config=config), sqs, runtime.sfn())
    sqs.delete_queue(QueueUrl=queue)


def copy_of(stack: LocalStack, example: str, age_s: Callable[[Timing], float]) -> TaskRecord:
    """A copy of a task just submitted from `example`, created `age_s(timing)` seconds ago."""
    _, task = submit(stack, request(example))
    template = stack.store.get(task["id"])
    created = datetime.now(UTC) - timedelta(seconds=age_s(template.timing))
    record = template.model_copy(
        update={
            "id": f"{template.id}-copy",
            "status": TaskStatus.QUEUED,
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "task_token": "token-of-the-copy",
            "polls": 0,
        }
    )
    stack.store.create(record)
    return record


def next_message_after(follower: Follower, started: float, within_s: float) -> float:
    """Seconds from `started` until the follower's queue has a message (at most `within_s`)."""
    queue = follower.config.poll_queue_url
    while time.monotonic() - started < within_s:
        if follower.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"):
            return time.monotonic() - started
    raise AssertionError(f"no message within {within_s:.0f} s")


@pytest.mark.parametrize(
    ("example", "how", "first_look_s"),
    [
        ("wan26_i2i-edit", "poll", lambda timing: next_poll(timing, 0, None, 0).wait_s),
        ("wan2.6-image-to-video-flash", "callback", callback_wait_s),
    ],
)
def test_a_late_start_does_not_delay_the_first_look(
    stack: LocalStack,
    follower: Follower,
    example: str,
    how: str,
    first_look_s: Callable[[Timing], float],
) -> None:
    # GIVEN a task created all but 3 s of its first look's wait ago, whose execution only now
    # follows it (a slow start)
    record = copy_of(stack, example, lambda timing: first_look_s(timing) - 3)
    # WHEN it is followed
    started = time.monotonic()
    follower.follow(record.id, "token-of-the-copy", how)
    # THEN its first look comes when it was due since the task's creation, not a whole first
    # wait after now
    assert 1.5 <= next_message_after(follower, started, first_look_s(record.timing)) <= 5.0


@pytest.mark.parametrize(("late_s", "brought_forward_s"), [(0, 0), (2, 2), (5, "half a step")])
def test_a_late_look_sends_the_next_sooner(
    stack: LocalStack, follower: Follower, late_s: float, brought_forward_s: float | str
) -> None:
    # GIVEN a task whose upstream never finishes, at a grid point of its schedule (the next
    # look due one step, 6.9 s, later), and a look that comes `late_s` after its due time
    assert stack.sim is not None
    stack.sim.set_faults(Faults(stuck_rate=1.0))
    try:
        record = copy_of(stack, "wan2.6-t2v", lambda timing: timing.low_s + 2 * step_s(timing))
    finally:
        stack.sim.set_faults(Faults())
    step = step_s(record.timing)
    late = PollMessage(record.id, "token-of-the-copy", 0, due=time.time() - late_s)
    # WHEN it looks
    started = time.monotonic()
    follower.poll(late)
    # THEN the next look is sent that much sooner, at most half a step, so that a look as late
    # as this one lands on the grid (waits are whole seconds)
    sooner = step / 2 if brought_forward_s == "half a step" else float(brought_forward_s)
    took = next_message_after(follower, started, step + 2)
    assert abs(took - round(step - sooner)) <= 0.8, (took, step, sooner)
