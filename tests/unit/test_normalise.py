"""What validation returns: defaults applied, truncations warned, mode, output and timing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wanflow.catalog import MODELS, validate
from wanflow.catalog.wan26 import SIZES

Example = Callable[[str], dict[str, Any]]


def test_wan26_i2v_defaults_are_applied(example: Example) -> None:
    result = validate({"model": "wan26_i2v", "input": {"img_url": "https://a.example/x.png"}})
    assert result.request["parameters"] == {
        "resolution": "1080P",
        "duration": 5,
        "prompt_extend": True,
        "watermark": False,
        "audio": True,
        "shot_type": "single",
    }
    assert result.warnings == []


def test_flash_defaults_are_applied() -> None:
    result = validate(
        {
            "model": "wan2.6-image-to-video-flash",
            "prompt": "p",
            "image_urls": ["https://a.example/x.png"],
        }
    )
    assert result.request["duration"] == 5
    assert result.request["quality"] == "720p"
    assert result.request["prompt_extend"] is True
    assert result.request["model_params"] == {"audio": True}
    assert result.accepts_callback is True


def test_wan22_defaults_are_applied() -> None:
    result = validate({"model": "wan22_i2v_flash", "input": {"img_url": "https://a.example/x"}})
    assert result.request["parameters"] == {
        "resolution": "720P",
        "duration": 5,
        "prompt_extend": True,
        "watermark": False,
    }


@pytest.mark.parametrize(
    ("name", "path", "limit"),
    [
        ("wan26_i2v", ("input", "prompt"), 1500),
        ("wan2.6-image-to-video-flash", ("prompt",), 1500),
        ("wan22_i2v_flash", ("input", "prompt"), 800),
        ("wan22_i2v_flash", ("input", "negative_prompt"), 500),
    ],
)
def test_overlong_text_is_truncated_before_sending_with_a_warning(
    example: Example, name: str, path: tuple[str, ...], limit: int
) -> None:
    def with_text(n: int) -> Any:
        body = example(name)
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "字" * n  # a Chinese character counts as one
        return validate(body)

    at_limit = with_text(limit)
    assert at_limit.warnings == []
    over = with_text(limit + 1)
    node = over.request
    for key in path:
        node = node[key]
    assert node == "字" * limit
    assert [(w.param, w.code) for w in over.warnings] == [(".".join(path), "truncated")]


def test_wan26_i2v_ignored_combinations_are_warnings(example: Example) -> None:
    body = example("wan26_i2v-audio")
    body["parameters"].update(prompt_extend=False, audio=False)
    result = validate(body)
    assert sorted((w.param, w.code) for w in result.warnings) == [
        ("input.audio_url", "ignored"),
        ("parameters.shot_type", "ignored"),
    ]


def test_wan26_mode_is_routed_by_fields(example: Example) -> None:
    assert validate(example("wan2.6-t2v")).mode == "t2v"
    assert validate(example("wan2.6-i2v")).mode == "i2v"
    assert validate(example("wan2.6-r2v")).mode == "r2v"
    r2v_no_prompt = example("wan2.6-r2v")
    del r2v_no_prompt["prompt"]
    assert validate(r2v_no_prompt).mode == "r2v"


@pytest.mark.parametrize(("aspect", "resolution"), sorted(SIZES))
def test_wan26_expected_size_follows_the_seed_table(
    example: Example, aspect: str, resolution: str
) -> None:
    body = example("wan2.6-t2v") | {"aspect_ratio": aspect, "resolution": resolution}
    assert validate(body).expected_output.size == SIZES[(aspect, resolution)]


def test_wan26_defaults_to_16_9_1080p_except_in_i2v(example: Example) -> None:
    t2v = validate(example("wan2.6-t2v"))
    assert (t2v.request["aspect_ratio"], t2v.expected_output.size) == ("16:9", "1920*1080")
    i2v = validate(example("wan2.6-i2v"))
    assert "aspect_ratio" not in i2v.request
    assert i2v.expected_output.size is None


def test_wan26_ignores_shot_type_and_audio_false_in_i2v_with_warnings(example: Example) -> None:
    result = validate(example("wan2.6-i2v") | {"shot_type": "multi", "audio": False})
    assert sorted((w.param, w.code) for w in result.warnings) == [
        ("audio", "ignored"),
        ("shot_type", "ignored"),
    ]
    assert "shot_type" not in result.request


def test_wan26_seed_table_has_every_combination() -> None:
    assert len(SIZES) == 10


def test_timing_is_ordered_and_1080p_15s_takes_longest(example: Example) -> None:
    for name in ("wan2.6-t2v", "wan26_i2v", "wan22_i2v_flash", "wan26_i2i-edit"):
        t = validate(example(name)).timing
        assert t.low_s < t.expected_s < t.high_s < t.deadline_s
    flash = validate(example("wan2.6-image-to-video-flash")).timing
    assert flash.low_s >= 30
    assert flash.high_s <= 95
    long = validate(example("wan2.6-t2v") | {"duration": 15, "resolution": "1080p"}).timing
    assert 240 <= long.high_s <= 330


def test_each_model_describes_itself() -> None:
    for spec in MODELS.values():
        entry = spec.describe()
        assert entry["id"] == spec.id
        assert entry["request_schema"]["properties"]["model"]
