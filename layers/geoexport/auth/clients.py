"""API clients (DynamoDB): who may call, with which scopes, and the secret their webhooks are signed with."""

from __future__ import annotations

import base64
import functools
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from geoexport.auth.passwords import hash_secret, new_secret, verify_secret

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ALL_SCOPES = ("exports:read", "exports:write")
#: Operators' scope, never a default: replacing catalog records' sources (PUT /catalog/records/{id}).
CATALOG_WRITE = "catalog:write"
#: Operators' scope, never a default: the operator-wide pause and resume (/operations/pause, /resume).
OPERATE = "exports:operate"


@functools.cache
def unknown_client_hash() -> str:
    """Verified against when a client id is unknown, so that costs one PBKDF2 run as a known id does.
    Made on first need, not at import: every function imports this module on its cold start."""
    return hash_secret(new_secret())


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    scopes: tuple[str, ...]
    webhook_secret: str  # Standard Webhooks: "whsec_" + base64 of the key
    disabled: bool = False  # a disabled client gets no token, and the tokens it holds stop working
    storage_quota_bytes: int | None = None  # None: the deployment's default (CLIENT_STORAGE_QUOTA_BYTES)
    max_concurrent_exports: int | None = None  # None: the default (CLIENT_MAX_CONCURRENT_EXPORTS)


@dataclass(frozen=True)
class NewClient:
    client: Client
    client_secret: str  # shown once, never stored


class ClientRepository:
    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def create(
        self,
        name: str,
        scopes: tuple[str, ...] = ALL_SCOPES,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> NewClient:
        client_id = client_id or f"gx-{uuid.uuid4().hex[:20]}"
        secret = client_secret or new_secret("gxs_")
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self._db.put_item(
            TableName=self._table,
            Item={
                "clientId": {"S": client_id},
                "name": {"S": name},
                "secretHash": {"S": hash_secret(secret)},
                "scopes": {"SS": list(scopes)},
                "webhookSecret": {"S": webhook_secret},
                "createdAt": {"S": datetime.now(UTC).isoformat()},
            },
            ConditionExpression="attribute_not_exists(clientId)",
        )
        return NewClient(Client(client_id, name, tuple(scopes), webhook_secret), secret)

    def get(self, client_id: str) -> Client | None:
        item = self._item(client_id)
        return _client(item) if item else None

    def verify(self, client_id: str, client_secret: str) -> Client | None:
        """The enabled client, when the secret matches its stored hash (the same work is done when it does
        not)."""
        item = self._item(client_id)
        stored = item["secretHash"]["S"] if item else unknown_client_hash()
        valid = verify_secret(client_secret, stored)
        client = _client(item) if item and valid else None
        return client if client is not None and not client.disabled else None

    def disable(self, client_id: str) -> bool:
        """Revoke the client: no new token, and its tokens are refused by the authorizer (at once locally,
        within the authorizer cache's 300 s on AWS). False when there is no such client."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"clientId": {"S": client_id}},
                UpdateExpression="SET disabled = :t",
                ConditionExpression="attribute_exists(clientId)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def set_quotas(
        self, client_id: str, storage_quota_bytes: int | None, max_concurrent_exports: int | None
    ) -> bool:
        """Give the client its own quotas (None: back to the deployment's default). False: no client."""
        sets, removes, values = [], [], {}
        for name, value in (
            ("storageQuotaBytes", storage_quota_bytes),
            ("maxConcurrentExports", max_concurrent_exports),
        ):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"N": str(value)}
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"clientId": {"S": client_id}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(clientId)",
                **({"ExpressionAttributeValues": values} if values else {}),  # type: ignore[arg-type]
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def delete(self, client_id: str) -> bool:
        """Remove the client: as disabled, and its webhook secret is gone (its callbacks are not sent)."""
        answer = self._db.delete_item(
            TableName=self._table, Key={"clientId": {"S": client_id}}, ReturnValues="ALL_OLD"
        )
        return bool(answer.get("Attributes"))

    def _item(self, client_id: str) -> dict[str, Any] | None:
        if not client_id or len(client_id) > 128:
            return None
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self._table, Key={"clientId": {"S": client_id}}, ConsistentRead=True
        ).get("Item")
        return item


def _client(item: dict[str, Any]) -> Client:
    return Client(
        item["clientId"]["S"],
        item["name"]["S"],
        tuple(sorted(item["scopes"]["SS"])),
        item["webhookSecret"]["S"],
        bool(item.get("disabled", {}).get("BOOL", False)),
        _number(item, "storageQuotaBytes"),
        _number(item, "maxConcurrentExports"),
    )


def _number(item: dict[str, Any], name: str) -> int | None:
    return int(item[name]["N"]) if name in item else None
