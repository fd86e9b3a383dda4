"""The OpenAPI 3.1 document of the client API: a table of the routes and the models' schemas.

Every schema comes from a pydantic model (components/schemas, referenced by `$ref`); the table
below adds what the models cannot say: paths, parameters, status codes, security. The document
is committed next to this module as `openapi.json`, and the tasks function serves that file, so
a Lambda never builds schemas at run time.

    python -m wanflow.openapi           # write shared/wanflow/openapi.json
    python -m wanflow.openapi --check   # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from wanflow.errors import ErrorBody
from wanflow.http import MAX_BODY_BYTES
from wanflow.schema import Schema
from wanflow.task import Task

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaMode

#: Where the committed document lives (package data of `wanflow`).
DOCUMENT = Path(__file__).with_name("openapi.json")
#: The stage the template deploys; the served document replaces it with the caller's own URL.
DEFAULT_SERVER = "/prod"
OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"

JSON = "application/json"
HTML = "text/html"


# --- response shapes that have no model elsewhere ------------------------------------------


class TaskPage(Schema):
    """A page of the tenant's tasks, newest first."""

    tasks: list[Task] = Field(description="The tasks of this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class ErrorWithTask(ErrorBody):
    """An error about a task that exists: the error, and the task as it now is."""

    task: Task | None = Field(
        default=None, description="The task as it now is (submit: recorded as failed)."
    )


class CatalogEntry(Schema):
    """One model of the catalog (`ModelSpec.describe()`)."""

    id: str = Field(description="The model id to send as `model`.")
    title: str = Field(description="A name for people.")
    output: Literal["video", "image"] = Field(description="What the model produces.")
    modes: list[str] = Field(description="The modes it runs in (t2v, i2v, r2v, edit, ...).")
    family: str = Field(description="The upstream API family it is created through.")
    create_path: str = Field(description="The upstream path tasks are created at.")
    status_path: str = Field(description="The upstream path of a task's status.")
    accepts_callback: bool = Field(description="Whether the upstream calls back when done.")
    statuses: str = Field(description="The upstream status vocabulary it uses.")
    request_schema: dict[str, Any] = Field(
        description="JSON Schema of the request (the body of POST /v1/tasks for this model)."
    )


class ModelList(Schema):
    """The catalog."""

    models: list[CatalogEntry] = Field(description="Every model wanflow runs.")


class WebhookSecret(Schema):
    """The tenant's webhook signing secret."""

    secret: str = Field(
        pattern="^whsec_", description="The `whsec_` secret (Standard Webhooks) to verify with."
    )


class CallbackReply(Schema):
    """What the callback receiver answers the upstream."""

    received: bool = Field(description="Always true: the callback was recorded.")
    duplicate: bool | None = Field(default=None, description="Whether it was seen before.")
    ignored: str | None = Field(default=None, description="Why it changed nothing, if so.")


class CallbackProblem(Schema):
    """Why a callback was refused."""

    code: str = Field(description="`bad_signature` or `task_not_found`.")
    message: str = Field(description="What is wrong.")


class CallbackError(Schema):
    """A refused callback (the upstream's own retry policy reads only the status code)."""

    error: CallbackProblem = Field(description="Why it was refused.")


# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter."""

    name: str
    where: Literal["path", "query", "header"]
    description: str
    schema: Mapping[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Reply:
    """One documented response: a model (or a raw schema) under one media type."""

    description: str
    body: type[BaseModel] | Mapping[str, Any] | None = None
    media: str = JSON


@dataclass(frozen=True)
class Operation:
    """One route of template.yaml as clients see it."""

    method: Literal["get", "post"]
    path: str
    operation_id: str
    tag: str
    summary: str
    description: str
    responses: Mapping[int, Reply]
    params: Sequence[Param] = ()
    #: A model, a raw schema (may `$ref` components), or None for no body.
    body: type[BaseModel] | Mapping[str, Any] | None = None
    body_required: bool = True
    #: False for the routes API Gateway serves without a key (`Authorizer: NONE`).
    authenticated: bool = True
    extra_models: Sequence[type[BaseModel]] = field(default_factory=tuple)


_TASK_ID = Param(
    "task_id",
    "path",
    "The task id (`tsk_…`) returned when the task was submitted.",
    {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
    required=True,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _errors(*codes: int) -> dict[int, Reply]:
    """Error responses in wanflow's one error shape."""
    why = {
        400: "The request is invalid; every problem is listed, each naming its field.",
        404: "No such task for this tenant (another tenant's task answers the same).",
        409: "The request conflicts with the task's state or an earlier request.",
        413: f"The body is over {MAX_BODY_BYTES:,} bytes (Lambda's 6 MB request limit; API "
        "Gateway answers a body over 10 MB itself, in the same shape): send a large image with "
        "`POST /v1/uploads` or by URL, not as a data URI.",
        415: "The Content-Type is not JSON: send `application/json` (or no Content-Type).",
        503: "The upstream is unavailable now: nothing changed; try again later.",
    }
    return {code: Reply(why[code], ErrorBody) for code in codes}


def operations() -> list[Operation]:
    """Every route of the API, in the order the document lists the"""
    from wanflow.cancellation import CancelResult
    from wanflow.catalog import MODELS
    from wanflow.client_webhooks.delivery_log import DeliveryList
    from wanflow.client_webhooks.queue import RedeliverRequest, Redelivery
    from wanflow.task import TaskStatus, WebhookTarget
    from wanflow.uploads import UploadTicket

    task_reply = {200: Reply("The task; outputs as short-lived presigned URLs.", Task)}
    return [
        Operation(
            "post",
            "/v1/tasks",
            "submitTask",
            "tasks",
            "Submit a generation task",
            "The body is one model's request exactly as the upstream documents it (see "
            "`GET /v1/models`), plus an optional `webhook`. It is checked against the model's "
            "documented limits before anything is spent; every problem is reported at once, "
            "each naming its field. With an `Idempotency-Key`, repeating the same request "
            "returns the same task, and reusing the key with another body is a 409. Images may "
            "be inline (data URIs) while the whole body stays within "
            f"{MAX_BODY_BYTES:,} bytes (one image of about 4.6 MB, or four of 1.1 MB); "
            "larger ones go through `POST /v1/uploads`.",
            {
                202: Reply("The task was accepted and is being followed.", Task),
                400: Reply(
                    "Invalid request, or the upstream refused it (then `task` is the failed task).",
                    ErrorWithTask,
                ),
                **_errors(409, 413, 415),
                503: Reply(
                    "The upstream could not take the task; `task` is the failed task, and its "
                    "`error` says what happened. `retryable: true` (`upstream_unavailable`, "
                    "`upstream_throttled`, `upstream_create_not_started`): nothing was created "
                    "upstream; submit again later. `retryable: false` "
                    "(`upstream_create_outcome_unknown`: the upstream answered the create with a "
                    "5xx, or no answer came): the upstream may have created the task and may "
                    "bill it, but wanflow cannot follow it and never creates it again; before "
                    "submitting again, check `GET /v1/tasks` that you have not already done so. "
                    "Either way the same `Idempotency-Key` keeps returning this failed task: "
                    "submit again with a new key. Without `task` "
                    "(`orchestration_unavailable`, `store_unavailable`): nothing was recorded "
                    "or created; send the same request again shortly.",
                    ErrorWithTask,
                ),
            },
            params=[
                Param(
                    "Idempotency-Key",
                    "header",
                    "Any string of yours: the same key and body always give the same task.",
                    {"type": "string", "minLength": 1, "maxLength": 255},
                )
            ],
            body=_submit_body(),
            extra_models=(WebhookTarget,),
        ),
        Operation(
            "get",
            "/v1/tasks",
            "listTasks",
            "tasks",
            "List tasks",
            "The tenant's tasks, newest first, a page at a time; pass `next_cursor` back as "
            "`cursor` for the next page (it is null on the last one). The listing is read from "
            "an index that is eventually consistent: a task just submitted may be missing from "
            "it, and a task that just changed may show its previous status, for a moment "
            "(usually under a second). `GET /v1/tasks/{id}` always reads the task as it is: "
            "use it, not the listing, to follow a task you submitted.",
            {200: Reply("A page of tasks.", TaskPage), **_errors(400)},
            params=[
                Param(
                    "status",
                    "query",
                    "Only tasks in this status.",
                    {"type": "string", "enum": [s.value for s in TaskStatus]},
                ),
                Param("model", "query", "Only tasks of this model id.", {"type": "string"}),
                Param(
                    "limit",
                    "query",
                    "Page size.",
                    {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                ),
                Param("cursor", "query", "`next_cursor` of the previous page.", {"type": "string"}),
            ],
        ),
        Operation(
            "get",
            "/v1/tasks/{task_id}",
            "getTask",
            "tasks",
            "Get a task",
            "The task with its status, progress, warnings, usage and, once succeeded, its "
            "outputs as presigned URLs to wanflow's own copy (a new URL on every read).",
            {**task_reply, **_errors(404)},
            params=[_TASK_ID],
        ),
        Operation(
            "post",
            "/v1/tasks/{task_id}/cancel",
            "cancelTask",
            "tasks",
            "Cancel a task",
            "Cancels the task upstream where the model allows it and stops following it; the "
            "answer says what happened and what was billed. It takes no body (or `{}`).",
            {
                200: Reply("What the cancel did.", CancelResult),
                **_errors(400, 404),
                409: Reply("The task has ended; `task` is as it now is.", ErrorWithTask),
                **_errors(413, 415, 503),
            },
            params=[_TASK_ID],
        ),
        Operation(
            "get",
            "/v1/tasks/{task_id}/deliveries",
            "listDeliveries",
            "webhooks",
            "List a task's webhook deliveries",
            "Every attempt to post the task's events to its webhook, newest first.",
            {200: Reply("The task's delivery log.", DeliveryList), **_errors(404)},
            params=[_TASK_ID],
        ),
        Operation(
            "post",
            "/v1/tasks/{task_id}/deliveries/redeliver",
            "redeliverWebhook",
            "webhooks",
            "Redeliver a task's webhook",
            "Posts an event of the task to its webhook again, with its original `webhook-id`: "
            "the task's latest event, or the one named in the (optional) body.",
            {
                202: Reply("The redelivery was queued.", Redelivery),
                **_errors(400, 404),
                409: Reply("The task has no webhook, or no event to send yet.", ErrorBody),
                **_errors(413, 415),
            },
            params=[_TASK_ID],
            body=RedeliverRequest,
            body_required=False,
        ),
        Operation(
            "post",
            "/v1/uploads",
            "createUpload",
            "uploads",
            "Create an upload",
            "A presigned S3 upload for an input image. Once the image is written, it becomes "
            "a task with the request given here (the image goes in the model's image field).",
            {
                201: Reply("Where and how to upload the image.", UploadTicket),
                **_errors(400, 413, 415),
            },
            body={
                "type": "object",
                "description": "A model's request as for POST /v1/tasks, without its image.",
                "required": ["model"],
                "properties": {"model": {"type": "string", "enum": list(MODELS)}},
            },
        ),
        Operation(
            "get",
            "/v1/models",
            "listModels",
            "models",
            "List models",
            "The catalog: each model's modes, limits, defaults and request schema.",
            {200: Reply("The catalog.", ModelList)},
        ),
        Operation(
            "get",
            "/v1/webhooks/secret",
            "getWebhookSecret",
            "webhooks",
            "Get the webhook signing secret",
            "The tenant's `whsec_` secret: webhooks are signed the Standard Webhooks way "
            "(`webhook-id`, `webhook-timestamp`, `webhook-signature`); verify them with it.",
            {200: Reply("The tenant's secret.", WebhookSecret)},
        ),
        Operation(
            "post",
            "/v1/callbacks/{task_id}",
            "receiveCallback",
            "upstream",
            "Upstream callback (not for clients)",
            "Where the upstream reports a task's end. No API key: the `sig` in the URL wanflow "
            "gave the upstream is checked instead. Duplicates answer 200 and change nothing.",
            {
                200: Reply("Received (or a duplicate, which changes nothing).", CallbackReply),
                401: Reply("The signature is missing or wrong; nothing was read.", CallbackError),
                404: Reply("No such task.", CallbackError),
            },
            params=[
                _TASK_ID,
                Param(
                    "sig",
                    "query",
                    "HMAC of the task id that wanflow put in the callback URL.",
                    {"type": "string"},
                    required=True,
                ),
            ],
            body={"type": "object", "description": "The upstream's task report, as it sends it."},
            body_required=False,
            authenticated=False,
        ),
        Operation(
            "get",
            "/openapi.json",
            "getOpenApi",
            "docs",
            "This document",
            "The OpenAPI 3.1 document of the API, its `servers` set to the URL it was read fro",
            {200: Reply("The document.", {"type": "object"})},
            authenticated=False,
        ),
        Operation(
            "get",
            "/docs",
            "getDocs",
            "docs",
            "API documentation",
            "Swagger UI for this document; its assets are served inline (no CDN).",
            {200: Reply("An HTML page.", {"type": "string"}, HTML)},
            authenticated=False,
        ),
    ]


def _submit_body() -> dict[str, Any]:
    """One alternative per model, chosen by `model`."""
    from wanflow.catalog import MODELS

    names = {spec.id: _request_component(type(spec).__name__) for spec in MODELS.values()}
    return {
        "oneOf": [_ref(name) for name in names.values()],
        "discriminator": {
            "propertyName": "model",
            "mapping": {model: _REF.format(model=name) for model, name in names.items()},
        },
    }


def _request_component(prefix: str) -> str:
    return f"{prefix}Request"


# --- building the document ------------------------------------------------------------------


def build() -> dict[str, Any]:
    """The whole document, deterministic: the same code always gives the same bytes."""
    ops = operations()
    schemas = _model_schemas(ops)
    schemas.update(_catalog_schemas())
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "wanflow",
            "version": _version(),
            "summary": "Wan video and image generation jobs, checked, followed and delivered.",
            "description": (
                "Submit a request for one of the Wan models; wanflow checks it against the "
                "model's documented limits before anything is spent, creates the upstream task, "
                "follows it to the end, copies the results to S3 and tells you (signed webhook, "
                "or this API). Errors always have the shape "
                '`{"error": {type, code, message, param}, "errors": [...]}`, where `param` '
                "names the offending field; bad input never gets a 5xx."
            ),
        },
        "servers": [{"url": DEFAULT_SERVER, "description": "The stage this document is read fro"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "tasks", "description": "Submit, follow and cancel generation tasks."},
            {"name": "uploads", "description": "Input images uploaded to wanflow's bucket."},
            {"name": "models", "description": "The model catalog."},
            {"name": "webhooks", "description": "Signed client webhooks and their delivery log."},
            {"name": "upstream", "description": "Called by the upstream aggregator only."},
            {"name": "docs", "description": "This document and its Swagger UI."},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Your API key: `Authorization: Bearer <key>`.",
                }
            },
        },
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wanflow")
    except PackageNotFoundError:  # the Lambda layer is not an installed distribution
        return "0"


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [op.tag],
        "summary": op.summary,
        "description": op.description,
    }
    if op.params:
        out["parameters"] = [_param(p) for p in op.params]
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {JSON: {"schema": _schema_of(op.body)}},
        }
    responses = {str(code): _response(reply) for code, reply in sorted(op.responses.items())}
    if op.authenticated:
        responses.update(_auth_responses())
        out["responses"] = dict(sorted(responses.items()))
    else:
        out["responses"] = responses
        out["security"] = []
    return out


