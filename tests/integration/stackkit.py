"""Helpers of the lifecycle tests: events from events/, and submitting through the handler.

A module of its own so the test files import it by a unique name.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from wanflow_local.stack import LocalStack

EVENTS = Path(__file__).resolve().parents[2] / "events"
#: 1 upstream second = 20 ms: the slowest example (about 130 s upstream) takes about 3 s.
STACK_TIME_SCALE = 0.02


def event(name: str) -> dict[str, Any]:
    """A fresh copy of an event from events/, e.g. "api/submit"."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def request(name: str) -> dict[str, Any]:
    """A valid example request body from events/requests/valid."""
    return event(f"requests/valid/{name}")


def invoke(stack: LocalStack, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Invoke a function of the stack through Lambda (moto), returning its JSON answer."""
    answer = stack.aws.client("lambda").invoke(
        FunctionName=stack.stack.ref(function), Payload=json.dumps(payload)
    )
    result: dict[str, Any] = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise AssertionError(f"{function} failed: {result}")
    return result


def submit(
    stack: LocalStack, body: Any, *, key: str | None = None, tenant: str = "acme"
) -> tuple[int, dict[str, Any]]:
    """Invoke the submit function with events/api/submit.json carrying `body`.

    The event says the API was reached at the local API Gateway, so the upstream's callbacks
    come back through it to the callback function. Returns the status code and the JSON body.
    """
    ev = event("api/submit")
    ev["body"] = json.dumps(body)
    host = stack.api.url.split("/")[2]
    ev["headers"].update({"Host": host, "X-Forwarded-Proto": "http"})
    ev["headers"].pop("Idempotency-Key")
    if key is not None:
        ev["headers"]["Idempotency-Key"] = key
    ev["requestContext"]["domainName"] = host
    ev["requestContext"]["authorizer"] = {"tenant": tenant}
    answer = invoke(stack, "SubmitFunction", ev)
    return int(answer["statusCode"]), json.loads(answer["body"])
