"""What each catalog entry declares agrees with its own request schema.

The shared code of `ModelSpec` works from declarations (`text_limits`, `image_slot`, `modes`);
a declaration that names a field the schema does not have would silently do nothing.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from wanflow.catalog import MODELS, get_model
from wanflow.catalog.base import ModelSpec


def _field_type(model: type[BaseModel], path: str) -> Any:
    """The annotation of the field at a dotted path, through nested request models."""
    node: Any = model
    for key in path.split("."):
        assert isinstance(node, type), f"{path}: {key} is not in a nested object"
        assert issubclass(node, BaseModel), f"{path}: {key} is not in a nested object"
        assert key in node.model_fields, f"{path}: no field {key}"
        annotation = node.model_fields[key].annotation
        options = (
            get_args(annotation)
            if get_origin(annotation) in (Union, types.UnionType)
            else (annotation,)
        )
        node = next((o for o in options if o is not type(None)), annotation)
    return node


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_every_text_limit_names_a_text_field_of_the_request(model_id: str) -> None:
    spec = get_model(model_id)
    for path, limit in spec.text_limits:
        assert _field_type(spec.request_model, path) is str, path
        assert limit > 0


def test_the_text_limits_are_the_seeds() -> None:
    limits = {model_id: dict(spec.text_limits) for model_id, spec in MODELS.items()}
    assert limits == {
        "wan26_i2v": {"input.prompt": 1500},
        "wan2.6-image-to-video-flash": {"prompt": 1500},
        "wan22_i2v_flash": {"input.prompt": 800, "input.negative_prompt": 500},
        "wan2.6": {},
        "wan26_i2i": {},
    }


def test_a_model_of_several_modes_routes_each_request_itself() -> None:
    for spec in MODELS.values():
        routes = type(spec).mode_of is not ModelSpec.mode_of
        assert routes == (len(spec.modes) > 1), spec.id


@pytest.mark.parametrize(
    "name",
    ["wan2.6-i2v", "wan2.6-image-to-video-flash", "wan22_i2v_flash", "wan26_i2i-edit", "wan26_i2v"],
)
def test_an_uploaded_image_goes_where_the_model_reads_it(
    name: str, example: Callable[[str], dict[str, Any]]
) -> None:
    # GIVEN a valid request of a model that takes an input image
    body = example(name)
    spec = get_model(body["model"])
    url = "https://uploads.example/in.png"
    # WHEN the image of an upload is put in
    with_image = spec.with_image(body, url)
    # THEN the request stays valid, sends the URL upstream, and the original is untouched
    assert url in json.dumps(spec.validate(with_image).request)
    assert url not in json.dumps(body)
