"""The lifecycle when things go wrong upstream or in a step, on the real ASL in moto."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from stackkit import request, submit

from wanflow.task import TaskStatus
from wanflow_local.aws import LocalAws
from wanflow_local.stack import LocalStack

FLASH = "wan2.6-image-to-video-flash"


def _events(stack: LocalStack, task_id: str) -> list[str]:
    return [e["type"] for e in stack.history(task_id)]


def test_lost_callback_is_covered_by_polling(stack: LocalStack, faults: Any) -> None:
    # GIVEN the upstream's callbacks never arrive
    faults(callback_loss_rate=1.0)
    _, task = submit(stack, request(FLASH))
    assert task["completion"] == "callback"
    # WHEN the callback timeout passes
    record, execution = stack.finish(task["id"])
    # THEN the wait for the callback timed out into the poll loop, whose looks saw the end,
    # and the task finished
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    assert record.polls >= 1
    assert stack.follow_results(task["id"]) == []  # no token came back
    states = stack.states(task["id"])
    assert states[:3] == ["HowToFollow", "AwaitCallback", "LookAtUpstream"]
    assert states.count("LookAtUpstream") == record.polls
    assert states[-3:] == ["Finalize", "Finished", "Done"]
    assert "TaskTimedOut" in _events(stack, task["id"])
    assert record.outputs


def test_a_callback_that_does_not_hold_sends_the_task_back_to_polling(stack: LocalStack) -> None:
    # GIVEN a running flash task, and a correctly signed callback saying it completed while
    # the upstream is still at work (a hint that does not hold)
    _, task = submit(stack, request(FLASH))
    record = stack.store.get(task["id"])
    assert stack.sim is not None
    (url,) = [
        r.body["callback_url"]
        for r in stack.sim.requests("create")
        if isinstance(r.body, dict) and task["id"] in str(r.body.get("callback_url"))
    ]
    early = {
        "id": record.upstream_id,
        "object": "video.generation.task",
        "model": FLASH,
        "status": "completed",
        "progress": 100,
        "results": [f"{stack.sim.url}/files/{record.upstream_id}/0.mp4"],
    }
    assert httpx.post(url, json=early, timeout=5).status_code == 200
    # WHEN the execution ends
    record, execution = stack.finish(task["id"])
    # THEN finalize re-read the upstream, found it not done, and the poll loop took over, on
    # the schedule (a Wait first), until the real end
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    assert record.outputs
    states = stack.states(task["id"])
    assert states[:5] == [
        "HowToFollow",
        "AwaitCallback",
        "Finalize",
        "Finished",
        "WaitForLookAfterHint",
    ]
    assert states[5] == "LookAtUpstream"
    assert states[-3:] == ["Finalize", "Finished", "Done"]
    assert stack.follow_results(task["id"]) == [{"next": "finalize", "via": "callback"}]


def test_the_same_callback_three_times_changes_nothing(stack: LocalStack, faults: Any) -> None:
    # GIVEN a flash task whose callback the upstream also sends twice more (duplicated)
    faults(callback_duplicate_rate=1.0)
    _, task = submit(stack, request(FLASH))
    record, execution = stack.finish(task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    assert stack.sim is not None
    sent = [a for a in stack.sim.callback_attempts() if a.task_id == record.upstream_id]
    assert {a.kind for a in sent} >= {"final", "duplicate"}
    # WHEN the very same callback body comes three more times
    final = next(a for a in sent if a.kind == "final")
    body = httpx.get(
        f"{stack.sim.url}/v1/tasks/{record.upstream_id}",
        headers={"Authorization": "Bearer sim-key"},
    ).content
    answers = [httpx.post(final.url, content=body, timeout=5).status_code for _ in range(3)]
    # THEN each is acknowledged and the finished task is untouched
    assert answers == [200, 200, 200]
    after = stack.store.get(task["id"])
    assert (after.version, after.updated_at, after.completed_at) == (
        record.version,
        record.updated_at,
        record.completed_at,
    )
    assert _events(stack, task["id"]).count("ExecutionSucceeded") == 1


def test_forged_or_missing_signature_is_refused_and_writes_nothing(stack: LocalStack) -> None:
    _, task = submit(stack, request(FLASH))
    base = f"{stack.api.url}/v1/callbacks/{task['id']}"
    for url in (base, base + "?sig=forged", base + "?sig="):
        assert httpx.post(url, json={"status": "completed"}, timeout=5).status_code == 401
    assert httpx.post(f"{stack.api.url}/v1/callbacks/tsk_nope?sig=x", json={}).status_code == 401
    assert not stack.store.has_events(task["id"])
    record, _ = stack.finish(task["id"])
    assert record.status is TaskStatus.SUCCEEDED  # the real callback still got through


def test_upstream_failure_code_is_carried_to_the_task(stack: LocalStack, faults: Any) -> None:
    faults(fail_rate=1.0, fail_code="001027095")
    _, task = submit(stack, request("wan26_i2v"))
    record, execution = stack.finish(task["id"])
    assert execution["status"] == "SUCCEEDED"  # the execution ran fine; the task failed
    assert record.status is TaskStatus.FAILED
    assert record.error is not None
    assert record.error.upstream_code == "001027095"
    assert record.outputs == []
    assert stack.objects(f"results/acme/{task['id']}/") == {}


def test_a_task_that_never_finishes_times_out_at_its_deadline(
    stack: LocalStack, faults: Any
) -> None:
    faults(stuck_rate=1.0)
    _, task = submit(stack, request("wan2.6-t2v"))
    record, execution = stack.finish(task["id"], timeout=90)
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.TIMED_OUT
    assert record.error is not None
    assert record.error.code == "timed_out"
    # at the deadline (upstream seconds scaled), not long after
    took = (
        datetime.fromisoformat(record.completed_at.replace("Z", "+00:00"))  # type: ignore[union-attr]
        - datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))
    ).total_seconds() / stack_scale(stack)
    assert record.timing.deadline_s <= took <= record.timing.deadline_s * 1.15 + 60
    # and the upstream task was cancelled (wan2.6 can be)
    assert stack.sim is not None
    cancels = [r for r in stack.sim.requests("cancel") if r.task_id == record.upstream_id]
    assert cancels


def stack_scale(stack: LocalStack) -> float:
    return float(stack.stack.parameters["TimeScale"])


class InjectedCrash(Exception):
    """A Lambda step dying (out of memory, a lost response): not wanflow's own error."""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_step_that_raises_once_is_retried_and_outputs_are_written_once(
    stack: LocalStack, when: str
) -> None:
    # GIVEN the lifecycle function dies once in finalize, before or after doing its work
    name = stack.stack.ref("LifecycleFunction")
    real = LocalAws.handler(name)
    assert real is not None
    crashed: list[str] = []

    def flaky(event: Any, context: Any) -> Any:
        if event.get("step") == "finalize" and event.get("task_id") == target and not crashed:
            crashed.append(when)
            if when == "before":
                raise InjectedCrash("died before doing anything")
            real(event, context)
            raise InjectedCrash("died after finishing its work")
        return real(event, context)

    _, task = submit(stack, request("wan22_i2v_flash"))
    target = task["id"]
    LocalAws.register_handler(name, flaky)
    try:
        record, execution = stack.finish(target)
    finally:
        LocalAws.register_handler(name, real)
    # THEN the retry recovered, the task succeeded once, and each output exists once
    assert crashed == [when]
    assert execution["status"] == "SUCCEEDED"
    assert record.status is TaskStatus.SUCCEEDED
    names = _events(stack, target)
    assert names.count("TaskFailed") == 1
    stored = stack.objects(f"results/acme/{target}/")
    assert sorted(stored) == sorted(o.key for o in record.outputs if o.key)
    assert len(stored) == len(record.outputs) == 1


def test_unreachable_upstream_leaves_a_failed_retryable_task(
    stack: LocalStack, faults: Any
) -> None:
    # 5xx on every call: a create answered 5xx may have been created upstream, so it is not
    # retried, and the task says so
    faults(error_rate=1.0)
    status, body = submit(stack, request("wan2.6-t2v"))
    assert status == 503
    task = stack.store.get(body["task"]["id"])
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert task.error.code == "upstream_create_outcome_unknown"


def test_upstream_rejection_is_a_400_with_the_upstream_code(stack: LocalStack, faults: Any) -> None:
    # GIVEN a valid request that the upstream refuses at create time (content inspection)
    faults(reject_rate=1.0, reject_code="data_inspection_failed")
    creates_before = len(stack.sim.tasks_created()) if stack.sim else 0
    status, body = submit(stack, request("wan2.6-t2v"))
    # THEN the client gets a 400 carrying the upstream's code, and the task says why
    assert status == 400
    assert body["error"]["code"] == "data_inspection_failed"
    task = stack.store.get(body["task"]["id"])
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert (task.error.upstream_code, task.error.retryable) == ("data_inspection_failed", False)
    assert stack.sim is not None
    assert len(stack.sim.tasks_created()) == creates_before
