"""The whole lifecycle on one machine: moto running template.yaml, the simulator as upstream.

A module of its own so the test files import it by a unique name.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanflow.store import TaskRecord, TaskStore
from wanflow.task import TERMINAL
from wanflow_local.apigw import ApiGateway
from wanflow_local.aws import LocalAws, execution_history, wait_for_execution
from wanflow_local.deploy import Stack, deploy
from wanflow_local.simulator import DEFAULT_API_KEY, Simulator

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
#: 1 upstream second = 20 ms: the slowest example (about 130 s upstream) takes about 3 s.
STACK_TIME_SCALE = 0.02


def event(name: str) -> dict[str, Any]:
    """A fresh copy of an event from events/, e.g. "api/submit"."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def request(name: str) -> dict[str, Any]:
    """A valid example request body from events/requests/valid."""
    return event(f"requests/valid/{name}")


@dataclass
class LocalStack:
    """moto with template.yaml deployed, its API on loopback and the simulator upstream."""

    aws: LocalAws
    stack: Stack
    sim: Simulator
    api: ApiGateway

    @property
    def store(self) -> TaskStore:
        return TaskStore(self.stack.ref("TasksTable"), self.aws.client("dynamodb"))

    def submit(self, body: Any, *, key: str | None = None, tenant: str = "acme") -> dict[str, Any]:
        """Invoke the submit function with events/api/submit.json carrying `body`.

        The event says the API was reached at the local API Gateway, so the upstream's
        callbacks come back through it to the webhook function.
        """
        ev = event("api/submit")
        ev["body"] = json.dumps(body)
        host = self.api.url.split("/")[2]
        ev["headers"].update({"Host": host, "X-Forwarded-Proto": "http"})
        ev["headers"].pop("Idempotency-Key")
        if key is not None:
            ev["headers"]["Idempotency-Key"] = key
        ev["requestContext"]["domainName"] = host
        ev["requestContext"]["authorizer"] = {"tenant": tenant}
        return self.invoke("SubmitFunction", ev)

    def invoke(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke a function of the stack through Lambda (moto), returning its JSON answer."""
        answer = self.aws.client("lambda").invoke(
            FunctionName=self.stack.ref(function), Payload=json.dumps(payload)
        )
        result: dict[str, Any] = json.loads(answer["Payload"].read())
        if answer.get("FunctionError"):
            raise AssertionError(f"{function} failed: {result}")
        return result

    def execution_arn(self, task_id: str) -> str:
        sm = self.stack.ref("TaskLifecycle")
        return str(sm).replace(":stateMachine:", ":execution:") + f":{task_id}"

    def finish(self, task_id: str, timeout: float = 60.0) -> tuple[TaskRecord, dict[str, Any]]:
        """Wait (bounded) for a task's execution to end; the task and the execution."""
        sfn = self.aws.client("stepfunctions")
        done = wait_for_execution(sfn, self.execution_arn(task_id), timeout=timeout)
        return self.store.get(task_id), dict(done)

    def history(self, task_id: str) -> list[Any]:
        return list(execution_history(self.aws.client("stepfunctions"), self.execution_arn(task_id)))

    def wait_terminal(self, task_id: str, timeout: float = 30.0) -> TaskRecord:
        """Poll the store (bounded) until the task is terminal."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.store.get(task_id)
            if record.status in TERMINAL:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} still {record.status} after {timeout} s")
            time.sleep(0.1)

    def objects(self, prefix: str) -> dict[str, bytes]:
        s3 = self.aws.client("s3")
        bucket = self.stack.ref("ResultsBucket")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


@contextmanager
def local_stack(time_scale: float = STACK_TIME_SCALE) -> Iterator[LocalStack]:
    """Start moto, deploy template.yaml, serve its API and run the simulator; tear all down."""
    with (
        Simulator(time_scale=time_scale, seed=11, allow_http_callbacks=True) as sim,
        LocalAws() as aws,
    ):
        os.environ["WANFLOW_LOCAL_HTTP_CALLBACKS"] = "1"
        stack = deploy(
            aws,
            ROOT / "template.yaml",
            parameters={"UpstreamBaseUrl": sim.url, "TimeScale": str(time_scale)},
        )
        aws.client("secretsmanager").put_secret_value(
            SecretId=stack.ref("UpstreamApiKey"), SecretString=DEFAULT_API_KEY
        )
        api = ApiGateway(stack, aws).start()
        try:
            yield LocalStack(aws, stack, sim, api)
        finally:
            api.stop()
            stack.close()
            os.environ.pop("WANFLOW_LOCAL_HTTP_CALLBACKS", None)
