"""Fixtures of the fault-injection suite: the local stack (one per module: one moto may run in a
process at a time), the client's API and webhook receiver, simulator faults, a scenario."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wanflow_local.stack import LocalStack, local_stack

# The invariants live in the kit: let pytest explain a failed assert there too.
pytest.register_assert_rewrite("faultkit")

from faultkit import TIME_SCALE, Api, Scenario  # noqa: E402

from kit.faults import faults  # noqa: E402, F401  (a fixture of this tier)
from kit.receivers import WebhookReceiver  # noqa: E402


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    """template.yaml in moto, its API on loopback, the simulator upstream (seeded); a module's
    `SUBMIT_SETTLE_S` sets the settle window of the looks (the template's default
    otherwise)."""
    settle = getattr(request.module, "SUBMIT_SETTLE_S", None)
    with local_stack(
        time_scale=TIME_SCALE, sim_seed=23, log_level="WARNING", submit_settle_s=settle
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[Api]:
    """The API as a client reaches it, with the development key."""
    client = Api(stack.api.url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def hooks(api: Api) -> Iterator[WebhookReceiver]:
    """The client's webhook endpoint, verifying with the tenant's secret."""
    with WebhookReceiver(api.webhook_secret()) as receiver:
        yield receiver


@pytest.fixture
def scenario(stack: LocalStack, api: Api, hooks: WebhookReceiver) -> Iterator[Scenario]:
    """A scenario on the stack; its status watcher is stopped afterwards."""
    running = Scenario(stack, api, hooks)
    yield running
    running.close()
