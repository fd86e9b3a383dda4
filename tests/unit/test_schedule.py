"""The polling schedule: few looks, a finish seen quickly, overdue tasks backed off, bounded."""

from __future__ import annotations

import math
import random

import pytest

from wanflow.catalog.base import Timing
from wanflow.schedule import MAX_POLLS, MAX_STEP_S, MIN_STEP_S, callback_wait_s, next_poll

FLASH = Timing.around(52.5, spread=0.3)  # wan2.6-image-to-video-flash, 5 s at 720p
LONG = Timing.around(265, spread=0.15)  # wan2.6, 15 s at 1080p
I2I_EDIT = Timing.around(23, spread=0.3)  # wan26_i2i, one image: the shortest task
WAN22_480P = Timing.around(35, spread=0.3)  # wan22_i2v_flash at 480P


def simulate(
    timing: Timing, finish_s: float, whole_seconds: bool = False, check_s: float = 0.0
) -> tuple[int, float]:
    """Poll a task that finishes at `finish_s`; return (looks, detection delay in s).

    `whole_seconds` waits as the state machine does (rounded to the nearest second, at least
    1 s), and each look takes `check_s`.
    """
    elapsed, polls = 0.0, 0
    while True:
        decision = next_poll(timing, elapsed, None, polls)
        assert not decision.give_up
        wait = max(1, math.floor(decision.wait_s + 0.5)) if whole_seconds else decision.wait_s
        elapsed += wait
        polls += 1
        if elapsed >= finish_s:
            return polls, elapsed - finish_s
        elapsed += check_s


def test_first_look_is_at_the_fast_end_of_the_range() -> None:
    assert next_poll(LONG, 0, None, 0).wait_s == pytest.approx(LONG.low_s)


def test_progress_brings_the_first_look_forward_but_never_back() -> None:
    early = next_poll(LONG, 60, 80, 1).wait_s  # 80 % after 60 s: about 15 s left
    assert early == pytest.approx(15.9, abs=0.1)
    slow = next_poll(LONG, 60, 5, 1).wait_s  # 5 %: would be 1140 s, keep the planned look
    assert slow == pytest.approx(LONG.low_s - 60)


def test_inside_the_range_looks_follow_a_grid_of_six_percent_steps() -> None:
    step = 0.06 * 265
    on_grid = LONG.low_s + 3 * step
    assert next_poll(LONG, on_grid, None, 3).wait_s == pytest.approx(step)
    # a check that took 2 s does not push the grid back
    assert next_poll(LONG, on_grid + 2, None, 4).wait_s == pytest.approx(step - 2)
    # a look that came 1 s early (whole-second waits) goes on to the grid point after next
    assert next_poll(LONG, on_grid - 1, None, 4).wait_s == pytest.approx(step + 1)
    tiny = Timing.around(10, spread=0.3)
    assert next_poll(tiny, 9, None, 3).wait_s == MIN_STEP_S


def test_overdue_tasks_back_off_up_to_a_cap() -> None:
    waits = [next_poll(LONG, LONG.high_s + k * 60, None, 10).wait_s for k in range(0, 8)]
    assert waits == sorted(waits)
    assert waits[0] < waits[-1] <= MAX_STEP_S


def test_never_waits_past_the_deadline_and_then_gives_up() -> None:
    near = next_poll(FLASH, FLASH.deadline_s - 3, None, 20)
    assert near.wait_s == pytest.approx(3)
    done = next_poll(FLASH, FLASH.deadline_s, None, 21)
    assert (done.give_up, done.reason) == (True, "deadline")


def test_the_poll_count_is_bounded() -> None:
    assert next_poll(LONG, 10, None, MAX_POLLS).reason == "poll_limit"


@pytest.mark.parametrize(
    "timing",
    [FLASH, LONG, I2I_EDIT, WAN22_480P],
    ids=["flash", "wan2.6-1080p-15s", "wan26_i2i-edit", "wan22-480p"],
)
@pytest.mark.parametrize("whole_seconds", [False, True], ids=["exact", "whole-seconds"])
def test_targets_over_realistic_durations(timing: Timing, whole_seconds: bool) -> None:
    # GIVEN durations spread over the realistic range (triangular, mode at expected), and looks
    # that take 0.3 s each
    rng = random.Random(7)
    durations = [rng.triangular(timing.low_s, timing.high_s, timing.expected_s) for _ in range(500)]
    runs = [simulate(timing, d, whole_seconds, check_s=0.3) for d in durations]
    # THEN at the 95th percentile: at most 12 looks, and a finish seen within 10 % of its time
    looks = sorted(polls for polls, _ in runs)
    assert looks[int(0.95 * len(looks))] <= 12
    shares = sorted(delay / d for (_, delay), d in zip(runs, durations, strict=True))
    assert shares[int(0.95 * len(shares))] <= 0.10


def test_a_callback_model_waits_past_the_slow_end_before_polling() -> None:
    assert FLASH.high_s < callback_wait_s(FLASH) < FLASH.deadline_s
