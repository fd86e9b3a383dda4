"""How an execution follows a task (following.py): the poll loop in the state machine, each look
in the execution's history, its waits on the schedule's grid counted from the task's creation,
and the look that settles a task its submit left behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stackkit import request, submit

from wanflow.catalog.base import Timing
from wanflow.following import INTERRUPTED, Follower
from wanflow.schedule import step_s
from wanflow.store import TaskRecord
from wanflow.task import TERMINAL, TaskStatus
from wanflow_local.simulator.faults import Faults
from wanflow_local.stack import LocalStack

#: The settle window of the followers here (wall-clock seconds).
SETTLE_S = 30


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def follower(stack: LocalStack) -> Follower:
    """A Follower at time scale 1 (upstream seconds are seconds), settling after SETTLE_S."""
    runtime = stack.runtime("LifecycleFunction")
    config = replace(runtime.config, time_scale=1.0, submit_settle_s=SETTLE_S)
    return Follower(config, replace(runtime.lifecycle, config=config), runtime.sfn)


def copy_of(
    stack: LocalStack, example: str, age_s: Callable[[Timing], float], **update: Any
) -> TaskRecord:
    """A `queued` copy of a task just submitted from `example` (the same upstream task),
    created `age_s(timing)` seconds ago; `update` changes more of it."""
    _, task = submit(stack, request(example))
    template = stack.store.get(task["id"])
    created = datetime.now(UTC) - timedelta(seconds=age_s(template.timing))
    record = template.model_copy(
        update={
            "id": f"{template.id}-copy",
            "status": TaskStatus.QUEUED,
            "created_at": _iso(created),
            "polls": 0,
            **update,
        }
    )
    stack.store.create(record)
    return record


@pytest.mark.parametrize(
    ("example", "stuck", "ending"),
    [
        ("wan26_i2v-audio", False, ["Finalize", "Finished", "Done"]),
        # never ends upstream: looked at until its deadline, then timed out
        ("wan26_i2i-edit", True, ["TimeOut", "Done"]),
    ],
)
def test_a_polled_tasks_history_shows_each_look_in_order(
    stack: LocalStack, example: str, stuck: bool, ending: list[str]
) -> None:
    # GIVEN a polled task
    assert stack.sim is not None
    stack.sim.set_faults(Faults(stuck_rate=1.0 if stuck else 0.0))
    try:
        _, task = submit(stack, request(example))
    finally:
        stack.sim.set_faults(Faults())
    assert task["completion"] == "poll"
    # WHEN it runs to its end
    record, execution = stack.finish(task["id"], timeout=90)
    assert execution["status"] == "SUCCEEDED"
    assert record.status is (TaskStatus.TIMED_OUT if stuck else TaskStatus.SUCCEEDED)
    # THEN its execution's history names every step, one LookAtUpstream per look recorded
    looks = record.polls
    assert looks >= (2 if stuck else 1)
    between = ["LookAtUpstream", "AfterLook", "WaitForNextLook"] * (looks - 1)
    expected = ["HowToFollow", "WaitForFirstLook", *between, "LookAtUpstream", "AfterLook"]
    states = stack.states(task["id"])
    print(f"{example}: {states}")  # the history an operator reads (see the report)
    assert states == [*expected, *ending]
    # and what each look saw: its count, the upstream's status and progress, what came next
    seen = stack.looks(task["id"])
    assert [s["looks"] for s in seen] == list(range(1, looks + 1))
    last = "time_out" if stuck else "finalize"
    assert [s["next"] for s in seen] == ["wait"] * (looks - 1) + [last]
    assert all(s["wait_s"] >= 1 for s in seen[:-1])
    assert all(s["upstream_status"] for s in seen)
    progress = [s["progress"] or 0 for s in seen]
    assert progress == sorted(progress)
    # and every upstream read is a counted look, plus finalize's own re-read
    reads = sum(r.task_id == record.upstream_id for r in stack.sim.requests("status"))
    assert reads == looks + (0 if stuck else 1)


@pytest.mark.parametrize("late_s", [0.0, 2.0])
def test_the_next_look_is_on_the_grid_counted_from_the_tasks_creation(
    stack: LocalStack, follower: Follower, late_s: float
) -> None:
    # GIVEN a running task at a point of its schedule's grid (two steps into the realistic
    # range), looked at `late_s` after that point (a slow Lambda start, say)
    assert stack.sim is not None
    stack.sim.set_faults(Faults(stuck_rate=1.0))
    try:
        record = copy_of(
            stack, "wan2.6-t2v", lambda timing: timing.low_s + 2 * step_s(timing) + late_s
        )
    finally:
        stack.sim.set_faults(Faults())
    step = step_s(record.timing)
    # WHEN it looks
    seen = follower.look(record.id, _iso(datetime.now(UTC)))
    # THEN the next look waits for the next grid point, not a whole step from now: a late
    # look does not push the rest of the schedule back
    assert seen["next"] == "wait"
    assert abs(seen["wait_s"] - (step - late_s)) <= 1, (seen, step)
    assert seen["looks"] == 1
    assert stack.store.get(record.id).polls == 1


def test_a_missing_task_is_waited_for_until_the_settle_window_passed(
    follower: Follower,
) -> None:
    # GIVEN an execution whose submit never put its task
    started = datetime.now(UTC)
    # WHEN it looks inside the settle window THEN it waits for the rest of it
    seen = follower.look("tsk_never_recorded", _iso(started - timedelta(seconds=10)))
    assert seen["next"] == "wait"
    assert SETTLE_S - 10 - 1 <= seen["wait_s"] <= SETTLE_S - 10 + 1
    # and past it, the execution stops: nothing was created upstream, nothing to follow
    late = follower.look("tsk_never_recorded", _iso(started - timedelta(seconds=SETTLE_S + 1)))
    assert (late["next"], late["status"]) == ("stop", None)


def test_an_accepted_task_is_interrupted_only_after_the_settle_window(
    stack: LocalStack, follower: Follower
) -> None:
    # GIVEN a task its submit left `accepted` (no upstream id) 10 s ago
    record = copy_of(
        stack, "wan2.6-t2v", lambda _: 10, status=TaskStatus.ACCEPTED, upstream_id=None
    )
    # WHEN a look comes inside the settle window THEN it waits (at most a step: the submit may
    # still record it) and leaves the task as it is
    seen = follower.look(record.id, record.created_at)
    assert seen["next"] == "wait"
    assert 1 <= seen["wait_s"] <= round(step_s(record.timing))
    assert stack.store.get(record.id).status is TaskStatus.ACCEPTED
    # WHEN a look comes past it THEN the task fails as interrupted, and the execution stops
    stack.store.patch(record.id, {"created_at": _iso(datetime.now(UTC) - timedelta(seconds=31))})
    seen = follower.look(record.id, record.created_at)
    assert (seen["next"], seen["status"]) == ("stop", "failed")
    failed = stack.store.get(record.id)
    assert failed.status is TaskStatus.FAILED
    assert failed.error == INTERRUPTED
    # and a look again (a retried one) changes nothing
    again = follower.look(record.id, record.created_at)
    assert again["next"] == "stop"
    assert stack.store.get(record.id).version == failed.version


def test_a_look_at_a_task_that_ended_otherwise_stops(stack: LocalStack, follower: Follower) -> None:
    # GIVEN a task already terminal (canceled, or failed at submit) when its look comes
    record = copy_of(stack, "wan26_i2i-edit", lambda _: 5, status=TaskStatus.CANCELED)
    assert record.status in TERMINAL
    # THEN the look stops the execution without reading the upstream
    assert stack.sim is not None
    reads = len(stack.sim.requests("status"))
    seen = follower.look(record.id, record.created_at)
    assert (seen["next"], seen["status"]) == ("stop", "canceled")
    assert len(stack.sim.requests("status")) == reads
