"""A submit that dies part-way, at each point, and the execution it started first: that
execution settles the task once the settle window (here `SUBMIT_SETTLE_S`) has passed since its
creation. No task is left unfollowed, and no upstream task is created twice.

The death is injected on the AWS call at the point it interrupts (the function's own code runs
unchanged and raises what it never handles, as if the sandbox had died there).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from faultkit import FLASH, POLL_S, Scenario, outputs_stored_once

from kit.waiting import wait_for
from wanflow.errors import TaskNotFound
from wanflow.submission import task_id_for
from wanflow.task import TaskStatus
from wanflow_local.aws import wait_for_execution
from wanflow_local.commands import DEV_TENANT
from wanflow_local.stack import LocalStack

pytestmark = pytest.mark.faults

#: The settle window here (the template's default is 120 s).
SUBMIT_SETTLE_S = 4
MODEL = "wan22_i2v_flash"


class InjectedDeath(Exception):
    """The submit function dying: not one of wanflow's own errors."""


@contextmanager
def dies_on(
    client: Any, event: str, matches: Callable[[dict[str, Any]], bool]
) -> Iterator[list[Any]]:
    """While inside, the first call of `client` for `event` (a botocore event name) whose
    parameters (or, for an `after-call` event, its request's parameters) `matches` raises
    InjectedDeath; yields those parameters."""
    died: list[Any] = []

    def hook(**kwargs: Any) -> None:
        params = kwargs.get("params")
        if params is None:  # after-call: the parameters the call was made with
            params = kwargs.get("context", {}).get("wanflow_params", {})
        if not died and matches(params):
            died.append(params)
            raise InjectedDeath(f"died at {event}")

    client.meta.events.register(event, hook)
    try:
        yield died
    finally:
        client.meta.events.unregister(event, hook)


@contextmanager
def dies_after_put(stack: LocalStack, task_id: str) -> Iterator[list[Any]]:
    """While inside, the submit dies once right after DynamoDB stored the task `task_id`."""
    dynamodb = stack.function_runtime("SubmitFunction").dynamodb

    def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["wanflow_params"] = params

    def ours(params: dict[str, Any]) -> bool:
        return task_id in json.dumps(params.get("Item", {}))

    dynamodb.meta.events.register("provide-client-params.dynamodb.PutItem", keep)
    try:
        with dies_on(dynamodb, "after-call.dynamodb.PutItem", ours) as died:
            yield died
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.PutItem", keep)


def _creates(stack: LocalStack) -> int:
    assert stack.sim is not None
    return len(stack.sim.tasks_created())


def _new_key() -> tuple[str, str]:
    key = f"settle-{uuid.uuid4()}"
    return key, task_id_for(DEV_TENANT, key)


def _no_task(stack: LocalStack, task_id: str) -> bool:
    try:
        stack.store.get(task_id)
    except TaskNotFound:
        return True
    return False


def test_a_submit_dying_at_start_execution_leaves_nothing_and_a_retry_succeeds(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN the submit function dies once on starting the execution, before anything exists
    key, task_id = _new_key()
    creates = _creates(stack)
    ours = lambda params: params.get("name") == task_id  # noqa: E731
    event = "provide-client-params.stepfunctions.StartExecution"
    with dies_on(stack.function_runtime("SubmitFunction").sfn, event, ours) as died:
        code, _ = scenario.api.submit(scenario.body(MODEL), key)
    # THEN nothing was recorded, started or created
    assert (code, len(died)) == (502, 1)
    assert _no_task(stack, task_id)
    sfn = stack.aws.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn=stack.execution_arn(task_id))
    assert _creates(stack) == creates
    # AND the client's retry with the same key makes the task, once
    code, answer = scenario.api.submit(scenario.body(MODEL), key)
    scenario.record(code, answer, MODEL)
    assert code == 202
    records = scenario.check({task_id: TaskStatus.SUCCEEDED})
    outputs_stored_once(stack, records[task_id])


@pytest.mark.parametrize("model", [MODEL, FLASH])
def test_a_submit_dying_between_start_execution_and_the_put_is_ended_by_its_execution(
    stack: LocalStack, scenario: Scenario, model: str
) -> None:
    # GIVEN the submit function dies once after starting the execution, before putting the task
    # (the callback model's AwaitCallback finds no task to keep its token on: it looks instead)
    key, task_id = _new_key()
    creates = _creates(stack)
    ours = lambda params: task_id in json.dumps(params.get("Item", {}))  # noqa: E731
    event = "provide-client-params.dynamodb.PutItem"
    started = time.monotonic()
    with dies_on(stack.function_runtime("SubmitFunction").dynamodb, event, ours) as died:
        code, _ = scenario.api.submit(scenario.body(model), key)
    assert (code, len(died)) == (502, 1)
    # THEN its execution waits out the settle window, finds no task, and ends: nothing created
    sfn = stack.aws.client("stepfunctions")
    arn = stack.execution_arn(task_id)
    execution = wait_for_execution(sfn, arn, timeout=SUBMIT_SETTLE_S + 30)
    assert time.monotonic() - started >= SUBMIT_SETTLE_S
    assert execution["status"] == "SUCCEEDED"
    assert stack.states(task_id)[-3:] == ["LookAtUpstream", "AfterLook", "Done"]
    assert stack.looks(task_id)[-1]["next"] == "stop"
    assert _no_task(stack, task_id)
    assert _creates(stack) == creates
    # AND a replay with that key now is refused (an execution of that id ended: a task made
    # now would be followed by nobody), creating nothing
    code, answer = scenario.api.submit(scenario.body(model), key)
    assert code == 409, answer
    assert answer["error"]["code"] == "idempotency_key_reused"
    assert _no_task(stack, task_id)
    assert _creates(stack) == creates


