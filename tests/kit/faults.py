"""The simulator-faults fixture: `faults(callback_loss_rate=1.0, ...)` sets the stack's
simulator faults for one test; they are cleared afterwards. A tier's conftest imports it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wanflow_local.simulator import Faults
from wanflow_local.stack import LocalStack


@pytest.fixture
def faults(stack: LocalStack) -> Iterator[Callable[..., None]]:
    """Set simulator faults for one test (keywords of `Faults`); cleared afterwards."""
    assert stack.sim is not None
    sim = stack.sim

    def set_faults(**values: Any) -> None:
        sim.set_faults(Faults(**values))

    yield set_faults
    sim.set_faults(Faults())
