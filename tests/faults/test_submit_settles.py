"""A submit that dies part-way, and its settling look: the poll queue message each submit puts
first, due after the submit function's timeout (here, `SUBMIT_SETTLE_S`).

The death is injected on the AWS call that follows the step it interrupts (the function's own
code runs unchanged and raises what it never handles, as if the sandbox had died there).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from faultkit import Scenario, outputs_stored_once, wait_for

from wanflow import runtime
from wanflow.submission import task_id_for
from wanflow.task import TaskStatus
from wanflow_local.commands import DEV_TENANT
from wanflow_local.stack import LocalStack

pytestmark = pytest.mark.faults

#: When each submit's settling look comes here (the template's default is 120 s).
SUBMIT_SETTLE_S = 4


class InjectedDeath(Exception):
    """The submit function dying: not one of wanflow's own errors."""


@contextmanager
def dies_on(
    client: Any, event: str, matches: Callable[[dict[str, Any]], bool]
) -> Iterator[list[Any]]:
    """While inside, the first call of `client` for `event` (a botocore event name) whose
    parameters `matches` raises InjectedDeath; yields those parameters."""
    died: list[Any] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if not died and matches(params):
            died.append(params)
            raise InjectedDeath(f"died at {event}")

    client.meta.events.register(event, hook)
    try:
        yield died
    finally:
        client.meta.events.unregister(event, hook)


def _creates(stack: LocalStack) -> int:
    assert stack.sim is not None
    return len(stack.sim.tasks_created())


def test_a_submit_dying_before_starting_the_execution_is_started_by_its_settling_look(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN the submit function dies once right after recording the upstream task (`queued`),
    # before starting the execution; the client, answered 502, does not retry
    key = f"settle-{uuid.uuid4()}"
    task_id = task_id_for(DEV_TENANT, key)
    ours = lambda params: params.get("name") == task_id  # noqa: E731
    with dies_on(runtime.sfn(), "provide-client-params.stepfunctions.StartExecution", ours) as died:
        code, _ = scenario.api.submit(scenario.body("wan22_i2v_flash"), key)
    assert code == 502
    assert len(died) == 1
    assert stack.store.get(task_id).status is TaskStatus.QUEUED
    scenario.record(code, {"task": {"id": task_id}}, "wan22_i2v_flash")
    # THEN the settling look starts its execution, and the task ends as if nothing happened
    records = scenario.check({task_id: TaskStatus.SUCCEEDED}, timeout=SUBMIT_SETTLE_S + 60)
    outputs_stored_once(stack, records[task_id])
    _, execution = stack.finish(task_id)
    assert execution["status"] == "SUCCEEDED"


def test_a_submit_dying_between_the_upstream_create_and_recording_it_fails_the_task(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN the submit function dies once after the upstream created the task, before its id
    # was recorded (the write to `queued`); the client, answered 502, does not retry at once
    key = f"settle-{uuid.uuid4()}"
    task_id = task_id_for(DEV_TENANT, key)
    creates = _creates(stack)

    def to_queued(params: dict[str, Any]) -> bool:
        text = json.dumps(params)
        return task_id in text and '"queued"' in text

    started = time.monotonic()
    update = "provide-client-params.dynamodb.UpdateItem"
    with dies_on(runtime.dynamodb(), update, to_queued) as died:
        code, _ = scenario.api.submit(scenario.body("wan22_i2v_flash"), key)
    assert code == 502
    assert len(died) == 1
    assert _creates(stack) == creates + 1  # the upstream has it; wanflow has no id for it
    assert stack.store.get(task_id).status is TaskStatus.ACCEPTED

    # THEN at its settling look the task fails, saying why, and the client hears task.failed
    def failed() -> Any:
        record = stack.store.get(task_id)
        return record if record.status is TaskStatus.FAILED else None

    record = wait_for(failed, timeout=SUBMIT_SETTLE_S + 30, what="the submit to be settled")
    assert time.monotonic() - started >= SUBMIT_SETTLE_S
    assert record.error is not None
    assert (record.error.code, record.error.retryable) == ("submit_interrupted", True)
    assert record.upstream_id is None
    hits = wait_for(
        lambda: scenario.hooks.of(task_id) or None, timeout=30, what="the task.failed webhook"
    )
    time.sleep(0.5)  # a duplicate would come right behind its original
    assert [h.event for h in scenario.hooks.of(task_id)] == ["task.failed"], hits
    assert scenario.api.listed([task_id]) == {task_id: "failed"}
    # AND a replay with the same key returns that task: never a second upstream create
    code, answer = scenario.api.submit(scenario.body("wan22_i2v_flash"), key)
    assert (code, answer["id"], answer["status"]) == (202, task_id, "failed")
    assert _creates(stack) == creates + 1
    sfn = stack.aws.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):  # nothing follows a lost id
        sfn.describe_execution(executionArn=stack.execution_arn(task_id))


def test_a_submit_outlasting_its_settling_look_cancels_the_upstream_task_it_cannot_record(
    stack: LocalStack, faults: Any, scenario: Scenario
) -> None:
    # GIVEN an upstream so slow that a submit is still waiting on its create when the settling
    # look comes (on AWS the function's timeout comes first; here nothing stops it)
    faults(latency_s=SUBMIT_SETTLE_S + 4)  # the create answers 4 s after the settling look
    key = f"settle-{uuid.uuid4()}"
    task_id = task_id_for(DEV_TENANT, key)
    creates = _creates(stack)
    # WHEN the submit's create returns after the settling look failed the task
    code, answer = scenario.api.submit(scenario.body("wan2.6-t2v"), key)
    # THEN the client is told the task failed, why, and the upstream task it created is
    # cancelled, not left running unseen
    assert code == 503, answer
    assert answer["task"]["id"] == task_id
    assert answer["task"]["status"] == "failed"
    assert answer["task"]["error"]["code"] == "submit_interrupted"
    assert stack.sim is not None
    created = stack.sim.tasks_created()[creates:]
    assert len(created) == 1
    cancels = [r.task_id for r in stack.sim.requests("cancel")]
    assert cancels == created
    assert stack.store.get(task_id).status is TaskStatus.FAILED
