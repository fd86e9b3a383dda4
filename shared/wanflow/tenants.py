"""Tenants: their API keys (stored only as SHA-256 hashes) and their webhook signing secrets.

A tenant is the item `pk=TENANT#<tenant>, sk=TENANT` of the one table, holding the `whsec_`
secret that signs the tenant's webhooks (Standard Webhooks).
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from wanflow.store import now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Bytes of randomness in a webhook secret (Standard Webhooks: 24 to 64).
_SECRET_BYTES = 32


def _tenant_key(tenant: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": "TENANT"}}


def new_webhook_secret() -> str:
    """A fresh `whsec_` secret as Standard Webhooks libraries expect it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


class Tenants:
    """Reads and writes tenants and their keys."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table = table_name
        self.client = client

    def webhook_secret(self, tenant: str) -> str:
        """The tenant's webhook secret, created on first use (two racing callers agree)."""
        got = self.client.get_item(
            TableName=self.table, Key=_tenant_key(tenant), ConsistentRead=True
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
                    **_tenant_key(tenant),
                    "tenant": {"S": tenant},
                    "webhook_secret": {"S": secret},
                    "created_at": {"S": now_iso()},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            got = self.client.get_item(
                TableName=self.table, Key=_tenant_key(tenant), ConsistentRead=True
            )
            return got["Item"]["webhook_secret"]["S"], False
        return secret, True
