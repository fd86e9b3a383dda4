"""The steps of a task's life after submit, as the state machine runs them: a look at the
upstream (`check`, inside following.py's `Follower.look`), finalize, time_out, record_failure,
and the end of a task its submit left `accepted` (`interrupt`).

Each step reads the task from the store, talks to the upstream when it must, and writes through
the store's forward-only moves, so a step that runs twice (a Retry, a duplicated callback) changes
nothing the second time. Names of the exceptions raised here are what the
state machine's `Retry` clauses match.

Client webhook events are queued by the writer of the move: `task.running` by the check that
moved the task to running (best effort: an intermediate event is not worth failing the task
for), the terminal event by `_end`. A terminal event must never be lost, so a finalize,
time_out or record_failure that finds the task already terminal queues its terminal event
again: when queueing failed after the terminal write, the step fails, the state machine retries
it (or records the failure), and the retry sends it. The event's webhook-id is stable, so a
duplicate is harmless.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from wanflow import clock, observability
from wanflow.catalog import get_model
from wanflow.catalog.responses import UpstreamOutput, UpstreamSnapshot
from wanflow.config import Config
from wanflow.errors import WanflowError
from wanflow.schedule import next_poll
from wanflow.store import StaleWrite, TaskRecord, TaskStore
from wanflow.task import (
    TERMINAL,
    TaskError,
    TaskOutput,
    TaskStatus,
    TaskUsage,
    unknown_status_exhausted,
)
from wanflow.upstream import CancelNotSupported, UpstreamClient, UpstreamError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from wanflow.client_webhooks.queue import Notifications

logger = logging.getLogger(__name__)

#: Largest output copied, by kind; anything bigger is refused rather than half-stored.
MAX_OUTPUT_BYTES = {"video": 512 * 1024 * 1024, "image": 50 * 1024 * 1024}
_EXTENSIONS = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/bmp": "bmp",
}
_DOWNLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=5.0)


class TransientCopyError(WanflowError):
    """Copying an output failed in a way a retry may fix (5xx, 429, a broken transfer)."""

    code = "result_copy_failed"


class ResultUnavailable(WanflowError):
    """An output cannot be copied, ever: its link expired, or it is not what it claims."""

    code = "result_unavailable"


def _detect_s(done: TaskRecord, seen: datetime | None) -> float | None:
    """Seconds from the first sign of the upstream's end to the terminal write (TimeToDetect).

    The upstream gives no end time: the closest the data tells is the check that read the end,
    or the callback that resumed finalize. So this is a lower bound, short of the time the
    end waited for that check (under one polling step; bench/lifecycle.py measures the whole
    delay against the simulator's clock).
    """
    if seen is None or done.completed_at is None:
        return None
    return (clock.parse(done.completed_at) - seen).total_seconds()


@dataclass(frozen=True)
class Checked:
    """What a look found: the task as it now is, and what comes next (`finalize`, `time_out`,
    `wait` `wait_s` seconds of this deployment's clock, or `stop`: it ended already)."""

    record: TaskRecord
    next: str
    wait_s: int = 0


@dataclass
class Lifecycle:
    """The lifecycle steps, with their collaborators passed in."""

    config: Config
    store: TaskStore
    upstream: UpstreamClient
    s3: S3Client
    notifications: Notifications
    downloads: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=_DOWNLOAD_TIMEOUT))
    now: Callable[[], datetime] = clock.now

    # --- polling -------------------------------------------------------------------------------

    def elapsed_s(self, record: TaskRecord) -> float:
        """Upstream seconds since the task was created (this deployment's clock, unscaled)."""
        real = (self.now() - clock.parse(record.created_at)).total_seconds()
        return real / self.config.time_scale

    def check(self, record: TaskRecord) -> Checked:
        """Read the upstream status once, record it with the look count, and say what comes
        next: `finalize` (the upstream ended, or kept reporting a status it cannot use),
        `time_out` (past the deadline or the look limit) or `wait` (`wait_s`, until the
        schedule's next look)."""
        task_id = record.id
        snapshot = self.upstream.status(record.model, str(record.upstream_id))
        reading = snapshot.reading
        polls = record.polls + 1
        if reading.status is None:
            unknown = record.unknown_count + 1
            record = self._try_patch(
                task_id,
                {"polls": polls, "unknown_count": unknown, "upstream_status": snapshot.raw_status},
            )
            if unknown_status_exhausted(unknown):
                return Checked(record, "finalize")
        elif reading.status in TERMINAL:
            changes = {"polls": polls, "upstream_status": snapshot.raw_status}
            return Checked(self._try_patch(task_id, changes), "finalize")
        else:
            record = self._note_progress(record, snapshot, polls)
        if record.status in TERMINAL:  # ended meanwhile (a cancel)
            return Checked(record, "stop")
        return self.next_look(record, polls)

    def next_look(self, record: TaskRecord, polls: int) -> Checked:
        """What the schedule says after `polls` looks: `time_out`, or `wait` `wait_s` (this
        deployment's seconds) until its next grid point, counted from the task's creation (a
        late look does not push the grid back)."""
        decision = next_poll(record.timing, self.elapsed_s(record), record.progress, polls)
        if decision.give_up:
            return Checked(record, "time_out")
        return Checked(record, "wait", self.config.scaled_wait(decision.wait_s))

    def _note_progress(self, record: TaskRecord, snap: UpstreamSnapshot, polls: int) -> TaskRecord:
        changes: dict[str, Any] = {
            "polls": polls,
            "unknown_count": 0,
            "upstream_status": snap.raw_status,
        }
        if snap.progress is not None:
            changes["progress"] = max(snap.progress, record.progress or 0)
        target = snap.reading.status
        if target is TaskStatus.RUNNING and record.status is not TaskStatus.RUNNING:
            try:
                running = self.store.advance(record.id, target, changes)
            except StaleWrite as lost:
                if lost.current is None or lost.current.status in TERMINAL:
                    return lost.current or record
            else:
                self._running(running)
                return running
        return self._try_patch(record.id, changes) or record

    def _running(self, record: TaskRecord) -> None:
        from wanflow.client_webhooks.queue import NotifyUnavailable

        try:
            self.notifications.task_event(record, "task.running")
        except NotifyUnavailable:
            logger.exception("task.running not queued", extra={"task_id": record.id})

    def _try_patch(self, task_id: str, changes: dict[str, Any]) -> TaskRecord:
        try:
            return self.store.patch(task_id, changes)
        except StaleWrite as lost:  # finished meanwhile; keep what is there
            return lost.current if lost.current is not None else self.store.get(task_id)

    # --- the end -------------------------------------------------------------------------------

    def finalize(self, task_id: str) -> dict[str, Any]:
        """Re-read the upstream and write the terminal state, copying every output to S3 first.

        Returns `{"status": <normalised status>, "wait_s": int}`; a status that is not terminal
        means the upstream is not done after all (a callback is only a hint), and the state
        machine goes back to polling, its next look `wait_s` from now (when the schedule says).
        Idempotent: a terminal task is returned as it is.
        """
        outcome = self._finalize(task_id)
        outcome["wait_s"] = 0
        if TaskStatus(outcome["status"]) not in TERMINAL:
            record = self.store.get(task_id)
            outcome["wait_s"] = self.next_look(record, record.polls).wait_s
        return outcome

    def _finalize(self, task_id: str) -> dict[str, Any]:
        started = self.now()
        record = self.store.get(task_id)
        if record.status in TERMINAL:
            return self._ended(record)
        # When wanflow first knew the upstream was done: the check that read it (the task's last
        # write), or, when a callback resumed the execution, now (see _detect_s).
        seen = clock.parse(record.updated_at) if record.polls else started
        if record.upstream_id is None:
            return {"status": record.status.value}
        snapshot = self.upstream.status(record.model, record.upstream_id)
        status = snapshot.reading.status
        usage = TaskUsage(cost_usd=snapshot.cost_usd, discount=snapshot.discount)
        if status is TaskStatus.SUCCEEDED:
            return self._succeed(record, snapshot, usage, seen)
        if status is TaskStatus.FAILED:
            error = TaskError(
                code="upstream_failed",
                message=snapshot.error_message or "the upstream reported the task as failed",
                upstream_code=snapshot.error_code,
                retryable=True,
            )
            changes = {"error": error, "usage": usage}
            return self._end(record, TaskStatus.FAILED, changes, seen)
        if status is TaskStatus.CANCELED:
            return self._end(record, TaskStatus.CANCELED, {"usage": usage}, seen)
        if status is None and unknown_status_exhausted(record.unknown_count):
            error = TaskError(
                code=snapshot.reading.problem or "upstream_unknown_status",
                message=f"the upstream kept reporting an unusable status ({snapshot.raw_status!r})",
            )
            return self._end(record, TaskStatus.FAILED, {"error": error})
        return {"status": record.status.value}

    def _succeed(
        self, record: TaskRecord, snapshot: UpstreamSnapshot, usage: TaskUsage, seen: datetime
    ) -> dict[str, Any]:
        copied: list[TaskOutput] = []
        try:
            for index, output in enumerate(snapshot.outputs):
                copied.append(self._copy(record, index, output))
        except ResultUnavailable as exc:
            self._discard(copied)
            error = TaskError(code=exc.code, message=exc.message, retryable=True)
            return self._end(record, TaskStatus.FAILED, {"error": error, "usage": usage}, seen)
        changes = {"outputs": copied, "usage": usage, "progress": 100}
        return self._end(record, TaskStatus.SUCCEEDED, changes, seen)

    def _end(
        self,
        record: TaskRecord,
        status: TaskStatus,
        changes: dict[str, Any],
        seen: datetime | None = None,
    ) -> dict[str, Any]:
        """Write the terminal state; `seen`: when the upstream's own end was first known."""
        return {"status": self._write_end(record, status, changes, seen).status.value}

    def _write_end(
        self,
        record: TaskRecord,
        status: TaskStatus,
        changes: dict[str, Any],
        seen: datetime | None = None,
    ) -> TaskRecord:
        """Move the task to `status` and queue its terminal event; returns the task as it then
        is (another writer's state, if it moved first: a terminal one's event is queued again)."""
        fields: dict[str, Any] = {**changes, "task_token": None}
        try:
            done = self.store.advance(record.id, status, fields)
        except StaleWrite as lost:  # another writer ended it first: theirs stands
            current = lost.current
            if current is None:  # gone: nothing to say about it
                return record.model_copy(update={"status": status})
            if current.status in TERMINAL:
                self._ended(current)
            return current
        logger.info("task ended", extra={"task_id": record.id, "status": done.status.value})
        # Here, once per task: only the writer that won the move into the terminal state.
        observability.task_ended(
            done.model, done.status.value, polls=done.polls, time_to_detect_s=_detect_s(done, seen)
        )
        self._ended(done)
        return done

    def _ended(self, record: TaskRecord) -> dict[str, Any]:
        """Queue the terminal event of a terminal task; NotifyUnavailable propagates, so the
        step fails and its retry (which finds the task terminal) queues it again."""
        self.notifications.task_ended(record)
        return {"status": record.status.value}

    def _copy(self, record: TaskRecord, index: int, output: UpstreamOutput) -> TaskOutput:
        if output.type == "text":
            return TaskOutput(type="text", text=output.text)
        assert output.url is not None
        try:
            with self.downloads.stream("GET", output.url) as response:
                return self._store_stream(record, index, output, response)
        except httpx.HTTPError as exc:
            raise TransientCopyError(f"output {index}: transfer failed: {exc}") from exc

    def _store_stream(
        self, record: TaskRecord, index: int, output: UpstreamOutput, response: httpx.Response
    ) -> TaskOutput:
        code = response.status_code
        if code == 429 or code >= 500:
            raise TransientCopyError(f"output {index}: the result link answered HTTP {code}")
        if code != 200:
            raise ResultUnavailable(
                f"output {index}: the result link answered HTTP {code} (expired or gone)"
            )
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type.startswith(f"{output.type}/"):
            raise ResultUnavailable(
                f"output {index}: expected a {output.type}, the link served {content_type!r}"
            )
        cap = MAX_OUTPUT_BYTES[output.type]
        key = (
            f"results/{record.tenant}/{record.id}/{index}."
            f"{_EXTENSIONS.get(content_type, output.type)}"
        )
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise ResultUnavailable(f"output {index}: larger than {cap} bytes")
                spool.write(chunk)
            spool.seek(0)
            self.s3.upload_fileobj(
                spool, self.config.bucket_name, key, ExtraArgs={"ContentType": content_type}
            )
        return TaskOutput(type=output.type, key=key)

    def _discard(self, copied: list[TaskOutput]) -> None:
        for output in copied:
            if output.key:
                self.s3.delete_object(Bucket=self.config.bucket_name, Key=output.key)

    def time_out(self, task_id: str) -> dict[str, Any]:
        """Past the deadline: cancel upstream where the model allows, record timed_out."""
        record = self.store.get(task_id)
        if record.status in TERMINAL:
            return self._ended(record)
        if record.upstream_id is not None:
            try:
                self.upstream.cancel(record.model, record.upstream_id)
            except CancelNotSupported:
                pass
            except UpstreamError as exc:
                logger.warning("cancel failed", extra={"task_id": task_id, "error": str(exc)})
        limit = round(record.timing.deadline_s)
        error = TaskError(
            code="timed_out",
            message=f"{get_model(record.model).id} did not finish within {limit} s",
            retryable=True,
        )
        return self._end(record, TaskStatus.TIMED_OUT, {"error": error})

    def interrupt(self, record: TaskRecord, error: TaskError) -> TaskRecord:
        """Fail a task its submit left `accepted` past the settle window (`Follower.look`);
        returns the task as it then is (another writer's state, if it moved first)."""
        return self._write_end(record, TaskStatus.FAILED, {"error": error})

    def record_failure(self, task_id: str, failure: Any) -> dict[str, Any]:
        """A step failed for good: write the failure on the task so nothing is silently lost."""
        record = self.store.get(task_id)
        if record.status in TERMINAL:
            return self._ended(record)
        failure = failure if isinstance(failure, dict) else {}
        error = TaskError(
            code="lifecycle_failed",
            message=f"{failure.get('Error', 'error')}: {failure.get('Cause', '')}"[:1000],
            retryable=True,
        )
        return self._end(record, TaskStatus.FAILED, {"error": error})
