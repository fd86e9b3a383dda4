"""Tenants and API keys in the stack's table (moto), and the authorizer function on its events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from stackkit import event, invoke, request, submit

from wanflow import keys
from wanflow.errors import InvalidRequest
from wanflow.tenants import KeyConflict, KeyNotFound, Tenants
from wanflow_local.apiauth import policy_allows
from wanflow_local.commands import DEV_API_KEY, DEV_TENANT
from wanflow_local.stack import LocalStack

EVENT_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"


def authorize(stack: LocalStack, ev: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Invoke the authorizer through Lambda as API Gateway does: its answer and its error."""
    answer = stack.aws.client("lambda").invoke(
        FunctionName=stack.stack.ref("AuthorizerFunction"), Payload=json.dumps(ev)
    )
    payload: dict[str, Any] = json.loads(answer["Payload"].read())
    return payload, answer.get("FunctionError")


def test_a_new_key_finds_its_tenant_until_it_is_revoked(stack: LocalStack) -> None:
    tenants = stack.tenants
    # GIVEN a new tenant's first key, then a second one
    first = tenants.create_key("int-acme")
    second = tenants.create_key("int-acme")
    # THEN the first call created the tenant and shows its webhook secret, the second does not
    assert first.webhook_secret is not None
    assert first.webhook_secret.startswith("whsec_")
    assert first.webhook_secret == tenants.webhook_secret("int-acme")
    assert second.webhook_secret is None
    assert first.key.startswith("wf_")
    assert first.key_id.startswith("key_")
    assert tenants.tenant_for(first.key) == tenants.tenant_for(second.key) == "int-acme"
    # WHEN the first is revoked
    revoked = tenants.revoke("int-acme", first.key_id)
    # THEN only the first stops working, and the listing says so, newest first
    assert revoked.revoked_at is not None
    assert tenants.tenant_for(first.key) is None
    assert tenants.tenant_for(second.key) == "int-acme"
    listed = tenants.list_keys("int-acme")
    assert [k.key_id for k in listed] == [second.key_id, first.key_id]
    assert [k.revoked_at is not None for k in listed] == [False, True]
    assert listed[1].prefix == first.key[:8]
    # AND revoking again keeps the first revocation time
    assert tenants.revoke("int-acme", first.key_id).revoked_at == revoked.revoked_at


def test_a_tenant_cannot_revoke_another_tenants_key(stack: LocalStack) -> None:
    tenants = stack.tenants
    theirs = tenants.create_key("int-victim")
    with pytest.raises(KeyNotFound):
        tenants.revoke("int-attacker", theirs.key_id)
    with pytest.raises(KeyNotFound):
        tenants.revoke("int-victim", "key_000000000000")
    assert tenants.tenant_for(theirs.key) == "int-victim"


def test_unknown_keys_and_other_tenants_keys_are_not_confused(stack: LocalStack) -> None:
    tenants = stack.tenants
    key = tenants.create_key("int-one").key
    assert tenants.tenant_for(key + "x") is None
    assert tenants.tenant_for("wf_never_issued_at_all_00000000") is None
    assert tenants.list_keys("int-nobody") == []
    # The by_tenant index holds tasks too: keys never show up among a tenant's tasks.
    records, _ = stack.store.list_for_tenant("int-one")
    assert records == []


