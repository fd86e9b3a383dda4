"""Reading API Gateway proxy requests: the one parser of every route's body, the tenant the
authorizer vouched for, pagination cursors, the invocation's deadline and the API's own URL.

Every refusal is a `RequestRefused` (400, 413 or 415, naming the field), raised before anything
acts on the request; the API's exception handler (`wanflow.api`) answers it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from typing import Any

from wanflow import keys
from wanflow.errors import AUTHENTICATION, INVALID_REQUEST, WanflowError

#: Largest request body read. Lambda refuses a synchronous event over 6 MB (6,291,456 bytes), and
#: on AWS API Gateway answers that itself before any function runs (the local stack passes any
#: size, so this is where it is refused here). The event is the body plus its headers and request
#: context (API Gateway takes up to 10 KB of headers), hence the margin: a larger body never
#: reaches a function on AWS.
MAX_BODY_BYTES = 6 * 1024 * 1024 - 64 * 1024
#: Deepest nesting of arrays and objects read. No request of any model nests past 6; much deeper
#: JSON only makes recursive code (pydantic, json.dumps, boto3's serializer) hit the interpreter's
#: recursion limit.
MAX_DEPTH = 64
#: Longest query parameter value read (API Gateway caps a whole URL near 8 KB; loopback does not).
MAX_QUERY_CHARS = 2048
#: What to do instead of an oversized body, in the 413's message.
UPLOAD_HINT = (
    "send a large image with POST /v1/uploads (a presigned PUT of up to 10 MB, then the task) "
    "or by URL, not as a data URI"
)


class RequestRefused(WanflowError):
    """A request whose body or parameters cannot be read: too large (413), of a type that is not
    JSON (415), or not well-formed (400). Raised before anything acts on the request."""

    kind = INVALID_REQUEST

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


class Unauthenticated(WanflowError):
    """A request reached a handler without a tenant from the authorizer: refused, never guessed."""

    code = "unauthorized"
    status = 401
    kind = AUTHENTICATION
    param = "Authorization"


def tenant_of(request_context: dict[str, Any] | None) -> str:
    """The tenant the API Gateway authorizer put in the request context.

    Fails closed: without one (a route deployed without the authorizer, a test event without
    it) this raises Unauthenticated: 401.
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
    """The DynamoDB key of a cursor of this tenant's listing; RequestRefused (400, naming
    `cursor`) when it is not one.

    The key goes to DynamoDB as ExclusiveStartKey: anything but one of ours (another shape,
    another tenant's partition) must stop here, as a 400, not fail there as a 500.
    """
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        raise _bad_cursor() from None
    values = {}
    if isinstance(key, dict) and set(key) == {"pk", "sk", "gsi1pk", "gsi1sk"}:
        values = {name: value.get("S") for name, value in key.items() if isinstance(value, dict)}
    if (
        len(values) != 4
        or not all(isinstance(v, str) for v in values.values())
        or values["gsi1pk"] != keys.tenant_tasks(tenant)
        or values["sk"] != keys.TASK_SK
        or keys.task_id_of(str(values["pk"])) is None
    ):
        raise _bad_cursor()
    return dict(key)


def _bad_cursor() -> RequestRefused:
    message = "cursor is not valid: pass `next_cursor` of the previous page, as it was given"
    return RequestRefused(400, "invalid_value", message, "cursor")


def invocation_deadline(context: Any) -> float | None:
    """When a Lambda invocation must have answered, in time.monotonic() seconds: its function's
    Timeout, which for the API's functions is under API Gateway's 29 s (None without a Lambda
    context: tests, the CLI)."""
    if context is None:
        return None
    left_ms: int = context.get_remaining_time_in_millis()
    return time.monotonic() + left_ms / 1000


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


# --- reading requests: the one parser of every route's body and query --------------------------


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if str(key).lower() == name:
            return None if value is None else str(value)
    return None


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type declares JSON: none at all, `application/json` or
    `application/<anything>+json`, with any parameters but a charset other than UTF-8."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if not media:
        return True
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            return False
    return True


