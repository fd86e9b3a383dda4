"""Secrets that change while the functions are warm: the upstream key the operator sets after
the first requests, and a rotated callback-signing secret.

The stack's functions read secrets through the Parameters and Secrets extension (served over
moto, as on Lambda) into one cache per function (its runtime's `secret_cache`). Their clock is
moved forward here instead of waiting out its intervals; Secrets Manager, the extension, the
simulator (which checks its API key) and the handlers are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from stackkit import request, submit

from wanflow.secret_cache import CACHE_TTL_S, REREAD_AFTER_S
from wanflow.signing import sign
from wanflow_local.simulator import DEFAULT_API_KEY
from wanflow_local.stack import LocalStack


class Later:
    """The secret cache's clock, moved forward by hand."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.shift


@pytest.fixture
def later(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Later]:
    clock = Later()
    for logical_id in stack.stack.functions:  # every function's own cache
        monkeypatch.setattr(stack.function_runtime(logical_id).secret_cache, "clock", clock)
    yield clock
    clock.shift += CACHE_TTL_S + 600  # what the next test reads is read anew


def put_secret(stack: LocalStack, logical_id: str, value: str) -> None:
    stack.aws.client("secretsmanager").put_secret_value(
        SecretId=stack.stack.ref(logical_id), SecretString=value
    )


def test_an_upstream_key_set_after_the_first_requests_works_at_once(
    stack: LocalStack, later: Later
) -> None:
    assert stack.sim is not None
    try:
        # GIVEN warm functions that read the key before the operator set it
        put_secret(stack, "UpstreamApiKey", "replace-me")
        later.shift += CACHE_TTL_S + 1
        status, refused = submit(stack, request("wan2.6-t2v"))
        assert status == 400, refused
        assert refused["task"]["error"]["upstream_code"] == "invalid_api_key"
        # WHEN the operator sets the key, and a submit comes a few seconds later
        put_secret(stack, "UpstreamApiKey", DEFAULT_API_KEY)
        later.shift += REREAD_AFTER_S
        creates = len(stack.sim.requests("create"))
        status, task = submit(stack, request("wan2.6-t2v"))
        # THEN its create, refused with the old key, is sent again with the new one, and works
        assert status == 202, task
        assert task["status"] == "queued"
        statuses = [r.status for r in stack.sim.requests("create")[creates:]]
        assert statuses == [401, 200]
        record, _ = stack.finish(task["id"])
        assert record.status.value == "succeeded"
    finally:
        put_secret(stack, "UpstreamApiKey", DEFAULT_API_KEY)


def test_a_callback_signed_with_a_rotated_secret_is_accepted_by_a_warm_receiver(
    stack: LocalStack, later: Later
) -> None:
    # GIVEN a task, and a warm receiver holding the callback-signing secret
    status, task = submit(stack, request("wan2.6-t2v"))
    assert status == 202, task
    base = f"{stack.api.url}/v1/callbacks/{task['id']}"
    assert httpx.post(f"{base}?sig=forged", json={}).status_code == 401
    # WHEN the secret is rotated, and a callback signed with the new one comes soon after
    put_secret(stack, "CallbackSigningSecret", "rotated-signing-secret")
    later.shift += REREAD_AFTER_S
    fresh = httpx.post(f"{base}?sig={sign(task['id'], 'rotated-signing-secret')}", json={})
    # THEN it is accepted, and a forged one is still refused
    assert fresh.status_code == 200, fresh.text
    assert httpx.post(f"{base}?sig=forged", json={}).status_code == 401
    stack.finish(task["id"])
