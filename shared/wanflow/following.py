"""Following a task from submit to its end without paying Step Functions for every look.

The execution waits on a task token (its `Follow` state runs `follow`). Two things send the token
back, with what to do next:
- the upstream callback (the webhook receiver), for the model that has one;
- a poll chain: one delayed SQS message at a time on the poll queue, each read by the lifecycle
  function (`poll`), which checks the upstream once (`Lifecycle.check`) and then either sends
  the next message, delayed by the schedule's wait, or sends the token back (`finalize` or
  `time_out`). For a callback model the chain's first message is its callback timeout: the
  fallback when the callback was lost.

The execution is started by submit (`start_execution`), which first puts a settling look on the
same queue (`arm_settle`), due after the submit function's own timeout: if submit died between
recording the task and starting its execution, `Follower.settle` finishes the job (it starts the
execution of a `queued` task) or says what happened (an `accepted` task, whose upstream create
may or may not have happened, fails with `submit_interrupted`). No task is left unfollowed.

Why: in a Wait ► Task ► Choice loop every look costs three state transitions ($0.000075 at
$0.025 per 1,000); here it costs three SQS requests and an invocation (about $0.000002), and an
execution costs five transitions whatever the number of looks (bench/cost.py measures both).

At least once, never twice: SQS may deliver a message twice, and a retried `follow` may start a
second chain. Each message carries the token it polls for and the task's poll count when it was
sent; a message whose token is no longer the task's (the task ended, or a later follow round
began) or whose count is behind (its twin already looked) is dropped. A failed look is retried
by the chain itself, with backoff (and the upstream's Retry-After), and after `MAX_ERRORS` in a
row the token is failed, so the state machine records the failure on the task. A delivery
that dies between recording its look and sending the next message comes back (SQS redelivers
it) and, its look being recorded already, looks once more and goes on. A chain that breaks
anyway is covered by the `Follow` state's timeout.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from wanflow.schedule import callback_wait_s, follow_timeout_s
from wanflow.store import StaleWrite, TaskNotFound
from wanflow.task import TERMINAL, TaskError, TaskStatus
from wanflow.upstream import UpstreamRejected, UpstreamThrottled

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.config import Config
    from wanflow.lifecycle import Lifecycle
    from wanflow.store import TaskRecord

logger = logging.getLogger(__name__)

#: Longest delay SQS takes on a message.
MAX_DELAY_S = 900
#: Failed looks in a row before the token is failed (the state machine then records it).
MAX_ERRORS = 5
#: Backoff between failed looks: full jitter below min(cap, base·2^n), in seconds.
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 60.0


#: The end of a task whose submit stopped between recording it and its upstream task's id.
INTERRUPTED = TaskError(
    code="submit_interrupted",
    message=(
        "the submission stopped before recording the upstream task; the upstream may have"
        " created (and will bill) it, so it is not created again: submit the request anew"
    ),
    retryable=True,
)
#: The body key of a settling look (`{"settle": task_id}`) on the poll queue.
SETTLE = "settle"


def token_gone(sfn: SFNClient) -> tuple[type[Exception], ...]:
    """What SendTaskSuccess/SendTaskFailure raise for a token nobody waits on any more: used
    (`InvalidToken`), timed out (`TaskTimedOut`), or of an execution that ended or was stopped
    (`TaskDoesNotExist`; a cancel stops the execution while a look may still be on its way)."""
    errors = sfn.exceptions
    return (errors.InvalidToken, errors.TaskTimedOut, errors.TaskDoesNotExist)


def start_execution(sfn: SFNClient, config: Config, record: TaskRecord) -> None:
    """Start the execution named by the task id. Starting it again is harmless: a running one
    with the same input is returned by Step Functions, a finished one refused (and ignored)."""
    execution_input = {
        "task_id": record.id,
        "completion": record.completion,
        "follow_timeout_s": config.scaled_timeout(follow_timeout_s(record.timing)),
    }
    try:
        sfn.start_execution(
            stateMachineArn=config.state_machine_arn,
            name=record.id,
            input=json.dumps(execution_input),
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("execution already started", extra={"task_id": record.id})


def arm_settle(sqs: SQSClient, config: Config, task_id: str) -> None:
    """Put the settling look of a submit on the poll queue (`Follower.settle` reads it)."""
    sqs.send_message(
        QueueUrl=config.poll_queue_url,
        MessageBody=json.dumps({SETTLE: task_id}),
        DelaySeconds=max(0, min(config.submit_settle_s, MAX_DELAY_S)),
    )


@dataclass(frozen=True)
class PollMessage:
    """One scheduled look at a task: the body of a poll queue message."""

    task_id: str
    token: str
    polls: int
    errors: int = 0
    #: When the look is due (epoch seconds; set when the message is sent).
    due: float | None = None

    def to_body(self) -> str:
        """The message body."""
        return json.dumps(
            {
                "task_id": self.task_id,
                "token": self.token,
                "polls": self.polls,
                "errors": self.errors,
                "due": self.due,
            }
        )

    @classmethod
    def from_body(cls, body: Any) -> PollMessage:
        """Read a message body (ValueError or KeyError when it is not one)."""
        data = json.loads(body) if isinstance(body, str | bytes) else body
        due = data.get("due")
        return cls(
            str(data["task_id"]),
            str(data["token"]),
            int(data["polls"]),
            int(data["errors"]),
            None if due is None else float(due),
        )


@dataclass
class Follower:
    """Keeps each task's execution waiting until its end is known, by callback or by polls."""

    config: Config
    steps: Lifecycle
    sqs: SQSClient
    sfn: SFNClient
    rng: random.Random = field(default_factory=random.Random)

    def follow(self, task_id: str, token: str, how: str) -> None:
        """Keep the execution's token on the task and start the poll chain.

        `how`: `callback` (wait for the callback; the first look at the callback timeout),
        `poll` (the first look when the schedule says), or `recheck` (a callback said done but
        the upstream did not: the next look when the schedule says). Both are counted from the
        task's creation, so the time the execution took to get here (a slow start, a throttled
        StartExecution, the settling look's restart) does not delay them. The token is written
        before the callbacks are looked for, and the receiver records a callback before it
        reads the token: whichever comes second sees the other.
        """
        store = self.steps.store
        try:
            record = store.patch(task_id, {"task_token": token})
        except StaleWrite:  # ended already: finalize finds it so and queues its event again
            self.resume(token, "finalize", "ended")
            return
        if how == "callback":
            if store.has_events(task_id):
                self.resume(token, "finalize", "callback")
                return
            left = callback_wait_s(record.timing) - self.steps.elapsed_s(record)
            delay = self.config.scaled_timeout(left)
        else:  # the first look, or after a hint that did not hold: on with the schedule
            plan = self.steps.next_look(record, record.polls)
            if plan["next"] == "time_out":
                self.resume(token, "time_out", "poll")
                return
            delay = int(plan["wait_s"])
        self._schedule(PollMessage(task_id, token, record.polls), delay)

    def poll(self, message: PollMessage, redelivered: bool = False) -> None:
        """Look at the upstream once for a message's task, then schedule or end the wait.

        Raises only when neither the next message nor the token could be sent: SQS then brings
        this message back (`redelivered`). A message whose look is already on the task is
        dropped as a duplicate, except when redelivered: its first delivery may have died
        between recording the look and sending what follows it, so it looks once more (one
        more upstream read) and goes on. The next message the first delivery did send, if
        any, then carries an old poll count and is dropped: one chain still.
        """
        try:
            record = self.steps.store.get(message.task_id)
        except TaskNotFound:
            logger.warning("poll for a missing task", extra={"task_id": message.task_id})
            return
        if record.status in TERMINAL or record.task_token != message.token:
            logger.info("poll chain ended", extra={"task_id": record.id})
            return
        if redelivered and record.polls == message.polls + 1:
            logger.info("look redelivered after it was recorded", extra={"task_id": record.id})
            message = replace(message, polls=record.polls, errors=0, due=None)
        elif record.polls != message.polls:
            logger.info("duplicate poll dropped", extra={"task_id": record.id})
            return
        late_s = 0.0 if message.due is None else self.steps.now().timestamp() - message.due
        try:
            decision = self.steps.check(record, late_s)
        except UpstreamRejected as exc:  # the upstream refuses to say: retrying will not help
            self.fail(message.token, exc)
            return
        except Exception as exc:  # any failed look is retried, then recorded
            if message.errors + 1 >= MAX_ERRORS:
                self.fail(message.token, exc)
                return
            logger.warning(
                "look failed; retrying",
                extra={"task_id": record.id, "error": repr(exc), "attempt": message.errors + 1},
            )
            delay = self._backoff(message)
            if isinstance(exc, UpstreamThrottled) and exc.retry_after_s:
                delay = max(delay, math.ceil(exc.retry_after_s))
            self._schedule(replace(message, errors=message.errors + 1), delay)
            return
        if decision["next"] == "wait":
            after = PollMessage(record.id, message.token, int(decision["polls"]))
            self._schedule(after, int(decision["wait_s"]))
        else:
            self.resume(message.token, str(decision["next"]), "poll")

    def settle(self, task_id: str) -> None:
        """A submit's settling look, after the submit surely ended: a task it left `queued`
        gets its execution (again: harmless), one it left `accepted` fails with
        `submit_interrupted`; any other is as it should be."""
        try:
            record = self.steps.store.get(task_id)
        except TaskNotFound:  # the submit died before recording it: nothing was sent upstream
            return
        if record.status is TaskStatus.ACCEPTED:
            logger.error("submit interrupted", extra={"task_id": task_id})
            record = self.steps.interrupt(record, INTERRUPTED)
        elif record.error is not None and record.error.code == INTERRUPTED.code:
            # A redelivery: its first delivery may have died before queueing task.failed (the
            # event keeps its webhook-id, so the client gets it once).
            self.steps.notifications.task_ended(record)
        if record.status is TaskStatus.QUEUED:  # the submit stopped before starting it
            start_execution(self.sfn, self.config, record)

    def defer(self, message: PollMessage) -> None:
        """Put a message back at once, unread (this invocation is running out of time)."""
        self._schedule(message, 0)

    def resume(self, token: str, then: str, via: str) -> None:
        """Send the token back: the execution goes on to `then` (finalize or time_out)."""
        output = json.dumps({"next": then, "via": via})
        try:
            self.sfn.send_task_success(taskToken=token, output=output)
        except token_gone(self.sfn):
            logger.info("task token already used, timed out or its execution ended")

    def fail(self, token: str, exc: Exception) -> None:
        """Fail the token: the state machine records the failure on the task."""
        logger.error("following failed", extra={"error": repr(exc)})
        try:
            self.sfn.send_task_failure(
                taskToken=token, error=type(exc).__name__, cause=str(exc)[:1000]
            )
        except token_gone(self.sfn):
            logger.info("task token already used, timed out or its execution ended")

    def _schedule(self, message: PollMessage, delay_s: int) -> None:
        # A longer wait is cut to SQS's limit: that look comes early and schedules the rest.
        delay_s = max(0, min(delay_s, MAX_DELAY_S))
        due = round(self.steps.now().timestamp() + delay_s, 3)
        self.sqs.send_message(
            QueueUrl=self.config.poll_queue_url,
            MessageBody=replace(message, due=due).to_body(),
            DelaySeconds=delay_s,
        )

    def _backoff(self, message: PollMessage) -> int:
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**message.errors)
        return round(self.rng.uniform(1.0, ceiling))
