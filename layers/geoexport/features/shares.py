"""Feature files count against their owner's storage quota, in the same ledger as its exports.

Why: stored files had no quota at all. Uploads a client asks for are checked against its free share before
their URLs are handed out (``507`` naming ``clientStorageQuota``); a verified file is added to the ledger
once (per object: re-uploading the same bytes changes nothing), and deleting the feature takes every file
it ever stored off again. Which objects were counted is kept per feature (``files#<base>``, one attribute
per object), so the release needs no listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from geoexport import aws
from geoexport.errors import InsufficientStorage
from geoexport.tasks.repository import client_ledger_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _attribute(key: str) -> str:
    return "f" + hashlib.sha256(key.encode()).hexdigest()[:32]


class FileShares:
    def __init__(self, db: DynamoDBClient, counters_table: str, quota: Callable[[str], int]) -> None:
        self._db = db
        self._table = counters_table
        self._quota = quota  # owner -> bytes it may hold

    def check(self, owner: str, needed: int) -> None:
        """InsufficientStorage when ``needed`` more bytes do not fit the owner's free share."""
        if needed <= 0:
            return
        with aws.translated("reading the client's ledger"):
            item = self._db.get_item(
                TableName=self._table, Key=client_ledger_key(owner), ConsistentRead=True
            ).get("Item", {})
        committed = int(item.get("committedBytes", {}).get("N", "0"))
        total = self._quota(owner)
        free = max(0, total - committed)
        if needed > free:
            raise InsufficientStorage(
                f"the files to upload declare {needed} bytes but only {free} of client {owner}'s {total} "
                "(clientStorageQuota) are free; delete features or let exports expire",
                needed=needed,
                free=free,
                total=total,
                quota="clientStorageQuota",
            )

    def stored(self, owner: str, base: str, key: str, size: int) -> bool:
        """Count a verified object once; False when it was counted already."""
        name = _attribute(key)
        try:
            with aws.translated("counting a stored file"):
                self._db.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self._table,
                                "Key": {"name": {"S": f"files#{base}"}},
                                "UpdateExpression": "SET #k = :s, #o = :o",
                                "ConditionExpression": "attribute_not_exists(#k)",
                                "ExpressionAttributeNames": {"#k": name, "#o": "owner"},
                                "ExpressionAttributeValues": {":s": {"N": str(size)}, ":o": {"S": owner}},
                            }
                        },
                        {
                            "Update": {
                                "TableName": self._table,
                                "Key": client_ledger_key(owner),
                                "UpdateExpression": "ADD usedBytes :s, committedBytes :s",
                                "ExpressionAttributeValues": {":s": {"N": str(size)}},
                            }
                        },
                    ]
                )
        except self._db.exceptions.TransactionCanceledException:
            return False
        return True

    def released(self, base: str) -> int:
        """Take every counted object of the feature off its owner's ledger; the bytes released."""
        with aws.translated("reading the feature's counted files"):
            item: dict[str, Any] = self._db.get_item(
                TableName=self._table, Key={"name": {"S": f"files#{base}"}}, ConsistentRead=True
            ).get("Item", {})
        if not item:
            return 0
        sizes = [int(value["N"]) for name, value in item.items() if name.startswith("f") and "N" in value]
        total = sum(sizes)
        try:
            with aws.translated("releasing the feature's files"):
                self._db.transact_write_items(
                    TransactItems=[
                        {
                            "Delete": {
                                "TableName": self._table,
                                "Key": {"name": {"S": f"files#{base}"}},
                                "ConditionExpression": "attribute_exists(#n)",
                                "ExpressionAttributeNames": {"#n": "name"},
                            }
                        },
                        {
                            "Update": {
                                "TableName": self._table,
                                "Key": client_ledger_key(item["owner"]["S"]),
                                "UpdateExpression": "ADD usedBytes :s, committedBytes :s",
                                "ExpressionAttributeValues": {":s": {"N": str(-total)}},
                            }
                        },
                    ]
                )
        except self._db.exceptions.TransactionCanceledException:
            return 0  # released meanwhile by another delete
        return total
