"""The local stack's parse-once patches to moto (geoexport_local.emulator.parsed_expressions_once and
items_sized_once): conditions still decide as moto decides (values differ between writes of one
expression; a wrong expression is refused every time), each text is parsed once, and items over DynamoDB's
size limit are refused exactly as before while an item's size is summed once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import jsonpath_ng.ext
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

from geoexport_local.emulator import ITEM_SIZE_LIMIT, items_sized_once, parsed_expressions_once
from tests.support import create_ranged_table


@pytest.fixture
def db() -> Iterator[Any]:
    parsed_expressions_once()
    items_sized_once()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        create_ranged_table(client, "t")
        yield client


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_one_expression_with_other_values_decides_on_its_values(db: Any) -> None:
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    db.put_item(TableName="t", Item={**key, "n": {"N": "1"}})
    bump = {
        "TableName": "t",
        "Key": key,
        "UpdateExpression": "SET #n = #n + :one",
        "ConditionExpression": "#n = :seen",
        "ExpressionAttributeNames": {"#n": "n"},
    }
    db.update_item(**bump, ExpressionAttributeValues={":one": {"N": "1"}, ":seen": {"N": "1"}})
    with pytest.raises(ClientError) as stale:  # the same text again: n is 2 now
        db.update_item(**bump, ExpressionAttributeValues={":one": {"N": "1"}, ":seen": {"N": "1"}})
    assert code(stale) == "ConditionalCheckFailedException"
    db.update_item(**bump, ExpressionAttributeValues={":one": {"N": "1"}, ":seen": {"N": "2"}})
    assert db.get_item(TableName="t", Key=key)["Item"]["n"] == {"N": "3"}


def test_claims_refuse_the_second_writer_every_time(db: Any) -> None:
    for n in range(3):
        claim = {"pk": {"S": f"C#{n}"}, "sk": {"S": "CLAIM"}}
        put = {"Put": {"TableName": "t", "Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}}
        db.transact_write_items(TransactItems=[put])
        with pytest.raises(ClientError) as taken:
            db.transact_write_items(TransactItems=[put])
        assert code(taken) == "TransactionCanceledException"


def test_names_are_checked_on_every_request(db: Any) -> None:
    """moto's handler extends the list of names a parse found; a kept parse must not grow with it."""
    item = {"pk": {"S": "b"}, "sk": {"S": "1"}}
    unused = {
        "TableName": "t",
        "Item": item,
        "ConditionExpression": "attribute_not_exists(#p)",
        "ExpressionAttributeNames": {"#p": "pk", "#unused": "x"},
    }
    for _ in range(3):
        with pytest.raises(ClientError) as refused:
            db.put_item(**unused)
        assert code(refused) == "ValidationException"
        assert "unused" in str(refused.value)
    used = {**unused, "ExpressionAttributeNames": {"#p": "pk"}}
    for _ in range(3):
        db.transact_write_items(TransactItems=[{"Put": {k: v for k, v in used.items()}}])
        db.delete_item(TableName="t", Key=item)


def test_an_unused_value_is_refused_every_time(db: Any) -> None:
    key = {"pk": {"S": "c"}, "sk": {"S": "1"}}
    for _ in range(3):
        with pytest.raises(ClientError) as refused:
            db.update_item(
                TableName="t",
                Key=key,
                UpdateExpression="SET n = :n",
                ConditionExpression="attribute_not_exists(pk)",
                ExpressionAttributeValues={":n": {"N": "1"}, ":unused": {"S": "x"}},
            )
        assert code(refused) == "ValidationException"
        assert ":unused" in str(refused.value)
    db.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET n = :n",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    assert db.get_item(TableName="t", Key=key)["Item"]["n"] == {"N": "1"}


def counter(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> list[int]:
    """Counts the calls of ``owner.name`` (in the one-element list returned)."""
    calls = [0]
    original = getattr(owner, name)

    def counted(self: Any) -> Any:
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_each_condition_is_parsed_once(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    parses = counter(monkeypatch, ConditionExpressionParser, "parse")
    condition = "attribute_not_exists(pk) AND attribute_not_exists(parsed_once_marker)"
    for n in range(20):
        claim = {"pk": {"S": f"P#{n}"}, "sk": {"S": "CLAIM"}}
        db.transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": claim, "ConditionExpression": condition}}]
        )
    assert parses[0] <= 2  # moto alone: 40 (its handler and its backend parse each item's condition)


def test_event_paths_are_parsed_once() -> None:
    parsed_expressions_once()
    assert jsonpath_ng.ext.parse("$.detail.once") is jsonpath_ng.ext.parse("$.detail.once")
    assert [m.value for m in jsonpath_ng.ext.parse("$.detail.once").find({"detail": {"once": 7}})] == [7]


def sized(db: Any, filler: int) -> dict[str, Any]:
    """An item of 30 attributes whose names and values total ITEM_SIZE_LIMIT + ``filler`` bytes."""
    item: dict[str, Any] = {"pk": {"S": "big"}, "sk": {"S": str(filler)}}
    item.update({f"a{i:02d}": {"S": "x" * 1000} for i in range(28)})
    used = sum(len(k) + DynamoType(v).size() for k, v in item.items())
    item["rest"] = {"S": "y" * (ITEM_SIZE_LIMIT + filler - used - len("rest"))}
    return item


def moto_refuses(item: dict[str, Any]) -> bool:
    """moto's own check, attribute by attribute (what Item did before the patch)."""
    attrs = LimitedSizeDict()
    try:
        for key, value in item.items():
            attrs[key] = DynamoType(value)
    except ItemSizeTooLarge:
        return True
    return False


def test_items_at_the_limit_pass_and_over_it_are_refused(db: Any) -> None:
    assert [moto_refuses(sized(db, f)) for f in (-1, 0, 1, 500)] == [False, False, True, True]
    db.put_item(TableName="t", Item=sized(db, 0))
    db.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": sized(db, -1)}}])
    with pytest.raises(ClientError) as too_big:
        db.put_item(TableName="t", Item=sized(db, 1))
    assert code(too_big) == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in str(too_big.value)
    with pytest.raises(ClientError) as in_transaction:
        db.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": sized(db, 1)}}])
    assert code(in_transaction) in ("ValidationException", "TransactionCanceledException")


def test_an_item_is_sized_once(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = counter(monkeypatch, DynamoType, "size")
    item = {"pk": {"S": "wide"}, "sk": {"S": "1"}, **{f"a{i}": {"S": "v"} for i in range(60)}}
    db.put_item(TableName="t", Item=item)
    assert sizes[0] < 3 * len(item)  # moto alone: every attribute set sums all before it (~1,900 here)
    assert db.get_item(TableName="t", Key={"pk": item["pk"], "sk": item["sk"]})["Item"] == item


def test_values_cast_as_moto_casts_them() -> None:
    items_sized_once()
    assert DynamoType({"S": "a"}).cast_value == "a"
    assert DynamoType({"N": "1.50"}).cast_value == Decimal("1.5")
    assert DynamoType({"SS": ["b", "a"]}).cast_value == {"a", "b"}
    assert DynamoType({"M": {"k": {"N": "2"}}}).cast_value == {"k": Decimal(2)}
    assert DynamoType({"NULL": True}).cast_value is None
    assert DynamoType({"S": "x"}) == DynamoType({"S": "x"}) != DynamoType({"N": "1"})
    assert len({DynamoType({"S": "x"}), DynamoType({"S": "x"}), DynamoType({"S": "y"})}) == 2
    assert sorted([DynamoType({"S": "b"}), DynamoType({"S": "a"})])[0].value == "a"
