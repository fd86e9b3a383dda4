"""A permission missing from one role, in a scratch copy of template.yaml, fails here as on AWS.

Each test deploys its own stack from an edited copy of the template (one moto per process at a
time: this module uses no other stack).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import local_stack, scratch_template

from stackkit import STACK_TIME_SCALE, request

#: SubmitFunction's statement allowing it to start the task's execution (its first occurrence:
#: UploadFunction, further down, has the same one).
START_EXECUTION = """\
            - Effect: Allow
              Action: [states:StartExecution]
              Resource: !Ref TaskLifecycle
"""
#: The state machine role's permission to invoke the lifecycle function.
INVOKE_LIFECYCLE = """\
        - LambdaInvokePolicy:
            FunctionName: !Ref LifecycleFunction
"""


def _without(text: str, statement: str) -> str:
    assert statement in text, "the template no longer has this statement: update the test"
    return text.replace(statement, "", 1)


def _post(url: str, body: dict[str, object]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    return httpx.post(f"{url}/v1/tasks", json=body, headers=headers, timeout=30)


def test_submit_without_states_start_execution_is_refused_and_creates_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    template = scratch_template(tmp_path, lambda text: _without(text, START_EXECUTION))
    with local_stack(time_scale=STACK_TIME_SCALE, template=template) as stack:
        answer = _post(stack.api.url, request("wan26_t2v"))
        executions = stack.aws.client("stepfunctions").list_executions(
            stateMachineArn=stack.stack.ref("TaskLifecycle")
        )["executions"]
        created = stack.sim.tasks_created() if stack.sim is not None else None
    logs = capfd.readouterr()
    assert answer.status_code >= 500, answer.text
    assert executions == []
    assert created == []
    assert "AccessDeniedException" in logs.out + logs.err
    assert "states:StartExecution" in logs.out + logs.err


def test_a_state_machine_role_without_lambda_invoke_fails_the_execution(tmp_path: Path) -> None:
    template = scratch_template(tmp_path, lambda text: _without(text, INVOKE_LIFECYCLE))
    with local_stack(time_scale=STACK_TIME_SCALE, template=template) as stack:
        answer = _post(stack.api.url, request("wan26_t2v"))
        assert answer.status_code == 202, answer.text
        _, execution = stack.finish(answer.json()["id"], timeout=60)
        history = stack.history(answer.json()["id"])
    assert execution["status"] == "FAILED"
    failures = [
        json.dumps(event.get("taskFailedEventDetails") or {})
        for event in history
        if event["type"] == "TaskFailed"
    ]
    assert failures, "no task failed"
    assert all("AccessDeniedException" in failure for failure in failures)
    assert "lambda:InvokeFunction" in failures[0]