def _body_bytes(event: dict[str, Any], limit: int) -> bytes:
    raw = event.get("body")
    if not raw:
        return b""
    if not isinstance(raw, str):
        raise RequestRefused(400, "invalid_body", "the body cannot be read")
    if event.get("isBase64Encoded"):
        # Four base64 characters carry three bytes: an oversized body is refused undecoded.
        if len(raw) // 4 * 3 > limit + 3:
            raise _too_large(limit)
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestRefused(400, "invalid_body", "the body cannot be read") from None
    if len(raw) > limit:  # a character is at least a byte: no need to encode it
        raise _too_large(limit)
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in the event's string
        raise _not_utf8() from None


def _too_large(limit: int) -> RequestRefused:
    message = f"the request body is over {limit:,} bytes, the most this route takes"
    if limit == MAX_BODY_BYTES:
        message += f" (Lambda's 6 MB request limit): {UPLOAD_HINT}"
    return RequestRefused(413, "request_too_large", message)


def _not_utf8() -> RequestRefused:
    return RequestRefused(400, "invalid_encoding", "the body is not valid UTF-8 (JSON must be)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_body(
    event: dict[str, Any], *, optional: bool = False, max_bytes: int = MAX_BODY_BYTES
) -> dict[str, Any] | None:
    """The JSON object of an API Gateway proxy event's body, refused (RequestRefused) unless it
    is small enough, declared as JSON (or not declared), UTF-8, well-formed, an object, at most
    MAX_DEPTH deep, and made of valid Unicode strings and finite numbers.

    `optional`: an empty body is None rather than refused; `max_bytes`: a route's own, smaller
    limit (413 beyond it). Nothing recursive sees the value before it passed: the C JSON scanner
    stops at the interpreter's recursion limit with a RecursionError (answered here as too
    deep), and the depth walk is iterative.
    """
    content_type = _header(event, "content-type")
    data = _body_bytes(event, max_bytes)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not is_json_media_type(content_type):
        message = f"Content-Type {content_type!r} is not JSON: send the body as application/json"
        raise RequestRefused(415, "unsupported_media_type", message, "Content-Type")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8() from None
    if not text.strip():
        if optional:
            return None
        raise RequestRefused(400, "invalid_json", "the body must be a JSON object; it is empty")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise RequestRefused(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        message = f"the body must be a JSON object, not {type(value).__name__}"
        raise RequestRefused(400, "invalid_body", message)
    check_json_value(value)
    return value


def _too_deep() -> RequestRefused:
    message = f"the body nests arrays and objects more than {MAX_DEPTH} levels deep"
    return RequestRefused(400, "nesting_too_deep", message)


def _path(parts: tuple[str | int, ...]) -> str | None:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def _bad_string(parts: tuple[str | int, ...], what: str) -> RequestRefused:
    param = _path(parts)
    message = f"{param or 'body'}: {what} is not valid Unicode (a lone surrogate such as \\ud800)"
    return RequestRefused(400, "invalid_string", message, param)


def _valid_text(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_json_value(value: Any) -> None:
    """Refuse (RequestRefused, 400) a parsed JSON value nested over MAX_DEPTH, holding a string
    or field name that is not valid Unicode, or a number that is not finite; iterative, so any
    depth is safe to check."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, parts = stack.pop()
        if len(parts) >= MAX_DEPTH:
            raise _too_deep()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(key, str) and not _valid_text(key):
                raise _bad_string(parts, "a field name")
            if isinstance(child, dict | list):
                stack.append((child, (*parts, key)))
            elif isinstance(child, str):
                if not _valid_text(child):
                    raise _bad_string((*parts, key), "the string")
            elif isinstance(child, float) and not math.isfinite(child):
                param = _path((*parts, key))
                message = f"{param}: the number is out of range"
                raise RequestRefused(400, "invalid_number", message, param)


def plausible_id(value: str) -> bool:
    """Whether a path's id could name a task at all: valid Unicode and short. Anything else is
    answered as not found without asking DynamoDB, which refuses a partition key over 2 KB
    (moto does not) and botocore a string it cannot encode, both as a 5xx."""
    return len(value) <= 128 and _valid_text(value)
