"""How a task's execution follows it: its start, the wait on a callback, each look of the poll loop.

One Step Functions execution per task, named by the task id, started by submit before anything
is recorded or created upstream (`start_execution`), so whatever stops a submit later, an
execution is there to settle its task. The state machine (statemachine/task_lifecycle.asl.json)
then either waits on a task token for the upstream's callback (`follow`), or polls: a Wait whose
length the previous look chose, then a look (`look`), and again, until the upstream ended (then
finalize), the deadline or the look limit passed (time_out), or the task ended some other way.
Standard workflows run each state once and keep every look in the execution's history.

A look first settles a task its submit left behind: none at all (the submit died before putting
it: nothing was created upstream, the execution just ends) or one still `accepted` (the submit
died during the upstream create, or is still in it). Neither is concluded on before the settle
window (`Config.submit_settle_s`, past the longest Timeout of a submitting function) has passed
since the task's creation: then a missing task ends the execution, an `accepted` one fails with
`submit_interrupted` (the upstream may have created it; it is never created twice). A submit
still running by then finds its write to `queued` refused and cancels its upstream task.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from wanflow import clock
from wanflow.errors import TaskNotFound, WanflowError
from wanflow.schedule import callback_wait_s, next_poll, step_s
from wanflow.store import StaleWrite
from wanflow.task import TERMINAL, TaskError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.config import Config
    from wanflow.lifecycle import Lifecycle
    from wanflow.store import TaskRecord

logger = logging.getLogger(__name__)

#: The end of a task whose submit stopped between recording it and its upstream task's id.
INTERRUPTED = TaskError(
    code="submit_interrupted",
    message=(
        "the submission stopped before recording the upstream task; the upstream may have"
        " created (and will bill) it, so it is not created again: submit the request anew"
    ),
    retryable=True,
)

#: Step Functions' answers that say "not now" rather than "not this request".
_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalServerError"}
)


class ExecutionNotStarted(WanflowError):
    """Step Functions did not start the task's execution (throttled, unavailable): nothing was
    recorded or created, so the same request may simply be sent again."""

    code = "orchestration_unavailable"
    status = 503

    def public_message(self) -> str:
        return (
            "wanflow could not start following the task now (Step Functions is busy or"
            " unavailable); nothing was recorded or created upstream: send the request again"
            " shortly (with the same Idempotency-Key, if any)"
        )


class TaskNotRecorded(WanflowError):
    """The task is not in the store (yet): its submit starts the execution before it puts the
    task. The state machine retries `follow` a few times, then settles it by looking."""

    code = "task_not_recorded"


def token_gone(sfn: SFNClient) -> tuple[type[Exception], ...]:
    """What SendTaskSuccess raises for a token nobody waits on any more: used (`InvalidToken`),
    timed out (`TaskTimedOut`: the callback wait gave way to polling), or of an execution that
    ended or was stopped (`TaskDoesNotExist`; a cancel stops the execution)."""
    errors = sfn.exceptions
    return (errors.InvalidToken, errors.TaskTimedOut, errors.TaskDoesNotExist)


def execution_input(config: Config, record: TaskRecord) -> dict[str, Any]:
    """What a task's execution starts with: small (a state's data is capped at 256 KB), and
    the same for the same task id and request, so starting it again is idempotent.

    `first_wait_s`: until the poll loop's first look; `callback_timeout_s`: how long the callback
    model waits for its callback before polling. Both in this deployment's seconds, counted
    from the task's creation, which is when the execution starts.
    """
    timing = record.timing
    return {
        "task_id": record.id,
        "completion": record.completion,
        "first_wait_s": config.scaled_wait(next_poll(timing, 0.0, None, 0).wait_s),
        "callback_timeout_s": config.scaled_timeout(callback_wait_s(timing)),
    }


def start_execution(sfn: SFNClient, config: Config, record: TaskRecord) -> bool:
    """Start the execution named by the task id; returns False when one of that name exists
    and is not this request's running one (it ended, or it runs with another input: a different
    request with the same idempotency key). Step Functions returns a running execution of the
    same name and input as if it had just started it (moto does too). Raises
    ExecutionNotStarted when Step Functions is throttling or unavailable (after botocore's own
    retries)."""
    try:
        sfn.start_execution(
            stateMachineArn=config.state_machine_arn,
            name=record.id,
            input=json.dumps(execution_input(config, record)),
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("execution already exists", extra={"task_id": record.id})
        return False
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in _TRANSIENT_CODES:
            raise
        raise ExecutionNotStarted(f"Step Functions answered {code}") from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise ExecutionNotStarted(f"Step Functions unreachable: {type(exc).__name__}") from exc
    return True


@dataclass
class Follower:
    """The execution's two ways of following a task: the callback wait and the look."""

    config: Config
    steps: Lifecycle
    sfn: SFNClient

    def follow(self, task_id: str, token: str) -> None:
        """Keep the execution's task token on the task, for the callback receiver to send back.

        Sends it back at once when the task already ended or its callback was already recorded.
        The token is written before the callbacks are looked for, and the receiver records a
        callback before it reads the token: whichever comes second sees the other. Raises
        TaskNotRecorded while the task is not in the store (see the module's docstring).
        """
        store = self.steps.store
        try:
            store.patch(task_id, {"task_token": token})
        except StaleWrite as lost:
            if lost.current is None:
                raise TaskNotRecorded(f"no task {task_id} in the store yet") from None
            self.resume(token, "ended")  # finalize finds it so and queues its event again
            return
        if store.has_events(task_id):
            self.resume(token, "callback")

    def look(self, task_id: str, started_at: str) -> dict[str, Any]:
        """One look of the poll loop: settle a task its submit left behind, or read the upstream
        once (`Lifecycle.check`). `started_at`: when the execution started.

        Returns `{"next": "wait" | "finalize" | "time_out" | "stop", "wait_s", "looks",
        "status", "upstream_status", "progress"}`: what the state machine does next, the Wait
        before the next look (this deployment's seconds), and what the look saw (the history
        shows it). `stop`: the task ended already (or there is none to follow).
        """
        try:
            record = self.steps.store.get(task_id)
        except TaskNotFound:
            left = self._settle_left_s(clock.parse(started_at))
            if left > 0:
                return _seen(None, "wait", math.ceil(left))
            logger.warning("no task to follow: its submit stopped before recording it")
            return _seen(None, "stop")
        if record.status in TERMINAL:
            if record.error is not None and record.error.code == INTERRUPTED.code:
                # This loop's own end: a look that died before queueing it is retried.
                self.steps.notifications.task_ended(record)
            return _seen(record, "stop")
        if record.upstream_id is None:  # `accepted`: its submit is in the create, or died there
            left = self._settle_left_s(clock.parse(record.created_at))
            if left > 0:
                step = self.config.scaled_wait(step_s(record.timing))
                return _seen(record, "wait", min(math.ceil(left), step))
            logger.error("submit interrupted", extra={"task_id": task_id})
            record = self.steps.interrupt(record, INTERRUPTED)
            if record.status in TERMINAL or record.upstream_id is None:
                return _seen(record, "stop")
        decision = self.steps.check(record)
        return _seen(decision.record, decision.next, decision.wait_s)

    def resume(self, token: str, via: str) -> None:
        """Send the token back: the execution goes on to finalize."""
        output = json.dumps({"next": "finalize", "via": via})
        try:
            self.sfn.send_task_success(taskToken=token, output=output)
        except token_gone(self.sfn):
            logger.info("task token already used, timed out or its execution ended")

    def _settle_left_s(self, since: datetime) -> float:
        """Wall-clock seconds until the settle window after `since` has passed (unscaled: it
        outlasts the submitting functions' Timeouts, which are wall-clock)."""
        return self.config.submit_settle_s - (self.steps.now() - since).total_seconds()


def _seen(record: TaskRecord | None, then: str, wait_s: int = 0) -> dict[str, Any]:
    return {
        "next": then,
        "wait_s": wait_s,
        "looks": 0 if record is None else record.polls,
        "status": None if record is None else record.status.value,
        "upstream_status": None if record is None else record.upstream_status,
        "progress": None if record is None else record.progress,
    }
