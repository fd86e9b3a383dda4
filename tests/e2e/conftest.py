"""Fixtures of the end-to-end tests: the local stack on loopback, the `wanflow` command pointed
at it, simulator faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clikit import Cli, script

from kit.faults import faults  # noqa: F401  (a fixture of this tier)
from wanflow_local.stack import LocalStack, local_stack

#: 1 upstream second = 20 ms: the slowest example (about 130 s upstream) takes about 3 s.
TIME_SCALE = 0.02


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The whole system on loopback with the simulator upstream. One per module: one moto may
    run in a process at a time (tests/integration starts its own, one module at a time)."""
    with local_stack(time_scale=TIME_SCALE, sim_seed=5, log_level="WARNING") as running:
        yield running


@pytest.fixture(scope="module")
def cli(stack: LocalStack) -> Cli:
    """The `wanflow` command pointed at the stack's API."""
    return Cli(stack.api.url, script())
