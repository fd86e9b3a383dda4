"""wan26_i2i answers with the seed's own error codes, 001021001 to 001021018, one case each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wanflow.catalog import validate
from wanflow.errors import InvalidRequest

IMG = "https://a.example/cat.png"
CONTENT = "input.messages[0].content"


def body(content: Any = None, parameters: dict[str, Any] | None = None, **over: Any) -> Any:
    """A wan26_i2i request; keyword arguments replace whole top-level parts."""
    req: dict[str, Any] = {
        "model": "wan26_i2i",
        "input": {
            "messages": [
                {
                    "role": "user",
                    "content": content if content is not None else [{"text": "a"}, {"image": IMG}],
                }
            ]
        },
        "parameters": parameters or {},
    }
    req.update(over)
    return req


CASES: list[tuple[str, Any, str, str]] = [
    ("no input", body(input=None) | {"input": None}, "input", "001021001"),
    ("input missing", {"model": "wan26_i2i"}, "input", "001021001"),
    ("no message", body(input={"messages": []}), "input.messages", "001021002"),
    (
        "two messages",
        body(
            input={"messages": [{"role": "user", "content": [{"text": "a"}, {"image": IMG}]}] * 2}
        ),
        "input.messages",
        "001021002",
    ),
    (
        "messages not a list",
        body(input={"messages": {"role": "user"}}),
        "input.messages",
        "001021002",
    ),
    (
        "role assistant",
        body(
            input={"messages": [{"role": "assistant", "content": [{"text": "a"}, {"image": IMG}]}]}
        ),
        "input.messages[0].role",
        "001021003",
    ),
    (
        "content a string",
        body(input={"messages": [{"role": "user", "content": "draw a cat"}]}),
        CONTENT,
        "001021004",
    ),
    ("no text object", body([{"image": IMG}]), CONTENT, "001021005"),
    (
        "two text objects",
        body([{"text": "a"}, {"text": "b"}, {"image": IMG}]),
        CONTENT,
        "001021005",
    ),
    ("empty text", body([{"text": ""}, {"image": IMG}]), f"{CONTENT}[0].text", "001021006"),
    (
        "text too long",
        body([{"text": "t" * 2001}, {"image": IMG}]),
        f"{CONTENT}[0].text",
        "001021006",
    ),
    (
        "interleave with two images",
        body([{"text": "a"}, {"image": IMG}, {"image": IMG}], {"enable_interleave": True}),
        CONTENT,
        "001021007",
    ),
    ("edit with no image", body([{"text": "a"}]), CONTENT, "001021008"),
    ("edit with five images", body([{"text": "a"}] + [{"image": IMG}] * 5), CONTENT, "001021008"),
    (
        "negative prompt too long",
        body(parameters={"negative_prompt": "n" * 501}),
        "parameters.negative_prompt",
        "001021009",
    ),
    (
        "interleave with n=2",
        body([{"text": "a"}], {"enable_interleave": True, "n": 2}),
        "parameters.n",
        "001021010",
    ),
    ("n=5", body(parameters={"n": 5}), "parameters.n", "001021011"),
    (
        "max_images in edit mode",
        body(parameters={"max_images": 2}),
        "parameters.max_images",
        "001021012",
    ),
    (
        "max_images=6",
        body([{"text": "a"}], {"enable_interleave": True, "max_images": 6}),
        "parameters.max_images",
        "001021013",
    ),
    ("seed too big", body(parameters={"seed": 2**31}), "parameters.seed", "001021014"),
    ("size with x", body(parameters={"size": "1024x1024"}), "parameters.size", "001021015"),
    ("size too small", body(parameters={"size": "512*512"}), "parameters.size", "001021016"),
    ("size too flat", body(parameters={"size": "2400*400"}), "parameters.size", "001021017"),
    ("size not integers", body(parameters={"size": "1024*1e3"}), "parameters.size", "001021018"),
]


@pytest.mark.parametrize(
    ("request_body", "param", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_seed_code(request_body: Any, param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(request_body)
    assert (param, code) in [(e.param, e.code) for e in caught.value.items]


def test_every_validation_code_of_the_seed_is_exercised() -> None:
    assert {c[3] for c in CASES} == {f"0010210{n:02d}" for n in range(1, 19)}


def test_interleave_takes_zero_or_one_image_and_defaults_max_images() -> None:
    for content in ([{"text": "a"}], [{"text": "a"}, {"image": IMG}]):
        result = validate(body(content, {"enable_interleave": True}))
        assert result.mode == "interleave"
        assert result.request["parameters"]["max_images"] == 5
        assert result.expected_output.type == "image+text"


@pytest.mark.parametrize("images", [1, 4])
def test_edit_takes_one_to_four_images(images: int) -> None:
    result = validate(body([{"text": "a"}] + [{"image": IMG}] * images, {"n": 4}))
    assert result.mode == "edit"
    assert result.expected_output.max_images == 4


def test_a_content_object_holds_text_or_image_not_both() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(body([{"text": "a", "image": IMG}, {"image": IMG}]))
    assert (f"{CONTENT}[0]", "invalid_content_part") in [
        (e.param, e.code) for e in caught.value.items
    ]


def test_prompt_extend_in_interleave_mode_is_a_warning(
    example: Callable[[str], dict[str, Any]],
) -> None:
    req = example("wan26_i2i-interleave")
    req["parameters"]["prompt_extend"] = False
    result = validate(req)
    assert [(w.param, w.code) for w in result.warnings] == [("parameters.prompt_extend", "ignored")]


def test_image_checks_use_the_i2i_side_range(data_uri: Callable[..., str]) -> None:
    assert validate(body([{"text": "a"}, {"image": data_uri("JPEG", 384, 5000)}])).mode == "edit"
    for w, h in ((383, 400), (400, 5001)):
        with pytest.raises(InvalidRequest) as caught:
            validate(body([{"text": "a"}, {"image": data_uri("JPEG", w, h)}]))
        assert [(e.param, e.code) for e in caught.value.items] == [
            (f"{CONTENT}[1].image", "image_dimensions")
        ]
