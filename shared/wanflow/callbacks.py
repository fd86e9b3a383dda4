"""Receiving upstream callbacks: verified, recorded once, never moving a task backwards.

A callback is a hint, not the truth: it marks the task as called back and resumes the waiting
execution, whose finalize step re-reads the upstream before writing any terminal state. So a
forged status can do nothing, a duplicate changes nothing, and a callback that arrives before
the execution stored its token is not lost (the waiting step sees the mark and resumes itself).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wanflow.catalog import get_model
from wanflow.catalog.responses import read_snapshot
from wanflow.signing import verify
from wanflow.store import StaleWrite, TaskNotFound, TaskStore
from wanflow.task import TERMINAL, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the receiver answers the upstream."""

    status_code: int
    body: dict[str, Any]


@dataclass
class CallbackReceiver:
    """Ingests callbacks; collaborators are passed in."""

    store: TaskStore
    sfn: SFNClient
    secret: str

    def receive(self, task_id: str, signature: str | None, raw_body: bytes) -> Reply:
        """Handle one callback POST. Order matters: nothing is read or written before the
        signature is checked."""
        if not verify(task_id, signature, self.secret):
            return Reply(401, {"error": {"code": "bad_signature", "message": "invalid signature"}})
        try:
            record = self.store.get(task_id)
        except TaskNotFound:
            return Reply(404, {"error": {"code": "task_not_found", "message": "no such task"}})
        try:
            body = json.loads(raw_body or b"null")
        except ValueError:
            body = None
        event_id = hashlib.sha256(raw_body).hexdigest()[:32]
        first = self.store.record_event(task_id, event_id, "upstream_callback", body)
        snapshot = read_snapshot(get_model(record.model), body)
        logger.info(
            "callback received",
            extra={"task_id": task_id, "duplicate": not first, "status": snapshot.raw_status},
        )
        if record.status in TERMINAL:
            return Reply(200, {"received": True, "duplicate": not first})
        changes: dict[str, Any] = {"callback_received": True}
        if snapshot.upstream_id and snapshot.upstream_id != record.upstream_id:
            # A callback about another upstream task is recorded, not believed.
            return Reply(200, {"received": True, "ignored": "upstream id mismatch"})
        try:
            if (
                snapshot.reading.status is TaskStatus.RUNNING
                and record.status is not TaskStatus.RUNNING
            ):
                record = self.store.advance(task_id, TaskStatus.RUNNING, changes)
            else:
                record = self.store.patch(task_id, changes)
        except StaleWrite as lost:
            if lost.current is None or lost.current.status in TERMINAL:
                return Reply(200, {"received": True, "duplicate": not first})
            record = self.store.patch(task_id, changes)
        if record.task_token:
            try:
                self.sfn.send_task_success(
                    taskToken=record.task_token, output='{"via": "callback"}'
                )
            except (self.sfn.exceptions.InvalidToken, self.sfn.exceptions.TaskTimedOut):
                logger.info("token already used or timed out", extra={"task_id": task_id})
        return Reply(200, {"received": True, "duplicate": not first})
