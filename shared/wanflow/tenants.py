"""Tenants: their API keys (stored only as SHA-256 hashes) and their webhook signing secrets.

A tenant is the item `pk=TENANT#<tenant>, sk=TENANT` of the one table, holding the `whsec_`
secret that signs the tenant's webhooks (Standard Webhooks). Each API key is the item
`pk=KEY#<sha256 of the key>, sk=KEY` (see `wanflow.apikeys`), listed per tenant on the shared
`by_tenant` index under `gsi1pk=KEYS#<tenant>` (tasks use `TENANT#<tenant>` there); the
key formats are `wanflow.keys`'.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from wanflow import keys
from wanflow.apikeys import DISPLAY_CHARS, KEY_PREFIX, key_item_key, new_key, owner_of
from wanflow.clock import now_iso
from wanflow.errors import ErrorItem, InvalidRequest, WanflowError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Bytes of randomness in a webhook secret (Standard Webhooks: 24 to 64).
_SECRET_BYTES = 32
TENANT_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_KEY_CHARS: Final = re.compile(r"^[A-Za-z0-9_-]{16,}$")


class KeyNotFound(WanflowError):
    """No key with this id belongs to this tenant."""

    code = "key_not_found"


class KeyConflict(WanflowError):
    """The key is already registered, for another tenant."""

    code = "key_conflict"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the key itself nor its hash."""

    key_id: str
    tenant: str
    prefix: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True)
class CreatedKey:
    """A new key, the only time its plaintext exists outside the client's hands."""

    key: str
    key_id: str
    tenant: str
    created_at: str
    webhook_secret: str | None
    """The tenant's `whsec_` secret when this call created the tenant, else None."""


