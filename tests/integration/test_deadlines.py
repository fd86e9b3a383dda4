"""API functions answer within their Lambda timeout (itself under API Gateway's 29 s), whatever
the upstream's speed: the upstream calls of submit and cancel end by the time the invocation
has left, minus what the writes after them need.

Each test shortens a function's Timeout in moto; the local Lambda gives the handler the context
Lambda would (its remaining time counts down from that Timeout) and reports a handler still
running past it as timed out, as Lambda does. The simulator's `latency_s` fault makes every
upstream answer slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from stackkit import event, invoke, request, submit

from wanflow.task import TaskStatus
from wanflow_local.simulator import Faults
from wanflow_local.stack import LocalStack


@pytest.fixture
def timeout_of(stack: LocalStack) -> Iterator[Callable[[str, int], None]]:
    """Set a function's Timeout (seconds) for the test; each is put back afterwards."""
    lambdas = stack.aws.client("lambda")
    before: dict[str, int] = {}

    def shorten(function: str, seconds: int) -> None:
        name = stack.stack.ref(function)
        before.setdefault(name, lambdas.get_function_configuration(FunctionName=name)["Timeout"])
        lambdas.update_function_configuration(FunctionName=name, Timeout=seconds)

    yield shorten
    for name, seconds in before.items():
        lambdas.update_function_configuration(FunctionName=name, Timeout=seconds)


@pytest.fixture
def slow_upstream(stack: LocalStack) -> Iterator[Callable[[float], None]]:
    assert stack.sim is not None
    sim = stack.sim

    def slow(seconds: float) -> None:
        sim.set_faults(Faults(latency_s=seconds))

    yield slow
    sim.set_faults(Faults())


def test_a_create_that_cannot_end_in_time_is_not_started(
    stack: LocalStack,
    timeout_of: Callable[[str, int], None],
    slow_upstream: Callable[[float], None],
) -> None:
    assert stack.sim is not None
    # GIVEN a submit function with 8 s to answer, and an upstream answering in 3 s
    timeout_of("SubmitFunction", 8)
    slow_upstream(3.0)
    creates = len(stack.sim.requests("create"))
    # WHEN a task is submitted
    started = time.monotonic()
    status, body = submit(stack, request("wan2.6-t2v"))
    took = time.monotonic() - started
    # THEN the client hears at once, in wanflow's error shape, that it may submit again
    assert status == 503, body
    assert took < 3.0
    assert body["error"]["type"] == "upstream_error"
    assert body["errors"] == [body["error"]]
    task = body["task"]
    assert task["status"] == "failed"
    assert task["error"]["code"] == "upstream_create_not_started"
    assert task["error"]["retryable"] is True
    # AND nothing was sent upstream (no upstream task is left unrecorded), the task says so
    assert len(stack.sim.requests("create")) == creates
    assert stack.store.get(task["id"]).status is TaskStatus.FAILED


def test_a_slow_create_with_time_enough_is_created_and_recorded(
    stack: LocalStack,
    timeout_of: Callable[[str, int], None],
    slow_upstream: Callable[[float], None],
) -> None:
    assert stack.sim is not None
    # GIVEN a submit function with 20 s to answer, and an upstream answering in 2 s
    timeout_of("SubmitFunction", 20)
    slow_upstream(2.0)
    started = time.monotonic()
    status, task = submit(stack, request("wan2.6-t2v"))
    # THEN the task is created and recorded within the function's time
    assert status == 202, task
    assert time.monotonic() - started < 20
    created = stack.sim.requests("create")[-1]
    assert stack.store.get(task["id"]).upstream_id == created.task_id
    slow_upstream(0.0)
    record, _ = stack.finish(task["id"])
    assert record.status is TaskStatus.SUCCEEDED


def test_a_cancel_answers_within_its_time_and_the_task_is_still_followed(
    stack: LocalStack,
    timeout_of: Callable[[str, int], None],
    slow_upstream: Callable[[float], None],
) -> None:
    assert stack.sim is not None
    # GIVEN a long task, a tasks function with 6 s to answer, and an upstream taking 5 s
    body = request("wan2.6-t2v-full")
    body.update(duration=15, resolution="1080p")
    status, task = submit(stack, body)
    assert status == 202, task
    timeout_of("TasksFunction", 6)
    slow_upstream(5.0)
    ev = event("api/cancel")
    ev["pathParameters"] = {"task_id": task["id"]}
    ev["path"] = ev["resource"].replace("{task_id}", task["id"])
    ev["requestContext"]["authorizer"] = {"tenant": "acme"}
    # WHEN its client cancels it
    started = time.monotonic()
    answer = invoke(stack, "TasksFunction", ev)  # raises if the function ran past 6 s
    took = time.monotonic() - started
    # THEN the answer comes within the function's time, in wanflow's error shape: the upstream
    # could not be asked in time, so nothing changed here
    reply = httpx.Response(answer["statusCode"], content=answer["body"].encode()).json()
    assert answer["statusCode"] == 503, reply
    assert took < 6.0
    assert reply["error"]["code"] == "upstream_unavailable"
    assert "nothing changed" in reply["error"]["message"]
    # AND the task is still followed to its end: the cancel the upstream got late is recorded
    slow_upstream(0.0)
    record, _ = stack.finish(task["id"], timeout=60)
    assert record.status.terminal
    assert record.upstream_id is not None