def test_a_submit_retried_at_once_after_dying_before_the_put_is_followed_by_the_first_execution(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN the submit function dies once after starting the execution, before putting the task
    key, task_id = _new_key()
    ours = lambda params: task_id in json.dumps(params.get("Item", {}))  # noqa: E731
    with dies_on(
        stack.function_runtime("SubmitFunction").dynamodb,
        "provide-client-params.dynamodb.PutItem",
        ours,
    ) as died:
        code, _ = scenario.api.submit(scenario.body(MODEL), key)
    assert (code, len(died)) == (502, 1)
    # WHEN the client sends it again at once, with the same key
    code, answer = scenario.api.submit(scenario.body(MODEL), key)
    scenario.record(code, answer, MODEL)
    assert code == 202
    # THEN the execution the first attempt started follows the task to its end, once
    records = scenario.check({task_id: TaskStatus.SUCCEEDED})
    outputs_stored_once(stack, records[task_id])
    _, execution = stack.finish(task_id)
    assert execution["status"] == "SUCCEEDED"


def test_a_submit_dying_between_the_put_and_the_upstream_create_fails_the_task(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN the submit function dies once right after putting the task (`accepted`), before
    # the upstream create
    key, task_id = _new_key()
    creates = _creates(stack)
    started = time.monotonic()
    with dies_after_put(stack, task_id) as died:
        code, _ = scenario.api.submit(scenario.body(MODEL), key)
    assert (code, len(died)) == (502, 1)
    assert stack.store.get(task_id).status is TaskStatus.ACCEPTED
    scenario.record(code, {"task": {"id": task_id}}, MODEL)
    # THEN once the settle window has passed its execution fails it (wanflow cannot know the
    # create did not happen), and the client hears task.failed once
    records = scenario.check({task_id: TaskStatus.FAILED}, timeout=SUBMIT_SETTLE_S + 30)
    assert time.monotonic() - started >= SUBMIT_SETTLE_S
    record = records[task_id]
    assert record.error is not None
    assert (record.error.code, record.error.retryable) == ("submit_interrupted", True)
    assert _creates(stack) == creates
    _, execution = stack.finish(task_id)
    assert execution["status"] == "SUCCEEDED"


def test_a_submit_dying_between_the_upstream_create_and_recording_it_fails_the_task(
    stack: LocalStack, scenario: Scenario
) -> None:
    # GIVEN the submit function dies once after the upstream created the task, before its id
    # was recorded (the write to `queued`); the client, answered 502, does not retry at once
    key, task_id = _new_key()
    creates = _creates(stack)

    def to_queued(params: dict[str, Any]) -> bool:
        text = json.dumps(params)
        return task_id in text and '"queued"' in text

    started = time.monotonic()
    update = "provide-client-params.dynamodb.UpdateItem"
    with dies_on(stack.function_runtime("SubmitFunction").dynamodb, update, to_queued) as died:
        code, _ = scenario.api.submit(scenario.body(MODEL), key)
    assert code == 502
    assert len(died) == 1
    assert _creates(stack) == creates + 1  # the upstream has it; wanflow has no id for it
    assert stack.store.get(task_id).status is TaskStatus.ACCEPTED

    # THEN once the settle window has passed the task fails, saying why, and the client
    # hears task.failed
    def failed() -> Any:
        record = stack.store.get(task_id)
        return record if record.status is TaskStatus.FAILED else None

    record = wait_for(
        failed, interval=POLL_S, timeout=SUBMIT_SETTLE_S + 30, what="the submit to be settled"
    )
    assert time.monotonic() - started >= SUBMIT_SETTLE_S
    assert record.error is not None
    assert (record.error.code, record.error.retryable) == ("submit_interrupted", True)
    assert record.upstream_id is None
    hits = wait_for(
        lambda: scenario.hooks.of(task_id) or None,
        interval=POLL_S,
        timeout=30,
        what="the task.failed webhook",
    )
    time.sleep(0.5)  # a duplicate would come right behind its original
    assert [h.event for h in scenario.hooks.of(task_id)] == ["task.failed"], hits
    assert scenario.api.listed([task_id]) == {task_id: "failed"}
    # AND its execution, which failed it, ended there: nothing follows a lost id
    _, execution = stack.finish(task_id)
    assert execution["status"] == "SUCCEEDED"
    assert stack.looks(task_id)[-1]["status"] == "failed"
    # AND a replay with the same key returns that task: never a second upstream create
    code, answer = scenario.api.submit(scenario.body(MODEL), key)
    assert (code, answer["id"], answer["status"]) == (202, task_id, "failed")
    assert _creates(stack) == creates + 1


def test_a_submit_outlasting_the_settle_window_cancels_the_upstream_task_it_cannot_record(
    stack: LocalStack, faults: Any, scenario: Scenario
) -> None:
    # GIVEN an upstream so slow that a submit is still waiting on its create when the settle
    # window has passed (on AWS the function's timeout comes first; here nothing stops it)
    faults(latency_s=SUBMIT_SETTLE_S + 4)  # the create answers 4 s after the window
    key, task_id = _new_key()
    creates = _creates(stack)
    # WHEN the submit's create returns after its execution failed the task as interrupted
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
