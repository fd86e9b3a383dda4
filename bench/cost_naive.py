"""The naive design bench/cost.py compares wanflow with, run in the same stack at the same time.

Naive = what one would build first: no upstream callbacks, and a poll every 10 upstream seconds
from submit to the end (`naive_lifecycle.asl.json`), through the very same check and finalize
steps, so the two designs differ only in how they follow a task. Its tasks go through the same
API, authorizer and submit function as wanflow's; a request carrying the header
`X-Bench-Design: naive` is submitted by a `Submitter` whose configuration starts the naive state
machine and gives the upstream no callback URL. That is the one seam the bench bends in the
product: it swaps the submit function's `runtime` for one whose `submitter` picks by a
thread-local flag set around the submit handler (the handler runs on the thread that called it),
and puts it back.
Both machines look at the upstream with the lifecycle function's same `look` step: wanflow's
after the schedule's waits, the naive one's after its fixed 10 s.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from wanflow.runtime import Runtime
from wanflow_local.aws import LocalAws
from wanflow_local.stack import LocalStack

if TYPE_CHECKING:
    from wanflow.submission import Submitter

DEFINITION = Path(__file__).with_name("naive_lifecycle.asl.json")
#: The naive design's poll interval, in upstream seconds.
POLL_S = 10.0
HEADER = "x-bench-design"
NAIVE = "naive"

_local = threading.local()


def deploy_naive(stack: LocalStack) -> str:
    """Create the naive state machine next to the stack's own; returns its ARN.

    Its Wait is scaled as submit scales the real one's (`Config.scaled_wait`), so both designs
    run on the same clock.
    """
    definition = json.loads(DEFINITION.read_text(encoding="utf-8"))
    config = stack.runtime("SubmitFunction").config
    definition["States"]["Poll"]["Seconds"] = config.scaled_wait(POLL_S)
    lifecycle = stack.stack.functions["LifecycleFunction"].arn
    text = json.dumps(definition).replace("${LifecycleFunctionArn}", lifecycle)
    sfn = stack.aws.client("stepfunctions")
    real = sfn.describe_state_machine(stateMachineArn=str(stack.stack.ref("TaskLifecycle")))
    created = sfn.create_state_machine(
        name=f"{stack.stack.name}-naive-lifecycle",
        definition=text,
        roleArn=real["roleArn"],
        type="STANDARD",
    )
    return created["stateMachineArn"]


class _Switched:
    """The submit function's runtime, but for its `submitter`, which DesignSwitch picks."""

    def __init__(self, real: Runtime, submitter: Callable[[], Submitter]) -> None:
        self._real = real
        self._submitter = submitter

    @property
    def submitter(self) -> Submitter:
        return self._submitter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class DesignSwitch:
    """Submits requests marked naive through a Submitter configured for the naive design."""

    def __init__(self, stack: LocalStack, naive_machine_arn: str) -> None:
        self._function = stack.stack.functions["SubmitFunction"].name
        self._real = stack.function_runtime("SubmitFunction")
        self._machine = naive_machine_arn
        self._handler: Callable[[Any, Any], Any] | None = None
        self._module: Any = None
        self._naive: Submitter | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        handler = LocalAws.handler(self._function)
        if handler is None:
            raise RuntimeError(f"{self._function} does not run in this process")
        self._handler = handler
        LocalAws.register_handler(self._function, self._submit)
        # The handler reads its module's `runtime` on every request.
        self._module = sys.modules[handler.__module__]
        self._module.runtime = _Switched(self._real, self._submitter)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._module is not None:
            self._module.runtime = self._real
        if self._handler is not None:
            LocalAws.register_handler(self._function, self._handler)

    def _submit(self, event: Any, context: Any) -> Any:
        assert self._handler is not None
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        naive = headers.get(HEADER) == NAIVE
        if naive:
            # No public URL of the API, so no callback URL upstream: the task is polled.
            event = {**event, "requestContext": {**event["requestContext"], "domainName": ""}}
        _local.naive = naive
        try:
            return self._handler(event, context)
        finally:
            _local.naive = False

    def _submitter(self) -> Submitter:
        built = self._real.submitter
        if not getattr(_local, "naive", False):
            return built
        with self._lock:
            if self._naive is None:
                config = dataclasses.replace(
                    built.config, state_machine_arn=self._machine, callback_base_url=""
                )
                self._naive = dataclasses.replace(built, config=config)
            return self._naive
