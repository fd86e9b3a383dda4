"""Each function is initialised with its own environment, as on Lambda, although the local stack
runs every handler in one process: a variable missing from one function's `Environment` fails
that function's init, and only that function's (another function having it does not help)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stackkit import event

from wanflow_local.aws import LocalAws
from wanflow_local.cfn import load_template
from wanflow_local.deploy import Stack, deploy

ROOT = Path(__file__).resolve().parents[2]
#: The function left without the variable, and the variable (every function needs it).
UNSET_IN, VARIABLE = "TasksFunction", "TABLE_NAME"


def scratch_template(directory: Path) -> Path:
    """template.yaml with VARIABLE moved from Globals into every function's own Environment but
    UNSET_IN's; its code and definitions are the repository's (linked)."""
    body = load_template(ROOT / "template.yaml")
    value = body["Globals"]["Function"]["Environment"]["Variables"].pop(VARIABLE)
    for logical_id, resource in body["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and logical_id != UNSET_IN:
            environment = resource["Properties"].setdefault("Environment", {})
            environment.setdefault("Variables", {})[VARIABLE] = value
    for name in ("functions", "shared", "statemachine"):
        (directory / name).symlink_to(ROOT / name, target_is_directory=True)
    path = directory / "template.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[tuple[LocalAws, Stack]]:
    """The scratch template deployed in a moto of its own."""
    with LocalAws() as aws:
        aws.reset()
        stack = deploy(
            aws, scratch_template(tmp_path), parameters={"UpstreamBaseUrl": "http://127.0.0.1:9"}
        )
        try:
            yield aws, stack
        finally:
            stack.close()


def invoke(aws: LocalAws, stack: Stack, logical_id: str, payload: Any) -> tuple[Any, bool]:
    """Invoke through Lambda (moto): the function's JSON answer, and whether it failed."""
    answer = aws.client("lambda").invoke(
        FunctionName=stack.ref(logical_id), Payload=json.dumps(payload)
    )
    return json.loads(answer["Payload"].read()), answer.get("FunctionError") == "Unhandled"


def test_a_variable_missing_from_one_function_fails_its_init_and_only_its(
    scratch: tuple[LocalAws, Stack],
) -> None:
    aws, stack = scratch
    # GIVEN every function but UNSET_IN has VARIABLE (one process runs them all: another
    # function's variables must not stand in for its own)
    assert VARIABLE not in stack.functions[UNSET_IN].environment
    assert all(
        VARIABLE in function.environment
        for logical_id, function in stack.functions.items()
        if logical_id != UNSET_IN
    )
    # WHEN UNSET_IN is invoked
    answer, failed = invoke(aws, stack, UNSET_IN, event("api/models"))
    # THEN it fails with its init error, which names the variable
    assert failed, answer
    assert answer["errorType"] == "ConfigError"
    assert f"environment variable {VARIABLE} is required" in answer["errorMessage"]
    # AND the functions that have it work: submit answers a broken body with a 400, and the
    # authorizer looks the key up in its table and refuses it
    submit = event("api/submit")
    submit["body"] = "{not json"
    answer, failed = invoke(aws, stack, "SubmitFunction", submit)
    assert (failed, answer["statusCode"]) == (False, 400), answer
    answer, failed = invoke(aws, stack, "AuthorizerFunction", event("api/authorizer-unknown-key"))
    assert (failed, answer["errorMessage"]) == (True, "Unauthorized")
