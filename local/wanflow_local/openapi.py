"""The OpenAPI 3.1 document of the client API, generated from the functions' Powertools routes.

Each HTTP function's resolver (`functions/{submit,tasks,callbacks}/app.py`) documents its own
routes: typed parameters, `responses=`, and its JSON body through `wanflow.api.request_body`.
This module imports those modules as Lambda would (each with a placeholder environment), asks
Powertools for each resolver's document, and merges them, adding what only the deployment and
the catalog know:

- each model's request schema, one `oneOf` alternative per model chosen by `model`, with one
  runnable example per model for Swagger UI's "Try it out" (`events/requests/valid/`);
- the bearer key every route but the public ones needs, and the 401/403 API Gateway itself
  answers (the template's gateway responses) in the one error shape;
- the one error shape for a parameter that fails validation (400, never Powertools' 422).

The document is committed as `shared/wanflow/openapi.json`; the tasks function serves it
(`wanflow.api_docs`), so a Lambda never builds schemas at run time. Dev tooling: not in the layer.

    python -m wanflow_local.openapi           # write shared/wanflow/openapi.json
    python -m wanflow_local.openapi --check   # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import wanflow

ROOT = Path(__file__).resolve().parents[2]
#: Where the committed document lives (package data of the layer's `wanflow`).
DOCUMENT = Path(wanflow.__file__).with_name("openapi.json")
#: The functions that serve the API, in the order their routes are listed.
HTTP_FUNCTIONS = ("submit", "tasks", "callbacks")
EXAMPLES = ROOT / "events" / "requests" / "valid"
#: The stage the template deploys; the served document replaces it with the caller's own URL.
DEFAULT_SERVER = "/prod"
OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
JSON = "application/json"
#: What each function's module needs to be imported (its Init checks its configuration); the
#: values are never used: no route runs.
PLACEHOLDER_ENVIRON = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TABLE_NAME": "openapi-build",
    "BUCKET_NAME": "openapi-build",
    "UPSTREAM_BASE_URL": "https://upstream.invalid",
    "UPSTREAM_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:upstream",
    "CALLBACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:callback",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:openapi-build",
    "NOTIFY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/openapi-build",
    "WEBHOOK_SIGNING_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wh",
}
#: What Powertools adds for its own validation errors, which wanflow answers as a 400 instead.
_POWERTOOLS_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
TAGS = [
    {"name": "tasks", "description": "Submit, follow and cancel generation tasks."},
    {"name": "uploads", "description": "Input images uploaded to wanflow's bucket."},
    {"name": "models", "description": "The model catalog."},
    {"name": "webhooks", "description": "Signed client webhooks and their delivery log."},
    {"name": "upstream", "description": "Called by the upstream aggregator only."},
    {"name": "docs", "description": "This document and its Swagger UI."},
]


def function_module(name: str) -> ModuleType:
    """`functions/<name>/app.py`, imported as Lambda's Init would, under a name of its own."""
    from wanflow.runtime import function_environ

    module_name = f"wanflow_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    with function_environ(PLACEHOLDER_ENVIRON):
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


def _resolver_document(module: ModuleType) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        module.app.get_openapi_json_schema(title="wanflow", openapi_version=OPENAPI_VERSION)
    )
    return document


def _merge_schemas(into: dict[str, Any], schemas: Mapping[str, Any], origin: str) -> None:
    for name, schema in schemas.items():
        if name in into and into[name] != schema:
            raise ValueError(f"two different schemas are named {name} (from {origin})")
        into[name] = schema


# --- the catalog: one request schema per model, and an example of each ------------------------


def _request_component(prefix: str) -> str:
    return f"{prefix}Request"


def catalog_schemas() -> dict[str, Any]:
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
            "$ref": _REF.format(model="WebhookTarget"),
            "description": "Post this task's events here (Standard Webhooks, signed).",
        }
        schema["title"] = f"{spec.id} request"
        schema["description"] = (
            f"{spec.title}: the request exactly as the upstream documents it, plus an optional "
            "`webhook`."
        )
        schemas[_request_component(prefix)] = schema
    return schemas


def examples() -> dict[str, Any]:
    """One runnable request per model (the smallest valid example of each), for "Try it out"."""
    chosen: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        body = json.loads(text)
        model = body.get("model")
        if "data:" in text or not isinstance(model, str):
            continue  # a data URI makes a megabyte-long example
        if model not in chosen or len(text) < chosen[model][0]:
            chosen[model] = (len(text), path.stem, body)
    return {
        model: {"summary": f"{model} ({stem})", "value": body}
        for model, (_, stem, body) in sorted(chosen.items())
    }


