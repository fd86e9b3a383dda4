"""What every catalog entry provides, and the machinery that turns its rules into errors.

A model module declares a pydantic request schema (types, enums, ranges, defaults: the body as
its seed documents it) and a `ModelSpec` subclass with the rules that span fields. `validate`
runs both on every request and reports every problem it finds, each naming its field, so a
client fixes a request in one round trip.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from wanflow.errors import ErrorItem, InvalidRequest
from wanflow.images import ImageProblem, check_data_uri_image, is_data_uri
from wanflow.schema import Schema
from wanflow.task import Vocabulary

MAX_SEED = 2_147_483_647
MAX_CALLBACK_URL = 2048
#: Why a webhook URL with `user:password@` is refused: it is stored and shown in the task, the
#: delivery log and every payload.
CREDENTIALS_IN_URL = (
    "{} must not carry credentials (user:password@); authenticate the webhook by its signature "
    "(GET /v1/webhooks/secret)"
)


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


class Notice(Schema):
    """A warning: something the upstream will silently ignore or truncate."""

    code: str = Field(description="Stable warning code.")
    message: str = Field(description="What will happen, for a person.")
    param: str | None = Field(default=None, description="Dotted path of the field concerned.")


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


# --- field types with their own rules ------------------------------------------------------


class Strict(Schema):
    """Base of every request schema: JSON types exactly, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _http_url(value: str, what: str, code: str = "invalid_url") -> str:
    if any(c.isspace() for c in value):
        raise PydanticCustomError(code, "{what} must not contain spaces", {"what": what})
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise PydanticCustomError(code, "{what} must be an http(s) URL", {"what": what})
    return value


def _url_only(value: str) -> str:
    if is_data_uri(value):
        raise PydanticCustomError(
            "base64_not_supported",
            "this model accepts only http(s) URLs here, not base64 data URIs; "
            "upload the file and pass its URL",
        )
    return _http_url(value, "a URL")


def image_ref(min_side: int, max_side: int) -> Callable[[str], str]:
    """A validator for an image given as a URL or a data URI (the data URI is checked here)."""

    def check(value: str) -> str:
        if not is_data_uri(value):
            return _http_url(value, "an image reference (URL or data URI)")
        try:
            check_data_uri_image(value, min_side, max_side)
        except ImageProblem as problem:
            raise PydanticCustomError(problem.code, problem.message) from None
        return value

    return check


def _callback_url(value: str) -> str:
    if len(value) > MAX_CALLBACK_URL:
        raise PydanticCustomError(
            "invalid_callback_url",
            "callback_url is {n} characters; at most {limit} are allowed",
            {"n": len(value), "limit": MAX_CALLBACK_URL},
        )
    if urlsplit(value).scheme.lower() != "https":
        raise PydanticCustomError("invalid_callback_url", "callback_url must be an HTTPS URL")
    if "@" in urlsplit(value).netloc:  # the same refusal as the API's (webhooks.check_url)
        raise PydanticCustomError("invalid_callback_url", CREDENTIALS_IN_URL.format("callback_url"))
    return _http_url(value, "callback_url", "invalid_callback_url")


#: An http(s) URL; base64 data refused with a clear message.
UrlOnly = Annotated[str, AfterValidator(_url_only)]
#: An HTTPS URL of at most 2048 characters.
CallbackUrl = Annotated[str, AfterValidator(_callback_url)]
#: A seed as every model documents it.
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="Random seed, 0..2147483647.")]


def with_input_img_url(body: dict[str, Any], url: str) -> dict[str, Any]:
    """The body with `url` as `input.img_url` (the generation family's first frame)."""
    return {**body, "input": {**body.get("input", {}), "img_url": url}}


# --- turning failures into error items -----------------------------------------------------

_PYDANTIC_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_value",
    "enum": "invalid_value",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "too_short": "invalid_length",
    "too_long": "invalid_length",
    "string_too_short": "invalid_length",
    "string_too_long": "invalid_length",
}


