"""Each documented limit of each model, at its boundary on both sides, and each enum.

A case names an example request, the field to change, the values that must pass and the values
that must be refused with a given code on that field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wanflow.catalog import validate
from wanflow.errors import InvalidRequest

MISSING = object()


def put(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with MISSING, delete) a dotted path in a request body, creating objects."""
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    if value is MISSING:
        node.pop(last, None)
    else:
        node[last] = value
    return body


def problems(body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """The (param, code) pairs a body is refused with; [] when it is accepted."""
    try:
        validate(body)
    except InvalidRequest as exc:
        return [(e.param, e.code) for e in exc.items]
    return []


# (example, field, accepted values, refused values, code)
LIMITS = [
    # wan26_i2v (seed 000)
    ("wan26_i2v", "parameters.duration", [5, 10, 15], [2, 4, 6, 14, 16], "invalid_value"),
    (
        "wan26_i2v",
        "parameters.resolution",
        ["720P", "1080P"],
        ["480P", "720p", ""],
        "invalid_value",
    ),
    ("wan26_i2v", "parameters.seed", [0, 2147483647], [-1, 2147483648], "out_of_range"),
    ("wan26_i2v", "parameters.shot_type", ["single", "multi"], ["double"], "invalid_value"),
    ("wan26_i2v", "parameters.audio", [True, False], [1, "true"], "invalid_type"),
    ("wan26_i2v", "parameters.watermark", [True, False], [0, None], "invalid_type"),
    ("wan26_i2v", "parameters.prompt_extend", [True, False], ["yes"], "invalid_type"),
    ("wan26_i2v", "input.audio_url", ["https://a.example/x.mp3"], ["ftp://a/x.mp3"], "invalid_url"),
    (
        "wan26_i2v",
        "input.audio_url",
        ["https://a.example/a.wav", "https://a.example/a.MP3", "https://a.example/audio"],
        ["https://a.example/a.ogg", "https://a.example/a.m4a"],
        "unsupported_audio_format",
    ),
    (
        "wan26_i2v",
        "input.img_url",
        ["http://a.example/x.png"],
        ["x.png", "https://"],
        "invalid_url",
    ),
    # wan2.6-image-to-video-flash (seed 001)
    ("wan2.6-image-to-video-flash", "duration", [2, 3, 14, 15], [1, 16, 0], "out_of_range"),
    ("wan2.6-image-to-video-flash", "duration", [5], [5.0, "5"], "invalid_type"),
    (
        "wan2.6-image-to-video-flash",
        "quality",
        ["720p", "1080p"],
        ["480p", "720P"],
        "invalid_value",
    ),
    (
        "wan2.6-image-to-video-flash",
        "image_urls",
        [["https://a.example/1.png"]],
        [[]],
        "invalid_length",
    ),
    (
        "wan2.6-image-to-video-flash",
        "image_urls",
        [["https://a.example/1.png"]],
        [["https://a.example/1.png", "https://a.example/2.png"]],
        "invalid_length",
    ),
    ("wan2.6-image-to-video-flash", "prompt", ["x"], [MISSING], "missing_field"),
    ("wan2.6-image-to-video-flash", "model_params.audio", [True, False], ["no"], "invalid_type"),
    (
        "wan2.6-image-to-video-flash",
        "model_params.audio_url",
        ["https://a.example/a.mp3", "https://a.example/audio"],
        ["https://a.example/a.wav"],
        "unsupported_audio_format",
    ),
    # wan22_i2v_flash (seed 002)
    ("wan22_i2v_flash", "parameters.duration", [5], [4, 6, 10], "invalid_value"),
    (
        "wan22_i2v_flash",
        "parameters.resolution",
        ["480P", "720P"],
        ["1080P", "480p"],
        "invalid_value",
    ),
    ("wan22_i2v_flash", "parameters.seed", [0, 2147483647], [-1, 2147483648], "out_of_range"),
    ("wan22_i2v_flash", "input.img_url", ["https://a.example/x.jpg"], [MISSING], "missing_field"),
    # wan2.6 (seed 003)
    ("wan2.6-t2v", "duration", [5, 10, 15], [4, 6, 20], "invalid_value"),
    ("wan2.6-t2v", "resolution", ["720p", "1080p"], ["480p", "1080P"], "invalid_value"),
    (
        "wan2.6-t2v",
        "aspect_ratio",
        ["16:9", "9:16", "1:1", "4:3", "3:4"],
        ["21:9", "16/9"],
        "invalid_value",
    ),
    ("wan2.6-t2v", "shot_type", ["single", "multi"], ["triple"], "invalid_value"),
    ("wan2.6-t2v", "seed", [0, 2147483647], [-1, 2147483648], "out_of_range"),
    ("wan2.6-t2v", "prompt", ["a"], [MISSING], "missing_field"),
    ("wan2.6-t2v", "prompt", ["a"], ["", "   "], "invalid_length"),
    ("wan2.6-i2v", "image_urls", [["https://a.example/i.jpg"]], [[]], "invalid_length"),
    (
        "wan2.6-i2v",
        "image_urls",
        [["https://a.example/i.jpg"]],
        [["https://a.example/i.jpg", "https://a.example/j.jpg"]],
        "invalid_length",
    ),
    (
        "wan2.6-r2v",
        "metadata.reference_urls",
        [["https://a.example/r.mp4"]],
        [[]],
        "invalid_length",
    ),
    # wan26_i2i (seed 004): the seed's own codes
    ("wan26_i2i-edit", "parameters.n", [1, 2, 3, 4], [0, 5, -1], "001021011"),
    ("wan26_i2i-edit", "parameters.n", [1], [1.5, "2", True], "001021011"),
    ("wan26_i2i-interleave", "parameters.max_images", [1, 5], [0, 6], "001021013"),
    ("wan26_i2i-edit", "parameters.seed", [0, 2147483647], [-1, 2147483648, "1"], "001021014"),
    ("wan26_i2i-edit", "parameters.negative_prompt", ["", "n" * 500], ["n" * 501, 5], "001021009"),
    ("wan26_i2i-edit", "parameters.size", ["768*768", "1280*1280"], ["767*768"], "001021016"),
    ("wan26_i2i-edit", "parameters.size", ["1281*1279"], ["1281*1280", "2000*2000"], "001021016"),
    ("wan26_i2i-edit", "parameters.size", ["2048*512", "512*2048"], ["2052*512"], "001021017"),
    ("wan26_i2i-edit", "parameters.size", ["512*2048"], ["512*2052"], "001021017"),
    (
        "wan26_i2i-edit",
        "parameters.size",
        ["1024*1024"],
        ["1024x1024", "1024", "1*2*3"],
        "001021015",
    ),
    ("wan26_i2i-edit", "parameters.size", ["1024*1024"], [1024], "001021015"),
    (
        "wan26_i2i-edit",
        "parameters.size",
        ["1024*1024"],
        ["1024*abc", "1024.0*768", "-5*4"],
        "001021018",
    ),
    ("wan26_i2i-edit", "parameters.size", ["1024*1024"], ["0*1024", " 1024*1024"], "001021018"),
    ("wan26_i2i-edit", "parameters.enable_interleave", [False], ["false"], "invalid_type"),
]


def _cases() -> list[Any]:
    cases = []
    for example, field, good, bad, code in LIMITS:
        cases += [
            pytest.param(example, field, v, None, id=f"{example}:{field}={v!r}:ok") for v in good
        ]
        cases += [
            pytest.param(example, field, v, code, id=f"{example}:{field}={v!r}:{code}") for v in bad
        ]
    return cases


@pytest.mark.parametrize(("example_name", "field", "value", "code"), _cases())
def test_limit(
    example: Callable[[str], dict[str, Any]],
    example_name: str,
    field: str,
    value: Any,
    code: str | None,
) -> None:
    found = problems(put(example(example_name), field, value))
    if code is None:
        assert found == []
    else:
        assert (field, code) in found, found


def test_unknown_fields_are_refused_by_name(example: Callable[[str], dict[str, Any]]) -> None:
    body = put(example("wan26_i2v"), "parameters.durration", 5)
    put(body, "input.image", "x")
    assert problems(body) == [
        ("input.image", "unknown_field"),
        ("parameters.durration", "unknown_field"),
    ]


def test_every_problem_is_reported_at_once(example: Callable[[str], dict[str, Any]]) -> None:
    body = example("wan2.6-image-to-video-flash")
    body.update(duration=99, quality="4k", image_urls=[], callback_url="http://x.example/cb")
    assert [p for p, _ in problems(body)] == ["image_urls", "duration", "quality", "callback_url"]


def test_a_near_miss_enum_value_gets_a_hint(example: Callable[[str], dict[str, Any]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(put(example("wan26_i2v"), "parameters.resolution", "720p"))
    assert "did you mean '720P'" in caught.value.items[0].message


@pytest.mark.parametrize("body", [[], "x", None, 3])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(body)
    assert caught.value.items[0].code == "invalid_body"


@pytest.mark.parametrize(("model", "code"), [(None, "missing_field"), (5, "unknown_model")])
def test_model_must_name_a_catalog_entry(model: Any, code: str) -> None:
    body = {} if model is None else {"model": model}
    assert problems(body) == [("model", code)]


# --- forbidden combinations and callback URLs --------------------------------------------


def test_wan26_refuses_image_urls_with_reference_urls(example: Callable[..., Any]) -> None:
    body = put(example("wan2.6-i2v"), "metadata.reference_urls", ["https://a.example/r.mp4"])
    assert problems(body) == [("image_urls", "forbidden_combination")]


def test_wan26_refuses_aspect_ratio_in_i2v_but_takes_it_in_t2v_and_r2v(
    example: Callable[..., Any],
) -> None:
    assert problems(put(example("wan2.6-i2v"), "aspect_ratio", "1:1")) == [
        ("aspect_ratio", "forbidden_combination")
    ]
    assert problems(put(example("wan2.6-t2v"), "aspect_ratio", "1:1")) == []
    assert problems(put(example("wan2.6-r2v"), "aspect_ratio", "1:1")) == []


@pytest.mark.parametrize(
    "url",
    ["data:image/png;base64,iVBORw0KGgo=", "DATA:image/jpeg;base64,/9j/"],
)
def test_base64_is_refused_where_only_urls_are_accepted(
    example: Callable[..., Any], url: str
) -> None:
    assert problems(put(example("wan2.6-i2v"), "image_urls", [url])) == [
        ("image_urls[0]", "base64_not_supported")
    ]
    assert problems(put(example("wan2.6-image-to-video-flash"), "image_urls", [url])) == [
        ("image_urls[0]", "base64_not_supported")
    ]


def test_callback_url_is_https_and_at_most_2048_characters(example: Callable[..., Any]) -> None:
    base = "https://hooks.example.com/"
    at_limit = base + "a" * (2048 - len(base))
    assert len(at_limit) == 2048
    assert problems(put(example("wan2.6-image-to-video-flash"), "callback_url", at_limit)) == []
    for bad in (at_limit + "a", "http://hooks.example.com/cb", "https://", "not a url"):
        body = put(example("wan2.6-image-to-video-flash"), "callback_url", bad)
        assert problems(body) == [("callback_url", "invalid_callback_url")], bad


def test_callback_url_is_only_a_parameter_of_the_flash_model(example: Callable[..., Any]) -> None:
    body = put(example("wan2.6-t2v"), "callback_url", "https://hooks.example.com/cb")
    assert problems(body) == [("callback_url", "unknown_field")]
