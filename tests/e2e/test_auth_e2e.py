"""API keys over HTTP on the local API: the authorizer in front, tenants kept apart, and the
operator's `wanflow keys` against the stack's moto."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clikit import Cli

from kit.waiting import wait_for
from wanflow.signing import sign
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

REQUEST = Path(__file__).resolve().parents[2] / "events/requests/valid/wan22_i2v_flash.json"
#: The gateway's 401, as template.yaml's GatewayResponses writes it.
UNAUTHORIZED = {
    "type": "authentication_error",
    "code": "unauthorized",
    "param": "Authorization",
}


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    """A client on the local API that sends no key unless told."""
    with httpx.Client(base_url=stack.api.url, timeout=10) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_gateway_401(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert {k: body["error"][k] for k in UNAUTHORIZED} == UNAUTHORIZED
    assert body["errors"] == [body["error"]]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": DEV_API_KEY},  # no "Bearer "
        {"Authorization": f"Basic {DEV_API_KEY}"},
        {"Authorization": "Bearer wf_not/a+valid=key"},  # characters no key has
        {"Authorization": "Bearer wf_thisKeyWasNeverIssuedByWanflow00000000000"},
    ],
    ids=["none", "empty", "no-scheme", "basic", "bad-chars", "unknown"],
)
def test_a_request_without_a_valid_key_gets_401_in_our_error_shape(
    api: httpx.Client, headers: dict[str, str]
) -> None:
    assert_gateway_401(api.get("/v1/tasks", headers=headers))
    assert_gateway_401(api.post("/v1/tasks", headers=headers, json={"model": "wan2.6"}))


def test_the_dev_key_works(api: httpx.Client) -> None:
    answer = api.get("/v1/tasks", headers=bearer(DEV_API_KEY))
    assert answer.status_code == 200, answer.text
    assert "tasks" in answer.json()
    # Header names are case-insensitive, as on API Gateway.
    assert api.get("/v1/tasks", headers={"authorization": f"Bearer {DEV_API_KEY}"}).is_success


def test_openapi_and_callbacks_need_no_key(stack: LocalStack, api: httpx.Client) -> None:
    # The document's route is declared with `Authorizer: NONE`: whatever it answers, it is not
    # the gateway asking for a key.
    assert api.get("/openapi.json").status_code not in {401, 403}
    # A callback with a valid signature for a task that does not exist reaches the webhook
    # function, which answers 404; the gateway would have answered 401.
    secret = stack.aws.client("secretsmanager").get_secret_value(
        SecretId=stack.stack.ref("CallbackSigningSecret")
    )["SecretString"]
    task_id = "tsk_00000000000000000000000000"
    answer = api.post(
        f"/v1/callbacks/{task_id}", params={"sig": sign(task_id, secret)}, json={"status": "x"}
    )
    assert answer.status_code == 404, answer.text


def test_a_revoked_key_is_refused_once_the_auth_cache_expires(
    stack: LocalStack, api: httpx.Client
) -> None:
    # GIVEN a key that has just worked, so the gateway cached its answer (for 2 s here)
    stack.api.auth_cache_ttl = 2.0
    try:
        created = stack.tenants.create_key("e2e-revoked")
        assert api.get("/v1/tasks", headers=bearer(created.key)).status_code == 200
        # WHEN it is revoked
        stack.tenants.revoke("e2e-revoked", created.key_id)
        # THEN the cached answer still serves it for a while (as API Gateway does) ...
        assert api.get("/v1/tasks", headers=bearer(created.key)).status_code == 200

        # ... and once the cache expires it gets the gateway's 401
        def refused() -> httpx.Response | None:
            answer = api.get("/v1/tasks", headers=bearer(created.key))
            return answer if answer.status_code != 200 else None

        answer = wait_for(refused, timeout=10, interval=0.2, what="the revoked key to be refused")
        assert_gateway_401(answer)
    finally:
        stack.api.auth_cache_ttl = None


def test_tenants_do_not_see_each_others_tasks_or_secrets(
    stack: LocalStack, api: httpx.Client
) -> None:
    # GIVEN two tenants with their own keys, and a task of tenant A
    a = stack.tenants.create_key("e2e-tenant-a")
    b = stack.tenants.create_key("e2e-tenant-b")
    body = json.loads(REQUEST.read_text(encoding="utf-8"))
    submitted = api.post("/v1/tasks", headers=bearer(a.key), json=body)
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["id"]
    # WHEN B asks for it, THEN B gets exactly what a missing task gives
    theirs = api.get(f"/v1/tasks/{task_id}", headers=bearer(b.key))
    missing_id = "tsk_" + "0" * (len(task_id) - 4)
    missing = api.get(f"/v1/tasks/{missing_id}", headers=bearer(b.key))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace(task_id, "ID") == missing.text.replace(missing_id, "ID")
    # AND only A's listing has it
    assert api.get(f"/v1/tasks/{task_id}", headers=bearer(a.key)).status_code == 200
    listed_a = api.get("/v1/tasks", headers=bearer(a.key)).json()["tasks"]
    listed_b = api.get("/v1/tasks", headers=bearer(b.key)).json()["tasks"]
    assert [t["id"] for t in listed_a] == [task_id]
    assert listed_b == []
    # AND B can neither cancel it nor read or resend its webhooks: 404 as for a missing task
    for method, path in (
        ("POST", "cancel"),
        ("GET", "deliveries"),
        ("POST", "deliveries/redeliver"),
    ):
        theirs = api.request(method, f"/v1/tasks/{task_id}/{path}", headers=bearer(b.key))
        missing = api.request(method, f"/v1/tasks/{missing_id}/{path}", headers=bearer(b.key))
        assert theirs.status_code == missing.status_code == 404, path
        assert theirs.text.replace(task_id, "ID") == missing.text.replace(missing_id, "ID")
    assert api.get(f"/v1/tasks/{task_id}", headers=bearer(a.key)).json()["status"] != "canceled"
    # AND each tenant reads its own webhook secret: A's is the one shown when its key was made
    secret_a = api.get("/v1/webhooks/secret", headers=bearer(a.key))
    secret_b = api.get("/v1/webhooks/secret", headers=bearer(b.key))
    assert secret_a.status_code == secret_b.status_code == 200
    assert secret_a.json() == {"secret": a.webhook_secret}
    assert secret_b.json() == {"secret": b.webhook_secret}
    assert a.webhook_secret != b.webhook_secret
    stack.wait_terminal(task_id)  # leave nothing running for the next test


def keys(stack: LocalStack, cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """`wanflow keys ARGS` as an operator runs it against the stack's moto."""
    env: dict[str, str | None] = {
        **stack.aws.environ(),
        "TABLE_NAME": str(stack.stack.ref("TasksTable")),
        "WANFLOW_API_KEY": None,
    }
    return cli.run("keys", *args, **env)


