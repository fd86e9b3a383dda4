"""The uploaded images' URLs handed to the upstream live as long as the task may use them, and
a session of the image reader role (at most an hour: role chaining) outlives every one."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from wanflow.catalog import MODELS, validate
from wanflow.uploads import (
    IMAGE_READER_SESSION_S,
    IMAGE_URL_MARGIN_S,
    MAX_IMAGE_URL_TTL_S,
    SESSION_MARGIN_S,
    image_url_ttl,
)


def _slowest(example: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each model's slowest request shape (longest, highest tier, most images)."""
    i2v = example("wan26_i2v")
    i2v["parameters"] |= {"resolution": "1080P", "duration": 15}
    flash = example("wan2.6-image-to-video-flash") | {"duration": 15, "quality": "1080p"}
    wan22 = example("wan22_i2v_flash")
    wan22["parameters"] |= {"resolution": "720P"}
    wan26 = example("wan2.6-i2v") | {"resolution": "1080p", "duration": 15}
    edit = example("wan26_i2i-edit")
    edit["parameters"] |= {"n": 4}
    interleave = example("wan26_i2i-interleave")
    interleave["parameters"] |= {"max_images": 5}
    return {
        "wan26_i2v": i2v,
        "wan2.6-image-to-video-flash": flash,
        "wan22_i2v_flash": wan22,
        "wan2.6": wan26,
        "wan26_i2i-edit": edit,
        "wan26_i2i-interleave": interleave,
    }


def test_every_models_slowest_task_gets_an_image_url_a_fresh_session_outlives(
    example: Callable[[str], dict[str, Any]],
) -> None:
    slowest = _slowest(example)
    assert {body["model"] for body in slowest.values()} == set(MODELS)  # no model left out
    for name, body in slowest.items():
        timing = validate(body).timing
        ttl = image_url_ttl(timing)
        # the URL lasts past the task's deadline (not cut short by the cap) ...
        assert ttl == math.ceil(timing.deadline_s) + IMAGE_URL_MARGIN_S, name
        assert ttl <= MAX_IMAGE_URL_TTL_S, name
        # ... and a session just assumed signs it without being assumed again at once
        assert ttl + SESSION_MARGIN_S < IMAGE_READER_SESSION_S, name


def test_a_deadline_past_the_cap_is_cut_to_what_a_session_can_sign(
    example: Callable[[str], dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    timing = validate(example("wan26_i2v")).timing.model_copy(update={"deadline_s": 7200})
    assert image_url_ttl(timing) == MAX_IMAGE_URL_TTL_S
    assert "deadline past the longest image URL" in caplog.text
