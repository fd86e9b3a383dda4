"""`wan26_i2i`: Wan 2.6 image edit (1–4 images) and interleaved text+image output (seed 004).

This is the one model whose seed lists validation error codes (001021001–001021018); errors here
carry them. Problems the seed has no code for (image files, unknown fields, wrong JSON types of
flags) carry wanflow's snake_case codes.

Where the seed contradicts itself, the error-code table wins over the prose: text over 2000
characters and negative_prompt over 500 are rejected (001021006, 001021009), not truncated,
because the codes are what the aggregator's validator answers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from wanflow.catalog.base import GENERATION_ROUTE, ExpectedOutput, ImageSlot, ModelSpec, Timing
from wanflow.catalog.fields import Seed, Strict, image_ref
from wanflow.catalog.problems import Problems, pick, present
from wanflow.task import Vocabulary

TEXT_LIMIT = 2000
NEGATIVE_PROMPT_LIMIT = 500
IMAGE_SIDE = (384, 5000)
MIN_PIXELS, MAX_PIXELS = 768 * 768, 1280 * 1280
MAX_EDIT_IMAGES = 4
MAX_INTERLEAVE_IMAGES = 1
DEFAULT_MAX_IMAGES = 5

_SIZE_FORMAT = "001021015"
_SIZE_INTEGERS = "001021018"


def _size_format(value: str) -> str:
    parts = value.split("*")
    if len(parts) != 2:
        raise PydanticCustomError(
            _SIZE_FORMAT, "size format must be 'width*height', e.g. 1024*1024"
        )
    if not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise PydanticCustomError(
            _SIZE_INTEGERS, "size must be 'width*height' with positive integers, e.g. 1024*1024"
        )
    return value


class ContentPart(Strict):
    """One object of a message's content: a text or an image."""

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_LIMIT,
        description=f"The prompt, 1..{TEXT_LIMIT} characters; exactly one text object.",
    )
    image: Annotated[str, AfterValidator(image_ref(*IMAGE_SIDE))] | None = Field(
        default=None,
        description="http(s) URL or data URI; JPEG/PNG (no alpha)/BMP/WEBP, 384..5000 px per "
        "side, at most 10 MB.",
    )


class Message(Strict):
    """The single user message."""

    role: Literal["user"]
    content: list[ContentPart]


class Input(Strict):
    """`input` of a wan26_i2i request."""

    messages: list[Message] = Field(min_length=1, max_length=1)


class Parameters(Strict):
    """`parameters` of a wan26_i2i request."""

    negative_prompt: str | None = Field(
        default=None, max_length=NEGATIVE_PROMPT_LIMIT, description="What must not appear."
    )
    size: Annotated[str, AfterValidator(_size_format)] | None = Field(
        default=None,
        description="Output `width*height`: 589824..1638400 pixels, aspect 1:4..4:1.",
    )
    enable_interleave: bool = Field(
        default=False, description="false: image edit (1-4 images); true: interleaved output."
    )
    n: int = Field(default=1, ge=1, le=4, description="Images to generate; 1 when interleaved.")
    max_images: int | None = Field(
        default=None, ge=1, le=5, description="Interleaved only: most images (default 5)."
    )
    prompt_extend: bool = Field(default=True, description="Prompt rewriting (edit mode only).")
    watermark: bool = Field(default=False, description="Add the 'AI Generated' watermark.")
    seed: Seed | None = None


class Request(Strict):
    """A wan26_i2i request, exactly as the upstream takes it."""

    model: Literal["wan26_i2i"]
    input: Input
    parameters: Parameters = Field(default_factory=Parameters)


#: Which seed code a failure of a field carries, by the field's path.
_CODES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), code)
    for pattern, code in (
        (r"input", "001021001"),
        (r"input\.messages(\[\d+\])?", "001021002"),
        (r"input\.messages\[\d+\]\.role", "001021003"),
        (r"input\.messages\[\d+\]\.content(\[\d+\])?", "001021004"),
        (r"input\.messages\[\d+\]\.content\[\d+\]\.text", "001021006"),
        (r"parameters\.negative_prompt", "001021009"),
        (r"parameters\.n", "001021011"),
        (r"parameters\.max_images", "001021013"),
        (r"parameters\.seed", "001021014"),
        (r"parameters\.size", _SIZE_FORMAT),
    )
)
_KEEP = frozenset({"unknown_field", _SIZE_FORMAT, _SIZE_INTEGERS})


def _parts(raw: dict[str, Any]) -> list[Any] | None:
    messages = pick(raw, "input.messages", list)
    if not messages or not isinstance(messages[0], dict):
        return None
    content = messages[0].get("content")
    return content if isinstance(content, list) else None


