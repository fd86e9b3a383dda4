"""Every example request in events/ behaves as its folder says, through the real catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wanflow.catalog import validate
from wanflow.errors import InvalidRequest

EVENTS = Path(__file__).resolve().parents[2] / "events" / "requests"

# What each invalid example must be refused for: the (param, code) pairs, in order.
EXPECTED_ERRORS = {
    "unknown-model": [("model", "unknown_model")],
    "wan2.6-base64": [("image_urls[0]", "base64_not_supported")],
    "wan2.6-both-references": [("image_urls", "forbidden_combination")],
    "wan2.6-i2v-aspect-ratio": [("aspect_ratio", "forbidden_combination")],
    "wan2.6-image-to-video-flash-bad-callback": [
        ("duration", "out_of_range"),
        ("callback_url", "invalid_callback_url"),
    ],
    "wan2.6-image-to-video-flash-two-images": [("image_urls", "invalid_length")],
    "wan2.6-t2v-no-prompt": [("resolution", "invalid_value"), ("prompt", "missing_field")],
    "wan22_i2v_flash-duration": [
        ("parameters.resolution", "invalid_value"),
        ("parameters.duration", "invalid_value"),
    ],
    "wan26_i2i-interleave-n": [
        ("input.messages[0].content", "001021007"),
        ("parameters.n", "001021010"),
    ],
    "wan26_i2i-no-image": [
        ("input.messages[0].role", "001021003"),
        ("input.messages[0].content", "001021008"),
        ("parameters.max_images", "001021012"),
    ],
    "wan26_i2i-size": [("parameters.size", "001021016"), ("parameters.size", "001021017")],
    "wan26_i2v-bad-params": [
        ("parameters.resolution", "invalid_value"),
        ("parameters.duration", "invalid_value"),
        ("parameters.seed", "out_of_range"),
    ],
    "wan26_i2v-image-too-small": [("input.img_url", "image_dimensions")],
    "wan26_i2v-png-alpha": [("input.img_url", "image_has_alpha")],
}

EXPECTED_MODES = {
    "wan2.6-t2v": "t2v",
    "wan2.6-t2v-full": "t2v",
    "wan2.6-i2v": "i2v",
    "wan2.6-r2v": "r2v",
    "wan26_i2i-edit": "edit",
    "wan26_i2i-interleave": "interleave",
}


def _names(kind: str) -> list[str]:
    return sorted(p.stem for p in (EVENTS / kind).glob("*.json"))


def _load(kind: str, name: str) -> object:
    return json.loads((EVENTS / kind / f"{name}.json").read_text(encoding="utf-8"))


def test_every_model_and_mode_has_a_valid_example() -> None:
    seen = {(r.model, r.mode) for r in (validate(_load("valid", n)) for n in _names("valid"))}
    assert seen == {
        ("wan26_i2v", "i2v"),
        ("wan2.6-image-to-video-flash", "i2v"),
        ("wan22_i2v_flash", "i2v"),
        ("wan2.6", "t2v"),
        ("wan2.6", "i2v"),
        ("wan2.6", "r2v"),
        ("wan26_i2i", "edit"),
        ("wan26_i2i", "interleave"),
    }


@pytest.mark.parametrize("name", _names("valid"))
def test_valid_example_is_accepted(name: str) -> None:
    result = validate(_load("valid", name))
    assert result.request["model"] == result.model
    if name in EXPECTED_MODES:
        assert result.mode == EXPECTED_MODES[name]


def test_every_invalid_example_has_an_expectation() -> None:
    assert set(_names("invalid")) == set(EXPECTED_ERRORS)


@pytest.mark.parametrize("name", _names("invalid"))
def test_invalid_example_is_refused_naming_each_field(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(_load("invalid", name))
    body = caught.value.body()
    assert [(e.param, e.code) for e in body.errors] == EXPECTED_ERRORS[name]
    assert body.error == body.errors[0]
    assert all(e.type == "invalid_request_error" and e.message for e in body.errors)