def task_request_schema() -> dict[str, Any]:
    """The body of POST /v1/tasks (`TaskRequest`): one alternative per model, chosen by
    `model`."""
    from wanflow.catalog import MODELS

    names = {spec.id: _request_component(type(spec).__name__) for spec in MODELS.values()}
    return {
        "oneOf": [{"$ref": _REF.format(model=name)} for name in names.values()],
        "discriminator": {
            "propertyName": "model",
            "mapping": {model: _REF.format(model=name) for model, name in names.items()},
        },
    }


# --- building the document ------------------------------------------------------------------


def _operations(paths: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method, operation in item.items():
            yield path, method, operation


def public_routes(template: Path = ROOT / "template.yaml") -> set[tuple[str, str]]:
    """(method, path) of the routes the template serves without the authorizer."""
    from wanflow_local.cfn import load_template

    public = set()
    for resource in load_template(template)["Resources"].values():
        for source in (resource.get("Properties", {}).get("Events") or {}).values():
            props = source.get("Properties") or {}
            auth = props.get("Auth") or {}
            if source.get("Type") == "Api" and auth.get("Authorizer") == "NONE":
                public.add((str(props["Method"]).lower(), str(props["Path"])))
    return public


def _finish_operation(path: str, method: str, op: dict[str, Any], public: bool) -> None:
    """What the resolvers cannot say: the body wanflow reads itself, validation errors as 400,
    the gateway's 401/403, and the per-model examples of the submit body."""
    from wanflow.api import BODY_EXTENSION, CATALOG_REQUEST

    responses: dict[str, Any] = op["responses"]
    responses.pop("422", None)
    parameters = op.get("parameters", [])
    if any(p["in"] in {"query", "header"} for p in parameters) and "400" not in responses:
        responses["400"] = {
            "description": "A parameter is not valid; each problem names it.",
            "content": {JSON: {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
        }
    body = op.pop(BODY_EXTENSION, None)
    if body is not None:
        media: dict[str, Any] = {"schema": body["schema"]}
        if body["schema"] == CATALOG_REQUEST:
            media["examples"] = examples()
        op["requestBody"] = {"required": body["required"], "content": {JSON: media}}
    if public:
        op["security"] = []
    else:
        gateway = {JSON: {"schema": {"$ref": _REF.format(model="ErrorBody")}}}
        responses["401"] = {"description": "No API key, or not a valid one.", "content": gateway}
        responses["403"] = {
            "description": "The API key is not allowed here (revoked?).",
            "content": gateway,
        }
    for parameter in parameters:
        if parameter["in"] == "header":  # Powertools lower-cases a header's name
            parameter["name"] = "-".join(w.capitalize() for w in parameter["name"].split("-"))
        parameter["schema"].pop("title", None)
        if "description" in parameter["schema"]:
            parameter.setdefault("description", parameter["schema"].pop("description"))
    op["responses"] = dict(sorted(responses.items()))


def build() -> dict[str, Any]:
    """The whole document, deterministic: the same code always gives the same bytes."""
    from pydantic.json_schema import models_json_schema

    from wanflow.api import DOCUMENTED_BODIES
    from wanflow.errors import ErrorBody
    from wanflow.task import WebhookTarget

    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for name in HTTP_FUNCTIONS:
        document = _resolver_document(function_module(name))
        for path, item in document.get("paths", {}).items():
            for method in item:
                if method in paths.get(path, {}):
                    raise ValueError(f"{method.upper()} {path} is routed by two functions")
            paths.setdefault(path, {}).update(item)
        _merge_schemas(schemas, document.get("components", {}).get("schemas", {}), name)
    for name in _POWERTOOLS_SCHEMAS:
        schemas.pop(name, None)
    public = public_routes()
    for path, method, op in _operations(paths):
        _finish_operation(path, method, op, (method, path) in public)
    extra = [(ErrorBody, "validation"), (WebhookTarget, "validation")]
    extra += [(model, "validation") for model in DOCUMENTED_BODIES.values()]
    _, top = models_json_schema(extra, ref_template=_REF)  # type: ignore[arg-type]
    for name, schema in top.get("$defs", {}).items():
        # Powertools writes a model's schema a little differently from pydantic's own (no
        # `"default": null`): where a resolver already wrote one, it is kept.
        schemas.setdefault(name, schema)
    _merge_schemas(schemas, catalog_schemas(), "the catalog")
    schemas["TaskRequest"] = task_request_schema()
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
        "servers": [{"url": DEFAULT_SERVER, "description": "The stage this document is read from"}],
        "security": [{"bearerAuth": []}],
        "tags": TAGS,
        "paths": dict(sorted(paths.items())),
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
    except PackageNotFoundError:
        return "0"


def render(document: Mapping[str, Any]) -> str:
    """The document as committed: two-space indent, UTF-8, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the document, or with --check say whether the committed one is current."""
    parser = argparse.ArgumentParser(prog="python -m wanflow_local.openapi", description=__doc__)
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