def test_wanflow_keys_creates_lists_and_revokes_against_the_local_stack(
    stack: LocalStack, cli: Cli, api: httpx.Client
) -> None:
    # GIVEN a key made by the operator's command for a new tenant
    made = keys(stack, cli, "create", "--tenant", "e2e-cli", "--json")
    assert made.returncode == 0, made.stderr
    created: dict[str, Any] = json.loads(made.stdout)
    assert created["tenant"] == "e2e-cli"
    assert created["webhook_secret"].startswith("whsec_")
    # THEN it works on the API at once
    assert api.get("/v1/tasks", headers=bearer(created["key"])).status_code == 200
    # AND the listing shows it without the key
    listed = keys(stack, cli, "list", "--tenant", "e2e-cli", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [k["key_id"] for k in json.loads(listed.stdout)] == [created["key_id"]]
    assert created["key"] not in listed.stdout
    # WHEN it is revoked (the gateway's cache emptied, as if ReauthorizeEvery had passed)
    revoked = keys(stack, cli, "revoke", "--tenant", "e2e-cli", "--key-id", created["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert created["key_id"] in revoked.stdout
    stack.api.clear_auth_cache()
    # THEN the API refuses it
    assert_gateway_401(api.get("/v1/tasks", headers=bearer(created["key"])))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("revoke", "--tenant", "e2e-cli2", "--key-id", "key_000000000000"), "no key"),
        (("revoke", "--tenant", "e2e-cli2"), "--key-id"),
        (("create", "--tenant", "Not A Tenant"), "tenant"),
    ],
)
def test_wanflow_keys_errors_are_one_line_and_exit_2(
    stack: LocalStack, cli: Cli, args: tuple[str, ...], says: str
) -> None:
    run = keys(stack, cli, *args)
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert says in run.stderr
    assert "Traceback" not in run.stderr
