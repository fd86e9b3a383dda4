"""The simulator's concurrency limit per model: past it, a create is a 429 with Retry-After that
creates nothing, as an aggregator answers an account over its limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from simkit import REQUESTS, load

from wanflow.catalog import MODELS
from wanflow_local.simulator import DEFAULT_API_KEY, Simulator

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
#: 1 upstream second = 20 ms: a wan22_i2v_flash task runs about a second here.
SCALE = 0.02


@pytest.fixture
def limited() -> Iterator[Simulator]:
    with Simulator(time_scale=SCALE, seed=3, max_running_per_model=2) as sim:
        yield sim


def _create(sim: Simulator, body: dict[str, Any]) -> httpx.Response:
    path = MODELS[body["model"]].route.create_path
    return httpx.post(sim.url + path, json=body, headers=AUTH, timeout=10)


def test_a_create_past_the_limit_is_a_429_with_retry_after_and_creates_nothing(
    limited: Simulator,
) -> None:
    body = load(REQUESTS / "valid" / "wan22_i2v_flash.json")
    # GIVEN two tasks of a model in flight, its limit
    first, second = _create(limited, body), _create(limited, body)
    assert (first.status_code, second.status_code) == (200, 200)
    # WHEN a third is created
    third = _create(limited, body)
    # THEN a 429 saying when to try again, and nothing was created
    assert third.status_code == 429, third.text
    assert third.json()["error"]["code"] == "concurrency_limit_exceeded"
    retry_after = int(third.headers["Retry-After"])
    # whole seconds until the first task in flight ends (about a second here), never zero
    assert 1 <= retry_after <= 5
    assert len(limited.tasks_created()) == 2
    # AND another model still has its own room
    other = load(REQUESTS / "valid" / "wan2.6-t2v.json")
    assert _create(limited, other).status_code == 200
    # AND once the Retry-After has passed, the create goes through
    time.sleep(retry_after)
    assert _create(limited, body).status_code == 200
    assert limited.peak_running("wan22_i2v_flash") == 2
    assert limited.peak_running() == 2


def test_the_limit_is_set_and_read_through_the_control_api() -> None:
    with Simulator(time_scale=SCALE, seed=3) as sim:
        limits = f"{sim.url}/_sim/limits"
        assert httpx.get(limits).json() == {"max_running_per_model": None}
        assert httpx.post(limits, json={"max_running_per_model": 1}).status_code == 200
        assert sim.max_running_per_model == 1
        body = load(REQUESTS / "valid" / "wan22_i2v_flash.json")
        assert _create(sim, body).status_code == 200
        assert _create(sim, body).status_code == 429
        bad = httpx.post(limits, json={"max_running_per_model": 0})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_limits")
        assert httpx.post(limits, json={"max_running_per_model": None}).status_code == 200
        assert _create(sim, body).status_code == 200


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Simulator(max_running_per_model=0)
