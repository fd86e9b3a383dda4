"""Cancelling a task at its client's request: stop the upstream where the model allows, say what
was billed, and stop following it.

The order keeps the answer true whatever races it:
1. the task must be the tenant's and not finished (a finished one is never touched);
2. the upstream task is cancelled where the model allows it; an upstream that cannot be reached
   changes nothing (the client may ask again), because cancelling only our side would leave a
   billed upstream task nobody follows;
3. the upstream task is read again: it says what was billed, and whether it finished before the
   cancel took effect (then there is nothing to cancel: the lifecycle records its result);
4. the task moves to `canceled` with one forward-only conditional write; if the lifecycle ended it
   first, its ending stands;
5. the execution named by the task id is stopped, and `task.canceled` is enqueued for the client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from wanflow import observability
from wanflow.catalog import get_model
from wanflow.catalog.responses import UpstreamSnapshot
from wanflow.config import Config, ConfigError
from wanflow.errors import CONFLICT, TaskNotFound, WanflowError
from wanflow.store import StaleWrite, TaskRecord, TaskStore
from wanflow.task import Billing, TaskError, TaskStatus, TaskUsage
from wanflow.upstream import CancelNotSupported, UpstreamClient, UpstreamRejected

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.client_webhooks.queue import Notifications

logger = logging.getLogger(__name__)

_FINISHED_UPSTREAM = (TaskStatus.SUCCEEDED, TaskStatus.FAILED)
#: Time kept, out of a cancel's deadline, for what follows the upstream calls: the write, the
#: execution's stop, task.canceled onto the queue, and the answer.
WRITES_AFTER_UPSTREAM_S = 3.0


class NotCancelable(WanflowError):
    """The task cannot be canceled: it has ended, or ended meanwhile; `task` is as it is now."""

    code = "task_not_cancelable"
    status = 409
    kind = CONFLICT
    param = "task_id"

    def __init__(self, message: str, task: TaskRecord) -> None:
        super().__init__(message)
        self.task: TaskRecord = task


@dataclass(frozen=True)
class Canceled:
    """A task canceled: the stored record and what the client is told about it."""

    record: TaskRecord
    upstream_canceled: bool
    billed: Billing


@dataclass
class Canceller:
    """Cancels tasks on their client's request; collaborators are passed in."""

    config: Config
    store: TaskStore
    upstream: UpstreamClient
    sfn: SFNClient
    notifications: Notifications

    def __post_init__(self) -> None:
        if not self.config.state_machine_arn:
            raise ConfigError("STATE_MACHINE_ARN is required to cancel tasks")

    def cancel(self, tenant: str, task_id: str, *, deadline: float | None = None) -> Canceled:
        """Cancel a tenant's task (see the module doc for the order and what each step ensures).

        Raises TaskNotFound (missing, or another tenant's), NotCancelable (finished, finishing
        upstream, or not created upstream yet), and the upstream client's UpstreamUnavailable or
        UpstreamThrottled when the upstream could not be asked (then nothing changed).
        `deadline` (time.monotonic() seconds) is when the caller must have answered (an API
        request's Lambda timeout): the upstream calls and their retries end
        `WRITES_AFTER_UPSTREAM_S` before it (out of time is UpstreamUnavailable).
        """
        until = None if deadline is None else deadline - WRITES_AFTER_UPSTREAM_S
        record = self.store.get(task_id)
        if record.tenant != tenant:
            raise TaskNotFound(f"no task {task_id}")
        if record.status.terminal:
            raise NotCancelable(f"task {task_id} has already ended: it is {record.status}", record)
        if record.upstream_id is None:
            raise NotCancelable(
                f"task {task_id} is still being created upstream; try again in a few seconds",
                record,
            )
        upstream_canceled = self._cancel_upstream(record, record.upstream_id, until)
        snapshot = self._read_upstream(record, record.upstream_id, until)
        if snapshot is not None and snapshot.reading.status is TaskStatus.CANCELED:
            upstream_canceled = True  # an earlier cancel (a retry's, the deadline's) took effect
        finished = snapshot.reading.status in _FINISHED_UPSTREAM if snapshot else False
        if snapshot is not None and finished and not upstream_canceled:
            raise NotCancelable(
                f"the upstream task already finished ({snapshot.raw_status}); wanflow is "
                "recording its result",
                record,
            )
        billed = self._billing(record, snapshot, upstream_canceled)
        changes: dict[str, Any] = {
            "usage": TaskUsage(cost_usd=billed.cost_usd, discount=billed.discount),
            "error": TaskError(code="canceled", message=billed.note, retryable=True),
            "task_token": None,
        }
        if snapshot is not None:
            changes["upstream_status"] = snapshot.raw_status
        notify = True
        try:
            done = self.store.advance(task_id, TaskStatus.CANCELED, changes)
            observability.task_ended(done.model, done.status.value)  # this write won
        except StaleWrite as lost:
            if lost.current is None:
                raise TaskNotFound(f"no task {task_id}") from None
            if lost.current.status is not TaskStatus.CANCELED:
                raise NotCancelable(
                    f"task {task_id} ended as {lost.current.status} before the cancel took effect",
                    lost.current,
                ) from None
            # The lifecycle saw our upstream cancel first and wrote it (and tells the client).
            done, notify = lost.current, False
        self._stop_execution(task_id)
        if notify:
            self._notify(done)
        logger.info(
            "task canceled", extra={"task_id": task_id, "upstream_canceled": upstream_canceled}
        )
        return Canceled(done, upstream_canceled, billed)

    def _notify(self, record: TaskRecord) -> None:
        """Queue `task.canceled`; a queue failure is logged, not answered: the cancel stands,
        and the client can ask for the event again (redeliver)."""
        try:
            self.notifications.task_event(record, "task.canceled")
        except WanflowError as exc:
            logger.error(
                "task.canceled not queued", extra={"task_id": record.id, "error": exc.message}
            )

    def _cancel_upstream(self, record: TaskRecord, upstream_id: str, until: float | None) -> bool:
        """Whether the upstream task is (now) cancelled. Unavailable or throttled: raised."""
        try:
            snapshot = self.upstream.cancel(record.model, upstream_id, deadline=until)
        except CancelNotSupported:
            return False
        except UpstreamRejected as refused:
            # 409: finished, or an earlier cancel took effect; 404: the upstream lost it. The
            # read that follows tells which.
            logger.info(
                "upstream refused the cancel",
                extra={"task_id": record.id, "error": refused.message},
            )
            return False
        return snapshot.reading.status is TaskStatus.CANCELED

    def _read_upstream(
        self, record: TaskRecord, upstream_id: str, until: float | None
    ) -> UpstreamSnapshot | None:
        """The upstream task as it is now; None if it cannot be read (the cancel still stands)."""
        try:
            return self.upstream.status(record.model, upstream_id, deadline=until)
        except WanflowError as exc:
            logger.warning(
                "upstream unreadable after cancel",
                extra={"task_id": record.id, "error": exc.message},
            )
            return None

    def _billing(
        self, record: TaskRecord, snapshot: UpstreamSnapshot | None, upstream_canceled: bool
    ) -> Billing:
        cost = snapshot.cost_usd if snapshot else None
        discount = snapshot.discount if snapshot else None
        upstream_id = record.upstream_id
        if upstream_canceled:
            if cost is None:
                note = (
                    f"canceled: the upstream stopped task {upstream_id} and reported no charge "
                    "for it (it reports usage only for completed tasks)"
                )
            else:
                note = f"canceled: the upstream stopped task {upstream_id} and billed {cost} USD"
        elif get_model(record.model).route.cancel_path is None:
            note = (
                f"canceled in wanflow only: {record.model} tasks cannot be canceled upstream, so "
                f"upstream task {upstream_id} keeps running and will be billed in full; wanflow "
                "stopped following it and will not store its results"
            )
        else:
            note = (
                f"canceled in wanflow only: the upstream did not cancel task {upstream_id} and "
                "may bill it; wanflow stopped following it and will not store its results"
            )
        return Billing(cost_usd=cost, discount=discount, note=note)

    def _stop_execution(self, task_id: str) -> None:
        """Stop the task's execution; a missing or finished one is fine.

        A failure here is only logged: the task is terminal, so the execution's next step sees
        that and ends on its own.
        """
        arn = self.config.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{task_id}"
        try:
            self.sfn.stop_execution(
                executionArn=arn, error="wanflow.Canceled", cause="canceled at the client's request"
            )
        except self.sfn.exceptions.ExecutionDoesNotExist:
            logger.info("no execution to stop", extra={"task_id": task_id})
        except ClientError as exc:
            logger.warning("execution not stopped", extra={"task_id": task_id, "error": str(exc)})