def _param(p: Param) -> dict[str, Any]:
    return {
        "name": p.name,
        "in": p.where,
        "required": p.required,
        "description": p.description,
        "schema": dict(p.schema),
    }


def _response(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.body is not None:
        out["content"] = {reply.media: {"schema": _schema_of(reply.body)}}
    return out


def _auth_responses() -> dict[str, Any]:
    # API Gateway answers these itself (the template's GatewayResponses), in the error shape.
    body = {JSON: {"schema": _ref("ErrorBody")}}
    return {
        "401": {"description": "No API key, or not a valid one.", "content": body},
        "403": {"description": "The API key is not allowed here (revoked?).", "content": body},
    }


def _schema_of(shape: type[BaseModel] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(shape, Mapping):
        return copy.deepcopy(dict(shape))
    return _ref(shape.__name__)


def _models_of(ops: Sequence[Operation]) -> Iterator[tuple[type[BaseModel], JsonSchemaMode]]:
    yield ErrorBody, "serialization"
    for op in ops:
        if op.body is not None and not isinstance(op.body, Mapping):
            yield op.body, "validation"
        for model in op.extra_models:
            yield model, "validation"
        for reply in op.responses.values():
            if reply.body is not None and not isinstance(reply.body, Mapping):
                yield reply.body, "serialization"


def _model_schemas(ops: Sequence[Operation]) -> dict[str, Any]:
    """components/schemas of every model the table names, and of the models they use."""
    from pydantic.json_schema import models_json_schema

    wanted = list(dict.fromkeys(_models_of(ops)))
    refs, top = models_json_schema(wanted, ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for (model, _), ref in refs.items():
        # `_schema_of` refers to a model by its class name: make sure that is what pydantic
        # chose (it would not be if two models of the table shared a name).
        if ref.get("$ref") != _REF.format(model=model.__name__):
            raise ValueError(f"schema name clash for {model.__module__}.{model.__name__}: {ref}")
    return schemas


def _catalog_schemas() -> dict[str, Any]:
    """Each model's request as POST /v1/tasks takes it: the seed's body plus `webhook`.

    The catalog's classes share names (every model has an `Input`), so each model's schemas are
    prefixed with its spec's class name: `Wan26I2VRequest`, `Wan26I2VInput`, ...
    """
    from wanflow.catalog import MODELS

    schemas: dict[str, Any] = {}
    for spec in MODELS.values():
        prefix = type(spec).__name__
        schema = spec.request_model.model_json_schema(
            ref_template=_REF.format(model=prefix + "{model}")
        )
        for name, sub in schema.pop("$defs", {}).items():
            schemas[prefix + name] = sub
        # Request models refuse unknown fields, so `webhook` goes into each one, not an allOf.
        schema["properties"]["webhook"] = {
            **_ref("WebhookTarget"),
            "description": "Post this task's events here (Standard Webhooks, signed).",
        }
        schema["title"] = f"{spec.id} request"
        schema["description"] = (
            f"{spec.title}: the request exactly as the upstream documents it, plus an optional "
            "`webhook`."
        )
        schemas[_request_component(prefix)] = schema
    return schemas


# --- the committed document and what the API serves -----------------------------------------


def render(document: Mapping[str, Any]) -> str:
    """The document as committed: two-space indent, UTF-8, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@cache
def _published_text() -> str:
    return resources.files("wanflow").joinpath("openapi.json").read_text(encoding="utf-8")


def published(server_url: str | None = None) -> dict[str, Any]:
    """The committed document (read once per process), `servers` set to `server_url` if given."""
    document: dict[str, Any] = json.loads(_published_text())
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


_SWAGGER_UI = "aws_lambda_powertools.event_handler.openapi.swagger_ui"


@cache
def _swagger_assets() -> tuple[str, str]:
    # Powertools ships Swagger UI's bundle and stylesheet: inlined, /docs needs no CDN.
    assets = resources.files(_SWAGGER_UI)
    js = assets.joinpath("swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    css = assets.joinpath("swagger-ui.min.css").read_text(encoding="utf-8")
    return js, css


def docs_page(document: Mapping[str, Any]) -> str:
    """A self-contained Swagger UI page showing `document` (scripts and styles inline)."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    js, css = _swagger_assets()
    # The document sits inside a <script>: a "</" in any description must not close it.
    spec = json.dumps(document).replace("</", "<\\/")
    return generate_swagger_html(spec, js, css, swagger_base_url="", oauth2_config=None)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the document, or with --check say whether the committed one is current."""
    parser = argparse.ArgumentParser(prog="python -m wanflow.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if openapi.json is stale")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
        if current != text:
            print(
                f"{DOCUMENT.name} is out of date with the code: run make openapi", file=sys.stderr
            )
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
