"""The keys of the one table: every item's `pk`/`sk` and the `by_tenant` index's `gsi1pk`/`gsi1sk`.

What lives where (template.yaml declares the attributes and the index):
- a task: `pk=TASK#<task id>, sk=TASK`, on the index under `gsi1pk=TENANT#<tenant>`;
- beside it, its upstream callbacks and other events `sk=EVENT#<event id>`, and its webhook
  delivery log `sk=DELIVERY#<time>#<random>`;
- a tenant: `pk=TENANT#<tenant>, sk=TENANT`;
- an API key: `pk=KEY#<sha256 hex of the key>, sk=KEY`, on the index under `gsi1pk=KEYS#<tenant>`;
- a granted upload's request: `pk=UPLOAD#<tenant>/<upload id>, sk=UPLOAD`.

On the index, `gsi1sk=<created_at>#<id>`: times have a fixed width (`wanflow.clock`), so a
tenant's tasks and keys come back in creation order. Nothing else builds or parses these
strings. Free of pydantic and of the rest of wanflow: the authorizer imports it.
"""

from __future__ import annotations

from typing import Final

#: The index listing a tenant's tasks (`gsi1pk=TENANT#...`) and API keys (`gsi1pk=KEYS#...`).
BY_TENANT: Final = "by_tenant"

TASK_PREFIX: Final = "TASK#"
TASK_SK: Final = "TASK"
EVENT_PREFIX: Final = "EVENT#"
DELIVERY_PREFIX: Final = "DELIVERY#"
TENANT_PREFIX: Final = "TENANT#"
TENANT_SK: Final = "TENANT"
API_KEY_PREFIX: Final = "KEY#"
API_KEY_SK: Final = "KEY"
TENANT_KEYS_PREFIX: Final = "KEYS#"
UPLOAD_PREFIX: Final = "UPLOAD#"
UPLOAD_SK: Final = "UPLOAD"

#: A DynamoDB key in the low-level client's form: `{"pk": {"S": ...}, "sk": {"S": ...}}`.
ItemKey = dict[str, dict[str, str]]


def _key(pk: str, sk: str) -> ItemKey:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


# --- tasks and what sits beside them


def task_pk(task_id: str) -> str:
    """The partition of a task: the task, its events and its delivery log."""
    return f"{TASK_PREFIX}{task_id}"


def task_id_of(pk: str) -> str | None:
    """The task id in a `pk`; None when the item is not a task's."""
    return pk.removeprefix(TASK_PREFIX) if pk.startswith(TASK_PREFIX) else None


def task_key(task_id: str) -> ItemKey:
    """The key of a task's item."""
    return _key(task_pk(task_id), TASK_SK)


def event_key(task_id: str, event_id: str) -> ItemKey:
    """The key of one recorded event (an upstream callback) of a task."""
    return _key(task_pk(task_id), f"{EVENT_PREFIX}{event_id}")


def delivery_key(task_id: str, at: str, suffix: str) -> ItemKey:
    """The key of one webhook delivery attempt: sorted by its time, `suffix` keeps equal times
    apart."""
    return _key(task_pk(task_id), f"{DELIVERY_PREFIX}{at}#{suffix}")


def tenant_tasks(tenant: str) -> str:
    """The index partition (`gsi1pk`) of a tenant's tasks."""
    return f"{TENANT_PREFIX}{tenant}"


def by_created(created_at: str, item_id: str) -> str:
    """An index sort key (`gsi1sk`): creation order, the id breaking ties."""
    return f"{created_at}#{item_id}"


# --- tenants and their API keys


def tenant_key(tenant: str) -> ItemKey:
    """The key of a tenant's item (its webhook secret)."""
    return _key(f"{TENANT_PREFIX}{tenant}", TENANT_SK)


def api_key_key(key_hash: str) -> ItemKey:
    """The key of an API key's item, by the key's SHA-256 hex digest."""
    return _key(f"{API_KEY_PREFIX}{key_hash}", API_KEY_SK)


def tenant_api_keys(tenant: str) -> str:
    """The index partition (`gsi1pk`) of a tenant's API keys."""
    return f"{TENANT_KEYS_PREFIX}{tenant}"


# --- uploads


def upload_pk_prefix(tenant: str) -> str:
    """What every granted upload of a tenant's `pk` starts with."""
    return f"{UPLOAD_PREFIX}{tenant}/"


def upload_key(tenant: str, upload_id: str) -> ItemKey:
    """The key of a granted upload's request."""
    return _key(f"{upload_pk_prefix(tenant)}{upload_id}", UPLOAD_SK)
