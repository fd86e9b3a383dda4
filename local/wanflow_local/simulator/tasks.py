"""A simulated upstream task: its plan, drawn once at creation, and the reports it gives over time.

Reports follow the two upstream families as the seeds document them, with each model's own status
words (`wanflow.task.statuses_of`): `generation` → `{id, status, output:[{content, jobId}], usage,
error, metadata}`; `tasks` → `{id, object, model, status, progress, created, results, usage,
error, task_info}`. Results, usage and error appear only in the states the seeds say they do.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from wanflow.catalog import ModelSpec, ValidatedRequest
from wanflow.catalog.base import Family
from wanflow.task import statuses_of
from wanflow_local.simulator.faults import TaskFate

Phase = Literal["queued", "running", "succeeded", "failed", "cancelled"]

#: The word the simulator answers for a cancelled task (the seeds document no cancel).
CANCELLED = "cancelled"

# The seeds' generation error codes: 001027xxx for the video models of the generation family
# (000; 002 shares its response family), 001021xxx for wan26_i2i (004).
_GENERATION_ERRORS = {
    "095": "Internal generation error",
    "096": "Result parsing error",
    "097": "HTTP error response",
    "098": "Status check error",
    "099": "Task creation error",
}
# The tasks family's seeds (001, 003) list no error codes; these are what such an aggregator
# typically answers, in the same snake_case style as wanflow's own codes.
_TASKS_ERRORS = {
    "generation_failed": "The video could not be generated",
    "content_policy_violation": "The input or the output was blocked by content moderation",
    "upstream_timeout": "The generation backend did not finish in time",
}

# Illustrative prices (USD), not the aggregator's list: per second of video by resolution tier,
# halved for the flash tiers, and per image produced.
_PER_SECOND_USD = {"480P": Decimal("0.05"), "720P": Decimal("0.10"), "1080P": Decimal("0.15")}
_FLASH_FACTOR = Decimal("0.5")
_PER_IMAGE_USD = Decimal("0.03")

# The flash model says this when created, whatever the request (NOTES.md).
_FLASH_ESTIMATE_S = 120


def error_codes(spec: ModelSpec[Any]) -> dict[str, str]:
    """The generation error codes a model's failed tasks may carry, with their messages."""
    if spec.route.family is Family.TASKS:
        return dict(_TASKS_ERRORS)
    prefix = "001021" if spec.output_type == "image" else "001027"
    return {prefix + suffix: message for suffix, message in _GENERATION_ERRORS.items()}


def default_fail_code(spec: ModelSpec[Any]) -> str:
    """The code a failing task carries when the fault names none: an internal error."""
    return next(iter(error_codes(spec)))


@dataclass(frozen=True)
class Part:
    """One piece of a task's result: a served file (by name) or a text."""

    type: Literal["video", "image", "text"]
    value: str  # file name for video/image, the text itself for text


@dataclass
class SimTask:
    """One upstream task. Its timeline is fixed at creation; only a cancel changes it."""

    id: str
    spec: ModelSpec[Any]
    request: ValidatedRequest
    created_epoch: int
    created_at: float  # monotonic seconds
    queued_s: float
    running_s: float
    fate: TaskFate
    fail_code: str
    parts: list[Part]
    cost: Decimal
    job_id: str
    callback_url: str | None
    cancelled_at: float | None = None
    callback_started: bool = False  # its callback has been claimed by a sender

    @property
    def started_at(self) -> float:
        """When it leaves the queue."""
        return self.created_at + self.queued_s

    @property
    def planned_end(self) -> float | None:
        """When it finishes unless cancelled first; None for a task that never finishes."""
        return None if self.fate.ending == "stuck" else self.started_at + self.running_s

    def ended_at(self, now: float) -> float | None:
        """When it became terminal, or None while it is not (as seen at `now`)."""
        if self.cancelled_at is not None and self.cancelled_at <= now:
            return self.cancelled_at
        end = self.planned_end
        return end if end is not None and end <= now else None

    def phase(self, now: float) -> Phase:
        """Where it stands at `now`."""
        if self.cancelled_at is not None and self.cancelled_at <= now:
            return "cancelled"
        end = self.planned_end
        if end is not None and end <= now:
            return "failed" if self.fate.ending == "fail" else "succeeded"
        return "running" if now >= self.started_at else "queued"

    def progress(self, now: float) -> int:
        """Percent done at `now`: 0 in the queue, 1..99 while running, 100 once succeeded."""
        phase = self.phase(now)
        if phase == "succeeded":
            return 100
        at = min(now, self.ended_at(now) or math.inf)
        if at < self.started_at:
            return 0
        done = (at - self.started_at) / self.running_s if self.running_s > 0 else 1.0
        return max(1, min(99, int(100 * done)))

    def files(self) -> dict[str, int]:
        """The served result files, by name, with their index among the images."""
        names = [p.value for p in self.parts if p.type != "text"]
        return {name: i for i, name in enumerate(names)}


