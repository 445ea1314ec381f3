"""The local stack's DynamoDB transactions (geoexport_local.emulator.snapshot_only_touched_partitions): a
refused transaction leaves every item as it was (puts, in-place updates, deletes, new partitions, tables with
and without a range key), a committed one keeps its writes, and the backup no longer copies a partition."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from geoexport_local.emulator import snapshot_only_touched_partitions, sorted_partitions
from tests.support import create_ranged_table


@pytest.fixture
def db() -> Iterator[Any]:
    sorted_partitions()
    snapshot_only_touched_partitions()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        create_ranged_table(client, "ranged")
        client.create_table(
            TableName="plain",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(50):  # one big partition, as an owner's journal
            client.put_item(
                TableName="ranged", Item={"pk": {"S": "J"}, "sk": {"S": f"{i:03d}"}, "n": {"N": str(i)}}
            )
        client.put_item(TableName="plain", Item={"id": {"S": "a"}, "n": {"N": "1"}})
        yield client


def everything(client: Any) -> dict[str, Any]:
    return {
        name: sorted(
            (
                tuple(sorted((k, str(v)) for k, v in item.items()))
                for item in client.scan(TableName=name)["Items"]
            ),
        )
        for name in ("ranged", "plain")
    }


def key(sk: str, pk: str = "J") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": item}}


def setting(table: str, where: dict[str, Any], n: str) -> dict[str, Any]:
    values = {":v": {"N": n}}
    return {"Update": {"TableName": table, "Key": where, "UpdateExpression": "SET n = :v",
                       "ExpressionAttributeValues": values}}  # fmt: skip


def test_a_refused_transaction_changes_nothing(db: Any) -> None:
    before = everything(db)
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(
            TransactItems=[
                put("ranged", {**key("050"), "n": {"N": "50"}}),  # new item in the big partition
                put("ranged", {**key("001"), "n": {"N": "-1"}}),  # replaced
                setting("ranged", key("002"), "-2"),  # updated in place
                {"Delete": {"TableName": "ranged", "Key": key("003")}},
                put("ranged", key("x", pk="NEW")),  # a new partition
                setting("plain", {"id": {"S": "a"}}, "9"),  # no range key: updated in place
                put("plain", {"id": {"S": "b"}}),
                {"ConditionCheck": {"TableName": "ranged", "Key": key("010"),
                                    "ConditionExpression": "attribute_not_exists(pk)"}},  # fails
            ]
        )  # fmt: skip
    assert everything(db) == before
    values = {":p": {"S": "J"}}
    pages = db.query(TableName="ranged", KeyConditionExpression="pk = :p", ExpressionAttributeValues=values)
    assert [item["sk"]["S"] for item in pages["Items"]] == [f"{i:03d}" for i in range(50)]  # still in order


def test_a_committed_transaction_keeps_its_writes(db: Any) -> None:
    db.transact_write_items(
        TransactItems=[
            put("ranged", key("050")),
            {"Delete": {"TableName": "ranged", "Key": key("000")}},
            setting("plain", {"id": {"S": "a"}}, "9"),
        ]
    )  # fmt: skip
    keys = [i["sk"]["S"] for i in db.scan(TableName="ranged")["Items"]]
    assert "050" in keys and "000" not in keys and len(keys) == 50
    assert db.get_item(TableName="plain", Key={"id": {"S": "a"}})["Item"]["n"] == {"N": "9"}


def test_the_backup_copies_items_not_partitions(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the items a transaction names are deep-copied (one each), never the 50-item partition."""
    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        copied.append(type(value).__name__)
        if isinstance(value, Table):
            raise AssertionError("a whole table was deep-copied")
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    db.transact_write_items(TransactItems=[put("ranged", key("060"))])
    assert "Partition" not in copied