@pytest.mark.parametrize("name", ["", "Acme", "-acme", "a b", "a" * 64, "TENANT#x", "ünï"])
def test_tenant_names_are_checked_naming_the_field(stack: LocalStack, name: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        stack.tenants.create_key(name)
    assert raised.value.items[0].param == "tenant"


def test_the_dev_key_is_registered_once_and_for_one_tenant(stack: LocalStack) -> None:
    tenants = stack.tenants
    # The local stack registered it at start; registering again changes nothing.
    assert tenants.tenant_for(DEV_API_KEY) == DEV_TENANT
    again = tenants.register_key(DEV_TENANT, DEV_API_KEY)
    assert [k.key_id for k in tenants.list_keys(DEV_TENANT)] == [again.key_id]
    with pytest.raises(KeyConflict):
        tenants.register_key("int-thief", DEV_API_KEY)
    assert tenants.tenant_for(DEV_API_KEY) == DEV_TENANT


def test_the_table_holds_no_plaintext_key_anywhere(stack: LocalStack) -> None:
    # GIVEN keys created, listed, one revoked, and a task submitted beside them
    tenants = stack.tenants
    created = [tenants.create_key("int-scan") for _ in range(3)]
    tenants.list_keys("int-scan")
    tenants.revoke("int-scan", created[0].key_id)
    submit(stack, request("wan22_i2v_flash"), tenant="int-scan")
    # WHEN every item of the table is read
    client = stack.aws.client("dynamodb")
    table = stack.stack.ref("TasksTable")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    dump = json.dumps(items)
    # THEN no key is in it, not even without its wf_ prefix (only hashes and 8-char prefixes)
    assert sum(1 for i in items if i["pk"]["S"].startswith(keys.API_KEY_PREFIX)) >= 4
    for plaintext in [c.key for c in created] + [DEV_API_KEY]:
        assert plaintext not in dump
        assert plaintext.removeprefix("wf_") not in dump


def test_the_authorizer_allows_a_valid_key_on_the_whole_api(stack: LocalStack) -> None:
    answer, error = authorize(stack, event("api/authorizer"))
    assert error is None, answer
    assert answer["principalId"] == DEV_TENANT
    assert answer["context"]["tenant"] == DEV_TENANT
    policy = answer["policyDocument"]
    # API Gateway reuses a cached answer on the key's next routes: they must all be allowed.
    for route in ("GET/v1/tasks", "GET/v1/tasks/tsk_1", "POST/v1/tasks/tsk_1/cancel"):
        assert policy_allows(policy, f"{EVENT_ARN}/{route}")
    assert not policy_allows(policy, f"{EVENT_ARN.replace('abc123', 'other1')}/GET/v1/tasks")
    assert not policy_allows(policy, f"{EVENT_ARN.replace('/prod', '/dev')}/GET/v1/tasks")


@pytest.mark.parametrize("name", ["api/authorizer-unknown-key", "api/authorizer-malformed"])
def test_the_authorizer_refuses_unknown_and_malformed_keys(stack: LocalStack, name: str) -> None:
    answer, error = authorize(stack, event(name))
    assert error is not None
    assert answer["errorMessage"] == "Unauthorized"


def test_the_authorizer_refuses_a_revoked_key(stack: LocalStack) -> None:
    created = stack.tenants.create_key("int-revoked")
    ev = event("api/authorizer")
    ev["authorizationToken"] = f"Bearer {created.key}"
    assert authorize(stack, ev)[1] is None
    stack.tenants.revoke("int-revoked", created.key_id)
    answer, error = authorize(stack, ev)
    assert error is not None
    assert answer["errorMessage"] == "Unauthorized"


def test_handlers_without_a_tenant_answer_401_never_a_default_tenant(stack: LocalStack) -> None:
    # GIVEN API events that did not go through the authorizer
    post = event("api/submit")
    del post["requestContext"]["authorizer"]
    listing = event("api/submit")
    del listing["requestContext"]["authorizer"]
    listing.update(httpMethod="GET", body=None)
    listing["requestContext"]["httpMethod"] = "GET"
    secret = {**listing, "path": "/v1/webhooks/secret", "resource": "/v1/webhooks/secret"}
    # WHEN the functions get them, THEN each answers 401 in the error shape, naming the header
    for function, ev in (
        ("SubmitFunction", post),
        ("TasksFunction", listing),
        ("TasksFunction", secret),
    ):
        answer = invoke(stack, function, ev)
        body = json.loads(answer["body"])
        assert answer["statusCode"] == 401, (function, ev["path"], body)
        assert body["error"]["code"] == "unauthorized"
        assert body["error"]["param"] == "Authorization"
        assert body["errors"] == [body["error"]]


def test_a_tenant_without_a_secret_gets_one_and_keeps_it(stack: LocalStack) -> None:
    tenants: Tenants = stack.tenants
    first = tenants.webhook_secret("int-secret")
    assert first.startswith("whsec_")
    assert tenants.webhook_secret("int-secret") == first
    # A tenant created by its first key afterwards keeps that secret (it existed already).
    assert tenants.create_key("int-secret").webhook_secret is None
