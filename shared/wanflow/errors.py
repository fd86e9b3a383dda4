"""Errors wanflow raises, and the one error body every caller sees."""

from __future__ import annotations

from pydantic import Field

from wanflow.schema import Schema

INVALID_REQUEST = "invalid_request_error"


class ErrorItem(Schema):
    """One problem with a request, naming the field it is about."""

    type: str = Field(default=INVALID_REQUEST, description="Error category.")
    code: str = Field(
        description="Stable machine-readable code (the upstream's own for wan26_i2i)."
    )
    message: str = Field(description="What is wrong, for a person.")
    param: str | None = Field(
        default=None, description="Dotted path of the offending field, e.g. `parameters.duration`."
    )


class ErrorBody(Schema):
    """The error JSON of the API and of `wanflow validate`: the first problem, then all of them."""

    error: ErrorItem = Field(description="The first problem found.")
    errors: list[ErrorItem] = Field(description="Every problem found, in the order found.")

    @classmethod
    def of(cls, items: list[ErrorItem]) -> ErrorBody:
        """Build the body from a non-empty list of problems."""
        if not items:
            raise ValueError("an error body needs at least one problem")
        return cls(error=items[0], errors=items)


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
        super().__init__("; ".join(f"{i.param or 'body'}: {i.message}" for i in items))
        self.items = items

    def body(self) -> ErrorBody:
        """The error JSON for this failure."""
        return ErrorBody.of(self.items)
