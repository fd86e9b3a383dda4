"""The poll schedule: when the poll loop's next look at an upstream task is, cheap (few looks)
and prompt (a short time to detect).

A pure function of the model's timing, the time elapsed since the task was created, the progress
the upstream last reported and the looks made so far; everything is in upstream seconds (the
deployment's time scale is applied by the caller, `Config.scaled_wait`). The shape:

- nothing is looked at before the fast end of the realistic range (`low_s`): the first look is
  there, or sooner when the upstream's progress says it is nearly done;
- inside the range, looks on a fixed grid from the fast end (one step: 6 % of the expected
  duration, at least 1 s), so a finish is seen within one step: under 9 % of the generation time
  even for the fastest realistic task. The grid is anchored to the task's creation, not to the
  last look, so the time a look itself takes does not add up from one look to the next;
- past the slow end (`high_s`), the step grows with how overdue the task is, up to a cap.

What is guaranteed: no wait ends past the deadline (the last look is at the deadline itself, so a
task that ends just before it is still seen), and the deadline or the look limit (`MAX_POLLS`)
always ends the loop (`give_up`: the task is timed out). `callback_wait_s` is how long the
callback model waits for its upstream callback before the poll loop takes over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wanflow.catalog.base import Timing

#: Shortest wait between two looks, in upstream seconds.
MIN_STEP_S = 1.0
#: Step inside the realistic range, as a share of the expected duration.
STEP_SHARE = 0.06
#: Longest wait between two looks once a task is overdue.
MAX_STEP_S = 60.0
#: Hard bound on looks per task, whatever the timing says.
MAX_POLLS = 60


@dataclass(frozen=True)
class Decision:
    """Either wait `wait_s` and look again, or stop because the task is out of time or looks."""

    wait_s: float
    give_up: bool = False
    reason: str | None = None


def step_s(timing: Timing) -> float:
    """The polling step inside the realistic range."""
    return max(MIN_STEP_S, STEP_SHARE * timing.expected_s)


def next_poll(timing: Timing, elapsed_s: float, progress: int | None, polls: int) -> Decision:
    """Decide when to look next at a task created `elapsed_s` ago and looked at `polls` times.

    Never waits past the deadline: the last look happens at the deadline itself, so a task that
    finishes just before it is still seen.
    """
    if polls >= MAX_POLLS:
        return Decision(0.0, give_up=True, reason="poll_limit")
    remaining = timing.deadline_s - elapsed_s
    if remaining <= 0:
        return Decision(0.0, give_up=True, reason="deadline")
    step = step_s(timing)
    if elapsed_s < timing.low_s:
        wait = timing.low_s - elapsed_s
        if progress is not None and 0 < progress < 100:
            # Progress is linear enough to bring the first look forward, never to push it back.
            eta = elapsed_s * (100 - progress) / progress
            wait = min(wait, max(step, eta))
    elif elapsed_s <= timing.high_s:
        # The next grid point strictly after now, skipping one too close to be worth a look
        # (a look that came a little early, because waits are whole seconds, stands for it).
        next_look = math.floor((elapsed_s - timing.low_s) / step + 1e-9) + 1
        wait = timing.low_s + next_look * step - elapsed_s
        if wait < step / 2:
            wait += step
    else:
        overdue = (elapsed_s - timing.high_s) / timing.expected_s
        wait = min(MAX_STEP_S, step * (1 + 4 * overdue))
    return Decision(min(max(wait, MIN_STEP_S), remaining))


def callback_wait_s(timing: Timing) -> float:
    """How long a callback model waits for its callback before it falls back to polling.

    The slow end of the range plus one step: a callback that has not come by then is probably
    lost (the upstream retries only for 7 s), and polling takes over at its short step.
    """
    return timing.high_s + step_s(timing)
