"""What every catalog entry declares, and the one path a request takes through it.

A model module declares a pydantic request schema (types, enums, ranges, defaults: the body as
its seed documents it, built from `fields`) and a `ModelSpec` subclass with the rules that span
fields. `ModelSpec.validate` runs both on every request and reports every problem it finds, each
naming its field (`problems`), so a client fixes a request in one round trip.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationError

from wanflow.catalog.fields import Strict
from wanflow.catalog.problems import Notice, Problems
from wanflow.errors import InvalidRequest
from wanflow.schema import Schema
from wanflow.task import Vocabulary


class Family(StrEnum):
    """The two upstream API families (see DESIGN.md, "Upstream")."""

    GENERATION = "generation"  # {model, input, parameters}; results under output[].content[]
    TASKS = "tasks"  # flat body; a task object with results[]


@dataclass(frozen=True)
class Route:
    """Where a model's tasks are created, read and cancelled upstream (`{id}` is the task id)."""

    family: Family
    create_path: str
    status_path: str
    cancel_path: str | None


GENERATION_ROUTE = Route(
    Family.GENERATION,
    create_path="/model/v1/generation",
    status_path="/model/v1/generation/task/{id}",
    cancel_path=None,
)
TASKS_ROUTE = Route(
    Family.TASKS,
    create_path="/v1/videos/generations",
    status_path="/v1/tasks/{id}",
    cancel_path="/v1/tasks/{id}/cancel",
)


class Timing(Schema):
    """How long a task of this shape takes upstream, in seconds.

    `expected_s` drives the polling schedule; `low_s`..`high_s` is the realistic range (the
    simulator draws from it); past `deadline_s` the task is timed out.
    """

    model_config = ConfigDict(frozen=True)

    expected_s: float = Field(description="Typical generation time.")
    low_s: float = Field(description="Fast end of the realistic range.")
    high_s: float = Field(description="Slow end of the realistic range.")
    deadline_s: float = Field(description="Past this the task is timed out.")

    @classmethod
    def around(cls, expected_s: float, spread: float) -> Timing:
        """A range of ±spread around the expected duration, with a deadline well past its end."""
        low, high = expected_s * (1 - spread), expected_s * (1 + spread)
        return cls(
            expected_s=expected_s,
            low_s=round(low, 1),
            high_s=round(high, 1),
            deadline_s=round(3 * high + 120),
        )


# --- results --------------------------------------------------------------------------------


class ExpectedOutput(Schema):
    """What the task should produce."""

    type: Literal["video", "image", "image+text"] = Field(description="Kind of output.")
    size: str | None = Field(
        default=None, description="`width*height` when the seed's tables fix it."
    )
    resolution: str | None = Field(default=None, description="Resolution tier requested.")
    duration_s: int | None = Field(default=None, description="Video length in seconds.")
    max_images: int | None = Field(default=None, description="Most images the task may return.")


class ValidatedRequest(Schema):
    """A request that passed every local rule: what wanflow sends upstream and what it expects."""

    model: str = Field(description="Upstream model id.")
    mode: str = Field(description="Resolved mode.")
    request: dict[str, Any] = Field(
        description="Body to send upstream: defaults applied, truncations done."
    )
    warnings: list[Notice] = Field(description="What the upstream would ignore or truncate.")
    expected_output: ExpectedOutput = Field(description="What the task should produce.")
    accepts_callback: bool = Field(description="Whether the model calls back when done.")
    timing: Timing = Field(description="Expected generation time upstream, range and deadline.")


def with_input_img_url(body: dict[str, Any], url: str) -> dict[str, Any]:
    """The body with `url` as `input.img_url` (the generation family's first frame)."""
    return {**body, "input": {**body.get("input", {}), "img_url": url}}


# --- the spec ------------------------------------------------------------------------------


class ModelSpec(ABC):
    """One upstream model: its schema, rules, route, vocabulary and timing."""

    id: ClassVar[str]
    title: ClassVar[str]
    output_type: ClassVar[Literal["video", "image"]]
    modes: ClassVar[tuple[str, ...]]
    route: ClassVar[Route]
    vocabulary: ClassVar[Vocabulary]
    accepts_callback: ClassVar[bool] = False
    request_model: ClassVar[type[Strict]]

    #: Side range (px) of the model's input image, for checking an uploaded one; None when the
    #: model takes no image or its seed gives no range.
    image_sides: ClassVar[tuple[int, int] | None] = None

    def with_image(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        """The request with `url` as its input image (an upload, passed upstream by URL).

        Raises ValueError for a model that takes no input image.
        """
        del body, url
        raise ValueError(f"{self.id} takes no input image")

    def recode(self, param: str | None, code: str) -> str:
        """Map a generic error code to the model's own (only wan26_i2i has its own codes)."""
        del param
        return code

    def cross_check(self, raw: dict[str, Any], problems: Problems) -> None:
        """Rules spanning several fields, run on the raw body even when a field failed."""
        del raw, problems

    @abstractmethod
    def mode_of(self, request: Any) -> str:
        """The mode a valid request runs in."""

    @abstractmethod
    def normalise(self, request: Any, problems: Problems) -> dict[str, Any]:
        """The upstream body of a valid request: defaults applied, truncations done and warned."""

    @abstractmethod
    def timing(self, request: Any) -> Timing:
        """Expected duration, range and deadline of a valid request."""

    @abstractmethod
    def expected_output(self, request: Any) -> ExpectedOutput:
        """What a valid request should produce."""

    def validate(self, raw: dict[str, Any]) -> ValidatedRequest:
        """Check a request body against every documented rule.

        Returns the normalised request, or raises InvalidRequest listing every problem found.
        """
        problems = Problems()
        parsed: Strict | None = None
        try:
            parsed = self.request_model.model_validate(raw)
        except ValidationError as exc:
            problems.add_validation_error(exc, self.recode)
        self.cross_check(raw, problems)
        if problems.errors or parsed is None:
            raise InvalidRequest(problems.errors)
        body = self.normalise(parsed, problems)
        return ValidatedRequest(
            model=self.id,
            mode=self.mode_of(parsed),
            request=body,
            warnings=problems.warnings,
            expected_output=self.expected_output(parsed),
            accepts_callback=self.accepts_callback,
            timing=self.timing(parsed),
        )

    def describe(self) -> dict[str, Any]:
        """The catalog entry as published by `wanflow models` and `GET /v1/models`."""
        return {
            "id": self.id,
            "title": self.title,
            "output": self.output_type,
            "modes": list(self.modes),
            "family": self.route.family.value,
            "create_path": self.route.create_path,
            "status_path": self.route.status_path,
            "accepts_callback": self.accepts_callback,
            "statuses": self.vocabulary.value,
            "request_schema": self.request_model.model_json_schema(),
        }
