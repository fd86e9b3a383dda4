"""What every catalog entry declares, and the one path a request takes through it.

A model module declares a pydantic request schema (types, enums, ranges, defaults: the body as
its seed documents it, built from `fields`) and a `ModelSpec[Request]` subclass: its route,
vocabulary, modes, where its input image goes, which texts the upstream cuts, and the rules that
span fields. `ModelSpec.validate` runs the schema and those rules on every request and reports
every problem found, each naming its field (`problems`), so a client fixes a request in one round
trip; a valid request reaches the model's own methods already parsed as its `Request` type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, ValidationError

from wanflow.catalog.fields import Strict
from wanflow.catalog.problems import Notice, Problems, pick
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


# --- the spec ------------------------------------------------------------------------------


class ImageSlot(Enum):
    """Where a model's request takes its input image (an upload is passed upstream by URL)."""

    IMAGE_URLS = "image_urls"  # the one entry of a top-level list
    INPUT_IMG_URL = "input.img_url"  # the generation family's first frame
    MESSAGE_CONTENT = "input.messages[0].content"  # an {"image": url} part after the others

    def place(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        """A copy of `body` with `url` as its input image; `body` itself is left as it was."""
        if self is ImageSlot.IMAGE_URLS:
            return {**body, "image_urls": [url]}
        if self is ImageSlot.INPUT_IMG_URL:
            return {**body, "input": {**body.get("input", {}), "img_url": url}}
        messages = body.get("input", {}).get("messages") or [{"role": "user", "content": []}]
        first = {**messages[0], "content": [*messages[0].get("content", []), {"image": url}]}
        return {**body, "input": {**body.get("input", {}), "messages": [first, *messages[1:]]}}


#: A model's request schema.
RequestT = TypeVar("RequestT", bound=Strict)


class ModelSpec(ABC, Generic[RequestT]):
    """One upstream model: its schema, rules, route, vocabulary and timing.

    Every method given a request gets it as the model's own `RequestT`, parsed and valid.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    output_type: ClassVar[Literal["video", "image"]]
    modes: ClassVar[tuple[str, ...]]
    route: ClassVar[Route]
    vocabulary: ClassVar[Vocabulary]
    accepts_callback: ClassVar[bool] = False
    # Set on the class like the others; not a ClassVar only because one cannot hold a TypeVar.
    request_model: type[RequestT]

    #: Where the request takes an input image; None for a model that takes none.
    image_slot: ClassVar[ImageSlot | None] = None
    #: Side range (px) of the model's input image, for checking an uploaded one; None when the
    #: model takes no image or its seed gives no range.
    image_sides: ClassVar[tuple[int, int] | None] = None
    #: Texts the upstream cuts to a length, as (dotted path, characters), in the order warned.
    text_limits: ClassVar[tuple[tuple[str, int], ...]] = ()

    def with_image(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        """The request with `url` as its input image (an upload, passed upstream by URL).

        Raises ValueError for a model that takes no input image.
        """
        if self.image_slot is None:
            raise ValueError(f"{self.id} takes no input image")
        return self.image_slot.place(body, url)

    def recode(self, param: str | None, code: str) -> str:
        """Map a generic error code to the model's own (only wan26_i2i has its own codes)."""
        del param
        return code

    def cross_check(self, raw: dict[str, Any], problems: Problems) -> None:
        """Rules spanning several fields, run on the raw body even when a field failed."""
        del raw, problems

    def mode_of(self, request: RequestT) -> str:
        """The mode a valid request runs in: the only one, unless the model has several."""
        del request
        if len(self.modes) != 1:
            raise NotImplementedError(f"{self.id} has several modes; it must route a request")
        return self.modes[0]

    def normalise(self, request: RequestT, problems: Problems) -> dict[str, Any]:
        """The upstream body of a valid request: defaults applied, and each of `text_limits`
        cut as the upstream would, with a warning. A model with more to do extends this."""
        body = request.model_dump(exclude_none=True)
        for path, limit in self.text_limits:
            outer, _, key = path.rpartition(".")
            parent = pick(body, outer, dict) if outer else body
            if parent is not None and isinstance(parent.get(key), str):
                parent[key] = problems.truncate(path, parent[key], limit)
        return body

    @abstractmethod
    def timing(self, request: RequestT) -> Timing:
        """Expected duration, range and deadline of a valid request."""

    @abstractmethod
    def expected_output(self, request: RequestT) -> ExpectedOutput:
        """What a valid request should produce."""

    def validate(self, raw: dict[str, Any]) -> ValidatedRequest:
        """Check a request body against every documented rule.

        Returns the normalised request, or raises InvalidRequest listing every problem found.
        """
        problems = Problems()
        parsed: RequestT | None = None
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
