"""Fault controls of the simulator: what goes wrong, how often, drawn from one seeded RNG."""

from __future__ import annotations

import random
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: What happens to one API request, decided before it is handled.
Outcome = Literal["ok", "5xx", "429", "drop"]

_SERVER_ERRORS = (500, 502, 503, 504)


class Faults(BaseModel):
    """Faults for a run: rates are probabilities per API request or per task, times real seconds.

    The request faults apply to the API (create, status, cancel), not to file downloads or the
    `/_sim` control endpoints. A 5xx or 429 is answered before the request has any effect (no
    task is created); a dropped connection happens after it took effect (a create has created
    its task), which is the case a client cannot tell apart from a lost request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_s: float = Field(default=0.0, ge=0, description="Added before every API answer.")
    error_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of API requests answered 5xx, before effect."
    )
    throttle_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of API requests answered 429, before effect."
    )
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After sent with each 429.")
    drop_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of API requests whose connection is closed without an answer, after "
        "the request took effect.",
    )
    fail_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of new tasks that end `failed`."
    )
    fail_code: str | None = Field(
        default=None,
        description="Error code of failed tasks; default: the model's internal generation error.",
    )
    reject_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of valid creates refused with HTTP 400 (content moderation, say), "
        "before any task is created.",
    )
    reject_code: str = Field(
        default="data_inspection_failed", description="Error code of a refused create."
    )
    stuck_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of new tasks that never finish."
    )
    callback_loss_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of callbacks never sent."
    )
    callback_duplicate_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of callbacks sent a second time."
    )
    callback_duplicate_copies: int = Field(
        default=1, ge=1, description="How many more times a duplicated callback is sent."
    )
    callback_outage_s: float = Field(
        default=0.0,
        ge=0,
        description="The callback receiver is unreachable for this long after these faults are "
        "set: every attempt in that window fails as a refused connection would, retries included.",
    )
    callback_reorder_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of tasks whose stale mid-run report is called back after the final one.",
    )
    callback_delay_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of callbacks held back by `callback_delay_s`."
    )
    callback_delay_s: float = Field(
        default=30.0, ge=0, description="How long a delayed callback is held back."
    )
    link_ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="Result links expire this long after the task finished (None: never).",
    )
    expired_status: Literal[403, 404] = Field(
        default=403, description="What an expired result link answers."
    )

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        if self.error_rate + self.throttle_rate + self.drop_rate > 1:
            raise ValueError("error_rate + throttle_rate + drop_rate must not exceed 1")
        if self.fail_rate + self.stuck_rate > 1:
            raise ValueError("fail_rate + stuck_rate must not exceed 1")
        return self

    def draw_request(self, rng: random.Random) -> tuple[Outcome, int]:
        """The fate of one API request and, for a 5xx, its status code.

        One draw per request (the three rates partition [0, 1)), so a seeded run repeats.
        """
        roll = rng.random()
        if roll < self.error_rate:
            return "5xx", rng.choice(_SERVER_ERRORS)
        roll -= self.error_rate
        if roll < self.throttle_rate:
            return "429", 429
        roll -= self.throttle_rate
        if roll < self.drop_rate:
            return "drop", 0
        return "ok", 200


class TaskFate(BaseModel):
    """The faults drawn for one task when it is created."""

    model_config = ConfigDict(frozen=True)

    ending: Literal["succeed", "fail", "stuck"] = Field(description="How the task ends.")
    callback_lost: bool = Field(default=False, description="Its callback is never sent.")
    callback_duplicated: bool = Field(default=False, description="Its callback is sent again.")
    callback_duplicate_copies: int = Field(
        default=1, description="How many more times it is sent, when duplicated."
    )
    callback_reordered: bool = Field(
        default=False, description="A stale report is called back after the final one."
    )
    callback_delay_s: float = Field(
        default=0.0, description="How long its callback is held back before the first attempt."
    )

    @classmethod
    def draw(cls, faults: Faults, rng: random.Random) -> TaskFate:
        """Draw every task fault at creation, in a fixed order, so a seeded run repeats."""
        roll = rng.random()
        ending: Literal["succeed", "fail", "stuck"] = "succeed"
        if roll < faults.fail_rate:
            ending = "fail"
        elif roll < faults.fail_rate + faults.stuck_rate:
            ending = "stuck"
        return cls(
            ending=ending,
            callback_lost=rng.random() < faults.callback_loss_rate,
            callback_duplicated=rng.random() < faults.callback_duplicate_rate,
            callback_duplicate_copies=faults.callback_duplicate_copies,
            callback_reordered=rng.random() < faults.callback_reorder_rate,
            callback_delay_s=faults.callback_delay_s
            if rng.random() < faults.callback_delay_rate
            else 0.0,
        )
