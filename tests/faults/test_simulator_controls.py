"""The simulator's controls this suite added: a callback receiver outage, and a duplicated
callback sent more than once. On the simulator alone, with a real receiver on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from faultkit import FLASH, POLL_S, request

from kit.receivers import CallbackReceiver
from kit.waiting import wait_for
from wanflow_local.simulator import DEFAULT_API_KEY, CallbackAttempt, Faults, Simulator

pytestmark = pytest.mark.faults


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """A receiver that answers 200 and records what it got."""
    with CallbackReceiver() as got:
        yield got


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Fast tasks and fast callback retries, so a test takes a fraction of a second."""
    with Simulator(
        time_scale=0.002, seed=3, allow_http_callbacks=True, callback_retry_delays_s=(0.05,) * 3
    ) as running:
        yield running


def _create(sim: Simulator, callback_url: str) -> str:
    body = {**request(FLASH), "callback_url": callback_url}
    answer = httpx.post(
        f"{sim.url}/v1/videos/generations",
        json=body,
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _attempts(sim: Simulator, task_id: str, count: int) -> list[CallbackAttempt]:
    return wait_for(
        lambda: (
            got
            if len(got := [a for a in sim.callback_attempts() if a.task_id == task_id]) >= count
            else None
        ),
        interval=POLL_S,
        timeout=5,
        what=f"{count} callback attempts",
    )


def test_an_outage_fails_every_attempt_inside_it_and_none_after(
    sim: Simulator, receiver: CallbackReceiver
) -> None:
    # GIVEN the receiver unreachable for 2 s (a task here lasts about 0.15 s)
    sim.set_faults(Faults(callback_outage_s=2.0))
    during = _create(sim, receiver.url)
    # THEN all 4 attempts fail without reaching it
    tries = _attempts(sim, during, 4)
    assert [a.attempt for a in tries] == [1, 2, 3, 4]
    assert not any(a.delivered for a in tries)
    assert all("simulated outage" in (a.error or "") for a in tries)
    assert receiver.arrivals == []
    # and once the outage is lifted, callbacks get through again
    sim.set_faults(Faults())
    after = _create(sim, receiver.url)
    (delivered,) = _attempts(sim, after, 1)
    assert delivered.delivered
    time.sleep(0.2)  # no further attempt follows a delivered one
    assert len(receiver.arrivals) == 1


def test_a_duplicated_callback_is_sent_as_many_more_times_as_asked(
    sim: Simulator, receiver: CallbackReceiver
) -> None:
    sim.set_faults(Faults(callback_duplicate_rate=1.0, callback_duplicate_copies=2))
    task_id = _create(sim, receiver.url)
    tries = _attempts(sim, task_id, 3)
    assert [a.kind for a in tries] == ["final", "duplicate", "duplicate"]
    assert all(a.delivered for a in tries)
    assert len(receiver.arrivals) == 3
    assert len({a.raw for a in receiver.arrivals}) == 1
