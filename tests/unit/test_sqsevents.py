"""The local SQS event source mapping: the event it sends and what it deletes afterwards."""

from __future__ import annotations

import json
from typing import Any

from wanflow_local.sqsevents import failed_ids, sqs_event

ARN = "arn:aws:sqs:us-east-1:123456789012:notify"


def _batch(*ids: str) -> list[Any]:
    return [{"MessageId": i, "ReceiptHandle": f"rh-{i}", "Body": '{"n": 1}'} for i in ids]


def test_the_event_is_what_lambdas_sqs_mapping_sends() -> None:
    [record] = sqs_event(_batch("m1"), ARN, "us-east-1")["Records"]
    assert record["messageId"] == "m1"
    assert record["receiptHandle"] == "rh-m1"
    assert json.loads(record["body"]) == {"n": 1}
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", ARN)
    assert len(record["md5OfBody"]) == 32


def test_only_the_reported_failures_stay_on_the_queue() -> None:
    answer = json.dumps({"batchItemFailures": [{"itemIdentifier": "m2"}]}).encode()
    assert failed_ids(answer, False, _batch("m1", "m2", "m3")) == {"m2"}
    assert failed_ids(b'{"batchItemFailures": []}', False, _batch("m1")) == set()


def test_a_function_error_or_an_unreadable_answer_keeps_the_whole_batch() -> None:
    assert failed_ids(b'{"errorType": "X"}', True, _batch("m1", "m2")) == {"m1", "m2"}
    assert failed_ids(b"not json", False, _batch("m1")) == {"m1"}
    assert failed_ids(None, True, _batch("m1")) == {"m1"}
