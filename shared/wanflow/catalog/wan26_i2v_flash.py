"""`wan2.6-image-to-video-flash`: Wan 2.6 image-to-video, flash tier, with callbacks (seed 001).

The scraped seed lost most field names. The reading here (the aggregator's published schema for
this model): `prompt`, `image_urls`, `duration`, `quality`, `prompt_extend`, `model_params`
(holding `audio_url` and `audio`, listed under "Model parameter configuration") and
`callback_url`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from wanflow.catalog.base import TASKS_ROUTE, ExpectedOutput, ImageSlot, ModelSpec, Timing
from wanflow.catalog.fields import CallbackUrl, Strict, UrlOnly
from wanflow.catalog.problems import Problems, pick
from wanflow.task import Vocabulary

PROMPT_LIMIT = 1500
AUDIO_FORMATS = (".mp3",)


class ModelParams(Strict):
    """`model_params` of a flash request."""

    audio_url: UrlOnly | None = Field(
        default=None, description="Driving audio URL (mp3, 3..30 s, at most 15 MB)."
    )
    audio: bool = Field(default=True, description="Generate sound; false means a silent video.")


class Request(Strict):
    """A wan2.6-image-to-video-flash request, exactly as the upstream takes it."""

    model: Literal["wan2.6-image-to-video-flash"]
    # "limited to 1500 characters": we truncate like the other Wan 2.6 models and warn.
    prompt: str = Field(description=f"What the video shows; over {PROMPT_LIMIT} is truncated.")
    image_urls: list[UrlOnly] = Field(
        min_length=1,
        max_length=1,
        description="Exactly one first-frame image URL (no base64): JPEG/PNG (no alpha)/BMP/"
        "WEBP, 360..2000 px per side, at most 10 MB.",
    )
    duration: int = Field(default=5, ge=2, le=15, description="Video length, any integer 2..15.")
    quality: Literal["720p", "1080p"] = Field(default="720p", description="Resolution tier.")
    prompt_extend: bool = Field(default=True, description="Let the upstream rewrite the prompt.")
    model_params: ModelParams = Field(default_factory=ModelParams)
    callback_url: CallbackUrl | None = Field(
        default=None,
        description="HTTPS URL (at most 2048 characters) told when the task ends. wanflow "
        "takes it as the client's webhook and puts its own callback URL upstream.",
    )


class Wan26I2VFlash(ModelSpec[Request]):
    """The catalog entry for wan2.6-image-to-video-flash."""

    id = "wan2.6-image-to-video-flash"
    title = "Wan 2.6 image-to-video flash"
    output_type = "video"
    modes = ("i2v",)
    route = TASKS_ROUTE
    vocabulary = Vocabulary.FLASH
    accepts_callback = True
    request_model = Request
    image_slot = ImageSlot.IMAGE_URLS
    image_sides = (360, 2000)
    text_limits = (("prompt", PROMPT_LIMIT),)

    def cross_check(self, raw: dict[str, Any], problems: Problems) -> None:
        """The audio file must be mp3; audio=false makes audio_url pointless."""
        audio_url = pick(raw, "model_params.audio_url", str)
        problems.audio_format("model_params.audio_url", audio_url, AUDIO_FORMATS)
        if audio_url and pick(raw, "model_params.audio", bool) is False:
            problems.warn(
                "model_params.audio_url",
                "ignored",
                "audio=false: the video will be silent and audio_url is not used",
            )

    def timing(self, request: Request) -> Timing:
        expected = (40 + 2.5 * request.duration) * (1.25 if request.quality == "1080p" else 1)
        return Timing.around(expected, spread=0.3)

    def expected_output(self, request: Request) -> ExpectedOutput:
        return ExpectedOutput(type="video", resolution=request.quality, duration_s=request.duration)


SPEC = Wan26I2VFlash()
