"""The error table's answers for failures that are not the client's fault."""

from __future__ import annotations

from wanflow.http import to_http
from wanflow.store import StoreUnavailable


def test_a_busy_store_answers_503_in_our_shape_not_a_bare_5xx() -> None:
    # GIVEN DynamoDB throttling past botocore's retries
    # WHEN a route lets it through
    status, body = to_http(StoreUnavailable("ThrottlingException on PutItem"))
    # THEN the client is told to try again, with nothing of the internals
    assert status == 503
    assert body["error"]["code"] == "store_unavailable"
    assert "try again" in body["error"]["message"]
    assert "Throttling" not in body["error"]["message"]