def new_webhook_secret() -> str:
    """A fresh `whsec_` secret as Standard Webhooks libraries expect it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def check_tenant(tenant: str) -> str:
    """The tenant name if it is one; InvalidRequest naming `tenant` otherwise."""
    if not TENANT_NAME.match(tenant):
        message = (
            f"tenant {tenant!r} is not a tenant name: 1 to 63 of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
        raise InvalidRequest([ErrorItem(code="invalid_value", message=message, param="tenant")])
    return tenant


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _key_info(item: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        key_id=item["key_id"]["S"],
        tenant=item["tenant"]["S"],
        prefix=item["prefix"]["S"],
        created_at=item["created_at"]["S"],
        revoked_at=item.get("revoked_at", {}).get("S"),
    )


class Tenants:
    """Reads and writes tenants and their keys."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table = table_name
        self.client = client

    # --- webhook secrets

    def webhook_secret(self, tenant: str) -> str:
        """The tenant's webhook secret, created on first use (two racing callers agree)."""
        got = self.client.get_item(
            TableName=self.table, Key=keys.tenant_key(tenant), ConsistentRead=True
        )
        secret = got.get("Item", {}).get("webhook_secret", {}).get("S")
        if secret:
            return secret
        return self._create_tenant(tenant)[0]

    def _create_tenant(self, tenant: str) -> tuple[str, bool]:
        """The tenant's secret, and whether this call created the tenant."""
        secret = new_webhook_secret()
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **keys.tenant_key(tenant),
                    "tenant": {"S": tenant},
                    "webhook_secret": {"S": secret},
                    "created_at": {"S": now_iso()},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            got = self.client.get_item(
                TableName=self.table, Key=keys.tenant_key(tenant), ConsistentRead=True
            )
            return got["Item"]["webhook_secret"]["S"], False
        return secret, True

    # --- API keys

    def create_key(self, tenant: str) -> CreatedKey:
        """A new key for the tenant, creating the tenant (and its webhook secret) if new."""
        check_tenant(tenant)
        secret, created = self._create_tenant(tenant)
        plaintext = new_key()
        info = self._put_key(tenant, plaintext)
        return CreatedKey(
            key=plaintext,
            key_id=info.key_id,
            tenant=tenant,
            created_at=info.created_at,
            webhook_secret=secret if created else None,
        )

    def register_key(self, tenant: str, plaintext: str) -> KeyInfo:
        """Store a key chosen elsewhere (the local stack's fixed dev key); idempotent.

        Registering it again for the same tenant changes nothing (a revoked key stays revoked);
        for another tenant it is a KeyConflict.
        """
        check_tenant(tenant)
        if not plaintext.startswith(KEY_PREFIX) or not _KEY_CHARS.match(plaintext):
            raise InvalidRequest(
                [
                    ErrorItem(
                        code="invalid_value",
                        message=f"an API key starts with {KEY_PREFIX} and has at least 16 "
                        "characters of A-Z, a-z, 0-9, '_' and '-'",
                        param="key",
                    )
                ]
            )
        try:
            return self._put_key(tenant, plaintext)
        except KeyConflict:
            got = self.client.get_item(
                TableName=self.table, Key=key_item_key(plaintext), ConsistentRead=True
            )
            info = _key_info(got["Item"])
            if info.tenant != tenant:
                raise
            return info

    def _put_key(self, tenant: str, plaintext: str) -> KeyInfo:
        info = KeyInfo(
            key_id="key_" + secrets.token_hex(6),
            tenant=tenant,
            prefix=plaintext[:DISPLAY_CHARS],
            created_at=now_iso(),
        )
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **key_item_key(plaintext),
                    "tenant": {"S": tenant},
                    "key_id": {"S": info.key_id},
                    "prefix": {"S": info.prefix},
                    "created_at": {"S": info.created_at},
                    "gsi1pk": {"S": keys.tenant_api_keys(tenant)},
                    "gsi1sk": {"S": keys.by_created(info.created_at, info.key_id)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise KeyConflict("this API key is already registered") from None
            raise
        return info

    def list_keys(self, tenant: str) -> list[KeyInfo]:
        """The tenant's keys, newest first, revoked ones included."""
        check_tenant(tenant)
        return [_key_info(item) for item in self._key_items(tenant)]

    def _key_items(self, tenant: str) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": keys.BY_TENANT,
            "KeyConditionExpression": "gsi1pk = :k",
            "ExpressionAttributeValues": {":k": {"S": keys.tenant_api_keys(tenant)}},
            "ScanIndexForward": False,
        }
        items: list[dict[str, Any]] = []
        while True:
            got = self.client.query(**query)
            items.extend(got.get("Items", []))
            if "LastEvaluatedKey" not in got:
                return items
            query["ExclusiveStartKey"] = got["LastEvaluatedKey"]

    def revoke(self, tenant: str, key_id: str) -> KeyInfo:
        """Revoke one of the tenant's keys (revoking twice keeps the first time); KeyNotFound
        when the tenant has no such key. API Gateway may keep accepting it for the authorizer's
        cache time (ReauthorizeEvery)."""
        check_tenant(tenant)
        found = next((i for i in self._key_items(tenant) if i["key_id"]["S"] == key_id), None)
        if found is None:
            raise KeyNotFound(f"tenant {tenant} has no key {key_id}")
        try:
            got = self.client.update_item(
                TableName=self.table,
                Key={"pk": found["pk"], "sk": found["sk"]},
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ConditionExpression="attribute_exists(pk) AND tenant = :t AND key_id = :id",
                ExpressionAttributeValues={
                    ":now": {"S": now_iso()},
                    ":t": {"S": tenant},
                    ":id": {"S": key_id},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise KeyNotFound(f"tenant {tenant} has no key {key_id}") from None
            raise
        return _key_info(got["Attributes"])

    def tenant_for(self, plaintext: str) -> str | None:
        """The tenant of a key; None when the key is unknown or revoked."""
        owner = owner_of(self.client, self.table, plaintext)
        return owner.tenant if owner else None
