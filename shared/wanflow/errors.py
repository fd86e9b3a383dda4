"""Errors wanflow raises, and the one error body every caller sees."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from wanflow.schema import Schema

INVALID_REQUEST = "invalid_request_error"
#: The most problems an error body lists; `more_errors` counts the rest. A body of 100,000
#: unknown fields would otherwise answer some 14 MB, over Lambda's 6 MB response limit.
MAX_LISTED_ERRORS = 50
#: Longest message and param kept in an error item. Both may quote the client's input (an
#: unknown field's name, a value that is not one of the choices); 50 items of these stay far
#: under 6 MB even when every character becomes a 12-byte JSON escape.
MAX_MESSAGE_CHARS = 1000
MAX_PARAM_CHARS = 300


def _clip(limit: int) -> AfterValidator:
    def clip(value: str | None) -> str | None:
        if value is None or len(value) <= limit:
            return value
        return value[: limit - 1] + "…"

    return AfterValidator(clip)


class ErrorItem(Schema):
    """One problem with a request, naming the field it is about."""

    type: str = Field(default=INVALID_REQUEST, description="Error category.")
    code: str = Field(
        description="Stable machine-readable code (the upstream's own for wan26_i2i)."
    )
    message: Annotated[str, _clip(MAX_MESSAGE_CHARS)] = Field(
        description=f"What is wrong, for a person (at most {MAX_MESSAGE_CHARS} characters)."
    )
    param: Annotated[str | None, _clip(MAX_PARAM_CHARS)] = Field(
        default=None,
        description="Dotted path of the offending field, e.g. `parameters.duration` (at most "
        f"{MAX_PARAM_CHARS} characters).",
    )


class ErrorBody(Schema):
    """The error JSON of the API and of `wanflow validate`: the first problem, then the others."""

    error: ErrorItem = Field(description="The first problem found.")
    errors: list[ErrorItem] = Field(
        description=f"The problems found, in the order found: the first {MAX_LISTED_ERRORS}."
    )
    more_errors: int = Field(
        default=0,
        ge=0,
        description=f"How many more problems were found than `errors` lists (it lists at most "
        f"{MAX_LISTED_ERRORS}); 0 when it lists them all.",
    )

    @classmethod
    def of(cls, items: list[ErrorItem]) -> ErrorBody:
        """Build the body from a non-empty list of problems, listing at most MAX_LISTED_ERRORS."""
        if not items:
            raise ValueError("an error body needs at least one problem")
        listed = items[:MAX_LISTED_ERRORS]
        return cls(error=items[0], errors=listed, more_errors=len(items) - len(listed))


class WanflowError(Exception):
    """Base of every error wanflow raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(WanflowError):
    """A request broke one or more of its model's documented rules."""

    code = "invalid_request"

    def __init__(self, items: list[ErrorItem]) -> None:
        listed = "; ".join(f"{i.param or 'body'}: {i.message}" for i in items[:MAX_LISTED_ERRORS])
        more = len(items) - MAX_LISTED_ERRORS
        super().__init__(listed + (f"; and {more} more" if more > 0 else ""))
        self.items = items

    def body(self) -> ErrorBody:
        """The error JSON for this failure."""
        return ErrorBody.of(self.items)
