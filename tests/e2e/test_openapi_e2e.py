"""GET /openapi.json and GET /docs over HTTP on the local stack, without an API key."""

from __future__ import annotations

import httpx

from wanflow import api_docs
from wanflow_local.stack import LocalStack


def test_openapi_json_is_the_committed_document_with_the_url_it_was_read_from(
    stack: LocalStack,
) -> None:
    answer = httpx.get(f"{stack.api.url}/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers.get("content-type", "").startswith("application/json")
    document = answer.json()
    # The API's own base URL, so Swagger UI and schemathesis call this stack, not "/prod".
    assert document["servers"] == [{"url": stack.api.url}]
    assert document["paths"] == api_docs.published()["paths"]


def test_docs_is_a_swagger_ui_page_that_needs_no_internet(stack: LocalStack) -> None:
    answer = httpx.get(f"{stack.api.url}/docs", timeout=10)
    assert answer.status_code == 200
    assert answer.headers.get("content-type", "").startswith("text/html")
    page = answer.text
    assert "SwaggerUIBundle" in page
    assert "<script src=" not in page  # no CDN: the bundle is inline
    assert stack.api.url in page  # the document it shows targets this stack
    # Swagger UI's "download" link asks the page itself for the document.
    as_json = httpx.get(f"{stack.api.url}/docs", params={"format": "json"}, timeout=10)
    assert as_json.json()["servers"] == [{"url": stack.api.url}]
