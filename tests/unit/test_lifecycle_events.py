"""events/lifecycle/*.json are what the state machine sends the lifecycle function: each one is
the Payload of one of its Task states, the JSONPath fields filled in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events" / "lifecycle").glob("*.json"))


def _payloads() -> dict[str, dict[str, Any]]:
    """The Payload of each Task state invoking the lifecycle function, by its `step`."""
    definition = json.loads(
        (ROOT / "statemachine" / "task_lifecycle.asl.json").read_text(encoding="utf-8")
    )
    payloads = {}
    for state in definition["States"].values():
        parameters = state.get("Parameters") or {}
        if parameters.get("FunctionName") == "${LifecycleFunctionArn}":
            payload = parameters["Payload"]
            payloads[payload["step"]] = payload
    return payloads


def test_there_are_events_of_the_lifecycle() -> None:
    assert {p.name for p in EVENTS} >= {
        "await-callback.json",
        "poll-upstream.json",
        "finalize.json",
    }


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_an_event_is_the_payload_of_a_state_of_the_machine(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    payload = _payloads().get(event["step"])
    assert payload is not None, f"no Task state sends step {event['step']!r}"
    # the same fields: the state's `name.$` ones filled in, its constants as they are
    assert set(event) == {name.removesuffix(".$") for name in payload}
    constants = {name: value for name, value in payload.items() if not name.endswith(".$")}
    assert {name: event[name] for name in constants} == constants
