"""`wan2.6`: Wan 2.6 unified text-to-video, image-to-video and reference video (seed 003).

The mode is routed by the fields present, as the upstream does: `metadata.reference_urls` → r2v,
`image_urls` → i2v, a prompt only → t2v. The scraped seed lost the field names; they are read from
its descriptions: `prompt`, `image_urls`, `aspect_ratio`, `resolution`, `duration`,
`negative_prompt`, `seed`, `prompt_extend`, `audio`, `shot_type`, `watermark`, `metadata`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from wanflow.catalog.base import TASKS_ROUTE, ExpectedOutput, ImageSlot, ModelSpec, Timing
from wanflow.catalog.fields import Seed, Strict, UrlOnly
from wanflow.catalog.problems import Problems, pick, present
from wanflow.task import Vocabulary

AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]
Resolution = Literal["720p", "1080p"]

#: The seed's "Resolution and Aspect Ratio Combinations" table (width*height).
SIZES: dict[tuple[str, str], str] = {
    ("16:9", "720p"): "1280*720",
    ("16:9", "1080p"): "1920*1080",
    ("9:16", "720p"): "720*1280",
    ("9:16", "1080p"): "1080*1920",
    ("1:1", "720p"): "960*960",
    ("1:1", "1080p"): "1440*1440",
    ("4:3", "720p"): "1088*832",
    ("4:3", "1080p"): "1632*1248",
    ("3:4", "720p"): "832*1088",
    ("3:4", "1080p"): "1248*1632",
}


class Metadata(Strict):
    """`metadata` ("extended parameters"): keys other than reference_urls pass through."""

    model_config = ConfigDict(extra="allow")

    reference_urls: list[UrlOnly] | None = Field(
        default=None,
        min_length=1,
        description="Reference video URLs; their presence selects r2v mode.",
    )


class Request(Strict):
    """A wan2.6 request, exactly as the upstream takes it."""

    model: Literal["wan2.6"]
    prompt: str | None = Field(
        default=None, description="Required for t2v; optional for i2v and r2v."
    )
    image_urls: list[UrlOnly] | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="One first-frame image URL (no base64); selects i2v mode.",
    )
    aspect_ratio: AspectRatio | None = Field(
        default=None, description="t2v and r2v only; default 16:9. Refused in i2v mode."
    )
    resolution: Resolution = Field(default="1080p", description="Resolution tier (no 480p).")
    duration: Literal[5, 10, 15] = Field(default=5, description="Video length in seconds.")
    negative_prompt: str | None = Field(default=None, description="What must not appear.")
    # The seed gives no range for wan2.6's seed; every other Wan model documents this one.
    seed: Seed | None = None
    prompt_extend: bool = Field(default=True, description="Let the upstream rewrite the prompt.")
    audio: bool | None = Field(
        default=None, description="Audio is always generated; false is ignored."
    )
    shot_type: Literal["single", "multi"] | None = Field(
        default=None, description="t2v and r2v only."
    )
    watermark: bool | None = Field(default=None, description="Add a watermark.")
    metadata: Metadata | None = Field(default=None, description="Extended parameters.")


def _mode(has_references: bool, has_image: bool) -> str:
    """The upstream's routing: reference videos make it r2v, an image i2v, a prompt alone t2v."""
    if has_references:
        return "r2v"
    return "i2v" if has_image else "t2v"


class Wan26(ModelSpec[Request]):
    """The catalog entry for wan2.6."""

    id = "wan2.6"
    title = "Wan 2.6 text/image/reference-to-video"
    output_type = "video"
    modes = ("t2v", "i2v", "r2v")
    route = TASKS_ROUTE
    vocabulary = Vocabulary.UNIFIED
    request_model = Request
    image_slot = ImageSlot.IMAGE_URLS  # an image makes it image-to-video

    def cross_check(self, raw: dict[str, Any], problems: Problems) -> None:
        """Mode-dependent rules: what each mode requires, refuses and ignores."""
        if present(raw, "image_urls") and present(raw, "metadata.reference_urls"):
            problems.error(
                "image_urls",
                "forbidden_combination",
                "image_urls cannot be combined with metadata.reference_urls; "
                "send image_urls for i2v or metadata.reference_urls for r2v",
            )
            return
        mode = _mode(present(raw, "metadata.reference_urls"), present(raw, "image_urls"))
        prompt = pick(raw, "prompt", str)
        if mode == "t2v" and not present(raw, "prompt"):
            problems.error("prompt", "missing_field", "prompt is required for text-to-video")
        elif mode == "t2v" and prompt is not None and not prompt.strip():
            problems.error("prompt", "invalid_length", "prompt must not be empty for text-to-video")
        if mode == "i2v" and present(raw, "aspect_ratio"):
            problems.error(
                "aspect_ratio",
                "forbidden_combination",
                "aspect_ratio is not supported in image-to-video mode (the video follows the "
                "image's aspect ratio)",
            )
        if mode == "i2v" and present(raw, "shot_type"):
            problems.warn(
                "shot_type",
                "ignored",
                "shot_type applies to text-to-video and reference video only; it is ignored",
            )
        if pick(raw, "audio", bool) is False:
            problems.warn(
                "audio", "ignored", "wan2.6 always includes audio; audio=false is ignored"
            )

    def mode_of(self, request: Request) -> str:
        references = request.metadata.reference_urls if request.metadata is not None else None
        return _mode(bool(references), bool(request.image_urls))

    def normalise(self, request: Request, problems: Problems) -> dict[str, Any]:
        """i2v drops shot_type (the upstream ignores it); t2v and r2v default to 16:9."""
        body = super().normalise(request, problems)
        if self.mode_of(request) != "i2v":
            body.setdefault("aspect_ratio", "16:9")
        else:
            body.pop("shot_type", None)
        return body

    def timing(self, request: Request) -> Timing:
        per_second = 15 if request.resolution == "1080p" else 8
        return Timing.around(40 + per_second * request.duration, spread=0.15)

    def expected_output(self, request: Request) -> ExpectedOutput:
        size = None
        if self.mode_of(request) != "i2v":
            size = SIZES[(request.aspect_ratio or "16:9", request.resolution)]
        return ExpectedOutput(
            type="video", size=size, resolution=request.resolution, duration_s=request.duration
        )


SPEC = Wan26()
