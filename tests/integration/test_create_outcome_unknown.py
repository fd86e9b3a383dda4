"""A create the upstream answered with a 5xx may have created (and will bill) the task: it is
never created again, the task says so and tells the client what to do, and its key keeps
returning it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from stackkit import request, submit

from wanflow.task import TaskStatus
from wanflow_local.simulator.faults import Faults
from wanflow_local.stack import LocalStack


@pytest.fixture
def failing_upstream(stack: LocalStack) -> Iterator[None]:
    """Every upstream call answers 5xx for one test."""
    assert stack.sim is not None
    stack.sim.set_faults(Faults(error_rate=1.0))
    yield
    stack.sim.set_faults(Faults())


def test_a_create_answered_5xx_fails_not_retryable_telling_the_client_what_to_do(
    stack: LocalStack, failing_upstream: None
) -> None:
    assert stack.sim is not None
    creates = len(stack.sim.requests("create"))
    # WHEN the upstream answers the create with a 5xx
    status, body = submit(stack, request("wan2.6-t2v"), key="outcome-unknown-1")
    # THEN the task failed, not retryable, and its message says what the client should do
    assert status == 503
    task: dict[str, Any] = body["task"]
    assert task["status"] == "failed"
    error = task["error"]
    assert (error["code"], error["retryable"]) == ("upstream_create_outcome_unknown", False)
    for advice in ("may bill", "GET /v1/tasks", "new Idempotency-Key", "keeps returning"):
        assert advice in error["message"], error["message"]
    assert body["error"]["message"] == error["message"]
    assert body["error"]["code"] == "upstream_create_outcome_unknown"
    # one create was sent, never a second
    assert len(stack.sim.requests("create")) == creates + 1
    # AND the same key returns this failed task and creates nothing, even once the upstream is up
    stack.sim.set_faults(Faults())
    again_status, again = submit(stack, request("wan2.6-t2v"), key="outcome-unknown-1")
    assert again["id"] == task["id"], (again_status, again)
    assert again["status"] == "failed"
    assert len(stack.sim.requests("create")) == creates + 1
    # while a new key creates the task anew
    new_status, new = submit(stack, request("wan2.6-t2v"), key="outcome-unknown-2")
    assert new_status == 202, new
    assert len(stack.sim.requests("create")) == creates + 2
    record, _ = stack.finish(new["id"])
    assert record.status is TaskStatus.SUCCEEDED
