"""Fixtures of the integration tests: the simulator, a client on it, callback receivers, moto,
simulator faults."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import pytest
from simkit import TIME_SCALE, Naps
from stackkit import STACK_TIME_SCALE

from kit.faults import faults  # noqa: F401  (a fixture of this tier)
from kit.receivers import CallbackReceiver
from wanflow.upstream import RetryPolicy, UpstreamClient
from wanflow_local.aws import LocalAws
from wanflow_local.simulator import DEFAULT_API_KEY, Simulator
from wanflow_local.stack import LocalStack, local_stack


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A running simulator at TIME_SCALE, seeded, calling plain-HTTP callbacks on loopback."""
    with Simulator(time_scale=TIME_SCALE, seed=7, allow_http_callbacks=True) as running:
        yield running


@pytest.fixture
def naps() -> Naps:
    return Naps()


@pytest.fixture
def client(sim: Simulator, naps: Naps) -> Iterator[UpstreamClient]:
    """The upstream client on the simulator; its retries do not really sleep."""
    with UpstreamClient(
        sim.url, DEFAULT_API_KEY, sleep=naps, rng=random.Random(3), retry=RetryPolicy()
    ) as upstream:
        yield upstream


@pytest.fixture
def receivers() -> Iterator[Callable[..., CallbackReceiver]]:
    """A factory of callback receivers, all closed after the test."""
    made: list[CallbackReceiver] = []

    def make(answers: Sequence[int] = (200,), stalls: Sequence[float] = ()) -> CallbackReceiver:
        made.append(CallbackReceiver(answers, stalls))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """template.yaml deployed in moto, with the simulator upstream; one per test module (one
    moto may run in a process at a time, and other modules start their own)."""
    with local_stack(time_scale=STACK_TIME_SCALE, sim_seed=11) as running:
        yield running


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    """moto alone (no stack deployed): for a module that deploys its own small templates."""
    with LocalAws() as running:
        yield running
