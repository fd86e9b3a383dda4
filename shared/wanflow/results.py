"""Tasks as clients see them: results only ever from our bucket, as short-lived presigned URLs.

What is guaranteed: an output's URL is a presigned GET of the copy finalize made under
`results/`, minted afresh on every read (an API answer, a client webhook attempt) and valid for
an hour, with its `expires_at`; never the upstream's link, so an output without our copy has no
URL. Nothing is written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from wanflow import clock
from wanflow.task import Task

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from wanflow.store import TaskRecord

#: How long a presigned result URL stays valid; a new one is minted on every read.
URL_TTL_S = 3600


def present(record: TaskRecord, s3: S3Client, bucket: str, ttl_s: int = URL_TTL_S) -> Task:
    """The public task, each stored output given a fresh presigned GET URL and its expiry.

    Never the upstream's link: an output without our copy has no URL.
    """
    task = record.public()
    expires = clock.iso(clock.now() + timedelta(seconds=ttl_s))
    outputs = []
    for stored in task.outputs:
        update: dict[str, str | None] = {"url": None}
        if stored.key:
            update["url"] = s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": stored.key}, ExpiresIn=ttl_s
            )
            update["expires_at"] = expires
        outputs.append(stored.model_copy(update=update))
    return task.model_copy(update={"outputs": outputs})
