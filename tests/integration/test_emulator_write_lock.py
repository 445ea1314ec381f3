"""A refused DynamoDB transaction on the local stack undoes only its own writes: its undo log is read under
the write lock, so a write made meanwhile by another request (a dedupe claim, a ledger's reservation) is
kept. (The log was read before the lock: a concurrent claim was rolled back with the refused transaction,
and fifty identical export requests made two tasks.)"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from geoexport_local.emulator import DYNAMODB_WRITES
from geoexport_local.template import ACCOUNT
from tests.integration.conftest import Cloud


def test_a_refused_transaction_keeps_what_another_write_did_meanwhile(cloud: Cloud) -> None:
    from moto.dynamodb.models import dynamodb_backends

    db = cloud.client("dynamodb")
    table = f"lock-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    refused: list[Any] = []

    def claim_then_refuse() -> None:  # claims "x", then fails on a missing "gate": rolled back
        try:
            db.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": {"id": {"S": "x"}, "by": {"S": "refused"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": {"id": {"S": "gate"}},
                            "ConditionExpression": "attribute_exists(id)",
                        }
                    },
                ]
            )
        except ClientError as error:
            refused.append(error.response["Error"]["Code"])

    backend = dynamodb_backends[ACCOUNT][cloud.stack.region]
    with DYNAMODB_WRITES:  # another request's write is under way
        other = threading.Thread(target=claim_then_refuse)
        other.start()
        time.sleep(0.5)  # the transaction has arrived and waits for the lock
        backend.put_item(table, {"id": {"S": "x"}, "by": {"S": "winner"}})
    other.join(30)
    assert refused == ["TransactionCanceledException"]
    item = db.get_item(TableName=table, Key={"id": {"S": "x"}}, ConsistentRead=True).get("Item")
    assert item == {"id": {"S": "x"}, "by": {"S": "winner"}}
