"""Client webhooks through the local stack: submit with a webhook, the lifecycle queues the
events, the notify function (fed by the local SQS mapping) signs and posts them to a real
receiver that verifies each one with the `standardwebhooks` library, retries, the delivery log,
redelivery, and the routes' tenant scoping."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from stackkit import event, invoke, request, submit

from kit.receivers import WebhookReceiver
from kit.waiting import wait_for
from wanflow.catalog.base import Timing
from wanflow.client_webhooks.deliverer import RETRY_DELAYS_S, Deliverer
from wanflow.client_webhooks.queue import Notifications, webhook_id
from wanflow.clock import now_iso
from wanflow.store import TaskRecord
from wanflow.submission import Submitter, UpstreamDown
from wanflow.task import TaskStatus, WebhookTarget
from wanflow.tenants import Tenants
from wanflow.upstream import RetryPolicy, UpstreamClient
from wanflow_local.stack import LocalStack

FLASH = "wan2.6-image-to-video-flash"


def _secret(stack: LocalStack, tenant: str) -> str:
    return Tenants(stack.stack.ref("TasksTable"), stack.aws.client("dynamodb")).webhook_secret(
        tenant
    )


@pytest.fixture
def receivers(stack: LocalStack) -> Iterator[Callable[..., WebhookReceiver]]:
    """Receivers verifying with a tenant's secret; all closed after the test."""
    made: list[WebhookReceiver] = []

    def make(tenant: str, answers: tuple[int, ...] = (200,), **kw: Any) -> WebhookReceiver:
        made.append(WebhookReceiver(_secret(stack, tenant), answers, **kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _api(
    stack: LocalStack, method: str, path: str, tenant: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """Call the tasks function as API Gateway would, as `tenant`."""
    ev = event("api/submit")
    task_id = path.split("/")[3]
    resource = path.replace(task_id, "{task_id}")
    ev.update(httpMethod=method, path=path, resource=resource, pathParameters={"task_id": task_id})
    ev["body"] = None if body is None else json.dumps(body)
    ev["requestContext"].update(httpMethod=method, resourcePath=resource, path=path)
    ev["requestContext"]["authorizer"] = {"tenant": tenant}
    answer = invoke(stack, "TasksFunction", ev)
    return int(answer["statusCode"]), json.loads(answer["body"])


def _deliveries(stack: LocalStack, task_id: str, tenant: str) -> list[dict[str, Any]]:
    status, body = _api(stack, "GET", f"/v1/tasks/{task_id}/deliveries", tenant)
    assert status == 200, body
    deliveries: list[dict[str, Any]] = body["deliveries"]
    return deliveries


def _hooked(name: str, url: str, **webhook: Any) -> dict[str, Any]:
    return {**request(name), "webhook": {"url": url, **webhook}}


def test_the_flash_models_callback_url_gets_task_succeeded_and_redeliver_sends_it_again(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    # GIVEN a flash task whose own callback_url is the client's receiver
    tenant = "hooks-flash"
    receiver = receivers(tenant)
    body = {**request(FLASH), "callback_url": receiver.url}
    status, task = submit(stack, body, tenant=tenant)
    assert status == 202, task
    assert task["webhook"]["url"] == receiver.url
    # WHEN it finishes
    record = stack.wait_terminal(task["id"], timeout=30)
    assert record.status is TaskStatus.SUCCEEDED
    # THEN the receiver gets task.succeeded, signed with the tenant's secret
    wait_for(lambda: "task.succeeded" in receiver.events() or None, timeout=15, what="webhook")
    [hit] = [h for h in receiver.hits if h.body and h.body["type"] == "task.succeeded"]
    assert all(h.verified for h in receiver.hits)
    assert hit.webhook_id == webhook_id(task["id"], "task.succeeded")
    assert hit.body["data"]["id"] == task["id"]
    assert hit.body["data"]["status"] == "succeeded"
    # AND the outputs are fresh presigned URLs of our copy, never the upstream's links
    [output] = hit.body["data"]["outputs"]
    assert output["url"].startswith(stack.aws.endpoint_url)
    assert output["expires_at"]
    # WHEN the client asks for it again
    before = len(receiver.hits)
    status, answer = _api(
        stack,
        "POST",
        f"/v1/tasks/{task['id']}/deliveries/redeliver",
        tenant,
        {"event": "task.succeeded"},
    )
    assert (status, answer) == (202, {"enqueued": [hit.webhook_id]})
    # THEN it comes again, with the same webhook-id (the receiver dedupes on it)
    wait_for(lambda: len(receiver.hits) > before or None, timeout=10, what="the redelivery")
    again = receiver.hits[before]
    assert (again.verified, again.webhook_id) == (True, hit.webhook_id)
    # AND the delivery log shows both, oldest first
    log = [d for d in _deliveries(stack, task["id"], tenant) if d["event"] == "task.succeeded"]
    assert [d["outcome"] for d in log] == ["delivered", "delivered"]
    assert log[0]["at"] <= log[1]["at"]
    assert {d["webhook_id"] for d in log} == {hit.webhook_id}


def test_410_gone_stops_after_one_attempt(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    tenant = "hooks-gone"
    receiver = receivers(tenant, (410,))
    body = _hooked("wan22_i2v_flash", receiver.url, events=["task.succeeded"])
    _, task = submit(stack, body, tenant=tenant)
    stack.wait_terminal(task["id"], timeout=30)
    wait_for(lambda: receiver.hits or None, timeout=15, what="the first attempt")
    # The first retry would come 5 s x 0.02 = 0.1 s later; wait well past it.
    time.sleep(1.5)
    assert len(receiver.hits) == 1
    [logged] = _deliveries(stack, task["id"], tenant)
    assert (logged["outcome"], logged["status_code"], logged["next_attempt_at"]) == (
        "gone",
        410,
        None,
    )


def test_a_redirect_is_not_followed(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    # GIVEN a receiver that redirects its first request to another receiver
    tenant = "hooks-redirect"
    elsewhere = receivers(tenant)
    receiver = receivers(tenant, (302, 200), location=elsewhere.url)
    body = _hooked("wan22_i2v_flash", receiver.url, events=["task.succeeded"])
    _, task = submit(stack, body, tenant=tenant)
    stack.wait_terminal(task["id"], timeout=30)
    # THEN the redirect counts as a failed attempt, retried at the same URL, never followed
    wait_for(lambda: len(receiver.hits) >= 2 or None, timeout=15, what="the retry")
    assert elsewhere.hits == []
    log = _deliveries(stack, task["id"], tenant)
    assert [(d["attempt"], d["outcome"], d["status_code"]) for d in log] == [
        (1, "failed", 302),
        (2, "delivered", 200),
    ]
    assert "redirect" in log[0]["error"]


def test_deliveries_and_redelivery_are_scoped_and_checked(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    receiver = receivers("hooks-owner", (200,))
    _, hooked = submit(stack, _hooked("wan2.6-t2v", receiver.url), tenant="hooks-owner")
    _, plain = submit(stack, request("wan22_i2v_flash"), tenant="hooks-owner")
    # Another tenant's task answers exactly like a missing one, on both routes
    for method, suffix in (("GET", "deliveries"), ("POST", "deliveries/redeliver")):
        theirs = _api(stack, method, f"/v1/tasks/{hooked['id']}/{suffix}", "hooks-intruder")
        missing = _api(stack, method, f"/v1/tasks/tsk_missing/{suffix}", "hooks-intruder")
        assert theirs[0] == missing[0] == 404
        assert theirs[1]["error"]["code"] == missing[1]["error"]["code"] == "task_not_found"
    # A task without a webhook: 409
    status, body = _api(
        stack, "POST", f"/v1/tasks/{plain['id']}/deliveries/redeliver", "hooks-owner"
    )
    assert (status, body["error"]["code"]) == (409, "no_webhook")
    # A bad event, or one that has not happened: 400 naming `event`
    redeliver = f"/v1/tasks/{hooked['id']}/deliveries/redeliver"
    for bad in ({"event": "task.done"}, {"event": "task.canceled"}, {"evt": 1}, ["x"]):
        status, body = _api(stack, "POST", redeliver, "hooks-owner", bad)
        assert (status, body["error"]["param"]) == (400, "event"), bad
    stack.wait_terminal(hooked["id"], timeout=30)
    stack.wait_terminal(plain["id"], timeout=30)


def test_a_bad_webhook_is_refused_with_the_models_errors_and_records_nothing(
    stack: LocalStack,
) -> None:
    body = {
        **request("wan22_i2v_flash"),
        "webhook": {"url": "ftp://hooks.example.com", "events": ["task.done"]},
    }
    body["parameters"] = {**body.get("parameters", {}), "duration": 99}
    status, answer = submit(stack, body, key=f"k-{uuid.uuid4()}", tenant="hooks-bad")
    assert status == 400
    params = [e["param"] for e in answer["errors"]]
    assert params[-2:] == ["webhook.url", "webhook.events"]
    assert len(params) > 2  # the model's own problem is reported in the same answer


def test_retries_follow_the_schedule_with_one_webhook_id_until_delivered(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    """The Deliverer against the stack's moto and a real receiver, at a faster time scale than
    the stack's (5 s, 5 min, 30 min become 0.01, 0.6 and 3.6 s) and on a queue of its own, so
    the three retries take seconds."""
    scale = 0.002
    sqs = stack.aws.client("sqs")
    queue = sqs.create_queue(QueueName=f"notify-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    config = replace(
        stack.runtime("NotifyFunction").config, time_scale=scale, notify_queue_url=queue
    )
    tenants = Tenants(stack.stack.ref("TasksTable"), stack.aws.client("dynamodb"))
    deliverer = Deliverer(config, stack.store, tenants, stack.aws.client("s3"), sqs)
    # GIVEN a finished task whose receiver fails three times with HTTP 500, then answers 200
    tenant = "hooks-retry"
    receiver = receivers(tenant, (500, 500, 500, 200))
    record = _finished_task(stack, tenant, receiver.url)
    # WHEN its event is queued and the queue is worked until it is empty
    assert Notifications(config, sqs).task_event(record, "task.succeeded")
    _work(sqs, queue, deliverer, until=lambda: len(receiver.hits) >= 4, timeout=20)
    # THEN four attempts came, each verified, all with one webhook-id, the last delivered
    hits = receiver.hits
    assert [h.answered for h in hits] == [500, 500, 500, 200]
    assert all(h.verified for h in hits)
    assert {h.webhook_id for h in hits} == {webhook_id(record.id, "task.succeeded")}
    # AND the gaps between attempts are the schedule times the time scale (never early)
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    expected = [d * scale for d in RETRY_DELAYS_S[:3]]
    for attempt, (gap, want) in enumerate(zip(gaps, expected, strict=True), start=2):
        print(  # for `pytest -s`: the figures behind the assertion below
            f"attempt {attempt} came {gap:.3f} s after the previous one "
            f"(schedule {want / scale:.0f} s x {scale} = {want:.3f} s)"
        )
    assert all(want - 0.02 <= gap <= want + 1.5 for gap, want in zip(gaps, expected, strict=True))
    # AND the delivery log tells the same story
    log = _deliveries(stack, record.id, tenant)
    assert [(d["attempt"], d["outcome"], d["status_code"]) for d in log] == [
        (1, "failed", 500),
        (2, "failed", 500),
        (3, "failed", 500),
        (4, "delivered", 200),
    ]
    assert all(d["next_attempt_at"] for d in log[:3])
    assert log[3]["next_attempt_at"] is None
    assert (
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


def test_a_running_event_delivered_after_the_task_ended_is_not_posted(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    # GIVEN a task that ended, whose task.running was queued while it ran and is read only now
    # (a retry, or a batch that ran late beside the one with its end)
    sqs = stack.aws.client("sqs")
    queue = sqs.create_queue(QueueName=f"notify-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    config = replace(stack.runtime("NotifyFunction").config, notify_queue_url=queue)
    tenants = Tenants(stack.stack.ref("TasksTable"), stack.aws.client("dynamodb"))
    deliverer = Deliverer(config, stack.store, tenants, stack.aws.client("s3"), sqs)
    tenant = "hooks-superseded"
    receiver = receivers(tenant)
    record = _finished_task(stack, tenant, receiver.url)
    notifications = Notifications(config, sqs)
    assert notifications.task_event(record, "task.running")
    # WHEN the queue is worked: the stale task.running first, then the task's end
    _work(sqs, queue, deliverer, until=lambda: _depth(sqs, queue) == 0, timeout=10)
    assert notifications.task_event(record, "task.succeeded")
    _work(sqs, queue, deliverer, until=lambda: len(receiver.hits) >= 1, timeout=10)
    # THEN the client only hears the end: its task never seems to move backwards
    time.sleep(0.3)
    assert [h.body["type"] for h in receiver.hits] == ["task.succeeded"]
    # AND a redelivery the client asks for is still posted
    notifications.redeliver(record, "task.running")
    _work(sqs, queue, deliverer, until=lambda: len(receiver.hits) >= 2, timeout=10)
    assert [h.body["type"] for h in receiver.hits] == ["task.succeeded", "task.running"]


def _depth(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_task_failed_at_submit_sends_task_failed(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver]
) -> None:
    # GIVEN the real submit logic, but an upstream nobody listens on
    tenant = "hooks-submit-failed"
    receiver = receivers(tenant)
    dead = UpstreamClient(
        "http://127.0.0.1:9", "key", retry=RetryPolicy(create_attempts=1), sleep=lambda _: None
    )
    sqs = stack.aws.client("sqs")
    config = stack.runtime("SubmitFunction").config
    submitter = Submitter(
        config,
        stack.store,
        dead,
        stack.aws.client("stepfunctions"),
        "secret",
        notifications=Notifications(config, sqs),
    )
    # WHEN a task with a webhook is submitted
    with pytest.raises(UpstreamDown) as failed:
        submitter.submit(
            tenant, _hooked("wan2.6-t2v", receiver.url), idempotency_key=f"k-{uuid.uuid4()}"
        )
    # THEN the client hears task.failed, with the reason
    wait_for(lambda: receiver.hits or None, timeout=10, what="task.failed")
    [hit] = receiver.hits
    assert hit.verified
    assert hit.body["type"] == "task.failed"
    assert hit.body["data"]["id"] == failed.value.task.id
    assert hit.body["data"]["error"]["code"] == "upstream_unavailable"


@pytest.mark.parametrize("step", ["finalize", "time_out", "record_failure"])
def test_a_step_finding_the_task_ended_sends_its_terminal_event_again(
    stack: LocalStack, receivers: Callable[..., WebhookReceiver], step: str
) -> None:
    # GIVEN a task that ended but whose event never reached the queue (the enqueue failed
    # after the terminal write)
    tenant = "hooks-recover"
    receiver = receivers(tenant)
    record = _finished_task(stack, tenant, receiver.url)
    # WHEN the state machine retries the step (or records the failure)
    answer = invoke(stack, "LifecycleFunction", {"step": step, "task_id": record.id})
    # THEN the task is unchanged and its event is sent, under its one webhook-id
    assert answer["status"] == "succeeded"
    wait_for(lambda: receiver.hits or None, timeout=10, what="the terminal event")
    assert receiver.events() == ["task.succeeded"]
    assert receiver.hits[0].webhook_id == webhook_id(record.id, "task.succeeded")


def _finished_task(stack: LocalStack, tenant: str, url: str) -> TaskRecord:
    now = now_iso()
    record = TaskRecord(
        id=f"tsk_{uuid.uuid4().hex}",
        tenant=tenant,
        model="wan22_i2v_flash",
        mode="i2v",
        status=TaskStatus.SUCCEEDED,
        completion="poll",
        request={},
        timing=Timing(expected_s=1, low_s=1, high_s=1, deadline_s=1),
        upstream_id="up-1",
        webhook=WebhookTarget(url=url),
        created_at=now,
        updated_at=now,
        completed_at=now,
    )
    stack.store.create(record)
    return record


def _work(
    sqs: Any, queue: str, deliverer: Deliverer, *, until: Callable[[], bool], timeout: float
) -> None:
    """What the SQS mapping does, for one queue and one deliverer: receive, handle, delete."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            pytest.fail(f"the queue was not worked through in {timeout} s")
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            deliverer.handle(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        time.sleep(0.01)
