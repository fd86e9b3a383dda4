"""The upstream client against the simulator over real HTTP, each fault included.

Retries do not sleep for real (an injected `sleep` records the waits); everything else is real:
sockets, status codes, dropped connections, timeouts. What the upstream received is counted from
the simulator's own record.
"""

from __future__ import annotations

import random
import socket
from collections import Counter
from decimal import Decimal

import httpx
import pytest
from simkit import Naps, example

from kit.waiting import wait_for
from wanflow.task import TaskStatus
from wanflow.upstream import (
    CancelNotSupported,
    CreatedTask,
    CreateOutcomeUnknown,
    RetryPolicy,
    UpstreamClient,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from wanflow_local.simulator import DEFAULT_API_KEY, Faults, RequestRecord, Simulator


def until_terminal(client: UpstreamClient, model: str, task_id: str) -> TaskStatus:
    def probe() -> TaskStatus | None:
        status = client.status(model, task_id).reading.status
        return status if status is not None and status.terminal else None

    return wait_for(probe, timeout=10, what=f"{model} {task_id} to end")


# --- the happy path -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wan26_i2v", "wan26_i2i-interleave", "wan2.6-t2v"])
def test_create_then_read_to_success(name: str, client: UpstreamClient, sim: Simulator) -> None:
    request = example(name)
    created = client.create(request)
    assert created.task_id in sim.tasks_created()
    assert created.snapshot.reading.status is TaskStatus.QUEUED
    assert until_terminal(client, request.model, created.task_id) is TaskStatus.SUCCEEDED
    done = client.status(request.model, created.task_id)
    assert done.outputs
    assert done.cost_usd is not None
    assert done.cost_usd > 0
    assert done.discount == Decimal(0)
    # What went upstream is the catalog's normalised body, unchanged.
    assert sim.requests("create")[0].body == request.request


# --- status reads under faults ------------------------------------------------------------------


def test_200_reads_under_30pc_5xx_and_10pc_429_all_return_a_status(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    # GIVEN ten tasks, then 30 % 5xx and 10 % 429 on every call
    tasks = [
        (request.model, client.create(request).task_id)
        for request in (example("wan26_i2v"), example("wan2.6-t2v"))
        for _ in range(5)
    ]
    sim.set_faults(Faults(error_rate=0.3, throttle_rate=0.1))
    # WHEN 200 status reads go through the client
    readings = [client.status(*tasks[i % len(tasks)]).reading.status for i in range(200)]
    # THEN every read returned a status, and every retry was one more request upstream
    assert None not in readings
    gets = sim.requests("status")
    faults = Counter(r.fault for r in gets)
    assert len(gets) == 200 + len(naps.delays)
    assert faults["5xx"] + faults["429"] == len(naps.delays)
    print(
        f"\n200 reads: {len(gets)} GETs upstream, {len(naps.delays)} retries "
        f"({faults['5xx']} after 5xx, {faults['429']} after 429), "
        f"most attempts for one read: {_longest_run(gets)}"
    )


def _longest_run(records: list[RequestRecord]) -> int:
    """The most attempts one read took: a run of faulted requests and the answer after it."""
    longest = run = 0
    for record in records:
        run = run + 1 if record.fault else 0
        longest = max(longest, run + 1)
    return longest


def test_reads_retry_dropped_connections(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    task = client.create(example("wan2.6-t2v"))
    sim.set_faults(Faults(drop_rate=0.5))
    for _ in range(20):
        assert client.status("wan2.6", task.task_id).reading.status is not None
    dropped = sum(r.status is None for r in sim.requests("status"))
    assert dropped == len(naps.delays)
    assert dropped > 0


def test_read_backoff_grows_with_jitter_and_gives_up(sim: Simulator, naps: Naps) -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=4)
    client = UpstreamClient(sim.url, DEFAULT_API_KEY, retry=policy, sleep=naps)
    sim.set_faults(Faults(error_rate=1))
    with pytest.raises(UpstreamUnavailable):
        client.status("wan2.6", "task-unified-1-x")
    assert len(sim.requests("status")) == 6
    ceilings = [0.5, 1, 2, 4, 4]
    assert len(naps.delays) == len(ceilings)
    for delay, ceiling in zip(naps.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(naps.delays)) == len(naps.delays)  # jittered


def test_read_honours_retry_after_then_raises_throttled(sim: Simulator, naps: Naps) -> None:
    client = UpstreamClient(sim.url, DEFAULT_API_KEY, retry=RetryPolicy(max_attempts=4), sleep=naps)
    sim.set_faults(Faults(throttle_rate=1, retry_after_s=3))
    with pytest.raises(UpstreamThrottled) as throttled:
        client.status("wan2.6", "task-unified-1-x")
    assert throttled.value.retry_after_s == 3
    assert naps.delays == [3, 3, 3]
    assert len(sim.requests("status")) == 4


def test_retry_after_is_capped_and_the_budget_bounds_the_call(sim: Simulator) -> None:
    # A fake clock that the fake sleep advances: the budget is counted in waited time.
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    policy = RetryPolicy(max_attempts=50, retry_after_cap_s=5, budget_s=22)
    client = UpstreamClient(
        sim.url, DEFAULT_API_KEY, retry=policy, sleep=sleep, clock=lambda: now[0]
    )
    sim.set_faults(Faults(throttle_rate=1, retry_after_s=100))
    with pytest.raises(UpstreamThrottled) as throttled:
        client.status("wan2.6", "task-unified-1-x")
    assert waits == [5, 5, 5, 5]  # capped at 5 s; a fifth wait would pass the 22 s budget
    assert throttled.value.retry_after_s == 100


def test_a_read_timeout_is_retried_then_unavailable(sim: Simulator, naps: Naps) -> None:
    timeout = httpx.Timeout(connect=1.0, read=0.1, write=1.0, pool=1.0)
    client = UpstreamClient(
        sim.url, DEFAULT_API_KEY, timeout=timeout, retry=RetryPolicy(max_attempts=3), sleep=naps
    )
    sim.set_faults(Faults(latency_s=0.3))
    with pytest.raises(UpstreamUnavailable):
        client.status("wan2.6", "task-unified-1-x")
    assert len(naps.delays) == 2
    wait_for(lambda: len(sim.requests("status")) == 3 or None, timeout=3, what="3 GETs")


def test_unknown_task_and_wrong_key_are_rejected_without_retry(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    with pytest.raises(UpstreamRejected) as missing:
        client.status("wan26_i2v", "no-such-task")
    assert missing.value.status_code == 404
    assert missing.value.upstream_code == "task_not_found"
    stranger = UpstreamClient(sim.url, "wrong-key", sleep=naps)
    with pytest.raises(UpstreamRejected) as refused:
        stranger.create(example("wan2.6-t2v"))
    assert refused.value.status_code == 401
    assert len(sim.requests()) == 2
    assert naps.delays == []
    assert sim.tasks_created() == []


# --- creates ------------------------------------------------------------------------------------


def test_n_creates_make_exactly_n_tasks_and_faults_are_counted_honestly(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    request = example("wan2.6-t2v")
    # Without faults: N creates, N tasks, the very ids reported.
    clean = [client.create(request).task_id for _ in range(20)]
    assert sim.tasks_created() == clean
    sim.reset(seed=13)
    sim.set_faults(Faults(error_rate=0.3, throttle_rate=0.1, drop_rate=0.1))
    # WHEN 100 creates meet 5xx (before creating), 429 and dropped connections (after creating)
    outcomes: Counter[str] = Counter()
    reported: list[str] = []
    for _ in range(100):
        try:
            reported.append(client.create(request).task_id)
            outcomes["created"] += 1
        except CreateOutcomeUnknown:
            outcomes["unknown"] += 1
        except UpstreamThrottled:
            outcomes["throttled"] += 1
    created = sim.tasks_created()
    posts = sim.requests("create")
    # THEN no create was ever sent twice, every reported task exists, and the tasks the client
    # cannot account for are exactly the outcome-unknown creates that the upstream did create.
    assert len(posts) == 100
    assert naps.delays == []
    assert set(reported) <= set(created)
    assert len(created) <= len(reported) + outcomes["unknown"]
    unknown_but_created = [r.task_id for r in posts if r.fault == "drop" and r.task_id]
    assert sorted(created) == sorted(reported + unknown_but_created)
    faults = Counter(r.fault for r in posts)
    assert outcomes["unknown"] == faults["5xx"] + faults["drop"]
    assert outcomes["throttled"] == faults["429"]
    print(
        f"\n100 creates: {len(posts)} POSTs, {len(created)} tasks upstream; client reported "
        f"{len(reported)} created, {outcomes['unknown']} outcome unknown "
        f"({faults['5xx']} 5xx → none created, {faults['drop']} dropped → all created), "
        f"{outcomes['throttled']} throttled (none created)"
    )


def test_a_create_dropped_after_sending_is_outcome_unknown_and_not_retried(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    sim.set_faults(Faults(drop_rate=1))
    with pytest.raises(CreateOutcomeUnknown):
        client.create(example("wan26_i2v"))
    assert len(sim.requests("create")) == 1
    assert len(sim.tasks_created()) == 1  # it was created: the client must not create again
    assert naps.delays == []


def test_a_create_5xx_is_outcome_unknown_and_not_retried(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    sim.set_faults(Faults(error_rate=1))
    with pytest.raises(CreateOutcomeUnknown):
        client.create(example("wan26_i2v"))
    assert len(sim.requests("create")) == 1
    assert naps.delays == []


def test_a_create_read_timeout_is_outcome_unknown_and_not_retried(
    sim: Simulator, naps: Naps
) -> None:
    timeout = httpx.Timeout(connect=1.0, read=0.1, write=1.0, pool=1.0)
    client = UpstreamClient(sim.url, DEFAULT_API_KEY, timeout=timeout, sleep=naps)
    sim.set_faults(Faults(latency_s=0.3))
    with pytest.raises(CreateOutcomeUnknown):
        client.create(example("wan2.6-t2v"))
    # The slow upstream still creates the task after the client gave up on the answer.
    wait_for(lambda: sim.tasks_created() or None, timeout=3, what="the late task")
    assert len(sim.requests("create")) == 1
    assert naps.delays == []


def test_a_create_throttled_creates_nothing(
    client: UpstreamClient, sim: Simulator, naps: Naps
) -> None:
    sim.set_faults(Faults(throttle_rate=1, retry_after_s=7))
    with pytest.raises(UpstreamThrottled) as throttled:
        client.create(example("wan26_i2v"))
    assert throttled.value.retry_after_s == 7
    assert sim.tasks_created() == []
    assert len(sim.requests("create")) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_create_is_retried_when_the_connection_could_not_be_opened() -> None:
    # GIVEN nothing listening yet; the simulator comes up during the client's first backoff
    port = _free_port()
    late = Simulator(port=port, time_scale=0.01)
    naps = Naps(on_first=late.start)
    client = UpstreamClient(f"http://127.0.0.1:{port}", DEFAULT_API_KEY, sleep=naps)
    try:
        created = client.create(example("wan2.6-t2v"))
        # THEN the refused attempt was retried once, and exactly one task exists
        assert len(naps.delays) == 1
        assert late.tasks_created() == [created.task_id]
        assert len(late.requests("create")) == 1
    finally:
        late.stop()


def test_an_unreachable_upstream_means_surely_not_created() -> None:
    naps = Naps()
    client = UpstreamClient(
        f"http://127.0.0.1:{_free_port()}",
        DEFAULT_API_KEY,
        retry=RetryPolicy(create_attempts=3),
        sleep=naps,
        rng=random.Random(1),
    )
    with pytest.raises(UpstreamUnavailable):  # not CreateOutcomeUnknown
        client.create(example("wan2.6-t2v"))
    assert len(naps.delays) == 2


def test_a_rejected_create_carries_the_upstream_code(
    client: UpstreamClient, sim: Simulator
) -> None:
    # A request the catalog would refuse, forced through to show the upstream's own answer.
    request = example("wan26_i2i-edit")
    bad = request.model_copy(
        update={"request": {**request.request, "parameters": {"size": "4000*100"}}}
    )
    with pytest.raises(UpstreamRejected) as rejected:
        client.create(bad)
    assert rejected.value.status_code == 400
    assert rejected.value.upstream_code == "001021016"
    assert sim.tasks_created() == []


# --- callback URL and cancel --------------------------------------------------------------------


def test_the_callback_url_goes_upstream_only_for_the_callback_model(
    client: UpstreamClient, sim: Simulator
) -> None:
    ours = "https://wanflow.example.com/v1/callbacks/t1?sig=abc"
    flash = example("wan2.6-image-to-video-flash")  # carries the client's own callback_url
    client.create(flash, callback_url=ours)
    client.create(flash)
    client.create(example("wan2.6-t2v"), callback_url=ours)
    sent = [r.body for r in sim.requests("create")]
    assert sent[0]["callback_url"] == ours
    assert "callback_url" not in sent[1]  # the client's own URL is never forwarded
    assert "callback_url" not in sent[2]


def test_cancel_a_running_task_then_a_finished_one(client: UpstreamClient, sim: Simulator) -> None:
    created: CreatedTask = client.create(example("wan2.6-image-to-video-flash"))
    snapshot = client.cancel("wan2.6-image-to-video-flash", created.task_id)
    assert snapshot.reading.status is TaskStatus.CANCELED
    with pytest.raises(UpstreamRejected) as again:
        client.cancel("wan2.6-image-to-video-flash", created.task_id)
    assert again.value.status_code == 409
    assert client.status("wan2.6-image-to-video-flash", created.task_id).raw_status == "cancelled"


def test_generation_models_cannot_be_cancelled(client: UpstreamClient, sim: Simulator) -> None:
    created = client.create(example("wan26_i2v"))
    with pytest.raises(CancelNotSupported):
        client.cancel("wan26_i2v", created.task_id)
    assert sim.requests("cancel") == []


def test_a_failed_task_reads_as_failed_with_its_code(
    client: UpstreamClient, sim: Simulator
) -> None:
    sim.set_faults(Faults(fail_rate=1, fail_code="001021098"))
    created = client.create(example("wan26_i2i-edit"))
    assert until_terminal(client, "wan26_i2i", created.task_id) is TaskStatus.FAILED
    failed = client.status("wan26_i2i", created.task_id)
    assert failed.error_code == "001021098"
    assert failed.error_message == "Status check error"
    assert failed.outputs == []
