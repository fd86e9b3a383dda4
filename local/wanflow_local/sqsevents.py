"""The SQS event source mappings of the local stack: queued messages reach their function.

moto would hand SQS messages to a Docker-run Lambda, which does not exist here. So each `SQS`
event source of the template gets a poller that does what Lambda's mapping does: receive a
batch (short waits; up to the mapping's `ScalingConfig.MaximumConcurrency` batches in flight at
once), invoke the function in-process with the event Lambda sends, delete the
records that succeeded — all of them, or all but the `batchItemFailures` it reported — and leave
the failed ones to reappear after the queue's visibility timeout (and, past the redrive
policy's `maxReceiveCount`, to go to the dead-letter queue, which moto does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Self

from wanflow_local.aws import LocalAws
from wanflow_local.deploy import Function, Stack

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

#: Longest batch Lambda's SQS mapping takes by default.
DEFAULT_BATCH_SIZE = 10
#: Longest pause between two receives of an empty queue.
MAX_IDLE_S = 0.2


def _md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS mapping sends a function for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType"),
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or _md5(m["Body"]),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def failed_ids(payload: bytes | None, failed: bool, batch: list[MessageTypeDef]) -> set[str]:
    """The message ids of a batch to keep on the queue after the function ran.

    As Lambda does with `ReportBatchItemFailures`: a function error or an answer that cannot be
    read keeps the whole batch; otherwise the ids listed in `batchItemFailures`.
    """
    everything = {m["MessageId"] for m in batch}
    if payload is None or failed:
        return everything
    try:
        answer = json.loads(payload)
        items = answer.get("batchItemFailures") or [] if isinstance(answer, dict) else []
        return {str(item["itemIdentifier"]) for item in items}
    except (ValueError, KeyError, TypeError):
        return everything


class QueuePoller:
    """Feeds one queue to one function, as Lambda's SQS event source mapping does (start/stop)."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        function: Function,
        region: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        concurrency: int = 1,
        idle_s: float = 0.05,
    ) -> None:
        self._sqs = sqs
        self._queue_url, self._queue_arn = queue_url, queue_arn
        self._function = function
        self._region = region
        self._batch_size = max(1, min(batch_size, 10))
        self._idle_s = idle_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{function.name}", daemon=True)
        # Batches in flight at once: a receive waits for a free slot.
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self._workers = ThreadPoolExecutor(max(1, concurrency), f"sqs-{function.name}-batch")

    def start(self) -> Self:
        """Start polling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling; the batch under way finishes first (bounded by the join)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._workers.shutdown(wait=True)

    def _run(self) -> None:
        idle = self._idle_s
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=self._idle_s):
                continue
            try:
                got = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=self._batch_size,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                )
            except Exception:  # moto stopping under us: the next round or stop() decides
                logger.debug("receive failed", exc_info=True)
                self._slots.release()
                self._stop.wait(self._idle_s)
                continue
            batch = got.get("Messages", [])
            if not batch:
                self._slots.release()
                # Lambda long-polls an empty queue; here each empty receive is a request to the
                # in-process moto, so the pause doubles while the queue stays empty (up to
                # MAX_IDLE_S, the most a message waits for an idle poller) and every receive
                # that finds something resets it.
                self._stop.wait(idle)
                idle = min(idle * 2, MAX_IDLE_S)
                continue
            idle = self._idle_s
            self._workers.submit(self._deliver_in_slot, batch)

    def _deliver_in_slot(self, batch: list[MessageTypeDef]) -> None:
        try:
            self._deliver(batch)
        except Exception:  # logged; the batch comes back after the visibility timeout
            logger.exception("sqs batch not delivered")
        finally:
            self._slots.release()

    def _deliver(self, batch: list[MessageTypeDef]) -> None:
        ran = self._function.invoke(sqs_event(batch, self._queue_arn, self._region))
        payload, failed = (None, True) if ran is None else ran
        keep = failed_ids(payload, failed, batch)
        done = [m for m in batch if m["MessageId"] not in keep]
        if keep:
            logger.warning(
                "sqs records failed",
                extra={"function": self._function.name, "failed": len(keep)},
            )
        if done:
            try:
                self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )
            except Exception:  # they come back after the visibility timeout, as on AWS
                logger.warning("deleting handled messages failed", exc_info=True)


class SqsEventSources:
    """Every `SQS` event source of a stack, each fed by a QueuePoller (start/stop)."""

    def __init__(self, stack: Stack, aws: LocalAws, *, idle_s: float = 0.05) -> None:
        sqs = aws.client("sqs")
        self._pollers: list[QueuePoller] = []
        for source in stack.event_sources:
            if source.type != "SQS" or source.target not in stack.functions:
                continue
            queue_arn = str(source.properties["EventSourceArn"])
            queue_name = queue_arn.rsplit(":", 1)[-1]
            queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            function = stack.functions[source.target]
            # Lambda polls the queue with the function's execution role (it needs
            # sqs:ReceiveMessage, DeleteMessage and GetQueueAttributes): so does this.
            poller_sqs = aws.role_session(function.role_arn, function.name).client(
                "sqs", endpoint_url=aws.endpoint_url
            )
            batch = int(source.properties.get("BatchSize") or DEFAULT_BATCH_SIZE)
            # Up to the mapping's ScalingConfig.MaximumConcurrency batches at once. Without one,
            # one at a time, where Lambda would run up to five at first: such a queue is
            # consumed more slowly here than on AWS, never faster.
            scaling = source.properties.get("ScalingConfig") or {}
            concurrency = int(scaling.get("MaximumConcurrency") or 1)
            self._pollers.append(
                QueuePoller(
                    poller_sqs,
                    queue_url,
                    queue_arn,
                    function,
                    aws.region,
                    batch_size=batch,
                    concurrency=concurrency,
                    idle_s=idle_s,
                )
            )

    def start(self) -> Self:
        """Start every poller."""
        for poller in self._pollers:
            poller.start()
        return self

    def stop(self) -> None:
        """Stop every poller."""
        for poller in self._pollers:
            poller._stop.set()
        for poller in self._pollers:
            poller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
