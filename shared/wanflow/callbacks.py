"""Receiving upstream callbacks: verified, recorded once, never moving a task backwards.

A callback is a hint, not the truth: it marks the task as called back and resumes the waiting
execution, whose finalize step re-reads the upstream before writing any state from it. So a
callback's status can do nothing by itself, a duplicate changes nothing, and a callback that
arrives before the execution stored its token is not lost (the waiting step sees the recorded
callback and resumes itself).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wanflow import observability
from wanflow.catalog import get_model
from wanflow.catalog.responses import read_snapshot
from wanflow.errors import AUTHENTICATION, WanflowError
from wanflow.signing import verify
from wanflow.task import TERMINAL, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.store import TaskStore

logger = logging.getLogger(__name__)

#: What the receiver reads of a task: a projection, not the whole item.
_FIELDS = ("status", "model", "upstream_id", "task_token")


class BadSignature(WanflowError):
    """A callback whose `sig` is missing or is not the task id's HMAC: refused, nothing read."""

    code = "bad_signature"
    status = 401
    kind = AUTHENTICATION
    param = "sig"


@dataclass
class CallbackReceiver:
    """Ingests callbacks; collaborators are passed in.

    The store and Step Functions come as getters, called only once a signature is good: the
    store module imports boto3, which a forged callback never needs (cold start, see
    bench/coldstart.py). So does the signing secret (a cache with a TTL, so a rotated secret
    reaches a warm receiver), and `reread_secret` gives the secret to verify once more with
    after a mismatch, when there is a newer one: the cache reads it at most once per few
    seconds, so a flood of forged callbacks is not a flood of secret reads.
    """

    secret: Callable[[], str]
    store: Callable[[], TaskStore]
    sfn: Callable[[], SFNClient]
    reread_secret: Callable[[str], str | None] | None = None

    def receive(self, task_id: str, signature: str | None, raw_body: bytes) -> dict[str, Any]:
        """Handle one callback POST: a put, a read, and resuming the execution; the answer's
        body (200). Raises BadSignature (401) and TaskNotFound (404).

        Nothing is read or written before the signature is checked (it is an HMAC of the task
        id, so only a task wanflow created can get this far). The raw callback is put first and
        the task read after it: if the waiting step stores its token between the two, this read
        sees the token; if later, that step sees the callback and resumes itself.
        """
        if not self._verified(task_id, signature):
            observability.count(observability.CALLBACKS_REJECTED)
            raise BadSignature("invalid signature")
        store = self.store()
        body = _json(raw_body)
        event_id = hashlib.sha256(raw_body).hexdigest()[:32]
        first = store.record_event(task_id, event_id, "upstream_callback", body)
        observability.count(observability.CALLBACKS_RECEIVED)
        if not first:
            observability.count(observability.CALLBACKS_DUPLICATE)
        task = store.peek(task_id, _FIELDS)  # TaskNotFound: a 404
        snapshot = read_snapshot(get_model(str(task["model"])), body)
        logger.info(
            "callback received",
            extra={"task_id": task_id, "duplicate": not first, "status": snapshot.raw_status},
        )
        if TaskStatus(task["status"]) in TERMINAL:  # late or repeated: kept, changes nothing
            return {"received": True, "duplicate": not first}
        if snapshot.upstream_id and snapshot.upstream_id != task.get("upstream_id"):
            logger.warning("callback names another upstream task", extra={"task_id": task_id})
            return {"received": True, "ignored": "upstream id mismatch"}
        if snapshot.reading.status is not None and snapshot.reading.status not in TERMINAL:
            # A mid-run report (a stale one sent out of order, say): nothing to wake up for.
            return {"received": True, "duplicate": not first}
        token = task.get("task_token")
        if token:
            from wanflow.following import token_gone

            sfn = self.sfn()
            try:
                sfn.send_task_success(
                    taskToken=str(token), output='{"next": "finalize", "via": "callback"}'
                )
            except token_gone(sfn):
                logger.info(
                    "token already used, timed out or its execution ended",
                    extra={"task_id": task_id},
                )
        return {"received": True, "duplicate": not first}

    def _verified(self, task_id: str, signature: str | None) -> bool:
        """Whether the signature is good under the secret, or under a newer one (rotated since
        this receiver read it)."""
        secret = self.secret()
        if verify(task_id, signature, secret):
            return True
        if not signature or self.reread_secret is None:
            return False
        newer = self.reread_secret(secret)
        return newer is not None and verify(task_id, signature, newer)


def _json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body or b"null")
    except ValueError:
        return None
