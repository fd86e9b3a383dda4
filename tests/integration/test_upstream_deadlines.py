"""The upstream client's calls end by the deadline they are given, on the simulator."""

from __future__ import annotations

import time

import pytest
from simkit import example

from wanflow.upstream import CreateNotStarted, RetryPolicy, UpstreamClient, UpstreamUnavailable
from wanflow_local.simulator import DEFAULT_API_KEY, Faults, Simulator


def test_a_create_with_too_little_time_left_is_never_sent(
    sim: Simulator, client: UpstreamClient
) -> None:
    left = RetryPolicy().create_min_s - 0.5
    with pytest.raises(CreateNotStarted, match="nothing was sent"):
        client.create(example("wan2.6-t2v"), deadline=time.monotonic() + left)
    assert sim.requests("create") == []


def test_a_status_read_of_a_slow_upstream_gives_up_by_the_deadline(sim: Simulator) -> None:
    request = example("wan2.6-t2v")
    created = UpstreamClient(sim.url, DEFAULT_API_KEY).create(request)
    sim.set_faults(Faults(latency_s=3.0))
    client = UpstreamClient(sim.url, DEFAULT_API_KEY)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        client.status(request.model, created.task_id, deadline=started + 1.5)
    assert time.monotonic() - started < 1.5 + 0.3
    # AND without a deadline the same read waits for the answer
    assert client.status(request.model, created.task_id).raw_status is not None
