"""Each Lambda step dying once — before doing anything, or after doing its work and before
answering (out of memory, a lost response) — must leave the task ending as it would have, with
its outputs written once, one upstream task and one webhook per event.

The crash is injected by wrapping the function's real handler in the local stack's Lambda hook
(the handler itself runs unchanged); every scenario ends with `Scenario.check`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from faultkit import FLASH, POLL_S, Scenario, execution_events, outputs_stored_once

from kit.waiting import wait_for
from wanflow.task import TaskStatus
from wanflow_local.aws import LocalAws
from wanflow_local.stack import LocalStack

pytestmark = pytest.mark.faults

SetFaults = Callable[..., None]
WHEN = ["before", "after"]


class InjectedCrash(Exception):
    """A Lambda invocation dying: not one of wanflow's own errors."""


@contextmanager
def crash(
    stack: LocalStack,
    function: str,
    matches: Callable[[Any], bool],
    when: str,
    times: int = 1,
) -> Iterator[list[Any]]:
    """While inside, the first `times` invocations of `function` (logical id) whose event
    `matches` die, `before` running the real handler or `after` it; yields those events."""
    name = stack.stack.ref(function)
    real = LocalAws.handler(name)
    assert real is not None
    crashed: list[Any] = []
    lock = threading.Lock()

    def flaky(event: Any, context: Any) -> Any:
        with lock:
            hit = matches(event) and len(crashed) < times
            if hit:
                crashed.append(event)
        if not hit:
            return real(event, context)
        if when == "before":
            raise InjectedCrash("died before doing anything")
        real(event, context)
        raise InjectedCrash("died after doing its work")

    LocalAws.register_handler(name, flaky)
    try:
        yield crashed
    finally:
        LocalAws.register_handler(name, real)


def _step(name: str) -> Callable[[Any], bool]:
    return lambda event: isinstance(event, dict) and event.get("step") == name


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize(
    ("step", "model"),
    [
        ("follow", FLASH),
        ("look", "wan22_i2v_flash"),
        ("finalize", FLASH),
        ("finalize", "wan22_i2v_flash"),
    ],
)
def test_a_lifecycle_step_dying_once_changes_nothing(
    stack: LocalStack, scenario: Scenario, step: str, model: str, when: str
) -> None:
    # GIVEN the lifecycle function dies once in `step`
    with crash(stack, "LifecycleFunction", _step(step), when) as crashed:
        done = scenario.submit(model)
        records = scenario.check({done.task_id: TaskStatus.SUCCEEDED})
    # THEN the task succeeded as if nothing happened, its outputs written once
    assert len(crashed) == 1
    record = records[done.task_id]
    outputs_stored_once(stack, record)
    _, execution = stack.finish(record.id)  # a retry may still be under way
    assert execution["status"] == "SUCCEEDED"
    assert execution_events(stack, record.id).count("ExecutionSucceeded") == 1


@pytest.mark.parametrize("when", WHEN)
def test_a_look_dying_once_looks_again_once(
    stack: LocalStack, faults: SetFaults, scenario: Scenario, when: str
) -> None:
    # GIVEN a task polled until its deadline (it never finishes upstream), and the lifecycle
    # function dying once in one of its looks
    faults(stuck_rate=1.0)
    targets: set[str] = set()

    def its_look(event: Any) -> bool:
        return _step("look")(event) and event.get("task_id") in targets

    with crash(stack, "LifecycleFunction", its_look, when) as crashed:
        done = scenario.submit("wan22_i2v_flash")
        targets.add(done.task_id)
        records = scenario.check({done.task_id: TaskStatus.TIMED_OUT}, timeout=90)
    # THEN the state's Retry looked again, and the loop went on from there to the deadline,
    # every upstream read counted once on the task (`after`: the crashed look's too)
    assert len(crashed) == 1
    record = records[done.task_id]
    events = execution_events(stack, record.id)
    assert events.count("TaskFailed") == 1
    states = stack.states(record.id)
    retried_in_place = 1 if when == "after" else 0  # two looks in one LookAtUpstream
    assert states.count("LookAtUpstream") == record.polls - retried_in_place
    assert states[-2:] == ["TimeOut", "Done"]
    assert stack.sim is not None
    reads = sum(r.task_id == record.upstream_id for r in stack.sim.requests("status"))
    assert reads == record.polls  # no look uncounted
    outputs_stored_once(stack, record)


