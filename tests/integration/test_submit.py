"""Submit through the real handler: validation, idempotency, and what is recorded."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from stackkit import event, invoke, request, submit

from wanflow.errors import TaskNotFound
from wanflow.submission import Submitter, UpstreamDown, task_id_for
from wanflow.upstream import RetryPolicy, UpstreamClient
from wanflow_local.stack import LocalStack


def test_same_key_and_body_at_once_make_one_task_and_one_upstream_create(
    stack: LocalStack,
) -> None:
    assert stack.sim is not None
    key = f"key-{uuid.uuid4()}"
    body = request("wan2.6-t2v")
    before = len(stack.sim.requests("create"))
    # WHEN eight identical requests arrive together
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: submit(stack, body, key=key), range(8)))
    # THEN they all answer 202 with the same task, and the upstream saw a single create
    assert {status for status, _ in answers} == {202}
    assert len({task["id"] for _, task in answers}) == 1
    assert len(stack.sim.requests("create")) - before == 1
    # AND a later replay returns the same task without creating anything
    status, again = submit(stack, body, key=key)
    assert (status, again["id"]) == (202, answers[0][1]["id"])
    assert len(stack.sim.requests("create")) - before == 1
    stack.finish(again["id"])


def test_same_key_with_another_body_is_a_409(stack: LocalStack) -> None:
    key = f"key-{uuid.uuid4()}"
    status, first = submit(stack, request("wan2.6-t2v"), key=key)
    assert status == 202
    status, body = submit(stack, request("wan2.6-t2v-full"), key=key)
    assert status == 409
    assert body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["param"] == "Idempotency-Key"
    stack.finish(first["id"])


def test_keys_are_per_tenant(stack: LocalStack) -> None:
    key = f"key-{uuid.uuid4()}"
    _, a = submit(stack, request("wan2.6-t2v"), key=key, tenant="acme")
    _, b = submit(stack, request("wan2.6-t2v"), key=key, tenant="globex")
    assert a["id"] != b["id"]
    stack.finish(a["id"])
    stack.finish(b["id"])


def test_invalid_request_gets_the_error_json_and_records_nothing(stack: LocalStack) -> None:
    assert stack.sim is not None
    before = len(stack.sim.requests("create"))
    body = event("requests/invalid/wan26_i2v-bad-params")
    status, answer = submit(stack, body, key="bad-one")
    assert status == 400
    assert [e["param"] for e in answer["errors"]] == [
        "parameters.resolution",
        "parameters.duration",
        "parameters.seed",
    ]
    assert len(stack.sim.requests("create")) == before
    try:
        stack.store.get(task_id_for("acme", "bad-one"))
    except TaskNotFound:
        pass
    else:
        raise AssertionError("an invalid request must not be recorded")


def test_broken_json_is_a_400_not_a_5xx(stack: LocalStack) -> None:
    ev = event("api/submit")
    ev["body"] = "{not json"
    answer = invoke(stack, "SubmitFunction", ev)
    assert answer["statusCode"] == 400


def test_unreachable_upstream_leaves_a_failed_retryable_task(stack: LocalStack) -> None:
    # GIVEN the real submit logic and stack, but an upstream nobody listens on
    dead = UpstreamClient(
        "http://127.0.0.1:9", "key", retry=RetryPolicy(create_attempts=2), sleep=lambda _: None
    )
    config = stack.runtime("SubmitFunction").config
    submitter = Submitter(config, stack.store, dead, stack.aws.client("stepfunctions"), "secret")
    # WHEN a task is submitted
    try:
        submitter.submit("acme", request("wan2.6-t2v"), idempotency_key=f"k-{uuid.uuid4()}")
    except UpstreamDown as exc:
        task = stack.store.get(exc.task.id)
    else:
        raise AssertionError("an unreachable upstream must not look like success")
    # THEN the task is recorded as failed, retryable, with nothing upstream
    assert task.status.value == "failed"
    assert task.error is not None
    assert (task.error.code, task.error.retryable) == ("upstream_unavailable", True)
    assert task.upstream_id is None
    # AND the execution started before it stops at its first look, leaving the task as it is
    after, execution = stack.finish(task.id)
    assert execution["status"] == "SUCCEEDED"
    assert stack.states(task.id)[-3:] == ["LookAtUpstream", "AfterLook", "Done"]
    assert after.version == task.version


def test_step_functions_unavailable_is_a_503_that_records_and_creates_nothing(
    stack: LocalStack,
) -> None:
    assert stack.sim is not None
    key = f"key-{uuid.uuid4()}"
    task_id = task_id_for("acme", key)
    before = len(stack.sim.requests("create"))

    # GIVEN Step Functions throttling StartExecution (botocore's own retries spent)
    def throttled(**_: object) -> None:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        raise ClientError(error, "StartExecution")  # type: ignore[arg-type]

    events = stack.function_runtime("SubmitFunction").sfn.meta.events
    events.register("before-call.states.StartExecution", throttled)
    try:
        status, answer = submit(stack, request("wan2.6-t2v"), key=key)
    finally:
        events.unregister("before-call.states.StartExecution", throttled)
    # THEN the client is told to try again, and nothing was recorded or created
    assert status == 503, answer
    assert answer["error"]["code"] == "orchestration_unavailable"
    assert "task" not in answer
    with pytest.raises(TaskNotFound):
        stack.store.get(task_id)
    assert len(stack.sim.requests("create")) == before
    # AND the same request again goes through
    status, task = submit(stack, request("wan2.6-t2v"), key=key)
    assert (status, task["id"]) == (202, task_id)
    record, _ = stack.finish(task_id)
    assert record.status.value == "succeeded"
