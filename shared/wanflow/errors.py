"""Errors wanflow raises, and the one error body every caller sees.

Each error says how the API answers it: its HTTP `status`, its `kind` (the body's `type`), its
`code`, and the field at fault (`param`). The API's one exception handler (`wanflow.api`) reads
nothing else, so an error is answered the same on every route; bad input is a 4xx, never a 5xx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

from wanflow.schema import Schema
from wanflow.task import Task

if TYPE_CHECKING:
    from wanflow.store import TaskRecord

#: The error kinds, each an error body's `type`.
INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
NOT_FOUND = "not_found"
CONFLICT = "conflict_error"
IDEMPOTENCY = "idempotency_error"
UPSTREAM = "upstream_error"
API = "api_error"
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


class ErrorWithTask(ErrorBody):
    """An error about a task that exists: the error, and the task as it now is."""

    task: Task | None = Field(
        default=None, description="The task as it now is (submit: recorded as failed)."
    )


def error_body(code: str, message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    """An error JSON of one problem."""
    item = ErrorItem(type=kind, code=code, message=message, param=param)
    return ErrorBody.of([item]).model_dump(mode="json")


class WanflowError(Exception):
    """Base of every error wanflow raises on purpose, and how the API answers it.

    A subclass sets `code`, and `status`, `kind` and `param` when it can reach a client. One
    about a task that exists sets `task`: the API adds the task, as `GET /v1/tasks/{id}` shows
    it, to the body. A 500 is a fault of wanflow or of its deployment: its message is logged,
    never sent (`public_message`).
    """

    code = "internal_error"
    status = 500
    kind = API
    param: str | None = None
    #: The task the error is about, when it exists (answered as the body's `task`).
    task: TaskRecord | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def public_message(self) -> str:
        """What the client is told."""
        return "internal error" if self.status == 500 else self.message

    def error_json(self) -> dict[str, Any]:
        """The error JSON (without `task`, which the API adds from `task`)."""
        return error_body(self.code, self.public_message(), self.kind, self.param)


class InvalidRequest(WanflowError):
    """A request broke one or more of its model's documented rules."""

    code = "invalid_request"
    status = 400
    kind = INVALID_REQUEST

    def __init__(self, items: list[ErrorItem]) -> None:
        listed = "; ".join(f"{i.param or 'body'}: {i.message}" for i in items[:MAX_LISTED_ERRORS])
        more = len(items) - MAX_LISTED_ERRORS
        super().__init__(listed + (f"; and {more} more" if more > 0 else ""))
        self.items = items

    def body(self) -> ErrorBody:
        """The error JSON for this failure: every problem, each naming its field."""
        return ErrorBody.of(self.items)

    def error_json(self) -> dict[str, Any]:
        return self.body().model_dump(mode="json")


class TaskNotFound(WanflowError):
    """No task has that id (for the API: none of the caller's, as another tenant's task is
    answered exactly as a missing one)."""

    code = "task_not_found"
    status = 404
    kind = NOT_FOUND
    param = "task_id"
