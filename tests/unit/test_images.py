"""Images given as data URIs are checked locally: format, sides, byte size, PNG alpha."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from sample_images import make_image, to_data_uri
from wanflow.catalog import validate
from wanflow.errors import InvalidRequest
from wanflow.images import MAX_IMAGE_BYTES, ImageProblem, check_image_bytes, decode_data_uri


def refusal(example: Callable[[str], dict[str, Any]], img_url: str) -> list[tuple[Any, str]]:
    body = example("wan26_i2v")
    body["input"]["img_url"] = img_url
    try:
        validate(body)
    except InvalidRequest as exc:
        return [(e.param, e.code) for e in exc.items]
    return []


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "L"), ("BMP", "RGB"), ("WEBP", "RGB")],
)
def test_accepted_formats_pass(example: Any, data_uri: Any, fmt: str, mode: str) -> None:
    assert refusal(example, data_uri(fmt, 400, 400, mode)) == []


@pytest.mark.parametrize(
    ("fmt", "mode", "code"),
    [
        ("GIF", "RGB", "unsupported_image_format"),
        ("TIFF", "RGB", "unsupported_image_format"),
        ("PNG", "RGBA", "image_has_alpha"),
        ("PNG", "LA", "image_has_alpha"),
    ],
)
def test_refused_formats(example: Any, data_uri: Any, fmt: str, mode: str, code: str) -> None:
    assert refusal(example, data_uri(fmt, 400, 400, mode)) == [("input.img_url", code)]


def test_palette_png_with_a_transparent_colour_counts_as_alpha(example: Any) -> None:
    png = make_image("PNG", 400, 400, "P", transparency=0)
    assert refusal(example, to_data_uri(png)) == [("input.img_url", "image_has_alpha")]


@pytest.mark.parametrize(("width", "height"), [(360, 360), (2000, 2000), (360, 2000)])
def test_sides_at_the_limits_pass(example: Any, data_uri: Any, width: int, height: int) -> None:
    assert refusal(example, data_uri("PNG", width, height)) == []


@pytest.mark.parametrize(("width", "height"), [(359, 400), (400, 359), (2001, 400), (400, 2001)])
def test_sides_past_the_limits_fail(example: Any, data_uri: Any, width: int, height: int) -> None:
    assert refusal(example, data_uri("PNG", width, height)) == [
        ("input.img_url", "image_dimensions")
    ]


def test_an_image_over_10_mb_is_refused_before_decoding() -> None:
    payload = base64.b64encode(b"\0" * (MAX_IMAGE_BYTES + 1)).decode()
    with pytest.raises(ImageProblem) as caught:
        decode_data_uri("data:image/png;base64," + payload)
    assert caught.value.code == "image_too_large"


def test_an_image_of_exactly_10_mb_passes_the_size_rule() -> None:
    # A BMP's size is width*height*3 plus a header: pad a valid one to exactly the limit.
    data = make_image("BMP", 400, 400)
    padded = data + b"\0" * (MAX_IMAGE_BYTES - len(data))
    assert check_image_bytes(padded, 360, 2000).size_bytes == MAX_IMAGE_BYTES
    with pytest.raises(ImageProblem) as caught:
        check_image_bytes(padded + b"\0", 360, 2000)
    assert caught.value.code == "image_too_large"


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("data:image/png;base64,@@@@", "invalid_data_uri"),
        ("data:image/png,rawbytes", "invalid_data_uri"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "invalid_image"),
    ],
)
def test_broken_data_uris_are_refused(example: Any, uri: str, code: str) -> None:
    assert refusal(example, uri) == [("input.img_url", code)]