def _task_id(spec: ModelSpec[Any], created_epoch: int) -> str:
    # Ids come from uuid4, not the seeded RNG: a restarted simulator must not reuse them.
    if spec.route.family is Family.TASKS:  # the shape seed 001 shows
        return f"task-unified-{created_epoch}-{uuid.uuid4().hex[:8]}"
    return uuid.uuid4().hex


def _parts(request: ValidatedRequest, rng: random.Random) -> list[Part]:
    expected = request.expected_output
    if expected.type == "video":
        return [Part("video", "0.mp4")]
    most = expected.max_images or 1
    if expected.type == "image":
        return [Part("image", f"{i}.png") for i in range(most)]
    # Interleaved output: the model decides how many images (at most max_images), each after
    # a passage of text.
    parts = []
    for i in range(rng.randint(1, most)):
        parts.append(Part("text", f"Step {i + 1}: what the next picture shows."))
        parts.append(Part("image", f"{i}.png"))
    return parts


def _cost(spec: ModelSpec[Any], request: ValidatedRequest, parts: list[Part]) -> Decimal:
    expected = request.expected_output
    if spec.output_type == "image":
        return _PER_IMAGE_USD * sum(p.type == "image" for p in parts)
    rate = _PER_SECOND_USD.get((expected.resolution or "720P").upper(), _PER_SECOND_USD["720P"])
    if "flash" in spec.id:
        rate *= _FLASH_FACTOR
    return rate * (expected.duration_s or 5)


def plan_task(
    spec: ModelSpec[Any],
    request: ValidatedRequest,
    *,
    fate: TaskFate,
    fail_code: str | None,
    rng: random.Random,
    time_scale: float,
    now: float,
    now_epoch: int,
    callback_url: str | None,
) -> SimTask:
    """Draw a new task's id, timeline and results.

    The duration comes from the catalog's timing of this very request: triangular between
    `low_s` and `high_s` with its mode at `expected_s`, then multiplied by `time_scale`. A short
    share of it is spent queued.
    """
    timing = request.timing
    total = rng.triangular(timing.low_s, timing.high_s, timing.expected_s) * time_scale
    queued = total * rng.uniform(0.05, 0.2)
    parts = _parts(request, rng)
    return SimTask(
        id=_task_id(spec, now_epoch),
        spec=spec,
        request=request,
        created_epoch=now_epoch,
        created_at=now,
        queued_s=queued,
        running_s=total - queued,
        fate=fate,
        fail_code=fail_code or default_fail_code(spec),
        parts=parts,
        cost=_cost(spec, request, parts),
        job_id=uuid.uuid4().hex[:16],
        callback_url=callback_url,
    )


def report(task: SimTask, now: float, file_url: Callable[[SimTask, str], str]) -> dict[str, Any]:
    """The task as the upstream reports it at `now` (status reads, creates and callbacks)."""
    phase = task.phase(now)
    queued, running, success, failed = statuses_of(task.spec.vocabulary)
    word = {
        "queued": queued,
        "running": running,
        "succeeded": success,
        "failed": failed,
        "cancelled": CANCELLED,
    }[phase]
    usage: dict[str, Any] = {"cost": f"{task.cost:.4f}", "discount": 0}
    error = {
        "code": task.fail_code,
        "message": error_codes(task.spec).get(task.fail_code, "Simulated generation failure"),
    }
    if task.spec.route.family is Family.GENERATION:
        body: dict[str, Any] = {"id": task.id, "status": word, "metadata": {}}
        if phase == "succeeded":
            content = [
                {"type": p.type, "text": p.value}
                if p.type == "text"
                else {"type": p.type, "url": file_url(task, p.value)}
                for p in task.parts
            ]
            body["output"] = [{"content": content, "jobId": task.job_id}]
            if task.spec.output_type == "image":
                usage["image_count"] = sum(p.type == "image" for p in task.parts)
            body["usage"] = usage
        elif phase == "failed":
            body["error"] = error
        return body
    estimate = (
        _FLASH_ESTIMATE_S if task.spec.accepts_callback else round(task.request.timing.expected_s)
    )
    body = {
        "id": task.id,
        "object": "video.generation.task" if task.spec.accepts_callback else "generation.task",
        "model": task.spec.id,
        "status": word,
        "progress": task.progress(now),
        "created": task.created_epoch,
        "type": task.spec.output_type,
        "metadata": {},
        "task_info": {"can_cancel": phase in ("queued", "running"), "estimated_time": estimate},
    }
    if phase == "succeeded":
        body["results"] = [file_url(task, p.value) for p in task.parts if p.type != "text"]
        body["usage"] = usage
    elif phase == "failed":
        body["error"] = error
    return body
