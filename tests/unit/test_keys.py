"""The table's key formats: stored items are found by them, so they must not drift."""

from __future__ import annotations

from wanflow import keys


def test_the_key_formats_are_the_stored_ones() -> None:
    # Literal strings on purpose: items already in the table were written with these.
    assert keys.task_key("t1") == {"pk": {"S": "TASK#t1"}, "sk": {"S": "TASK"}}
    assert keys.event_key("t1", "e1") == {"pk": {"S": "TASK#t1"}, "sk": {"S": "EVENT#e1"}}
    assert keys.delivery_key("t1", "2026-12-03T15:30:00.000Z", "ab") == {
        "pk": {"S": "TASK#t1"},
        "sk": {"S": "DELIVERY#2026-12-03T15:30:00.000Z#ab"},
    }
    assert keys.tenant_key("acme") == {"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}}
    assert keys.api_key_key("f00") == {"pk": {"S": "KEY#f00"}, "sk": {"S": "KEY"}}
    assert keys.upload_key("acme", "upl_1") == {
        "pk": {"S": "UPLOAD#acme/upl_1"},
        "sk": {"S": "UPLOAD"},
    }
    assert (keys.tenant_tasks("acme"), keys.tenant_api_keys("acme")) == ("TENANT#acme", "KEYS#acme")
    assert keys.by_created("2026-12-03T15:30:00.000Z", "t1") == "2026-12-03T15:30:00.000Z#t1"


def test_a_task_id_is_read_back_from_its_partition_and_nothing_else() -> None:
    assert keys.task_id_of(keys.task_pk("task_abc")) == "task_abc"
    assert keys.task_id_of("TENANT#acme") is None
    assert keys.task_id_of(keys.upload_pk_prefix("acme") + "upl_1") is None
