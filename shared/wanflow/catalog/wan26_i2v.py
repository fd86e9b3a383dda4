"""`wan26_i2v`: Wan 2.6 image-to-video, first frame plus optional driving audio (seed 000)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from wanflow.catalog.base import GENERATION_ROUTE, ExpectedOutput, ImageSlot, ModelSpec, Timing
from wanflow.catalog.fields import Seed, Strict, UrlOnly, image_ref
from wanflow.catalog.problems import Problems, pick, present
from wanflow.task import Vocabulary

PROMPT_LIMIT = 1500
IMAGE_SIDE = (360, 2000)
#: "Supported formats: wav, mp3" (the seed's audio_url).
AUDIO_FORMATS = (".wav", ".mp3")


class Input(Strict):
    """`input` of a wan26_i2v request."""

    prompt: str | None = Field(
        default=None,
        description=f"What the video shows; over {PROMPT_LIMIT} characters is truncated.",
    )
    img_url: Annotated[str, AfterValidator(image_ref(*IMAGE_SIDE))] = Field(
        description="First frame: http(s) URL or data URI; JPEG/PNG (no alpha)/BMP/WEBP, "
        "360..2000 px per side, at most 10 MB."
    )
    audio_url: UrlOnly | None = Field(
        default=None, description="Driving audio URL (wav/mp3, 3..30 s, at most 15 MB)."
    )


class Parameters(Strict):
    """`parameters` of a wan26_i2v request."""

    resolution: Literal["720P", "1080P"] = Field(default="1080P", description="Resolution tier.")
    # The seed says "Options: 5,10,15 Range: 2-15". We enforce the listed options: the range is
    # the field's generic bound, and a value outside the options would only fail upstream.
    duration: Literal[5, 10, 15] = Field(default=5, description="Video length in seconds.")
    prompt_extend: bool = Field(default=True, description="Let the upstream rewrite the prompt.")
    watermark: bool = Field(default=False, description="Add the 'AI Generated' watermark.")
    audio: bool = Field(default=True, description="Generate sound; false wins over audio_url.")
    shot_type: Literal["single", "multi"] = Field(
        default="single", description="Single or multi shot; only with prompt_extend."
    )
    negative_prompt: str | None = Field(default=None, description="What must not appear.")
    seed: Seed | None = None


class Request(Strict):
    """A wan26_i2v request, exactly as the upstream takes it."""

    model: Literal["wan26_i2v"]
    input: Input
    parameters: Parameters = Field(default_factory=Parameters)


class Wan26I2V(ModelSpec[Request]):
    """The catalog entry for wan26_i2v."""

    id = "wan26_i2v"
    title = "Wan 2.6 image-to-video"
    output_type = "video"
    modes = ("i2v",)
    route = GENERATION_ROUTE
    vocabulary = Vocabulary.GENERATION
    request_model = Request
    image_slot = ImageSlot.INPUT_IMG_URL
    image_sides = IMAGE_SIDE
    text_limits = (("input.prompt", PROMPT_LIMIT),)

    def cross_check(self, raw: dict[str, Any], problems: Problems) -> None:
        """Audio must be wav or mp3; ignored combinations become warnings (the upstream applies
        them silently)."""
        problems.audio_format("input.audio_url", pick(raw, "input.audio_url", str), AUDIO_FORMATS)
        if pick(raw, "parameters.prompt_extend", bool) is False and present(
            raw, "parameters.shot_type"
        ):
            problems.warn(
                "parameters.shot_type",
                "ignored",
                "shot_type only takes effect with prompt_extend=true; the upstream ignores it",
            )
        if pick(raw, "parameters.audio", bool) is False and pick(raw, "input.audio_url", str):
            problems.warn(
                "input.audio_url",
                "ignored",
                "audio=false wins over audio_url: the video will be silent and billed as silent",
            )

    def timing(self, request: Request) -> Timing:
        per_second = 15 if request.parameters.resolution == "1080P" else 8
        return Timing.around(40 + per_second * request.parameters.duration, spread=0.2)

    def expected_output(self, request: Request) -> ExpectedOutput:
        # The aspect ratio follows the input image, so only the tier is known in advance.
        return ExpectedOutput(
            type="video",
            resolution=request.parameters.resolution,
            duration_s=request.parameters.duration,
        )


SPEC = Wan26I2V()
