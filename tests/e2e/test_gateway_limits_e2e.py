"""API Gateway's and Lambda's limits on the local API, answered in wanflow's error shape from
template.yaml's GatewayResponses: the 29 s integration timeout (504, at the timeout), the 10 MB
payload and Lambda's 6 MB synchronous request (413, before any function runs), and Lambda's 6 MB
response (a failed invocation: 502)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from wanflow.errors import ErrorBody
from wanflow_local import limits
from wanflow_local.aws import Handler, LocalAws
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

KEY = {"Authorization": f"Bearer {DEV_API_KEY}"}
#: Over Lambda's 6 MB, under API Gateway's 10 MB.
SEVEN_MB = 7 * 1024 * 1024
Replace = Callable[[str, Callable[[Handler], Handler]], None]


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api.url, timeout=30) as client:
        yield client


@pytest.fixture
def replace(stack: LocalStack) -> Iterator[Replace]:
    """Swap a function's handler for `make(working handler)` during the test."""
    working: dict[str, Handler] = {}

    def swap(logical_id: str, make: Callable[[Handler], Handler]) -> None:
        name = stack.stack.functions[logical_id].name
        current = LocalAws.handler(name)
        assert current is not None
        working.setdefault(name, current)
        LocalAws.register_handler(name, make(current))

    yield swap
    for name, handler in working.items():
        LocalAws.register_handler(name, handler)


@pytest.fixture
def ran(stack: LocalStack, replace: Replace) -> list[str]:
    """The functions behind POST /v1/tasks (authorizer, submit) that run, in order."""
    stack.api.clear_auth_cache()  # so the authorizer runs for a key seen before
    seen: list[str] = []
    for logical_id in ("AuthorizerFunction", "SubmitFunction"):

        def counting(working: Handler, logical_id: str = logical_id) -> Handler:
            def counted(event: Any, context: Any) -> Any:
                seen.append(logical_id)
                return working(event, context)

            return counted

        replace(logical_id, counting)
    return seen


def wanflow_error(answer: httpx.Response) -> ErrorBody:
    assert answer.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate(answer.json())
    assert body.errors == [body.error]
    return body


def test_a_function_slower_than_the_integration_timeout_answers_504_at_the_timeout(
    stack: LocalStack, api: httpx.Client, replace: Replace
) -> None:
    # GIVEN API Gateway's 29 s shortened to 0.5 s, and a tasks function taking 2 s (its own
    # Timeout, from the template, is longer: Lambda lets it run)
    finished = threading.Event()

    def slow(working: Handler) -> Handler:
        def handler(event: Any, context: Any) -> Any:
            time.sleep(2)
            finished.set()
            return working(event, context)

        return handler

    assert stack.stack.functions["TasksFunction"].timeout > 2
    replace("TasksFunction", slow)
    stack.api.integration_timeout_s = 0.5
    try:
        # WHEN a route of that function is called
        started = time.monotonic()
        answer = api.get("/v1/models", headers=KEY)
        waited = time.monotonic() - started
    finally:
        del stack.api.integration_timeout_s  # back to the class's 29 s
    # THEN API Gateway's 504 in wanflow's shape, at the timeout, not when the function ends
    assert answer.status_code == 504, answer.text[:500]
    error = wanflow_error(answer).error
    assert (error.type, error.code) == ("api_error", "integration_timeout")
    assert 0.5 <= waited < 1.5, waited
    assert not finished.is_set()
    assert finished.wait(timeout=5)  # the function ran on to its end
    assert stack.api.integration_timeout_s == limits.API_INTEGRATION_TIMEOUT_S == 29.0


def test_a_body_over_10_mb_is_refused_with_413_before_any_function_runs(
    api: httpx.Client, ran: list[str]
) -> None:
    # GIVEN a body one byte over API Gateway's 10 MB, sent without an API key
    body = b"x" * (limits.API_PAYLOAD_MAX_BYTES + 1)
    # WHEN it is posted
    answer = api.post("/v1/tasks", content=body, headers={"Content-Type": "application/json"})
    # THEN a 413 in wanflow's shape: neither the authorizer (which would have said 401) nor
    # the function ran
    assert answer.status_code == 413, answer.text[:500]
    error = wanflow_error(answer).error
    assert error.code == "request_too_large"
    assert "POST /v1/uploads" in error.message
    assert ran == []


def test_an_event_over_lambdas_6_mb_is_refused_with_413_before_the_function_runs(
    api: httpx.Client, ran: list[str]
) -> None:
    # GIVEN a 7 MB body: under API Gateway's 10 MB, over Lambda's 6 MB synchronous request
    body = b'{"model": "wan26_i2v", "pad": "' + b"x" * SEVEN_MB + b'"}'
    # WHEN it is posted with a valid key
    answer = api.post(
        "/v1/tasks", content=body, headers={**KEY, "Content-Type": "application/json"}
    )
    # THEN a 413 in wanflow's shape, from API Gateway: the authorizer ran, the function did not
    assert answer.status_code == 413, answer.text[:500]
    assert wanflow_error(answer).error.code == "request_too_large"
    assert ran == ["AuthorizerFunction"]


def test_a_response_over_lambdas_6_mb_answers_502(api: httpx.Client, replace: Replace) -> None:
    # GIVEN a tasks function answering a 7 MB proxy result
    def huge(working: Handler) -> Handler:
        return lambda event, context: {"statusCode": 200, "body": "x" * SEVEN_MB}

    replace("TasksFunction", huge)
    # WHEN a route of it is called
    answer = api.get("/v1/models", headers=KEY)
    # THEN the invocation failed (Function.ResponseSizeTooLarge): API Gateway's 502, in
    # wanflow's shape, and none of the 7 MB
    assert answer.status_code == 502, answer.text[:500]
    error = wanflow_error(answer).error
    assert (error.type, error.code) == ("api_error", "gateway_error")
    assert len(answer.content) < 10_000