def param_of(loc: tuple[int | str, ...]) -> str | None:
    """Render a pydantic location as a dotted path: ('input', 'messages', 0) → input.messages[0]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _code_of(error_type: str) -> str:
    if error_type in _PYDANTIC_CODES:
        return _PYDANTIC_CODES[error_type]
    if error_type.endswith(("_type", "_parsing")):
        return "invalid_type"
    return error_type  # our own PydanticCustomError codes


def _message_of(err: Any, param: str | None) -> str:
    kind, msg, given = err["type"], err["msg"], err.get("input")
    if kind == "missing":
        return f"{param} is required"
    if kind == "extra_forbidden":
        return f"{param} is not a documented parameter of this model"
    text = f"{param}: {msg}" if param else msg
    if kind in {"literal_error", "enum"} and isinstance(given, str):
        choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        near = [c for c in choices if c.lower() == given.lower()]
        if near:
            return f"{text} (got {given!r}; did you mean {near[0]!r}?)"
    if kind in _PYDANTIC_CODES and isinstance(given, int | float | str) and kind != "missing":
        return f"{text} (got {given!r})"
    return text


#: Audio file extensions wanflow recognises in a URL (to refuse the formats a model does not take).
_KNOWN_AUDIO = (".mp3", ".wav", ".aac", ".m4a", ".ogg", ".flac", ".opus", ".wma")


class Problems:
    """Collects the errors and warnings of one validation."""

    def __init__(self) -> None:
        self.errors: list[ErrorItem] = []
        self.warnings: list[Notice] = []

    def error(self, param: str | None, code: str, message: str) -> None:
        """Record a problem that makes the request invalid."""
        self.errors.append(ErrorItem(code=code, message=message, param=param))

    def warn(self, param: str | None, code: str, message: str) -> None:
        """Record something the upstream will silently ignore or truncate."""
        self.warnings.append(Notice(code=code, message=message, param=param))

    def add_validation_error(
        self, exc: ValidationError, recode: Callable[[str | None, str], str]
    ) -> None:
        """Record every failure pydantic found, each coded by `recode(param, default_code)`."""
        for err in exc.errors(include_url=False):
            param = param_of(tuple(err["loc"]))
            self.error(param, recode(param, _code_of(err["type"])), _message_of(err, param))

    def audio_format(self, param: str, url: str | None, formats: tuple[str, ...]) -> None:
        """An audio URL must name one of `formats` (".mp3", ...). Only a URL ending in a known
        audio extension can be judged; one without (a signed link, say) is left to the upstream.
        """
        if not url:
            return
        path = urlsplit(url).path.lower()
        if path.endswith(_KNOWN_AUDIO) and not path.endswith(formats):
            names = " or ".join(f.lstrip(".") for f in formats)
            self.error(
                param, "unsupported_audio_format", f"{param} must be an audio file in {names}"
            )

    def truncate(self, param: str, value: str | None, limit: int) -> str | None:
        """Cut `value` to `limit` characters as the upstream would, with a warning when it does."""
        if value is None or len(value) <= limit:
            return value
        self.warn(
            param,
            "truncated",
            f"{param} has {len(value)} characters; the upstream keeps the first {limit}, "
            "so it was truncated before sending",
        )
        return value[:limit]


_MISSING = object()


def pick(raw: Any, path: str, kind: type | tuple[type, ...] = object) -> Any:
    """The value at a dotted path of a raw body, or None when absent or not of `kind`.

    Rules that span fields use this on the raw body, so they still report their problems when
    some other field failed its own check. Booleans never count as integers.
    """
    node = raw
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) and kind in (int, float):
        return None
    return node if isinstance(node, kind) else None


def present(raw: Any, path: str) -> bool:
    """Whether a dotted path exists in the raw body with a non-null value."""
    return pick(raw, path) is not None


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
