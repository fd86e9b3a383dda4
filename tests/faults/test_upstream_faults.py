"""The upstream misbehaving, systematically: callbacks lost to an outage, duplicated and out of
order, forged; 5xx and 429 on every call; result links expired; 50 submits racing on one key.

Every scenario submits through the local stack's HTTP API, across models (the callback model
and polled ones), and ends with `Scenario.check`: no task lost, no double upstream create, no
status moving backwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from faultkit import (
    FLASH,
    POLL_S,
    TIME_SCALE,
    Api,
    Scenario,
    events_of,
    execution_events,
    outputs_stored_once,
)

from kit.waiting import wait_for
from wanflow.task import TaskStatus
from wanflow_local.simulator import CallbackAttempt
from wanflow_local.simulator.server import CALLBACK_RETRY_DELAYS_S
from wanflow_local.stack import LocalStack

pytestmark = pytest.mark.faults

SetFaults = Callable[..., None]


def _attempts(stack: LocalStack, upstream_id: str) -> list[CallbackAttempt]:
    assert stack.sim is not None
    return [a for a in stack.sim.callback_attempts() if a.task_id == upstream_id]


def test_callback_endpoint_down_for_a_minute_every_task_succeeds_by_polling(
    stack: LocalStack, faults: SetFaults, scenario: Scenario
) -> None:
    # GIVEN the callback route unreachable for a minute of upstream time or more. The simulator
    # keeps the seed's real retry delays (1, 2, 4 s) in a sped-up stack, so the outage also
    # covers that span (and 1 s for the timers' jitter): every task ending within the window
    # loses all 4 attempts, as it would upstream.
    assert stack.sim is not None
    # Down for 60 upstream seconds at least: for 200, so that on a slow machine, where the six
    # submits take a while, the callback tasks still end inside it (flash takes 40-90 s).
    window = 200 * TIME_SCALE
    retries_s = sum(CALLBACK_RETRY_DELAYS_S) + 1.0
    outage_s = window + retries_s
    began = time.time()
    faults(callback_outage_s=outage_s)
    # WHEN callback-model tasks (and polled ones beside them) run through it
    for name in [FLASH] * 4 + ["wan22_i2v_flash", "wan26_i2i-edit"]:
        assert scenario.submit(name).status_code == 202
    # THEN every task succeeds, the callback ones by polling
    records = scenario.check(dict.fromkeys(scenario.ids(), TaskStatus.SUCCEEDED))
    flash = [r for r in records.values() if r.model == FLASH]
    for record in records.values():
        outputs_stored_once(stack, record)
    for record in flash:
        assert record.completion == "callback"
        assert record.polls >= 1, f"{record.id} did not get there by polling"
        # the wait for the callback timed out into the poll loop, whose looks saw the end
        assert stack.follow_results(record.id) == []
        assert stack.states(record.id)[1:3] == ["AwaitCallback", "LookAtUpstream"]
        assert events_of(stack, record.id) == []  # no callback ever reached wanflow in time
    # and the tasks whose whole callback schedule (the end, then retries for 7 s) fell inside the
    # outage had every attempt refused
    in_window = []
    for record in flash:
        assert record.upstream_id is not None
        timeline = stack.sim.timeline(record.upstream_id)
        assert timeline is not None
        assert timeline[1] is not None
        if timeline[1] + retries_s <= began + outage_s:
            in_window.append(record.upstream_id)
    assert in_window, "no callback task ended inside the outage: the scenario tested nothing"
    for upstream_id in in_window:
        tries = wait_for(
            lambda u=upstream_id: got if len(got := _attempts(stack, u)) >= 4 else None,  # type: ignore[misc]
            interval=POLL_S,
            timeout=15,
            what="the upstream's 4 callback attempts",
        )
        assert [a.attempt for a in tries] == [1, 2, 3, 4]
        assert not any(a.delivered for a in tries)
        assert all("unreachable" in (a.error or "") for a in tries)


def test_callbacks_duplicated_three_times_and_out_of_order_change_nothing(
    stack: LocalStack, faults: SetFaults, scenario: Scenario
) -> None:
    # GIVEN every callback is sent three times, then a stale mid-run report after it
    faults(callback_duplicate_rate=1.0, callback_duplicate_copies=2, callback_reorder_rate=1.0)
    for _ in range(4):
        assert scenario.submit(FLASH).status_code == 202
    scenario.submit("wan26_i2i-edit")  # a polled task alongside
    records = scenario.check(dict.fromkeys(scenario.ids(), TaskStatus.SUCCEEDED))
    for record in records.values():
        outputs_stored_once(stack, record)
        assert execution_events(stack, record.id).count("ExecutionSucceeded") == 1
        if record.model != FLASH:
            continue
        assert record.upstream_id is not None
        upstream_id = record.upstream_id

        def all_sent(u: str = upstream_id) -> list[CallbackAttempt] | None:
            got = _attempts(stack, u)
            return got if len(got) >= 4 else None

        sent = wait_for(
            all_sent, interval=POLL_S, timeout=15, what="the final, duplicate and stale callbacks"
        )
        # THEN all four reached wanflow and were acknowledged
        assert Counter(a.kind for a in sent) == {"final": 1, "duplicate": 2, "stale": 1}
        assert all(a.delivered for a in sent), sent
        # the three identical callbacks are recorded once, the stale one beside them
        assert len(events_of(stack, record.id)) == 2
        # and none of them changed the finished task
        after = stack.store.get(record.id)
        assert after.status is TaskStatus.SUCCEEDED
        assert (after.version, after.completed_at, after.outputs) == (
            record.version,
            record.completed_at,
            record.outputs,
        )


def test_5xx_and_429_on_every_upstream_call(
    stack: LocalStack, faults: SetFaults, scenario: Scenario
) -> None:
    # GIVEN 30 % of upstream calls answer 5xx and 10 % answer 429 (creates, reads, cancels)
    assert stack.sim is not None
    seen_before = len(stack.sim.requests())
    faults(error_rate=0.3, throttle_rate=0.1)
    # Twenty submits: with ten, a draw that left three or four tasks created made so few status
    # reads that none drew a 429 (or a 5xx), and the check below that reads are hit failed.
    names = [FLASH, "wan22_i2v_flash", "wan26_i2i-edit", "wan26_i2v", "wan2.6-t2v"] * 4
    for name in names:
        scenario.submit(name)
    # THEN a create that failed is a failed task that says why and was never created upstream
    # (a 5xx create is not retried: it may have created a billed task); every other succeeds
    expected = {}
    for done in scenario.submitted:
        if done.status_code == 202:
            expected[done.task_id] = TaskStatus.SUCCEEDED
            continue
        assert done.status_code == 503, done.answer
        error = done.answer["task"]["error"]
        assert error["code"] in {"upstream_create_outcome_unknown", "upstream_throttled"}, error
        expected[done.task_id] = TaskStatus.FAILED
    assert TaskStatus.SUCCEEDED in expected.values()
    records = scenario.check(expected, timeout=120)
    for record in records.values():
        outputs_stored_once(stack, record)
        if record.status is TaskStatus.FAILED:
            assert record.upstream_id is None
    # and the faults really hit the reads too, not only the creates
    hit = Counter(
        (r.kind, r.fault) for r in stack.sim.requests()[seen_before:] if r.fault is not None
    )
    assert hit[("status", "5xx")] > 0, hit
    assert hit[("status", "429")] > 0, hit


def test_result_links_expired_before_finalize_fail_the_task_cleanly(
    stack: LocalStack, faults: SetFaults, scenario: Scenario
) -> None:
    # GIVEN result links that expire the moment the upstream task ends
    assert stack.sim is not None
    faults(link_ttl_s=0.001, expired_status=403)
    for name in [FLASH, "wan22_i2v_flash", "wan26_i2i-edit", "wan26_i2i-interleave"]:
        assert scenario.submit(name).status_code == 202
    # THEN each task fails, saying the result link expired, with nothing half-written
    records = scenario.check(dict.fromkeys(scenario.ids(), TaskStatus.FAILED))
    for record in records.values():
        assert record.error is not None
        assert record.error.code == "result_unavailable"
        assert "result link" in record.error.message
        assert "expired" in record.error.message
        assert record.outputs == []
        assert stack.objects(f"results/default/{record.id}/") == {}
        files = [r for r in stack.sim.requests("file") if r.task_id == record.upstream_id]
        assert files
        assert {r.status for r in files} == {403}


def test_forged_callbacks_are_refused_and_write_nothing(
    stack: LocalStack, faults: SetFaults, scenario: Scenario, api: Api
) -> None:
    # GIVEN two running callback tasks whose real callbacks never come (they end by polling)
    assert stack.sim is not None
    faults(callback_loss_rate=1.0)
    target, other = scenario.submit(FLASH), scenario.submit(FLASH)
    creates = {
        r.body["callback_url"]: r.task_id
        for r in stack.sim.requests("create")
        if isinstance(r.body, dict) and "callback_url" in r.body
    }
    other_sig = next(
        parse_qs(urlsplit(url).query)["sig"][0] for url in creates if other.task_id in url
    )
    before = stack.store.get(target.task_id)
    upstream_id = before.upstream_id
    # a body that looks like the upstream's own "completed" report of the target
    looks_valid = {
        "id": upstream_id,
        "object": "video.generation.task",
        "model": FLASH,
        "status": "completed",
        "progress": 100,
        "results": [f"{stack.sim.url}/files/{upstream_id}/0.mp4"],
    }
    route = f"{api.url}/v1/callbacks/{target.task_id}"
    forgeries = {
        "missing sig": (route, looks_valid),
        "empty sig": (route + "?sig=", looks_valid),
        "wrong sig": (route + "?sig=forged", looks_valid),
        "sig of another task": (route + f"?sig={other_sig}", looks_valid),
        "unknown task": (f"{api.url}/v1/callbacks/tsk_unknown?sig={other_sig}", {}),
    }
    # WHEN each is posted while the target is still running
    answers = {
        what: httpx.post(url, json=body).status_code for what, (url, body) in forgeries.items()
    }
    # THEN all are refused, and nothing was written or moved
    assert answers == dict.fromkeys(forgeries, 401)
    during = stack.store.get(target.task_id)
    assert during.status is before.status
    assert not during.status.terminal
    assert events_of(stack, target.task_id) == []
    records = scenario.check(dict.fromkeys(scenario.ids(), TaskStatus.SUCCEEDED))
    for record in records.values():
        assert events_of(stack, record.id) == []
        assert record.polls >= 1
        outputs_stored_once(stack, record)


def test_fifty_concurrent_submits_with_one_idempotency_key_make_one_task(
    stack: LocalStack, scenario: Scenario, api: Api
) -> None:
    # GIVEN 50 clients sending the same request with the same key at the same moment
    assert stack.sim is not None
    creates_before = len(stack.sim.requests("create"))
    body = scenario.body("wan2.6-t2v")
    key = f"fault-suite-{uuid.uuid4().hex}"
    # Each client has a connection of its own, opened beforehand (kept alive): the local
    # adapter's listen backlog is 5, and 50 simultaneous connects would be reset before any
    # request reached it, which says nothing about wanflow.
    clients = [
        httpx.Client(base_url=api.url, headers=dict(api.http.headers), timeout=60)
        for _ in range(50)
    ]
    for client in clients:
        client.get("/v1/models").raise_for_status()
    start = threading.Barrier(50)

    def one(client: httpx.Client) -> tuple[int, dict[str, Any]]:
        start.wait(timeout=30)
        answer = client.post("/v1/tasks", json=body, headers={"Idempotency-Key": key})
        return answer.status_code, answer.json()

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(one, clients))
    finally:
        for client in clients:
            client.close()
    # THEN every client gets the one task, created upstream once
    assert Counter(code for code, _ in answers) == {202: 50}
    assert len({answer["id"] for _, answer in answers}) == 1
    scenario.record(*answers[0], body["model"])
    assert len(stack.sim.requests("create")) - creates_before == 1
    (record,) = scenario.check({answers[0][1]["id"]: TaskStatus.SUCCEEDED}).values()
    outputs_stored_once(stack, record)
