"""The one table from wanflow errors to HTTP answers, and the error bodies they carry."""

from __future__ import annotations

from typing import Any

from wanflow.errors import ErrorBody, ErrorItem, InvalidRequest, WanflowError


def error_body(code: str, message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    """An error JSON of one problem."""
    item = ErrorItem(type=kind, code=code, message=message, param=param)
    return ErrorBody.of([item]).model_dump(mode="json")


def to_http(exc: WanflowError) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for an error a handler let through; never a 5xx for bad input."""
    from wanflow.submission import IdempotencyConflict, UpstreamDown, UpstreamRefused

    if isinstance(exc, InvalidRequest):
        return 400, exc.body().model_dump(mode="json")
    if isinstance(exc, IdempotencyConflict):
        return 409, error_body(exc.code, exc.message, "idempotency_error", "Idempotency-Key")
    if isinstance(exc, UpstreamRefused):
        body = error_body(exc.upstream_code or exc.code, exc.message, "upstream_error")
        return 400, {**body, "task": exc.task.public().model_dump(mode="json")}
    if isinstance(exc, UpstreamDown):
        body = error_body(exc.code, exc.message, "upstream_error")
        return 503, {**body, "task": exc.task.public().model_dump(mode="json")}
    return 500, error_body(exc.code, "internal error", "api_error")
