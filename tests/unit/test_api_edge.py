"""The API edge (`wanflow.api`): a Powertools resolver, typed parameters, and its one exception
handler, driven with API Gateway proxy events as a function's route would receive them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query

from wanflow.api import json_response, resolver
from wanflow.errors import TaskNotFound, WanflowError
from wanflow.http import MAX_QUERY_CHARS, Unauthenticated
from wanflow.store import StoreUnavailable
from wanflow.submission import IdempotencyConflict


def _app(raise_: WanflowError | None = None) -> Any:
    app = resolver()

    @app.get("/things")
    def things(
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        model: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS)] = None,
        key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> Response[str]:
        if raise_ is not None:
            raise raise_
        return json_response(200, {"limit": limit, "model": model, "key": key})

    return app


def _get(app: Any, query: dict[str, str] | None = None, headers: dict[str, str] | None = None):
    event = {
        "resource": "/things",
        "path": "/things",
        "httpMethod": "GET",
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "requestContext": {"stage": "prod", "authorizer": {"tenant": "t1"}},
        "body": None,
        "isBase64Encoded": False,
    }
    answer = _app_answer(app, event)
    return answer["statusCode"], json.loads(answer["body"])


def _app_answer(app: Any, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = app.resolve(event, None)
    return answer


def test_typed_parameters_reach_the_route_converted() -> None:
    status, body = _get(_app(), {"limit": "5"}, {"idempotency-key": "k1"})
    assert (status, body) == (200, {"limit": 5, "model": None, "key": "k1"})


@pytest.mark.parametrize(
    ("query", "headers", "param"),
    [
        ({"limit": "500"}, None, "limit"),
        ({"limit": "five"}, None, "limit"),
        ({"model": "m" * (MAX_QUERY_CHARS + 1)}, None, "model"),
        ({"model": "\ud800"}, None, "model"),  # not valid Unicode: never sent to DynamoDB
        (None, {"Idempotency-Key": "k" * 256}, "Idempotency-Key"),
    ],
)
def test_a_parameter_that_fails_validation_is_a_400_naming_it(
    query: dict[str, str] | None, headers: dict[str, str] | None, param: str
) -> None:
    status, body = _get(_app(), query, headers)
    # Not Powertools' 422: wanflow's one error shape, naming the parameter as the client spells it
    assert status == 400
    assert set(body) == {"error", "errors", "more_errors"}
    assert body["error"]["code"] == "invalid_value"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert param in body["error"]["message"]


@pytest.mark.parametrize(
    ("error", "status", "code", "kind", "param"),
    [
        (Unauthenticated("no key"), 401, "unauthorized", "authentication_error", "Authorization"),
        (TaskNotFound("no task x"), 404, "task_not_found", "not_found", "task_id"),
        (IdempotencyConflict("reused"), 409, "idempotency_key_reused", "idempotency_error", None),
        (
            StoreUnavailable("ThrottlingException on PutItem"),
            503,
            "store_unavailable",
            "api_error",
            None,
        ),
    ],
)
def test_each_wanflow_error_is_answered_with_its_own_status_and_body(
    error: WanflowError, status: int, code: str, kind: str, param: str | None
) -> None:
    got, body = _get(_app(error))
    assert got == status
    assert (body["error"]["code"], body["error"]["type"]) == (code, kind)
    if param is not None:
        assert body["error"]["param"] == param


def test_a_busy_store_says_try_again_and_nothing_of_the_internals() -> None:
    _, body = _get(_app(StoreUnavailable("ThrottlingException on PutItem")))
    assert "try again" in body["error"]["message"]
    assert "Throttling" not in body["error"]["message"]


def test_an_error_that_is_a_bug_tells_the_client_nothing_of_it() -> None:
    status, body = _get(_app(WanflowError("secret table name in a message")))
    assert status == 500
    assert body["error"]["message"] == "internal error"