@pytest.mark.parametrize("when", WHEN)
def test_time_out_dying_once_still_times_the_task_out(
    stack: LocalStack, faults: SetFaults, scenario: Scenario, when: str
) -> None:
    # GIVEN a task that never finishes upstream, and time_out dying once at its deadline
    faults(stuck_rate=1.0)
    with crash(stack, "LifecycleFunction", _step("time_out"), when) as crashed:
        done = scenario.submit("wan26_i2i-edit")
        records = scenario.check({done.task_id: TaskStatus.TIMED_OUT}, timeout=90)
    assert len(crashed) == 1
    record = records[done.task_id]
    assert record.error is not None
    assert record.error.code == "timed_out"
    outputs_stored_once(stack, record)


def test_record_failure_dying_once_still_records_the_failure(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN finalize dies on every attempt (a step failing for good), and record_failure once
    with (
        crash(stack, "LifecycleFunction", _step("finalize"), "before", times=99) as finalizes,
        crash(stack, "LifecycleFunction", _step("record_failure"), "before") as recordings,
    ):
        done = scenario.submit("wan26_i2i-edit")
        records = scenario.check({done.task_id: TaskStatus.FAILED}, timeout=90)
    # THEN the failure is on the task, saying what failed, and nothing was stored
    assert len(finalizes) >= 2
    assert len(recordings) == 1
    record = records[done.task_id]
    assert record.error is not None
    assert record.error.code == "lifecycle_failed"
    assert "InjectedCrash" in record.error.message
    outputs_stored_once(stack, record)


@pytest.mark.parametrize("when", WHEN)
def test_submit_dying_once_then_retried_with_the_same_key(
    stack: LocalStack, scenario: Scenario, when: str
) -> None:
    # GIVEN the submit function dies once; the client, answered 502, sends the request again
    # with the same Idempotency-Key
    posts = lambda event: isinstance(event, dict) and event.get("httpMethod") == "POST"  # noqa: E731
    with crash(stack, "SubmitFunction", posts, when) as crashed:
        done = scenario.submit("wan26_i2i-edit", key=f"crash-{when}", retries=1)
    # THEN there is one task, created upstream once, and it succeeds
    assert len(crashed) == 1
    assert done.status_code == 202
    records = scenario.check({done.task_id: TaskStatus.SUCCEEDED})
    outputs_stored_once(stack, records[done.task_id])


@contextmanager
def _short_visibility(stack: LocalStack, queue: str, seconds: int) -> Iterator[None]:
    """A failed batch of `queue` (logical id) comes back after `seconds` instead of the
    template's minutes."""
    sqs = stack.aws.client("sqs")
    url = str(stack.stack.ref(queue))
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})
    try:
        yield
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=before["Attributes"])


@pytest.mark.parametrize("when", WHEN)
def test_notify_dying_once_delivers_each_event_once(
    stack: LocalStack, scenario: Scenario, when: str
) -> None:
    # GIVEN the notify function dies once on a batch about our task
    targets: set[str] = set()
    seen: list[str] = []  # message ids of every batch about our task, in order

    def ours(event: Any) -> bool:
        records = event.get("Records") or [] if isinstance(event, dict) else []
        mine = [r for r in records if json.loads(r["body"]).get("task_id") in targets]
        seen.extend(r["messageId"] for r in mine)
        return bool(mine)

    with (
        _short_visibility(stack, "NotifyQueue", 1),
        crash(stack, "NotifyFunction", ours, when) as crashed,
    ):
        done = scenario.submit("wan22_i2v_flash")
        targets.add(done.task_id)
        records = scenario.check({done.task_id: TaskStatus.SUCCEEDED})
        # the crashed batch came back (so a duplicate would have been posted by now)
        first = [r["messageId"] for r in crashed[0]["Records"]]
        wait_for(
            lambda: all(seen.count(m) >= 2 for m in first) or None,
            interval=POLL_S,
            timeout=15,
            what="the crashed batch to come back",
        )
        time.sleep(0.5)  # a duplicate post would follow the redelivery at once
    # THEN each event reached the client once
    assert len(crashed) == 1
    events = [h.event for h in scenario.hooks.of(done.task_id)]
    crashed_events = {json.loads(r["body"])["event"] for r in crashed[0]["Records"]}
    assert crashed_events <= set(events)  # what the crash hit was delivered after all
    assert events[-1] == "task.succeeded"
    assert len(events) == len(set(events)), events
    outputs_stored_once(stack, records[done.task_id])
