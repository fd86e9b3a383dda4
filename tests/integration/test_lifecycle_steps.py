"""The lifecycle function's steps invoked one by one with events/lifecycle/*.json, as the state
machine would send them, on a task of the local stack that no execution follows."""

from __future__ import annotations

import uuid
from typing import Any

from stackkit import event, invoke, request

from kit.waiting import wait_for
from wanflow.catalog import validate
from wanflow.store import TaskRecord, now_iso
from wanflow.task import TaskStatus
from wanflow_local.stack import LocalStack

MODEL_REQUEST = "wan2.6-t2v"  # a polled model


def _unfollowed_task(stack: LocalStack) -> TaskRecord:
    """A queued task whose upstream task exists, recorded without starting an execution."""
    validated = validate(request(MODEL_REQUEST))
    created = stack.runtime("LifecycleFunction").upstream.create(validated)
    now = now_iso()
    record = TaskRecord(
        id=f"tsk_{uuid.uuid4().hex}",
        tenant="acme",
        model=validated.model,
        mode=validated.mode,
        status=TaskStatus.QUEUED,
        completion="poll",
        request=validated.request,
        timing=validated.timing,
        upstream_id=created.task_id,
        created_at=now,
        updated_at=now,
    )
    stack.store.create(record)
    return record


def _step(stack: LocalStack, name: str, record: TaskRecord) -> tuple[dict[str, Any], Any]:
    """Invoke the lifecycle function with events/lifecycle/<name>.json for `record`; its answer
    and the event sent."""
    ev = event(f"lifecycle/{name}")
    ev["task_id"] = record.id
    if "started_at" in ev:
        ev["started_at"] = record.created_at
    return invoke(stack, "LifecycleFunction", ev), ev


def test_the_steps_take_a_task_from_queued_to_succeeded(stack: LocalStack) -> None:
    # GIVEN a queued task, its upstream task created
    record = _unfollowed_task(stack)
    # WHEN the callback wait stores its token
    answer, sent = _step(stack, "await-callback", record)
    # THEN the token is on the task, for the callback receiver to send back
    assert answer == {}
    assert stack.store.get(record.id).task_token == sent["token"]

    # WHEN the poll loop reads the upstream until it has ended
    def polled_to_the_end() -> dict[str, Any] | None:
        answer, _ = _step(stack, "poll-upstream", record)
        assert answer["next"] in {"wait", "finalize"}, answer
        return answer if answer["next"] == "finalize" else None

    last = wait_for(polled_to_the_end, timeout=60, interval=0.2, what="the upstream to end")
    # THEN each read was counted, and the last one says finalize
    assert last["looks"] == stack.store.get(record.id).polls >= 1

    # WHEN the task is finalized
    answer, _ = _step(stack, "finalize", record)
    # THEN it succeeded, its outputs copied to our bucket
    assert answer["status"] == "succeeded", answer
    done = stack.store.get(record.id)
    assert done.status is TaskStatus.SUCCEEDED
    keys = [o.key for o in done.outputs if o.key]
    assert keys
    assert sorted(stack.objects(f"results/acme/{record.id}/")) == sorted(keys)
    assert done.task_token is None
