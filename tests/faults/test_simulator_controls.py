"""The simulator's controls this suite added: a callback receiver outage, and a duplicated
callback sent more than once. On the simulator alone, with a real receiver on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from faultkit import FLASH, request, wait_for

from wanflow_local.simulator import DEFAULT_API_KEY, CallbackAttempt, Faults, Simulator

pytestmark = pytest.mark.faults


class Counter:
    """A receiver that answers 200 and counts what it got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        lock, counter = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    counter.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"


@pytest.fixture
def receiver() -> Iterator[Counter]:
    counter = Counter()
    yield counter
    counter.server.shutdown()
    counter.server.server_close()


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
        timeout=5,
        what=f"{count} callback attempts",
    )


def test_an_outage_fails_every_attempt_inside_it_and_none_after(
    sim: Simulator, receiver: Counter
) -> None:
    # GIVEN the receiver unreachable for 2 s (a task here lasts about 0.15 s)
    sim.set_faults(Faults(callback_outage_s=2.0))
    during = _create(sim, receiver.url)
    # THEN all 4 attempts fail without reaching it
    tries = _attempts(sim, during, 4)
    assert [a.attempt for a in tries] == [1, 2, 3, 4]
    assert not any(a.delivered for a in tries)
    assert all("simulated outage" in (a.error or "") for a in tries)
    assert receiver.bodies == []
    # and once the outage is lifted, callbacks get through again
    sim.set_faults(Faults())
    after = _create(sim, receiver.url)
    (delivered,) = _attempts(sim, after, 1)
    assert delivered.delivered
    time.sleep(0.2)  # no further attempt follows a delivered one
    assert len(receiver.bodies) == 1


def test_a_duplicated_callback_is_sent_as_many_more_times_as_asked(
    sim: Simulator, receiver: Counter
) -> None:
    sim.set_faults(Faults(callback_duplicate_rate=1.0, callback_duplicate_copies=2))
    task_id = _create(sim, receiver.url)
    tries = _attempts(sim, task_id, 3)
    assert [a.kind for a in tries] == ["final", "duplicate", "duplicate"]
    assert all(a.delivered for a in tries)
    assert len(receiver.bodies) == 3
    assert len(set(receiver.bodies)) == 1
