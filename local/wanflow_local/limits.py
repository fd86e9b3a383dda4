"""AWS's limits that the local adapters hold to, and the checks they share.

moto and a hand-made API Gateway are more forgiving than AWS: a function may run past its
Timeout, answer with 20 MB, or take a minute behind the API. Each constant below is AWS's own,
with the document it comes from; `aws.py` (Lambda, Step Functions) and `apigw.py` (API Gateway)
apply them, so code that only works thanks to the local stack's leniency fails here first.

What moto 5.2.5 already enforces is not repeated here: a state's or task's result over 256 KB
(`States.DataLimitExceeded`), SQS's message size, `DelaySeconds` and visibility timeout limits,
and (on the Lambda API only, near 6 MB) a response too large.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Final, TypeVar

T = TypeVar("T")

API_INTEGRATION_TIMEOUT_S: Final = 29.0
"""API Gateway REST: "Maximum integration timeout … 50 milliseconds – 29 seconds" (the default),
then its own 504 (`INTEGRATION_TIMEOUT`).
https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"""

API_PAYLOAD_MAX_BYTES: Final = 10 * 1024 * 1024
"""API Gateway REST: "Payload size 10 MB" (10,485,760 bytes), refused with 413
(`REQUEST_TOO_LARGE`). Same page as above."""

LAMBDA_SYNC_REQUEST_MAX_BYTES: Final = 6 * 1024 * 1024
"""Lambda: "Invocation payload (request and response) 6 MB each for synchronous" — the Invoke API
answers `RequestEntityTooLargeException` (HTTP 413) "Request must be smaller than 6291456 bytes
for the InvokeFunction operation".
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"""

LAMBDA_SYNC_RESPONSE_MAX_BYTES: Final = 6 * 1024 * 1024 + 100
"""Lambda's response limit as it answers it: "Response payload size exceeded maximum allowed
payload size (6291556 bytes)." (`Function.ResponseSizeTooLarge`), 100 bytes over the request's;
moto 5.2.5 words its own check (Lambda API only) the same way. Same page as above."""

SFN_PAYLOAD_MAX_BYTES: Final = 256 * 1024
"""Step Functions: "Maximum input or output size for a task, state, or execution: 256 KiB of data
as a UTF-8 encoded string"; StartExecution's `input` has "Maximum length of 262144".
https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html
https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html"""

SQS_MESSAGE_MAX_BYTES: Final = 1024 * 1024
"""SQS: 1 MiB a message since August 2025 (256 KiB before), as moto 5.2.5 enforces it.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"""

SQS_DELAY_MAX_S: Final = 900
"""SQS: "DelaySeconds … 0 to 900 (15 minutes)" (moto enforces it). Same page as above."""

SQS_VISIBILITY_MAX_S: Final = 43_200
"""SQS: visibility timeout at most 12 hours (moto enforces it). Same page as above."""


def lambda_request_refusal(size: int) -> str | None:
    """Lambda's message refusing a synchronous invocation payload of `size` bytes, if too large."""
    if size <= LAMBDA_SYNC_REQUEST_MAX_BYTES:
        return None
    return (
        f"Request must be smaller than {LAMBDA_SYNC_REQUEST_MAX_BYTES} bytes for the "
        "InvokeFunction operation"
    )


def lambda_response_refusal(size: int) -> str | None:
    """Lambda's error message for a function response of `size` bytes, if too large."""
    if size <= LAMBDA_SYNC_RESPONSE_MAX_BYTES:
        return None
    return (
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
        f"({LAMBDA_SYNC_RESPONSE_MAX_BYTES} bytes)."
    )


def sfn_input_refusal(text: str) -> str | None:
    """StartExecution's ValidationException message for an input over 256 KB, if it is."""
    if len(text.encode("utf-8")) <= SFN_PAYLOAD_MAX_BYTES:
        return None
    return (
        "1 validation error detected: Value at 'input' failed to satisfy constraint: "
        f"Member must have length less than or equal to {SFN_PAYLOAD_MAX_BYTES}"
    )


class Late:
    """What `call_with_deadline` returns when the deadline passed first."""


LATE: Final = Late()


def call_with_deadline(
    work: Callable[[], T], timeout_s: float, *, name: str, on_late: Callable[[], None] | None = None
) -> T | Late:
    """Run `work` on a thread of its own and wait for it at most `timeout_s` seconds.

    Its result, or `LATE` when the deadline passed first; an exception it raises is raised here.
    A thread cannot be stopped: late work runs on to its end in the background (its side effects
    happen, unlike on AWS where the sandbox is frozen or killed), then `on_late` is called and
    its result dropped. The thread runs in a copy of the caller's context variables, so what the
    caller set (logging keys, Powertools' state) is seen, and what `work` sets stays its own.
    """
    future: Future[T] = Future()
    context = contextvars.copy_context()
    gave_up = threading.Event()

    def run() -> None:
        try:
            future.set_result(context.run(work))
        except BaseException as error:  # handed to the waiting caller, re-raised there
            future.set_exception(error)
        if gave_up.is_set() and on_late is not None:
            on_late()

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        return future.result(timeout=max(0.0, timeout_s))
    except TimeoutError:
        if future.done():  # it ended in the instant between the timeout and here
            return future.result()
        gave_up.set()
        return LATE
