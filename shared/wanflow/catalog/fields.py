"""The building blocks of request schemas: the strict base and field types with their own rules.

A schema built on `Strict` takes JSON types exactly and refuses fields it does not declare. Each
field type here refuses a bad value with its own stable error code (`invalid_url`,
`base64_not_supported`, `invalid_callback_url`, an image's `ImageProblem` code), so the same
mistake gets the same answer whichever model it is sent to. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from wanflow.images import ImageProblem, check_data_uri_image, is_data_uri
from wanflow.schema import Schema

MAX_SEED = 2_147_483_647
MAX_CALLBACK_URL = 2048
#: Why a webhook URL with `user:password@` is refused: it is stored and shown in the task, the
#: delivery log and every payload.
CREDENTIALS_IN_URL = (
    "{} must not carry credentials (user:password@); authenticate the webhook by its signature "
    "(GET /v1/webhooks/secret)"
)


class Strict(Schema):
    """Base of every request schema: JSON types exactly, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _http_url(value: str, what: str, code: str = "invalid_url") -> str:
    if any(c.isspace() for c in value):
        raise PydanticCustomError(code, "{what} must not contain spaces", {"what": what})
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise PydanticCustomError(code, "{what} must be an http(s) URL", {"what": what})
    return value


def _url_only(value: str) -> str:
    if is_data_uri(value):
        raise PydanticCustomError(
            "base64_not_supported",
            "this model accepts only http(s) URLs here, not base64 data URIs; "
            "upload the file and pass its URL",
        )
    return _http_url(value, "a URL")


def image_ref(min_side: int, max_side: int) -> Callable[[str], str]:
    """A validator for an image given as a URL or a data URI (the data URI is checked here)."""

    def check(value: str) -> str:
        if not is_data_uri(value):
            return _http_url(value, "an image reference (URL or data URI)")
        try:
            check_data_uri_image(value, min_side, max_side)
        except ImageProblem as problem:
            raise PydanticCustomError(problem.code, problem.message) from None
        return value

    return check


def _callback_url(value: str) -> str:
    if len(value) > MAX_CALLBACK_URL:
        raise PydanticCustomError(
            "invalid_callback_url",
            "callback_url is {n} characters; at most {limit} are allowed",
            {"n": len(value), "limit": MAX_CALLBACK_URL},
        )
    if urlsplit(value).scheme.lower() != "https":
        raise PydanticCustomError("invalid_callback_url", "callback_url must be an HTTPS URL")
    if "@" in urlsplit(value).netloc:  # the same refusal as the API's (webhooks.check_url)
        raise PydanticCustomError("invalid_callback_url", CREDENTIALS_IN_URL.format("callback_url"))
    return _http_url(value, "callback_url", "invalid_callback_url")


#: An http(s) URL; base64 data refused with a clear message.
UrlOnly = Annotated[str, AfterValidator(_url_only)]
#: An HTTPS URL of at most 2048 characters.
CallbackUrl = Annotated[str, AfterValidator(_callback_url)]
#: A seed as every model documents it.
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="Random seed, 0..2147483647.")]
