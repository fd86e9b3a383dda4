"""Callbacks of wan2.6-image-to-video-flash, timed in real seconds, as its seed documents them.

The seed: "10 seconds" timeout, "3 retries on failure (retries at 1/2/4 seconds after failure)".
Read as: each retry waits 1, 2, then 4 s after the previous attempt failed, so attempts to a
receiver that fails at once arrive about 0, 1, 3 and 7 s after the first, and no fifth comes.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from simkit import example

from kit.receivers import CallbackReceiver
from kit.waiting import holds, wait_for
from wanflow.catalog import get_model
from wanflow.task import statuses_of
from wanflow_local.simulator import DEFAULT_API_KEY, Faults, Simulator

FLASH = "wan2.6-image-to-video-flash"
COMPLETED = statuses_of(get_model(FLASH).vocabulary)[2]
#: How late an attempt may arrive on a busy two-core machine; never early.
SLACK_S = 0.4


def start_flash_task(sim: Simulator, callback_url: str) -> str:
    """Create a flash task calling back `callback_url`, straight over HTTP."""
    body = {**example("wan2.6-image-to-video-flash-minimal").request, "callback_url": callback_url}
    answer = httpx.post(
        sim.url + get_model(FLASH).route.create_path,
        json=body,
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    task_id: str = answer.json()["id"]
    return task_id


def wait_completed(sim: Simulator, task_id: str) -> None:
    """Poll the task's status until it reports completed."""
    url = sim.url + get_model(FLASH).route.status_path.format(id=task_id)
    auth = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    wait_for(
        lambda: True if httpx.get(url, headers=auth).json()["status"] == COMPLETED else None,
        timeout=5,
        what="completion",
    )


def assert_offsets(receiver: CallbackReceiver, expected: list[float]) -> None:
    offsets = receiver.offsets()
    assert len(offsets) == len(expected), offsets
    for got, want in zip(offsets, expected, strict=True):
        assert want - 0.05 <= got <= want + SLACK_S, f"offsets {offsets}, expected {expected}"


def test_a_receiver_failing_twice_gets_the_third_attempt_at_0_1_3_s(
    sim: Simulator, receivers: Callable[..., CallbackReceiver]
) -> None:
    # GIVEN a receiver that answers 500, 500, then 200
    receiver = receivers(answers=(500, 500, 200))
    # WHEN a flash task calling it back finishes
    task_id = start_flash_task(sim, receiver.url)
    wait_for(lambda: len(receiver.arrivals) >= 3 or None, timeout=8, what="3 attempts")
    # THEN the attempts came 1 s and then 2 s after each failure, and nothing after the 2xx
    assert_offsets(receiver, [0, 1, 3])
    assert holds(lambda: len(receiver.arrivals) == 3, seconds=1.5)
    delivered = receiver.arrivals[-1].body
    assert delivered["id"] == task_id
    assert delivered["status"] == COMPLETED
    assert delivered["results"]
    assert [a.delivered for a in sim.callback_attempts()] == [False, False, True]
    print(f"\ncallback offsets (fail, fail, ok): {receiver.offsets()}")


def test_a_receiver_that_always_fails_gets_exactly_4_attempts(
    sim: Simulator, receivers: Callable[..., CallbackReceiver]
) -> None:
    receiver = receivers(answers=(503,))
    start_flash_task(sim, receiver.url)
    wait_for(lambda: len(receiver.arrivals) >= 4 or None, timeout=12, what="4 attempts")
    assert_offsets(receiver, [0, 1, 3, 7])
    # Nothing more: wait well past where a fifth attempt (8 s after the fourth) would come.
    assert holds(lambda: len(receiver.arrivals) == 4, seconds=3)
    print(f"\ncallback offsets (always failing): {receiver.offsets()}")


def test_an_attempt_that_times_out_counts_as_failed(
    receivers: Callable[..., CallbackReceiver],
) -> None:
    # A shortened timeout (the real one is 10 s) against a receiver that stalls once.
    receiver = receivers(answers=(200,), stalls=(0.8,))
    with Simulator(time_scale=0.005, allow_http_callbacks=True, callback_timeout_s=0.3) as short:
        start_flash_task(short, receiver.url)
        wait_for(lambda: len(receiver.arrivals) >= 2 or None, timeout=5, what="a retry")
        # the retry comes 1 s after the timed-out attempt gave up at 0.3 s
        assert_offsets(receiver, [0, 1.3])
        first = short.callback_attempts()[0]
        assert first.error is not None
        assert "Timeout" in first.error


@pytest.mark.parametrize(
    ("faults", "expected_statuses"),
    [
        (Faults(callback_loss_rate=1), []),
        (Faults(callback_duplicate_rate=1), [COMPLETED, COMPLETED]),
        (Faults(callback_reorder_rate=1), [COMPLETED, "stale"]),
    ],
    ids=["lost", "duplicated", "reordered"],
)
def test_callback_faults(
    faults: Faults,
    expected_statuses: list[str],
    sim: Simulator,
    receivers: Callable[..., CallbackReceiver],
) -> None:
    sim.set_faults(faults)
    receiver = receivers()
    task_id = start_flash_task(sim, receiver.url)
    wait_completed(sim, task_id)
    wait_for(
        lambda: True if len(receiver.arrivals) >= len(expected_statuses) else None,
        timeout=3,
        what="the expected callbacks",
    )
    assert holds(lambda: len(receiver.arrivals) == len(expected_statuses), seconds=0.5)
    statuses = [a.body["status"] for a in receiver.arrivals]
    assert [s if s == COMPLETED else "stale" for s in statuses] == expected_statuses
    assert all(a.body["id"] == task_id for a in receiver.arrivals)
    if faults.callback_reorder_rate:
        assert statuses[1] in statuses_of(get_model(FLASH).vocabulary)[:2]  # pending/processing


def test_a_delayed_callback_arrives_after_the_delay(
    sim: Simulator, receivers: Callable[..., CallbackReceiver]
) -> None:
    sim.set_faults(Faults(callback_delay_rate=1, callback_delay_s=1.0))
    receiver = receivers()
    task_id = start_flash_task(sim, receiver.url)
    wait_completed(sim, task_id)
    assert receiver.arrivals == []  # finished, but the callback is held back
    wait_for(lambda: receiver.arrivals or None, timeout=3, what="the late callback")
    assert receiver.arrivals[0].body["status"] == COMPLETED


def test_a_cancelled_task_is_called_back(
    sim: Simulator, receivers: Callable[..., CallbackReceiver]
) -> None:
    receiver = receivers()
    task_id = start_flash_task(sim, receiver.url)
    cancel = sim.url + f"/v1/tasks/{task_id}/cancel"
    httpx.post(cancel, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"})
    wait_for(lambda: receiver.arrivals or None, timeout=3, what="the callback")
    assert receiver.arrivals[0].body["status"] == "cancelled"


def test_a_plain_http_callback_is_refused_by_a_faithful_simulator() -> None:
    with Simulator(time_scale=0.005) as strict:
        body = {
            **example("wan2.6-image-to-video-flash-minimal").request,
            "callback_url": "http://127.0.0.1:9/callback",
        }
        answer = httpx.post(
            strict.url + get_model(FLASH).route.create_path,
            json=body,
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_callback_url"
