"""The model catalog: one module per upstream model, and request validation across them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wanflow.catalog import wan22_i2v_flash, wan26, wan26_i2i, wan26_i2v, wan26_i2v_flash
from wanflow.catalog.base import ModelSpec, ValidatedRequest
from wanflow.errors import ErrorItem, InvalidRequest

MODELS: Mapping[str, ModelSpec[Any]] = {
    spec.id: spec
    for spec in (
        wan26_i2v.SPEC,
        wan26_i2v_flash.SPEC,
        wan22_i2v_flash.SPEC,
        wan26.SPEC,
        wan26_i2i.SPEC,
    )
}


def get_model(model_id: str) -> ModelSpec[Any]:
    """The catalog entry of an upstream model id; KeyError if there is none."""
    return MODELS[model_id]


def validate(body: Any) -> ValidatedRequest:
    """Validate a request body for whichever model it names.

    Returns the normalised request; raises InvalidRequest listing every problem, each naming
    its field. Nothing here does I/O except decoding data URIs held in the body.
    """
    if not isinstance(body, dict):
        raise InvalidRequest(
            [ErrorItem(code="invalid_body", message="the request body must be a JSON object")]
        )
    model = body.get("model")
    if model is None:
        raise InvalidRequest(
            [ErrorItem(code="missing_field", message="model is required", param="model")]
        )
    spec = MODELS.get(model) if isinstance(model, str) else None
    if spec is None:
        known = ", ".join(MODELS)
        raise InvalidRequest(
            [
                ErrorItem(
                    code="unknown_model",
                    message=f"model {model!r} is not one of: {known}",
                    param="model",
                )
            ]
        )
    return spec.validate(body)


__all__ = ["MODELS", "ModelSpec", "ValidatedRequest", "get_model", "validate"]
