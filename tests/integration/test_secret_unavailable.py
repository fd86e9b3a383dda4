"""A secret that cannot be read is a 503 that says try again, and nothing is created upstream.

A module of its own: its stack has never read the callback-signing secret, so no function holds
it in its cache when the secret goes away.
"""

from __future__ import annotations

from stackkit import request, submit

from wanflow_local.stack import LocalStack


def test_submit_without_its_callback_secret_answers_503_and_creates_nothing(
    stack: LocalStack,
) -> None:
    # GIVEN the callback-signing secret gone from Secrets Manager (deleted, or its service down)
    manager = stack.aws.client("secretsmanager")
    manager.delete_secret(
        SecretId=stack.stack.ref("CallbackSigningSecret"), ForceDeleteWithoutRecovery=True
    )
    created_before = len(stack.sim.tasks_created()) if stack.sim else 0
    # WHEN a task of the model that calls back is submitted (its callback URL must be signed)
    status, body = submit(stack, request("wan2.6-image-to-video-flash"))
    # THEN a 503 in the error shape, saying to try again, and with nothing of the internals
    assert status == 503, body
    assert body["error"]["code"] == "secret_unavailable"
    assert "try again" in body["error"]["message"]
    assert "arn:" not in body["error"]["message"]
    # AND nothing was created upstream (no money spent)
    assert stack.sim is not None
    assert len(stack.sim.tasks_created()) == created_before
