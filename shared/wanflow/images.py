"""Local checks of images the upstream would otherwise reject after a round trip.

Only images we hold the bytes of can be checked: data URIs in a request, and uploads. What is
guaranteed: an image that passes is at most 10 MB, of a format every model accepts (JPEG, PNG,
BMP, WEBP), within the model's side range, and a PNG without alpha; one that does not raises
`ImageProblem` with a stable code (`image_too_large`, `unsupported_image_format`,
`image_has_alpha`, `image_dimensions`, `invalid_image`, `invalid_data_uri`). An oversized data
URI is refused before it is decoded, and only the image's header is read, never its pixels.
Pillow is imported on first use, so importing this module (and the catalog) stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass

MAX_IMAGE_BYTES = 10 * 1024 * 1024

#: Formats every model accepts, by Pillow's format name.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP"})

_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*);base64,"
)


class ImageProblem(ValueError):
    """An image that breaks a documented rule; `code` is the stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    """What a local check learned about an image."""

    format: str
    width: int
    height: int
    size_bytes: int
    has_alpha: bool


def is_data_uri(value: str) -> bool:
    """Whether a string is a `data:` URI (any case), as opposed to a URL."""
    return value[:5].lower() == "data:"


def decode_data_uri(value: str, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """Decode a base64 data URI, refusing before decoding anything over `max_bytes`."""
    match = _DATA_URI.match(value)
    if match is None:
        raise ImageProblem(
            "invalid_data_uri", "a data URI must look like data:<mime type>;base64,<data>"
        )
    payload = value[match.end() :]
    # Four base64 characters carry three bytes: refuse an oversized image without decoding it.
    if len(payload) // 4 * 3 > max_bytes + 3:
        raise ImageProblem(
            "image_too_large", f"the image is larger than {max_bytes // (1024 * 1024)} MB"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("invalid_data_uri", "the data URI's base64 payload is corrupt") from None
    if len(data) > max_bytes:
        raise ImageProblem(
            "image_too_large", f"the image is larger than {max_bytes // (1024 * 1024)} MB"
        )
    return data


def inspect_image(data: bytes) -> ImageInfo:
    """Read an image's format, size and alpha channel from its header (pixels are not decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "unknown"
            width, height = img.size
            has_alpha = img.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
                "transparency" in img.info
            )
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageProblem("invalid_image", "the image cannot be read") from None
    return ImageInfo(fmt, width, height, len(data), has_alpha)


def check_image_bytes(
    data: bytes, min_side: int, max_side: int, max_bytes: int = MAX_IMAGE_BYTES
) -> ImageInfo:
    """Check an image against the shared rules: format, byte size, side range, PNG without alpha."""
    if len(data) > max_bytes:
        raise ImageProblem(
            "image_too_large", f"the image is larger than {max_bytes // (1024 * 1024)} MB"
        )
    info = inspect_image(data)
    if info.format not in ACCEPTED_FORMATS:
        raise ImageProblem(
            "unsupported_image_format",
            f"image format {info.format} is not accepted; use JPEG, PNG, BMP or WEBP",
        )
    if info.format == "PNG" and info.has_alpha:
        raise ImageProblem(
            "image_has_alpha", "PNG images must not have transparency (an alpha channel)"
        )
    for side, value in (("width", info.width), ("height", info.height)):
        if not min_side <= value <= max_side:
            raise ImageProblem(
                "image_dimensions",
                f"image {side} is {value} px; it must be between {min_side} and {max_side} px",
            )
    return info


def check_data_uri_image(value: str, min_side: int, max_side: int) -> ImageInfo:
    """Decode and check an image given as a data URI."""
    return check_image_bytes(decode_data_uri(value), min_side, max_side)
