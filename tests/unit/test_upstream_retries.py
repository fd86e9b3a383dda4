"""What the upstream client retries and what it reports as final, on a scripted transport
(`httpx.MockTransport`): no server, no sleeping (waits are recorded on a fake clock)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from wanflow.catalog import ValidatedRequest, validate
from wanflow.upstream import (
    CancelNotSupported,
    CreateNotStarted,
    CreateOutcomeUnknown,
    RetryPolicy,
    UpstreamClient,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)

BASE = "https://upstream.example"
MODEL = "wan2.6"  # polled, with a cancel endpoint
TASK_ID = "up-123"
RUNNING = {"id": TASK_ID, "status": "running", "progress": 40}

#: What the transport does for one request: answer (status, JSON body, headers) or raise.
Step = tuple[int, Any, dict[str, str]] | type[httpx.TransportError]

#: Transport failures before anything was sent, and after (or while) the request was sent.
NOT_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout]
MAYBE_SENT = [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]


def ok(body: Any = RUNNING) -> Step:
    return (200, body, {})


def answer(status: int, body: Any = None, **headers: str) -> Step:
    return (status, body if body is not None else {"error": {"code": f"E{status}"}}, headers)


class Clock:
    """time.monotonic() that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Upstream:
    """A scripted upstream: each request takes the next step; the requests are kept."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, type):
            raise step("scripted", request=request)
        status, body, headers = step
        return httpx.Response(status, json=body, headers=headers)


def client(
    upstream: Upstream,
    clock: Clock,
    policy: RetryPolicy | None = None,
    reread_key: Callable[[str], str | None] | None = None,
) -> UpstreamClient:
    return UpstreamClient(
        BASE,
        "key-1",
        reread_key=reread_key,
        http=httpx.Client(transport=httpx.MockTransport(upstream)),
        retry=policy or RetryPolicy(),
        sleep=clock.sleep,
        rng=random.Random(5),
        clock=clock,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def request_t2v(example: Callable[[str], dict[str, Any]]) -> ValidatedRequest:
    return validate(example("wan2.6-t2v"))


# --- status reads and cancels: retried while transient ----------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        answer(500),
        answer(502),
        answer(503),
        answer(504),
        answer(429),
        *NOT_SENT,
        *MAYBE_SENT,
    ],
    ids=lambda f: f.__name__ if isinstance(f, type) else f"HTTP {f[0]}",
)
def test_a_status_read_is_retried_through_transient_failures(clock: Clock, failure: Step) -> None:
    # GIVEN an upstream that fails twice, then answers
    upstream = Upstream(failure, failure, ok())
    # WHEN the status is read
    snapshot = client(upstream, clock).status(MODEL, TASK_ID)
    # THEN the third attempt's answer is read, after two waits
    assert (snapshot.upstream_id, snapshot.raw_status) == (TASK_ID, "running")
    assert snapshot.progress == 40
    assert len(upstream.requests) == 3
    assert len(clock.sleeps) == 2
    assert all(r.url.path == f"/v1/tasks/{TASK_ID}" for r in upstream.requests)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_a_4xx_is_final_and_carries_the_upstream_code(clock: Clock, status: int) -> None:
    upstream = Upstream(answer(status, {"error": {"code": "BadTask", "message": "no such task"}}))
    with pytest.raises(UpstreamRejected) as refused:
        client(upstream, clock).status(MODEL, TASK_ID)
    assert (refused.value.status_code, refused.value.upstream_code) == (status, "BadTask")
    assert refused.value.upstream_message == "no such task"
    assert len(upstream.requests) == 1
    assert clock.sleeps == []


def test_the_backoff_doubles_with_jitter_up_to_its_cap(clock: Clock) -> None:
    # GIVEN an upstream that is down for good
    upstream = Upstream(answer(503))
    policy = RetryPolicy(max_attempts=8, budget_s=1000)
    # WHEN a read gives up
    with pytest.raises(UpstreamUnavailable, match="failed after 8 attempts: HTTP 503"):
        client(upstream, clock, policy).status(MODEL, TASK_ID)
    # THEN it tried max_attempts times, each wait within [ceiling/2, ceiling] of a ceiling that
    # doubles from the base delay up to the cap
    assert len(upstream.requests) == 8
    ceilings = [0.5, 1, 2, 4, 8, 8, 8]
    assert len(clock.sleeps) == len(ceilings)
    for wait, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_a_read_that_is_throttled_to_the_end_says_throttled(clock: Clock) -> None:
    upstream = Upstream(answer(429, **{"Retry-After": "2"}))
    with pytest.raises(UpstreamThrottled) as throttled:
        client(upstream, clock, RetryPolicy(max_attempts=3)).status(MODEL, TASK_ID)
    assert throttled.value.retry_after_s == 2
    assert len(upstream.requests) == 3
    assert clock.sleeps == [2, 2]


def test_transport_errors_to_the_end_say_unavailable_with_the_cause(clock: Clock) -> None:
    upstream = Upstream(httpx.ReadTimeout)
    with pytest.raises(UpstreamUnavailable, match="ReadTimeout") as down:
        client(upstream, clock, RetryPolicy(max_attempts=4)).status(MODEL, TASK_ID)
    assert isinstance(down.value.__cause__, httpx.ReadTimeout)
    assert len(upstream.requests) == 4


@pytest.mark.parametrize(
    ("header", "waited"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("120", 30.0),  # capped at RetryPolicy.retry_after_cap_s
    ],
)
def test_retry_after_is_honoured_up_to_its_cap(clock: Clock, header: str, waited: float) -> None:
    upstream = Upstream(answer(429, **{"Retry-After": header}), ok())
    client(upstream, clock).status(MODEL, TASK_ID)
    assert clock.sleeps == [waited]


def test_retry_after_may_be_an_http_date(clock: Clock) -> None:
    when = datetime.now(UTC) + timedelta(seconds=6)
    upstream = Upstream(answer(429, **{"Retry-After": format_datetime(when, usegmt=True)}), ok())
    client(upstream, clock).status(MODEL, TASK_ID)
    [waited] = clock.sleeps
    assert 4 <= waited <= 6


def test_a_retry_after_that_cannot_be_read_falls_back_to_the_backoff(clock: Clock) -> None:
    upstream = Upstream(answer(429, **{"Retry-After": "soon"}), ok())
    client(upstream, clock).status(MODEL, TASK_ID)
    [waited] = clock.sleeps
    assert 0.25 <= waited <= 0.5  # the first backoff


def test_no_retry_starts_past_the_time_budget(clock: Clock) -> None:
    # GIVEN a 10 s budget and an upstream asking for 6 s between tries
    upstream = Upstream(answer(429, **{"Retry-After": "6"}))
    # WHEN the read keeps being throttled
    with pytest.raises(UpstreamThrottled):
        client(upstream, clock, RetryPolicy(budget_s=10)).status(MODEL, TASK_ID)
    # THEN it waited once (6 s), and gave up rather than wait past the budget
    assert clock.sleeps == [6]
    assert len(upstream.requests) == 2


def test_a_read_ends_by_the_callers_deadline(clock: Clock) -> None:
    # GIVEN 5 s left before the caller's deadline, and an upstream asking for 3 s between tries
    upstream = Upstream(answer(429, **{"Retry-After": "3"}))
    with pytest.raises(UpstreamThrottled):
        client(upstream, clock).status(MODEL, TASK_ID, deadline=clock.now + 5)
    # THEN no wait went past it, and every attempt's timeouts ended by it
    assert sum(clock.sleeps) <= 5
    assert len(upstream.requests) == 2
    for sent, left in zip(upstream.requests, (5.0, 2.0), strict=True):
        timeouts = sent.extensions["timeout"]
        assert set(timeouts) == {"connect", "read", "write", "pool"}
        assert all(0 < t <= left for t in timeouts.values()), timeouts


def test_no_attempt_starts_with_less_than_its_minimum_left(clock: Clock) -> None:
    upstream = Upstream(ok())
    with pytest.raises(UpstreamUnavailable, match="no time left for an attempt"):
        client(upstream, clock).status(MODEL, TASK_ID, deadline=clock.now + 0.5)
    assert upstream.requests == []


def test_without_a_deadline_the_client_timeouts_apply(clock: Clock) -> None:
    upstream = Upstream(ok())
    client(upstream, clock).status(MODEL, TASK_ID)
    assert upstream.requests[0].extensions["timeout"] == {
        "connect": 5.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 5.0,
    }


def test_a_cancel_is_retried_like_a_read_and_a_409_is_final(clock: Clock) -> None:
    upstream = Upstream(answer(503), httpx.ReadTimeout, answer(409))
    with pytest.raises(UpstreamRejected) as refused:
        client(upstream, clock).cancel(MODEL, TASK_ID)
    assert refused.value.status_code == 409
    assert [r.method for r in upstream.requests] == ["POST"] * 3
    assert upstream.requests[0].url.path == f"/v1/tasks/{TASK_ID}/cancel"


def test_a_family_without_a_cancel_endpoint_sends_nothing(clock: Clock) -> None:
    upstream = Upstream(ok())
    with pytest.raises(CancelNotSupported):
        client(upstream, clock).cancel("wan26_i2v", TASK_ID)
    assert upstream.requests == []


# --- creates: retried only when surely not sent -----------------------------------------------


@pytest.mark.parametrize("failure", NOT_SENT, ids=lambda f: f.__name__)
def test_a_create_is_retried_while_its_connection_cannot_be_opened(
    clock: Clock, request_t2v: ValidatedRequest, failure: type[httpx.TransportError]
) -> None:
    upstream = Upstream(failure, ok({"id": TASK_ID, "status": "queued"}))
    created = client(upstream, clock).create(request_t2v)
    assert created.task_id == TASK_ID
    assert len(upstream.requests) == 2
    assert len(clock.sleeps) == 1


def test_a_create_never_connected_gives_up_saying_nothing_was_created(
    clock: Clock, request_t2v: ValidatedRequest
) -> None:
    upstream = Upstream(httpx.ConnectError)
    with pytest.raises(UpstreamUnavailable, match="nothing was created") as down:
        client(upstream, clock, RetryPolicy(create_attempts=3)).create(request_t2v)
    assert not isinstance(down.value, CreateOutcomeUnknown)
    assert len(upstream.requests) == 3


@pytest.mark.parametrize("failure", MAYBE_SENT, ids=lambda f: f.__name__)
def test_a_create_that_may_have_been_sent_is_never_retried(
    clock: Clock, request_t2v: ValidatedRequest, failure: type[httpx.TransportError]
) -> None:
    upstream = Upstream(failure, ok())
    with pytest.raises(CreateOutcomeUnknown):
        client(upstream, clock).create(request_t2v)
    assert len(upstream.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (answer(500), CreateOutcomeUnknown),  # the task may have been created before the 5xx
        (answer(503), CreateOutcomeUnknown),
        (answer(429, **{"Retry-After": "7"}), UpstreamThrottled),  # refused: nothing created
        (answer(400), UpstreamRejected),
        (answer(402), UpstreamRejected),
        (ok({"status": "queued"}), CreateOutcomeUnknown),  # a 2xx without a task id
    ],
    ids=["500", "503", "429", "400", "402", "200 without an id"],
)
def test_a_create_answered_once_is_final(
    clock: Clock, request_t2v: ValidatedRequest, step: Step, error: type[Exception]
) -> None:
    upstream = Upstream(step, ok())
    with pytest.raises(error) as raised:
        client(upstream, clock).create(request_t2v)
    assert len(upstream.requests) == 1
    if isinstance(raised.value, UpstreamThrottled):
        assert raised.value.retry_after_s == 7


def test_a_create_is_not_started_close_to_the_deadline(
    clock: Clock, request_t2v: ValidatedRequest
) -> None:
    upstream = Upstream(ok())
    policy = RetryPolicy(create_min_s=10)
    with pytest.raises(CreateNotStarted, match="nothing was sent") as early:
        client(upstream, clock, policy).create(request_t2v, deadline=clock.now + 9)
    assert isinstance(early.value, UpstreamUnavailable)  # callers treat it as one
    assert upstream.requests == []


def test_a_create_retry_is_not_started_close_to_the_deadline(
    clock: Clock, request_t2v: ValidatedRequest
) -> None:
    # GIVEN 10.2 s left: enough for the first attempt, not after its backoff
    upstream = Upstream(httpx.ConnectError, ok())
    policy = RetryPolicy(create_min_s=10)
    with pytest.raises(CreateNotStarted):
        client(upstream, clock, policy).create(request_t2v, deadline=clock.now + 10.2)
    assert len(upstream.requests) == 1


# --- the key -----------------------------------------------------------------------------------


def test_a_401_is_sent_once_more_with_a_newer_key(
    clock: Clock, request_t2v: ValidatedRequest
) -> None:
    upstream = Upstream(answer(401), ok({"id": TASK_ID}))
    created = client(upstream, clock, reread_key=lambda _: "key-2").create(request_t2v)
    assert created.task_id == TASK_ID
    keys = [r.headers["Authorization"] for r in upstream.requests]
    assert keys == ["Bearer key-1", "Bearer key-2"]


@pytest.mark.parametrize("reread", [None, lambda key: key, lambda _: None])
def test_a_401_without_a_newer_key_is_final(
    clock: Clock, reread: Callable[[str], str | None] | None
) -> None:
    upstream = Upstream(answer(401), ok())
    with pytest.raises(UpstreamRejected) as refused:
        client(upstream, clock, reread_key=reread).status(MODEL, TASK_ID)
    assert refused.value.status_code == 401
    assert len(upstream.requests) == 1
