"""`wan22_i2v_flash`: Wan 2.2 image-to-video flash, fixed 5 seconds (seed 002)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from wanflow.catalog.base import GENERATION_ROUTE, ExpectedOutput, ImageSlot, ModelSpec, Timing
from wanflow.catalog.fields import Seed, Strict, image_ref
from wanflow.task import Vocabulary

PROMPT_LIMIT = 800
NEGATIVE_PROMPT_LIMIT = 500
IMAGE_SIDE = (360, 2000)


class Input(Strict):
    """`input` of a wan22_i2v_flash request."""

    prompt: str | None = Field(
        default=None, description=f"What the video shows; over {PROMPT_LIMIT} is truncated."
    )
    negative_prompt: str | None = Field(
        default=None,
        description=f"What must not appear; over {NEGATIVE_PROMPT_LIMIT} is truncated.",
    )
    img_url: Annotated[str, AfterValidator(image_ref(*IMAGE_SIDE))] = Field(
        description="First frame: http(s) URL or data URI; JPEG/PNG (no alpha)/BMP/WEBP, "
        "360..2000 px per side, at most 10 MB."
    )


class Parameters(Strict):
    """`parameters` of a wan22_i2v_flash request."""

    resolution: Literal["480P", "720P"] = Field(default="720P", description="Resolution tier.")
    duration: Literal[5] = Field(default=5, description="Fixed at 5 seconds.")
    prompt_extend: bool = Field(default=True, description="Let the upstream rewrite the prompt.")
    watermark: bool = Field(default=False, description="Add a watermark.")
    seed: Seed | None = None


class Request(Strict):
    """A wan22_i2v_flash request, exactly as the upstream takes it."""

    model: Literal["wan22_i2v_flash"]
    input: Input
    parameters: Parameters = Field(default_factory=Parameters)


class Wan22I2VFlash(ModelSpec[Request]):
    """The catalog entry for wan22_i2v_flash."""

    id = "wan22_i2v_flash"
    title = "Wan 2.2 image-to-video flash"
    output_type = "video"
    modes = ("i2v",)
    route = GENERATION_ROUTE
    vocabulary = Vocabulary.GENERATION
    request_model = Request
    image_slot = ImageSlot.INPUT_IMG_URL
    image_sides = IMAGE_SIDE
    text_limits = (
        ("input.prompt", PROMPT_LIMIT),
        ("input.negative_prompt", NEGATIVE_PROMPT_LIMIT),
    )

    def timing(self, request: Request) -> Timing:
        return Timing.around(50 if request.parameters.resolution == "720P" else 35, spread=0.3)

    def expected_output(self, request: Request) -> ExpectedOutput:
        return ExpectedOutput(type="video", resolution=request.parameters.resolution, duration_s=5)


SPEC = Wan22I2VFlash()
