"""API Gateway's own answers on the local API, rendered from template.yaml's GatewayResponses:
an unknown route or stage, and a function that failed, answer in wanflow's error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from wanflow.errors import ErrorBody
from wanflow_local.aws import LocalAws
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

KEY = {"Authorization": f"Bearer {DEV_API_KEY}"}


@pytest.fixture(scope="module")
def root(stack: LocalStack) -> Iterator[httpx.Client]:
    """A client on the API's host, above the stage (its base URL ends in /prod)."""
    base = stack.api.url.rsplit("/", 1)[0]
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


def wanflow_error(answer: httpx.Response) -> ErrorBody:
    assert answer.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate(answer.json())
    assert body.errors == [body.error]
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/prod/v1/nothing-here"),
        ("DELETE", "/prod/v1/tasks"),  # a known path, a method it does not have
        ("POST", "/v1/tasks"),  # the stage left out of the URL
        ("GET", "/dev/v1/tasks"),  # a stage that does not exist
    ],
)
def test_a_missing_route_answers_404_in_wanflows_shape(
    root: httpx.Client, method: str, path: str
) -> None:
    # with or without a key: no route, so no authorizer runs (API Gateway's order)
    for headers in (KEY, {}):
        answer = root.request(method, path, headers=headers, json={})
        assert answer.status_code == 404, (path, answer.text)
        error = wanflow_error(answer).error
        assert error.code == "route_not_found"
        assert "/prod" in error.message  # the hint: paths start with the stage


def test_a_function_that_fails_answers_502_in_wanflows_shape(
    stack: LocalStack, root: httpx.Client
) -> None:
    # GIVEN the tasks function raises (a bug, an import error...)
    name = stack.stack.functions["TasksFunction"].name
    working = LocalAws.handler(name)
    assert working is not None

    def broken(event: Any, context: Any) -> Any:
        raise RuntimeError("injected")

    LocalAws.register_handler(name, broken)
    try:
        answer = root.get("/prod/v1/models", headers=KEY)
    finally:
        LocalAws.register_handler(name, working)
    # THEN API Gateway's 502, in wanflow's shape (DEFAULT_5XX), and nothing of the exception
    assert answer.status_code == 502, answer.text
    error = wanflow_error(answer).error
    assert (error.type, error.code) == ("api_error", "gateway_error")
    assert "injected" not in answer.text
    assert root.get("/prod/v1/models", headers=KEY).status_code == 200
