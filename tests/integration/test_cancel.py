"""POST /v1/tasks/{id}/cancel and GET /v1/models: the tasks function with API Gateway events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stackkit import event, invoke, request, submit

from kit.receivers import WebhookReceiver
from kit.waiting import wait_for
from wanflow.catalog import MODELS
from wanflow.task import TaskStatus
from wanflow.tenants import Tenants
from wanflow_local.stack import LocalStack


def _call(
    stack: LocalStack, name: str, tenant: str | None = "acme", task_id: str = ""
) -> httpx.Response:
    """Invoke the tasks function with events/api/<name>.json as `tenant` (None: no authorizer)."""
    ev = event(f"api/{name}")
    if task_id:
        ev["pathParameters"] = {"task_id": task_id}
        ev["path"] = ev["resource"].replace("{task_id}", task_id)
    ev["requestContext"]["authorizer"] = {"tenant": tenant} if tenant else None
    answer = invoke(stack, "TasksFunction", ev)
    return httpx.Response(answer["statusCode"], content=answer["body"].encode())


def _cancel(stack: LocalStack, task_id: str, tenant: str = "acme") -> httpx.Response:
    return _call(stack, "cancel", tenant, task_id)


def _long(name: str, **changes: Any) -> dict[str, Any]:
    """An example request made as long-running as its model allows (time to cancel it)."""
    body = request(name)
    body.update(changes)
    return body


def _cancels_of(stack: LocalStack, upstream_id: str | None) -> list[Any]:
    assert stack.sim is not None
    return [r for r in stack.sim.requests("cancel") if r.task_id == upstream_id]


@pytest.fixture
def receiver(stack: LocalStack) -> Iterator[WebhookReceiver]:
    """A client's webhook receiver, verifying with tenant acme's secret."""
    tenants = Tenants(stack.stack.ref("TasksTable"), stack.aws.client("dynamodb"))
    hooks = WebhookReceiver(tenants.webhook_secret("acme"))
    yield hooks
    hooks.close()


def test_a_running_task_is_canceled_upstream_and_stops_being_followed(
    stack: LocalStack, receiver: WebhookReceiver
) -> None:
    # GIVEN a wan2.6 task (a poll model the upstream can cancel), still generating, whose
    # client wants to hear of its end
    body = _long("wan2.6-t2v-full", duration=15, resolution="1080p")
    body["webhook"] = {"url": receiver.url}
    status, task = submit(stack, body)
    assert status == 202, task
    # WHEN its client cancels it
    answer = _cancel(stack, task["id"])
    # THEN the answer says the upstream stopped it and what it billed
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"]["status"] == "canceled"
    assert body["upstream_canceled"] is True
    assert "stopped" in body["billed"]["note"]
    # the upstream received the cancel, the execution was stopped, the task is canceled
    record = stack.store.get(task["id"])
    assert _cancels_of(stack, record.upstream_id)
    _, execution = stack.finish(task["id"], timeout=10)
    assert execution["status"] == "ABORTED"
    assert record.status is TaskStatus.CANCELED
    assert record.upstream_status == "cancelled"
    assert record.usage is not None  # as the upstream reported it (no usage for a cancelled task)
    assert str(record.usage.cost_usd) == str(body["billed"]["cost_usd"])
    assert record.error is not None
    assert record.error.code == "canceled"
    # the client's webhook hears task.canceled, signed with its tenant's secret
    wait_for(lambda: "task.canceled" in receiver.events() or None, timeout=15, what="webhook")
    hit = next(h for h in receiver.hits if h.body and h.body["type"] == "task.canceled")
    assert hit.verified
    assert hit.body["data"]["id"] == task["id"]
    assert hit.body["data"]["status"] == "canceled"
    # and a second cancel is refused: the task has ended
    again = _cancel(stack, task["id"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "task_not_cancelable"


def test_a_model_the_upstream_cannot_cancel_says_it_keeps_running_and_is_billed(
    stack: LocalStack,
) -> None:
    # GIVEN a wan26_i2v task (the generation family has no cancel endpoint)
    body = request("wan26_i2v")
    body["parameters"] = {"resolution": "1080P", "duration": 15}
    status, task = submit(stack, body)
    assert status == 202, task
    # WHEN it is canceled
    answer = _cancel(stack, task["id"])
    # THEN wanflow stops following it and says plainly what that means for the bill
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["upstream_canceled"] is False
    assert result["task"]["status"] == "canceled"
    note = result["billed"]["note"]
    assert "cannot be canceled upstream" in note
    assert "keeps running" in note
    assert "billed" in note
    record = stack.store.get(task["id"])
    assert _cancels_of(stack, record.upstream_id) == []  # nothing was asked of the upstream
    _, execution = stack.finish(task["id"], timeout=10)
    assert execution["status"] == "ABORTED"
    assert stack.store.get(task["id"]).status is TaskStatus.CANCELED


def test_a_finished_task_is_not_cancelable_and_comes_back_as_it_ended(stack: LocalStack) -> None:
    _, task = submit(stack, request("wan22_i2v_flash"))
    finished, _ = stack.finish(task["id"])
    assert finished.status is TaskStatus.SUCCEEDED
    answer = _cancel(stack, task["id"])
    assert answer.status_code == 409
    body = answer.json()
    assert body["error"]["code"] == "task_not_cancelable"
    assert "succeeded" in body["error"]["message"]
    assert body["task"]["status"] == "succeeded"
    assert body["task"]["outputs"][0]["url"]  # the results are still there, untouched
    assert stack.store.get(task["id"]).version == finished.version


def test_another_tenants_task_is_404_like_a_missing_one_and_is_untouched(
    stack: LocalStack,
) -> None:
    _, task = submit(stack, request("wan2.6-t2v"), tenant="acme")
    theirs = _cancel(stack, task["id"], tenant="globex")
    missing = _cancel(stack, "tsk_nope", tenant="globex")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "task_not_found"
    record = stack.store.get(task["id"])
    assert _cancels_of(stack, record.upstream_id) == []
    finished, _ = stack.finish(task["id"])
    assert finished.status is TaskStatus.SUCCEEDED


def test_models_lists_the_whole_catalog_to_a_caller_with_a_key(stack: LocalStack) -> None:
    answer = _call(stack, "models")
    assert answer.status_code == 200
    models = answer.json()["models"]
    assert [m["id"] for m in models] == list(MODELS)
    assert len(models) == 5
    for model in models:
        assert model["modes"], model["id"]
        assert model["request_schema"]["properties"], model["id"]
    assert _call(stack, "models", tenant=None).status_code == 401