class Wan26I2I(ModelSpec[Request]):
    """The catalog entry for wan26_i2i."""

    id = "wan26_i2i"
    title = "Wan 2.6 image edit and interleaved text+image"
    output_type = "image"
    modes = ("edit", "interleave")
    route = GENERATION_ROUTE
    vocabulary = Vocabulary.GENERATION
    request_model = Request
    image_slot = ImageSlot.MESSAGE_CONTENT  # after what the message already holds
    image_sides = IMAGE_SIDE

    def recode(self, param: str | None, code: str) -> str:
        """Field failures carry the seed's code for that field where it has one."""
        if code in _KEEP or param is None:
            return code
        if param.endswith(".image") and param.startswith("input."):
            return code  # image file problems have no seed code
        for pattern, seed_code in _CODES:
            if pattern.fullmatch(param):
                return seed_code
        return code

    def cross_check(self, raw: dict[str, Any], problems: Problems) -> None:
        """Counting rules of the content array, interleave rules and size bounds."""
        interleave = pick(raw, "parameters.enable_interleave", bool) is True
        parts = _parts(raw)
        if parts is not None:
            self._check_parts(parts, interleave, problems)
        n = pick(raw, "parameters.n", int)
        if interleave and n is not None and n != 1:
            problems.error("parameters.n", "001021010", "when enable_interleave=true, n must be 1")
        if not interleave and present(raw, "parameters.max_images"):
            problems.error(
                "parameters.max_images",
                "001021012",
                "max_images is only valid when enable_interleave=true",
            )
        if interleave and present(raw, "parameters.prompt_extend"):
            problems.warn(
                "parameters.prompt_extend",
                "ignored",
                "prompt_extend only takes effect in image editing mode; it is ignored here",
            )
        self._check_size(pick(raw, "parameters.size", str), problems)

    @staticmethod
    def _check_parts(parts: list[Any], interleave: bool, problems: Problems) -> None:
        where = "input.messages[0].content"
        texts = images = 0
        for i, part in enumerate(parts):
            if not isinstance(part, dict):
                continue  # reported by the schema
            has_text, has_image = part.get("text") is not None, part.get("image") is not None
            texts += has_text
            images += has_image
            if has_text == has_image:
                problems.error(
                    f"{where}[{i}]",
                    "invalid_content_part",
                    "each content object holds exactly one of 'text' or 'image'",
                )
        if texts != 1:
            problems.error(
                where, "001021005", f"message.content must contain one text object (found {texts})"
            )
        if interleave and images > MAX_INTERLEAVE_IMAGES:
            problems.error(
                where,
                "001021007",
                f"when enable_interleave=true, only 0-1 images may be given (found {images})",
            )
        if not interleave and not 1 <= images <= MAX_EDIT_IMAGES:
            problems.error(
                where,
                "001021008",
                f"when enable_interleave=false, 1-4 images must be given (found {images})",
            )

    @staticmethod
    def _check_size(size: str | None, problems: Problems) -> None:
        parts = size.split("*") if size else []
        if len(parts) != 2 or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
            return  # absent, or a format error already reported
        width, height = int(parts[0]), int(parts[1])
        if not MIN_PIXELS <= width * height <= MAX_PIXELS:
            problems.error(
                "parameters.size",
                "001021016",
                f"size {size} has {width * height} pixels; it must be between 768*768 "
                f"({MIN_PIXELS}) and 1280*1280 ({MAX_PIXELS})",
            )
        if not 1 / 4 <= width / height <= 4:
            problems.error(
                "parameters.size",
                "001021017",
                f"size {size} has aspect ratio {width}:{height}; it must be between 1:4 and 4:1",
            )

    def mode_of(self, request: Request) -> str:
        return "interleave" if request.parameters.enable_interleave else "edit"

    def normalise(self, request: Request, problems: Problems) -> dict[str, Any]:
        """Interleaved output defaults max_images and drops a prompt_extend it was not given."""
        body = super().normalise(request, problems)
        if request.parameters.enable_interleave:
            body["parameters"].setdefault("max_images", DEFAULT_MAX_IMAGES)
            if "prompt_extend" not in request.parameters.model_fields_set:
                del body["parameters"]["prompt_extend"]  # not effective in this mode
        return body

    def _count(self, request: Request) -> int:
        params = request.parameters
        if params.enable_interleave:
            return params.max_images or DEFAULT_MAX_IMAGES
        return params.n

    def timing(self, request: Request) -> Timing:
        base = 20 if request.parameters.enable_interleave else 15
        return Timing.around(base + 8 * self._count(request), spread=0.3)

    def expected_output(self, request: Request) -> ExpectedOutput:
        return ExpectedOutput(
            type="image+text" if request.parameters.enable_interleave else "image",
            size=request.parameters.size,
            max_images=self._count(request),
        )


SPEC = Wan26I2I()
