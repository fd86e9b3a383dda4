"""Every Task state retries what AWS recommends retrying on a Lambda task, and the steps that
read the store retry StoreUnavailable (or everything)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "task_lifecycle.asl.json"
LAMBDA_TRANSIENT = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ServiceException",
    "Lambda.TooManyRequestsException",
}


def tasks() -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = json.loads(DEFINITION.read_text(encoding="utf-8"))["States"]
    return {name: state for name, state in states.items() if state["Type"] == "Task"}


def retried(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}


@pytest.mark.parametrize("name", sorted(tasks()))
def test_every_task_state_retries_lambdas_transient_errors(name: str) -> None:
    missing = LAMBDA_TRANSIENT - retried(tasks()[name])
    assert not missing, f"{name} does not retry {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(tasks()))
def test_every_task_state_retries_a_store_outage(name: str) -> None:
    errors = retried(tasks()[name])
    assert "StoreUnavailable" in errors or "States.ALL" in errors


def test_states_all_is_only_ever_the_last_retrier() -> None:
    for name, state in tasks().items():
        for retrier in state["Retry"][:-1]:
            assert "States.ALL" not in retrier["ErrorEquals"], name
