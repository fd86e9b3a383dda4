"""The API edge every HTTP function shares: a Powertools resolver and its one exception handler.

Guarantees:

- Routes take typed path, query and header parameters (`Annotated[..., Query(...)]`), validated
  by Powertools before the route runs; one that fails is a 400 naming it (`param`), never
  Powertools' 422.
- A `WanflowError` a route lets through is answered with its own `status` and error body; one
  about a task that exists adds the task as `GET /v1/tasks/{id}` shows it. Routes hold no
  try/except for errors that reach the client.
- Anything else is a bug: it propagates, Lambda reports the function's error with its
  traceback, and API Gateway answers 502 in the same error shape (the template's gateway
  responses).
- Every answer is JSON in the one error shape of `wanflow.errors` (or the route's own model).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from wanflow.errors import INVALID_REQUEST, ErrorBody, ErrorItem, WanflowError
from wanflow.http import MAX_BODY_BYTES

if TYPE_CHECKING:
    from wanflow.store import TaskRecord
    from wanflow.task import Task

logger = logging.getLogger(__name__)

JSON = "application/json"
#: Where a validated parameter comes from, as Powertools names it in an error's `loc`.
_SOURCES = {"path", "query", "header", "body"}


#: What each error status of the API means, for the routes' `responses=`.
ERROR_REPLIES = {
    400: "The request is invalid; every problem is listed, each naming its field.",
    404: "No such task for this tenant (another tenant's task answers the same).",
    409: "The request conflicts with the task's state or an earlier request.",
    413: f"The body is over {MAX_BODY_BYTES:,} bytes (Lambda's 6 MB request limit; API "
    "Gateway answers a body over 10 MB itself, in the same shape): send a large image with "
    "`POST /v1/uploads` or by URL, not as a data URI.",
    415: "The Content-Type is not JSON: send `application/json` (or no Content-Type).",
    503: "The upstream is unavailable now: nothing changed; try again later.",
}


def reply(description: str, model: Any = None, media: str = JSON) -> OpenAPIResponse:
    """One documented answer of a route: `model` (a pydantic model, or a JSON Schema dict)
    under `media`."""
    if model is None:
        return {"description": description}
    if isinstance(model, Mapping):
        return {"description": description, "content": {media: {"schema": dict(model)}}}
    return {"description": description, "content": {media: {"model": model}}}


#: Request bodies documented by routes (`request_body`), for the OpenAPI builder: bodies are
#: read by `wanflow.http.json_body` (Lambda's limits, hostile JSON), never by Powertools.
DOCUMENTED_BODIES: dict[str, type[BaseModel]] = {}
BODY_EXTENSION = "x-wanflow-request-body"
#: The body of POST /v1/tasks: one model's request, as the catalog describes each (the OpenAPI
#: builder puts every model's schema, and an example of each, there).
CATALOG_REQUEST = {"$ref": "#/components/schemas/TaskRequest"}


def request_body(
    model: type[BaseModel] | Mapping[str, Any], *, required: bool = True
) -> dict[str, Any]:
    """A route's `openapi_extensions=` documenting its JSON body (a model, or a JSON Schema);
    the OpenAPI builder turns it into the operation's `requestBody`."""
    if isinstance(model, Mapping):
        schema: dict[str, Any] = dict(model)
    else:
        DOCUMENTED_BODIES[model.__name__] = model
        schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {BODY_EXTENSION: {"required": required, "schema": schema}}


def errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """The usual error answers, in the one error shape."""
    return {status: reply(ERROR_REPLIES[status], ErrorBody) for status in statuses}


def json_response(status: int, body: BaseModel | Mapping[str, Any]) -> Response[str]:
    """An answer with a JSON body (a model is dumped as the API documents it)."""
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return Response(status, JSON, json.dumps(data))


def error_response(exc: WanflowError, present: Callable[[TaskRecord], Task]) -> Response[str]:
    """How the API answers `exc`: its status and error JSON, and the task it is about."""
    if exc.status >= 500:
        logger.error("request failed: %s: %s", type(exc).__name__, exc.message)
    body = exc.error_json()
    if exc.task is not None:
        body["task"] = present(exc.task).model_dump(mode="json")
    return json_response(exc.status, body)


def _param_name(loc: tuple[Any, ...]) -> str | None:
    """The parameter an error's `loc` is about, as the client spells it."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in _SOURCES:
        source, parts = parts[0], parts[1:]
        if source == "header" and parts:  # Powertools lower-cases header names
            parts[0] = "-".join(word.capitalize() for word in parts[0].split("-"))
    return ".".join(parts) or None


def invalid_parameters(exc: RequestValidationError) -> Response[str]:
    """A 400 listing every parameter that failed validation, each naming its parameter."""
    items = []
    for error in exc.errors():
        param = _param_name(tuple(error.get("loc") or ()))
        message = str(error.get("msg") or "is not valid")
        items.append(
            ErrorItem(
                type=INVALID_REQUEST,
                code="invalid_value",
                message=f"{param}: {message}" if param else message,
                param=param,
            )
        )
    if not items:
        items.append(ErrorItem(code="invalid_value", message="the request is not valid"))
    return json_response(400, ErrorBody.of(items))


def resolver(present: Callable[[TaskRecord], Task] | None = None) -> APIGatewayRestResolver:
    """A resolver with typed, validated parameters and the one exception handler.

    `present` makes a task record the client's view of it (outputs as presigned URLs): the
    tasks function gives one; elsewhere a task is shown without output URLs (`public()`).
    """
    app = APIGatewayRestResolver(enable_validation=True)
    show = present or (lambda record: record.public())

    # Powertools leaves this decorator unannotated, hence the ignores.
    @app.exception_handler(WanflowError)  # type: ignore[untyped-decorator]
    def _wanflow_error(exc: WanflowError) -> Response[str]:
        return error_response(exc, show)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_parameter(exc: RequestValidationError) -> Response[str]:
        return invalid_parameters(exc)

    return app
