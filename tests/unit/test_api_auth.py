"""The local API Gateway's authorizer rules, the authorizer's policy, and fail-closed tenants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wanflow.apikeys import KeyOwner, allow_policy, bearer_key
from wanflow.http import Unauthenticated, tenant_of
from wanflow_local.apiauth import ApiAuth, Authorization, TokenAuthorizer, policy_allows

API = "arn:aws:execute-api:us-east-1:123456789012:api1/prod"
UNAUTHORIZED_BODY = '{"error": {"code": "unauthorized"}}'


class FakeAuthorizer:
    """Stands in for the authorizer Lambda: answers from a table of tokens, counts its calls."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    def __call__(self, function_name: str, event: dict[str, Any]) -> tuple[Any, bool]:
        self.calls.append(event)
        answer = self.answers.get(event["authorizationToken"])
        if answer is None:
            return {"errorType": "Exception", "errorMessage": "Unauthorized"}, True
        if isinstance(answer, Exception):
            return {"errorType": "RuntimeError", "errorMessage": str(answer)}, True
        return answer, False


def policy(effect: str, resource: str) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
    return {"principalId": "acme", "policyDocument": {"Statement": [statement]}}


def gateway(fake: FakeAuthorizer, ttl: float = 60) -> tuple[Authorization, TokenAuthorizer]:
    authorizer = TokenAuthorizer("Keys", "fn", "Authorization", re.compile(r"^Bearer \w+$"), ttl)
    responses = {"UNAUTHORIZED": (401, {}, UNAUTHORIZED_BODY)}
    return Authorization(ApiAuth({"Keys": authorizer}, "Keys", responses), fake), authorizer


def test_a_missing_or_malformed_header_is_401_without_calling_the_authorizer() -> None:
    fake = FakeAuthorizer({})
    auth, authorizer = gateway(fake)
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer a-b"}):
        outcome = auth.check(authorizer, headers, f"{API}/GET/v1/tasks", "r1")
        assert isinstance(outcome, tuple)
        assert (outcome[0], outcome[2]) == (401, UNAUTHORIZED_BODY.encode())
    assert fake.calls == []


def test_refusals_and_failures_of_the_authorizer() -> None:
    fake = FakeAuthorizer(
        {
            "Bearer broken": RuntimeError("boom"),
            "Bearer nested": {**policy("Allow", "*"), "context": {"a": {"b": 1}}},
            "Bearer denied": policy("Deny", f"{API}/*/*"),
        }
    )
    auth, authorizer = gateway(fake)
    arn = f"{API}/GET/v1/tasks"

    def status(token: str) -> int:
        outcome = auth.check(authorizer, {"authorization": f"Bearer {token}"}, arn, "r")
        assert isinstance(outcome, tuple)
        return outcome[0]

    assert status("unknown") == 401  # raised "Unauthorized"
    assert status("broken") == 500  # any other error
    assert status("nested") == 500  # a context API Gateway cannot pass on
    assert status("denied") == 403


def test_an_allow_is_cached_per_token_and_judged_per_route() -> None:
    # GIVEN an authorizer whose policy covers one route only
    fake = FakeAuthorizer({"Bearer k1": policy("Allow", f"{API}/GET/v1/tasks")})
    auth, authorizer = gateway(fake)
    headers = {"Authorization": "Bearer k1"}
    # WHEN the key calls that route, then another one
    first = auth.check(authorizer, headers, f"{API}/GET/v1/tasks", "r1")
    second = auth.check(authorizer, headers, f"{API}/POST/v1/tasks", "r2")
    # THEN the first passes with the principal, the second is refused by the cached policy
    assert isinstance(first, dict)
    assert first["principalId"] == "acme"
    assert isinstance(second, tuple)
    assert second[0] == 403
    assert len(fake.calls) == 1


def test_without_a_cache_every_request_asks_the_authorizer() -> None:
    fake = FakeAuthorizer({"Bearer k1": policy("Allow", f"{API}/*/*")})
    auth, authorizer = gateway(fake, ttl=0)
    for _ in range(3):
        outcome = auth.check(authorizer, {"Authorization": "Bearer k1"}, f"{API}/GET/v1/tasks", "r")
        assert isinstance(outcome, dict)
    assert len(fake.calls) == 3


def test_the_wanflow_policy_covers_the_whole_api_and_only_it() -> None:
    answer = allow_policy(KeyOwner("acme", "key_1"), f"{API}/GET/v1/tasks/tsk_1")
    assert answer["principalId"] == "acme"
    assert answer["context"] == {"tenant": "acme", "key_id": "key_1"}
    document = answer["policyDocument"]
    assert policy_allows(document, f"{API}/POST/v1/tasks")
    assert policy_allows(document, f"{API}/GET/v1/webhooks/secret")
    assert not policy_allows(document, f"{API.replace('api1', 'api2')}/GET/v1/tasks")
    assert not policy_allows(document, f"{API.replace('/prod', '/test')}/GET/v1/tasks")


def test_an_explicit_deny_wins_over_an_allow() -> None:
    statements = [
        {"Action": "execute-api:*", "Effect": "Allow", "Resource": f"{API}/*"},
        {"Action": ["execute-api:Invoke"], "Effect": "Deny", "Resource": [f"{API}/POST/*"]},
    ]
    assert policy_allows({"Statement": statements}, f"{API}/GET/v1/tasks")
    assert not policy_allows({"Statement": statements}, f"{API}/POST/v1/tasks")


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer wf_abc-DEF_9", "wf_abc-DEF_9"),
        ("Bearer wf_a b", None),
        ("bearer wf_abc", None),
        ("wf_abc", None),
        (None, None),
    ],
)
def test_bearer_key(header: str | None, key: str | None) -> None:
    assert bearer_key(header) == key


@pytest.mark.parametrize(
    "context", [None, {}, {"authorizer": None}, {"authorizer": {}}, {"authorizer": {"tenant": ""}}]
)
def test_no_tenant_in_the_request_context_is_a_401(context: dict[str, Any] | None) -> None:
    with pytest.raises(Unauthenticated) as raised:
        tenant_of(context)
    status, body = raised.value.status, raised.value.error_json()
    assert status == 401
    assert body["error"]["param"] == "Authorization"
    json.dumps(body)  # the body is plain JSON


def test_the_tenant_comes_from_the_authorizer() -> None:
    assert tenant_of({"authorizer": {"tenant": "acme", "principalId": "acme"}}) == "acme"
