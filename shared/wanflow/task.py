"""The task: its normalised status, the moves it may make, and its stored shape.

Status only ever moves forward: `accepted → queued → running → (succeeded | failed | canceled |
timed_out)`. A move may skip steps (a task can go from `queued` straight to `succeeded`), but it
never goes back and never leaves a terminal state. The store enforces this with conditional
writes built from `allowed_previous`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field

from wanflow.clock import UtcTimestamp
from wanflow.schema import Schema


class TaskStatus(StrEnum):
    """Normalised task status, the same for every upstream model."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        """True for the four end states, which nothing can leave."""
        return self in TERMINAL


TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.TIMED_OUT}
)

# Rank along the one forward path; every terminal state shares the last rank.
_RANK: Mapping[TaskStatus, int] = {
    TaskStatus.ACCEPTED: 0,
    TaskStatus.QUEUED: 1,
    TaskStatus.RUNNING: 2,
    **dict.fromkeys(TERMINAL, 3),
}


def can_move(current: TaskStatus, target: TaskStatus) -> bool:
    """Whether `current` may move to `target`: strictly forward, never out of a terminal."""
    return not current.terminal and _RANK[target] > _RANK[current]


def allowed_previous(target: TaskStatus) -> frozenset[TaskStatus]:
    """The statuses a task may be in for a write that moves it to `target`."""
    return frozenset(s for s in TaskStatus if can_move(s, target))


# --- reading upstream statuses -------------------------------------------------------------

#: How many consecutive unreadable upstream statuses are tolerated before the task fails.
UNKNOWN_STATUS_LIMIT = 5


class Vocabulary(StrEnum):
    """The three status vocabularies the upstream models use."""

    GENERATION = "generation"  # wan26_i2v, wan22_i2v_flash, wan26_i2i
    FLASH = "flash"  # wan2.6-image-to-video-flash
    UNIFIED = "unified"  # wan2.6


_SUCCESS = "__success__"

_VOCABULARIES: Mapping[Vocabulary, Mapping[str, TaskStatus | str]] = {
    Vocabulary.GENERATION: {
        "in_queue": TaskStatus.QUEUED,
        "processing": TaskStatus.RUNNING,
        "done": _SUCCESS,
        "failed": TaskStatus.FAILED,
    },
    Vocabulary.FLASH: {
        "pending": TaskStatus.QUEUED,
        "processing": TaskStatus.RUNNING,
        "completed": _SUCCESS,
        "failed": TaskStatus.FAILED,
    },
    Vocabulary.UNIFIED: {
        "queued": TaskStatus.QUEUED,
        "in_progress": TaskStatus.RUNNING,
        "completed": _SUCCESS,
        "failed": TaskStatus.FAILED,
    },
}

# Not in the seeds, but what an aggregator answers for a task it cancelled; reading it as
# canceled beats failing the task as unknown after a cancel request.
_CANCELED_WORDS = frozenset({"canceled", "cancelled"})


def statuses_of(vocabulary: Vocabulary) -> tuple[str, ...]:
    """The documented upstream statuses of a vocabulary."""
    return tuple(_VOCABULARIES[vocabulary])


@dataclass(frozen=True)
class StatusReading:
    """What one upstream status report means for the task.

    `status` is None when the report cannot be used (an unknown status word, or a success with no
    output); `problem` then says which, and the caller counts it against UNKNOWN_STATUS_LIMIT.
    """

    status: TaskStatus | None
    problem: Literal["upstream_unknown_status", "upstream_empty_result"] | None = None


def read_status(
    vocabulary: Vocabulary, upstream_status: object, output_count: int
) -> StatusReading:
    """Map an upstream status word onto the normalised status.

    `done`/`completed` count as success only with at least one output. Matching ignores case and
    surrounding blanks; anything else is reported as unknown, never guessed.
    """
    word = upstream_status.strip().lower() if isinstance(upstream_status, str) else ""
    if word in _CANCELED_WORDS:
        return StatusReading(TaskStatus.CANCELED)
    mapped = _VOCABULARIES[vocabulary].get(word)
    if mapped is None:
        return StatusReading(None, "upstream_unknown_status")
    if mapped == _SUCCESS:
        if output_count < 1:
            return StatusReading(None, "upstream_empty_result")
        return StatusReading(TaskStatus.SUCCEEDED)
    assert isinstance(mapped, TaskStatus)
    return StatusReading(mapped)


def unknown_status_exhausted(consecutive_unknown: int) -> bool:
    """True once unreadable reports have reached the limit: the task must then fail."""
    return consecutive_unknown >= UNKNOWN_STATUS_LIMIT


# --- the stored task -----------------------------------------------------------------------


class TaskOutput(Schema):
    """One result of a task."""

    type: Literal["video", "image", "text"] = Field(description="What the output is.")
    url: str | None = Field(default=None, description="Where to fetch it (short-lived).")
    key: str | None = Field(default=None, description="S3 key of wanflow's copy.")
    text: str | None = Field(default=None, description="Text content (interleaved image output).")
    expires_at: UtcTimestamp | None = Field(default=None, description="When `url` stops working.")


class TaskUsage(Schema):
    """What the upstream billed for a task."""

    cost_usd: Decimal | None = Field(default=None, description="Cost in USD as billed upstream.")
    discount: Decimal | None = Field(default=None, description="Discount amount upstream applied.")


class TaskError(Schema):
    """Why a task failed, timed out or could not be created."""

    code: str = Field(description="Stable wanflow error code.")
    message: str = Field(description="What happened, for a person.")
    upstream_code: str | None = Field(default=None, description="The upstream's own error code.")
    retryable: bool = Field(default=False, description="Whether submitting again may succeed.")


class UpstreamRef(Schema):
    """The upstream task behind a wanflow task."""

    task_id: str | None = Field(default=None, description="Upstream task id, once created.")
    status: str | None = Field(default=None, description="Last upstream status word seen.")


WebhookEvent = Literal[
    "task.running", "task.succeeded", "task.failed", "task.canceled", "task.timed_out"
]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "task.running",
    "task.succeeded",
    "task.failed",
    "task.canceled",
    "task.timed_out",
)


class WebhookTarget(Schema):
    """Where a task's events are posted (Standard Webhooks, signed with the tenant's secret)."""

    url: str = Field(description="HTTPS URL of the client's receiver.")
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(WEBHOOK_EVENTS),
        description="The events to send (all of them by default).",
    )


class Task(Schema):
    """A generation job as wanflow tracks it and returns it to clients."""

    id: str = Field(description="wanflow task id.")
    model: str = Field(description="Upstream model id.")
    mode: str = Field(description="Resolved mode (t2v, i2v, r2v, edit, interleave).")
    status: TaskStatus = Field(description="Normalised status.")
    progress: int | None = Field(default=None, ge=0, le=100, description="Percent, if reported.")
    warnings: list[str] = Field(default_factory=list, description="What the upstream would ignore.")
    completion: Literal["callback", "poll"] = Field(description="How completion is detected.")
    upstream: UpstreamRef = Field(default_factory=UpstreamRef, description="The upstream task.")
    outputs: list[TaskOutput] = Field(default_factory=list, description="Results, once succeeded.")
    usage: TaskUsage | None = Field(default=None, description="Billing, once known.")
    error: TaskError | None = Field(default=None, description="Set when the task did not succeed.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Client's own labels.")
    webhook: WebhookTarget | None = Field(default=None, description="Where events are posted.")
    created_at: UtcTimestamp = Field(description="When the task was created.")
    updated_at: UtcTimestamp = Field(description="When the task last changed.")
    completed_at: UtcTimestamp | None = Field(default=None, description="When it became terminal.")


class Billing(Schema):
    """What the upstream billed, or will bill, for a canceled task."""

    cost_usd: Decimal | None = Field(
        default=None,
        description="Cost in USD as the upstream reported it when the task was canceled; null "
        "when it reported none (it documents usage only for completed tasks).",
    )
    discount: Decimal | None = Field(default=None, description="Discount the upstream applied.")
    note: str = Field(description="What happened upstream and what that means for the bill.")
