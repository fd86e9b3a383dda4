"""S3 notifications for the local stack: new objects under a trigger's prefix reach its function.

moto would send S3 notifications to a Docker-run Lambda, which does not exist here. So each
`S3` event source of the template is watched (its bucket listed a few times a second) and every
new object is delivered as the ObjectCreated event S3 sends, to the function's in-process
handler, on a thread of its own (S3 invokes Lambda asynchronously).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any, Self

from wanflow_local.aws import LocalAws
from wanflow_local.deploy import EventSource, Function, Stack

logger = logging.getLogger(__name__)


def _prefix(source: EventSource) -> str:
    rules = ((source.properties.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
    return next((str(r["Value"]) for r in rules if str(r.get("Name")).lower() == "prefix"), "")


def object_created(bucket: str, key: str, etag: str, size: int, region: str) -> dict[str, Any]:
    """The event S3 sends a function for one new object."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": size, "eTag": etag},
                },
            }
        ]
    }


class S3Notifier:
    """Watches the stack's S3 triggers and delivers ObjectCreated events (start/stop)."""

    def __init__(self, stack: Stack, aws: LocalAws, *, interval_s: float = 0.25) -> None:
        self._s3 = aws.client("s3")
        self._region = aws.region
        self._interval_s = interval_s
        self._triggers: list[tuple[str, str, Function]] = []
        for source in stack.event_sources:
            if source.type == "S3" and source.target in stack.functions:
                bucket = str(source.properties["Bucket"])
                self._triggers.append((bucket, _prefix(source), stack.functions[source.target]))
        self._seen: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-notifier", daemon=True)

    def start(self) -> Self:
        """Start watching; objects already there are not new."""
        for bucket, prefix, _ in self._triggers:
            for key, etag, _size in self._list(bucket, prefix):
                self._seen.add((bucket, key, etag))
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (deliveries under way finish on their own)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _list(self, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
        found = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            found += [(o["Key"], o["ETag"].strip('"'), o["Size"]) for o in page.get("Contents", [])]
        return found

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            for bucket, prefix, function in self._triggers:
                try:
                    listed = self._list(bucket, prefix)
                except Exception:  # moto stopping under us: the next round or stop() decides
                    logger.debug("listing failed", exc_info=True)
                    continue
                for key, etag, size in listed:
                    if (bucket, key, etag) in self._seen:
                        continue
                    self._seen.add((bucket, key, etag))
                    event = object_created(bucket, key, etag, size, self._region)
                    threading.Thread(
                        target=self._deliver, args=(function, event), daemon=True
                    ).start()

    @staticmethod
    def _deliver(function: Function, event: dict[str, Any]) -> None:
        started = time.monotonic()
        ran = function.invoke(event)
        failed = ran is None or ran[1]
        logger.log(
            logging.WARNING if failed else logging.DEBUG,
            "s3 notification delivered",
            extra={"function": function.name, "failed": failed, "s": time.monotonic() - started},
        )
