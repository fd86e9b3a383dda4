"""The OpenAPI document: current, valid, and exactly the API routes of template.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from wanflow import api_docs
from wanflow.catalog import MODELS
from wanflow_local import openapi
from wanflow_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "events" / "requests" / "valid"
METHODS = {"get", "post", "put", "patch", "delete"}


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    return document


def _template_routes() -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) → the route's own Auth, for every Api event of template.yaml."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    routes = {}
    for resource in resources.values():
        for source in (resource.get("Properties", {}).get("Events") or {}).values():
            if source["Type"] == "Api":
                props = source["Properties"]
                routes[(props["Method"].lower(), props["Path"])] = props.get("Auth") or {}
    return routes


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def test_the_committed_document_is_what_the_code_produces() -> None:
    # A stale openapi.json would be served as the API's contract: `make openapi` rewrites it.
    assert openapi.DOCUMENT.read_text(encoding="utf-8") == openapi.render(openapi.build())


def test_the_document_is_valid_openapi_3_1() -> None:
    document = _document()
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)  # raises on any schema or $ref problem


def test_the_document_covers_exactly_the_api_routes_of_the_template() -> None:
    assert set(_operations(_document())) == set(_template_routes())


def test_only_the_routes_without_an_authorizer_are_documented_as_public() -> None:
    # GIVEN the template's routes, some with `Auth: {Authorizer: NONE}`
    routes = _template_routes()
    public = {route for route, auth in routes.items() if auth.get("Authorizer") == "NONE"}
    assert public == {
        ("post", "/v1/callbacks/{task_id}"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    }
    # THEN exactly those need no bearer key, and every other route documents the 401
    document = _operations(_document())
    assert {route for route, op in document.items() if op.get("security") == []} == public
    for route, op in document.items():
        if route not in public:
            assert "security" not in op, route  # the document-wide bearerAuth applies
            assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }, route
    assert _document()["security"] == [{"bearerAuth": []}]


def test_every_operation_has_a_summary_description_and_a_success_response() -> None:
    for route, op in _operations(_document()).items():
        assert op["summary"], route
        assert op["description"], route
        assert any(code.startswith("2") for code in op["responses"]), route


def _submit_validator(document: dict[str, Any]) -> Draft202012Validator:
    body = document["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]
    # The body schema's $refs point into components: validate with them at the root.
    return Draft202012Validator({"components": document["components"], **body["schema"]})


@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_every_valid_example_request_matches_the_submit_body_schema(example: str) -> None:
    body = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    validator = _submit_validator(_document())
    assert list(validator.iter_errors(body)) == []
    webhook = {"url": "https://example.com/hooks", "events": ["task.succeeded"]}
    assert list(validator.iter_errors({**body, "webhook": webhook})) == []


def test_the_submit_body_names_every_catalog_model_and_refuses_an_unknown_one() -> None:
    document = _document()
    body = document["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/TaskRequest"}
    request = document["components"]["schemas"]["TaskRequest"]
    assert set(request["discriminator"]["mapping"]) == set(MODELS)
    validator = _submit_validator(document)
    assert not validator.is_valid({"model": "wan9", "prompt": "a cat"})
    assert not validator.is_valid({"model": "wan2.6", "prompt": "a cat", "colour": "red"})


def test_try_it_out_offers_one_runnable_example_per_model() -> None:
    document = _document()
    body = document["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]
    examples = body["examples"]
    # One per model, each a valid request of that model (no megabyte-long data URI)
    assert set(examples) == set(MODELS)
    validator = _submit_validator(document)
    for model, example in examples.items():
        assert example["value"]["model"] == model
        assert list(validator.iter_errors(example["value"])) == []
        assert "data:" not in json.dumps(example["value"])


def test_the_served_document_names_the_server_the_caller_reached() -> None:
    served = api_docs.published("https://api.example.com/prod")
    assert served["servers"] == [{"url": "https://api.example.com/prod"}]
    assert served["paths"] == _document()["paths"]
    assert api_docs.published()["servers"][0]["url"] == openapi.DEFAULT_SERVER


def test_the_docs_page_is_self_contained_and_cannot_be_broken_by_a_description() -> None:
    # GIVEN a document with a description that would close the page's <script>
    document = {**_document(), "info": {"title": "x", "version": "1", "description": "</script>"}}
    page = api_docs.docs_page(document)
    plain = api_docs.docs_page(_document())
    # THEN it is escaped, and the page loads nothing from elsewhere (it works offline)
    assert page.count("</script>") == plain.count("</script>")
    assert "<\\/script>" in page
    assert "SwaggerUIBundle" in page
    assert "<script src=" not in page
    assert "<link rel=" not in page


def test_check_fails_with_a_hint_when_the_committed_document_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(openapi, "DOCUMENT", stale)
    assert openapi.main(["--check"]) == 1
    assert "run make openapi" in capsys.readouterr().err
    # WHEN it is regenerated THEN the check passes
    assert openapi.main([]) == 0
    assert openapi.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8").endswith("}\n")
