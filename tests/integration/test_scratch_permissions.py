"""A permission missing from one role, in a scratch copy of template.yaml, fails here as on AWS.

Each test deploys its own stack from an edited copy of the template (one moto per process at a
time: this module uses no other stack).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from stackkit import STACK_TIME_SCALE, request

from kit.waiting import wait_for
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import local_stack, scratch_template

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
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    template = scratch_template(tmp_path, lambda text: _without(text, START_EXECUTION))
    with local_stack(time_scale=STACK_TIME_SCALE, template=template) as stack:
        answer = _post(stack.api.url, request("wan2.6-t2v"))
        executions = stack.aws.client("stepfunctions").list_executions(
            stateMachineArn=stack.stack.ref("TaskLifecycle")
        )["executions"]
        created = stack.sim.tasks_created() if stack.sim is not None else None
    # The function failed (API Gateway's 502, in wanflow's shape) on the refused call, before
    # anything was created upstream: nothing was spent.
    assert answer.status_code == 502, answer.text
    assert executions == []
    assert created == []
    (failure,) = [r for r in caplog.records if r.getMessage() == "function failed"]
    error = json.dumps(failure.__dict__.get("payload"))
    assert "AccessDeniedException" in error
    assert "assumed-role/wanflow-SubmitFunctionRole" in error
    assert "states:StartExecution" in error


def test_a_state_machine_role_without_lambda_invoke_fails_its_tasks(tmp_path: Path) -> None:
    template = scratch_template(tmp_path, lambda text: _without(text, INVOKE_LIFECYCLE))
    with local_stack(time_scale=STACK_TIME_SCALE, template=template) as stack:
        answer = _post(stack.api.url, request("wan2.6-t2v"))
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["id"]
        failures = wait_for(
            lambda: (
                [
                    event["taskFailedEventDetails"]
                    for event in stack.history(task_id)
                    if event["type"] == "TaskFailed"
                ]
                or None
            ),
            timeout=30,
            interval=0.2,
            what="a task of the execution to fail",
        )
        status = stack.store.get(task_id).status.value
    assert failures[0]["error"] == "Lambda.AccessDeniedException"
    assert "assumed-role/wanflow-TaskLifecycleRole" in failures[0]["cause"]
    assert "lambda:InvokeFunction" in failures[0]["cause"]
    assert status == "queued"  # no step of the lifecycle ran
