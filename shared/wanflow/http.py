"""The one table from wanflow errors to HTTP answers, and the error bodies they carry."""

from __future__ import annotations

import base64
import json
from typing import Any

from wanflow.errors import ErrorBody, ErrorItem, InvalidRequest, WanflowError


class Unauthenticated(WanflowError):
    """A request reached a handler without a tenant from the authorizer: refused, never guessed."""

    code = "unauthorized"


def tenant_of(request_context: dict[str, Any] | None) -> str:
    """The tenant the API Gateway authorizer put in the request context.

    Fails closed: without one (a route deployed without the authorizer, a test event without
    it) this raises Unauthenticated, which `to_http` answers with 401.
    """
    authorizer = (request_context or {}).get("authorizer") or {}
    tenant = authorizer.get("tenant") if isinstance(authorizer, dict) else None
    if not isinstance(tenant, str) or not tenant:
        raise Unauthenticated("a valid API key is required: Authorization: Bearer <key>")
    return tenant


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """An opaque pagination cursor for a DynamoDB key."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str | None, tenant: str) -> dict[str, Any] | None:
    """The DynamoDB key of a cursor of this tenant's listing; ValueError when it is not one.

    The key goes to DynamoDB as ExclusiveStartKey: anything but one of ours (another shape,
    another tenant's partition) must stop here, as a 400, not fail there as a 500.
    """
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not valid") from None
    values = {}
    if isinstance(key, dict) and set(key) == {"pk", "sk", "gsi1pk", "gsi1sk"}:
        values = {name: value.get("S") for name, value in key.items() if isinstance(value, dict)}
    if (
        len(values) != 4
        or not all(isinstance(v, str) for v in values.values())
        or values["gsi1pk"] != f"TENANT#{tenant}"
        or values["sk"] != "TASK"
        or not str(values["pk"]).startswith("TASK#")
    ):
        raise ValueError("cursor is not valid")
    return dict(key)


def public_base_url(event: dict[str, Any], *, http: bool = False) -> str | None:
    """This API's URL, from what API Gateway itself puts in a proxy event (`domainName`,
    `stage`), never from a header the client chose: the upstream's callbacks are sent to it.

    HTTPS, as API Gateway serves; `http` (the local stack's configuration, plain HTTP on
    loopback) is the one way to get anything else.
    """
    context = event.get("requestContext") or {}
    domain, stage = context.get("domainName"), context.get("stage")
    if not domain or not stage:
        return None
    return f"{'http' if http else 'https'}://{domain}/{stage}"


def error_body(code: str, message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    """An error JSON of one problem."""
    item = ErrorItem(type=kind, code=code, message=message, param=param)
    return ErrorBody.of([item]).model_dump(mode="json")


def to_http(exc: WanflowError) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for an error a handler let through; never a 5xx for bad input."""
    from wanflow.submission import IdempotencyConflict, UpstreamDown, UpstreamRefused

    if isinstance(exc, Unauthenticated):
        return 401, error_body(exc.code, exc.message, "authentication_error", "Authorization")
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
