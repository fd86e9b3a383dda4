"""The whole system on one machine: moto running template.yaml, its API on loopback, and the
upstream simulator (or a real aggregator). Used by the tests, the benchmarks and the local stack.

`local_stack()` starts, in this order, the simulator, moto (from nothing, as a new account), the
local stand-in of the Parameters and Secrets extension, the transformed template's resources
(`deploy`), the upstream key and the development key (`wf_local_dev_key`, tenant `default`), API
Gateway on loopback, the S3 notifications and the SQS event sources; it stops all of them on exit,
whatever happened. The time scale (`time_scale`) goes to both the simulator and the template's
TimeScale, so the upstream's durations and every wait, timeout and deadline of wanflow shrink
alike. With the simulator, its upstream callbacks come back over plain HTTP to the local API;
with a real aggregator there is no public URL for them and every model is polled.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanflow.runtime import Runtime
from wanflow.store import TaskRecord, TaskStore
from wanflow.task import TERMINAL
from wanflow.tenants import Tenants
from wanflow_local.apigw import ApiGateway
from wanflow_local.aws import LocalAws, execution_history, wait_for_execution
from wanflow_local.commands import DEV_API_KEY, DEV_TENANT
from wanflow_local.deploy import Stack, deploy
from wanflow_local.s3events import S3Notifier
from wanflow_local.secrets_extension import SecretsExtension
from wanflow_local.simulator import DEFAULT_API_KEY, Simulator
from wanflow_local.sqsevents import SqsEventSources

#: The GIL switch interval while a local stack runs (CPython's default is 5 ms).
LOCAL_SWITCH_INTERVAL_S = 0.001
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
#: Stands for the region's extension layer: moto runs no layers, SecretsExtension serves its API.
LOCAL_SECRETS_EXTENSION = (
    "arn:aws:lambda:us-east-1:000000000000:layer:AWS-Parameters-and-Secrets-Lambda-Extension:1"
)


@dataclass
class LocalStack:
    """moto with template.yaml deployed, its API served, and the upstream it talks to."""

    aws: LocalAws
    stack: Stack
    api: ApiGateway
    sim: Simulator | None
    _runtimes: dict[str, Runtime] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # Each function's module holds its `runtime`. Found now, while the handlers registered
        # are still the ones the modules define (a bench may wrap them later).
        for logical_id, function in self.stack.functions.items():
            module = sys.modules.get(getattr(LocalAws.handler(function.name), "__module__", ""))
            built = getattr(module, "runtime", None)
            if isinstance(built, Runtime):
                self._runtimes[logical_id] = built

    @property
    def store(self) -> TaskStore:
        """The task store on the stack's table."""
        return TaskStore(self.stack.ref("TasksTable"), self.aws.client("dynamodb"))

    @property
    def tenants(self) -> Tenants:
        """Tenants and API keys on the stack's table."""
        return Tenants(self.stack.ref("TasksTable"), self.aws.client("dynamodb"))

    def function_runtime(self, logical_id: str) -> Runtime:
        """The Runtime a function's handler runs with (its module's `runtime`): to watch or
        bend the very clients that function uses."""
        try:
            return self._runtimes[logical_id]
        except KeyError:
            raise LookupError(f"{logical_id} has no wanflow Runtime in this process") from None

    def runtime(self, logical_id: str) -> Runtime:
        """A new Runtime from the environment a function was initialised with: its settings
        and clients as that function has them, none of them shared with it."""
        return Runtime.from_environ(self.function_runtime(logical_id).environ)

    def execution_arn(self, task_id: str) -> str:
        """The ARN of a task's execution (it is named by the task id)."""
        machine = str(self.stack.ref("TaskLifecycle"))
        return machine.replace(":stateMachine:", ":execution:") + f":{task_id}"

    def finish(self, task_id: str, timeout: float = 60.0) -> tuple[TaskRecord, dict[str, Any]]:
        """Wait (bounded) for a task's execution to end; returns the task and the execution."""
        sfn = self.aws.client("stepfunctions")
        done = wait_for_execution(sfn, self.execution_arn(task_id), timeout=timeout)
        return self.store.get(task_id), dict(done)

    def history(self, task_id: str) -> list[Any]:
        """The history events of a task's execution."""
        sfn = self.aws.client("stepfunctions")
        return list(execution_history(sfn, self.execution_arn(task_id)))

    def follow_results(self, task_id: str) -> list[Any]:
        """What ended each wait of a task's execution on its task token (the callback model's
        AwaitCallback), in order: the outputs the token came back with (`{"next": "finalize",
        "via": "callback" | "ended"}`). A wait that timed out (the callback was lost) is not
        among them."""
        return [
            json.loads(e["taskSucceededEventDetails"]["output"])
            for e in self.history(task_id)
            if e["type"] == "TaskSucceeded"
            and "waitForTaskToken" in e["taskSucceededEventDetails"].get("resource", "")
        ]

    def states(self, task_id: str) -> list[str]:
        """The names of the states a task's execution entered, in order (one per entry: a state
        retried after a failure is entered once)."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(task_id)
            if e["type"].endswith("StateEntered")
        ]

    def looks(self, task_id: str) -> list[dict[str, Any]]:
        """What each LookAtUpstream of a task's execution returned, in order: `{"next",
        "wait_s", "looks", "status", "upstream_status", "progress"}` (its `$.look`)."""
        return [
            json.loads(e["stateExitedEventDetails"]["output"])["look"]
            for e in self.history(task_id)
            if e["type"] == "TaskStateExited"
            and e["stateExitedEventDetails"]["name"] == "LookAtUpstream"
        ]

    def wait_terminal(self, task_id: str, timeout: float = 30.0) -> TaskRecord:
        """Poll the store (bounded) until the task is terminal."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.store.get(task_id)
            if record.status in TERMINAL:
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {record.status} after {timeout} s")
            time.sleep(0.1)

    def objects(self, prefix: str) -> dict[str, bytes]:
        """The objects of the results bucket under a prefix, with their bytes."""
        s3 = self.aws.client("s3")
        bucket = self.stack.ref("ResultsBucket")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def scratch_template(folder: Path, edit: Callable[[str], str]) -> Path:
    """A copy of template.yaml in `folder`, its text changed by `edit` (which must change
    it), its local artifact paths made absolute so it deploys from there."""
    text = TEMPLATE.read_text(encoding="utf-8")
    edited = edit(text)
    if edited == text:
        raise ValueError("the edit left template.yaml as it was")
    edited = re.sub(
        r"^(\s+(?:CodeUri|ContentUri|DefinitionUri): )(?!s3://)(\S+)$",
        lambda match: f"{match.group(1)}{ROOT / match.group(2)}",
        edited,
        flags=re.MULTILINE,
    )
    path = folder / "template.yaml"
    path.write_text(edited, encoding="utf-8")
    return path


@contextmanager
def local_stack(
    *,
    time_scale: float = 1.0,
    api_port: int = 0,
    upstream_url: str | None = None,
    upstream_key: str | None = None,
    sim_seed: int = 0,
    log_level: str = "INFO",
    submit_settle_s: int | None = None,
    template: Path = TEMPLATE,
) -> Iterator[LocalStack]:
    """Start everything; stop everything on exit.

    `submit_settle_s` overrides the template's SubmitSettleSeconds (how long after a task's
    creation a look may conclude that its submit stopped half-way). `template` deploys another
    template than template.yaml (a scratch copy: `scratch_template`).

    Without `upstream_url` the simulator plays the upstream and its callbacks come back over
    plain HTTP to the local API. With it, there is no public URL for callbacks: every model is
    polled.
    """
    with ExitStack() as cleanup:
        # Everything shares one interpreter here, where AWS would give each its own machine: a
        # thread answering a request must not wait CPython's default 5 ms for the GIL behind a
        # busy one (moto's executor, another handler). 1 ms halves the callback route's p50.
        cleanup.callback(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(LOCAL_SWITCH_INTERVAL_S)
        sim = None
        if upstream_url is None:
            sim = cleanup.enter_context(
                Simulator(time_scale=time_scale, seed=sim_seed, allow_http_callbacks=True)
            )
            upstream_url, upstream_key = sim.url, DEFAULT_API_KEY
        aws = cleanup.enter_context(LocalAws())
        aws.reset()  # moto's state is per process: start from nothing, as a new account
        # Secrets reach the handlers as on Lambda with the extension layer: over its HTTP API.
        extension = cleanup.enter_context(SecretsExtension(aws.client("secretsmanager")))
        # What Lambda's sandbox gives each function besides its own variables: the extension's
        # port (each function sends its own session token to it).
        sandbox = {
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port),
            **({"WANFLOW_LOCAL_HTTP_CALLBACKS": "1"} if sim is not None else {}),
        }
        stack = deploy(
            aws,
            template,
            parameters={
                "UpstreamBaseUrl": upstream_url,
                "TimeScale": str(time_scale),
                "LogLevel": log_level,
                "SecretsExtensionLayerArn": LOCAL_SECRETS_EXTENSION,
                **({} if submit_settle_s is None else {"SubmitSettleSeconds": submit_settle_s}),
            },
            environment=sandbox,
        )
        cleanup.callback(stack.close)
        for function in stack.functions.values():
            extension.prepare(function.lambda_environment["AWS_SESSION_TOKEN"])
        aws.client("secretsmanager").put_secret_value(
            SecretId=stack.ref("UpstreamApiKey"), SecretString=upstream_key or ""
        )
        # The fixed development key: the CLI, the demo and the tests go through the authorizer.
        Tenants(stack.ref("TasksTable"), aws.client("dynamodb")).register_key(
            DEV_TENANT, DEV_API_KEY
        )
        api = cleanup.enter_context(ApiGateway(stack, aws, port=api_port))
        cleanup.enter_context(S3Notifier(stack, aws))
        cleanup.enter_context(SqsEventSources(stack, aws))  # the notify queue's trigger
        yield LocalStack(aws, stack, api, sim)
