"""The emulator's fast path for DynamoDB batch writes and put transactions (geoexport_local.fastwrites)
answers and writes exactly as moto does: the same requests, sent once with it and once to moto alone
(each to its own table), give the same answers, errors and tables; plain requests are taken by it,
everything else is left to moto; what it writes is saved before the answer and restored."""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from geoexport_local import durable
from geoexport_local.durable import StateStore
from geoexport_local.fastwrites import FastWrites
from geoexport_local.template import ACCOUNT
from tests.integration.conftest import Cloud

T = "{table}"


def put(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    return {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": sk}, **extra}}}


def delete(pk: str, sk: str) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}}


def tx_put(pk: str, sk: str, condition: str | None = None, **options: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"TableName": T, "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": "7"}}}
    if condition:
        operation["ConditionExpression"] = condition
    return {"Put": {**operation, **options}}


def batch(*requests: dict[str, Any], table: str = T) -> tuple[str, dict[str, Any]]:
    return "batch_write_item", {"RequestItems": {table: list(requests)}}


def tx(*items: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "transact_write_items", {"TransactItems": list(items)}


NAMED = {"ExpressionAttributeNames": {"#n": "n"}}
NEW = "attribute_not_exists(pk)"

#: (operation, arguments, taken by the fast path); ``{table}`` is each run's table.
STEPS: list[tuple[str, dict[str, Any], bool]] = [
    (*batch(put("a", "1", v={"S": "x"}), put("a", "2", n={"N": "-12"})), True),
    (*batch(put("b", "1"), delete("a", "1"), delete("z", "9")), True),
    (*batch(put("a", "2", v={"S": "new"})), True),  # an overwrite
    (*batch(put("c", "1", e={"S": ""})), True),  # an empty string, not a key
    (*batch(put("d", "1"), put("d", "1")), False),  # one key twice
    (*batch(put("d", "1"), delete("d", "1")), False),
    (*batch(put("d", "")), False),  # an empty range key
    (*batch(put("d", "2", m={"M": {"k": {"BOOL": True}}})), False),
    (*batch(put("d", "3", f={"N": "1.5"})), False),
    (*batch(*(put("e", str(i)) for i in range(26))), False),  # over 25
    (*batch(put("f", "1", big={"S": "x" * 410_000})), False),  # over the item size
    (*batch(put("g", "1"), table="no-such-table"), False),
    (*tx(tx_put("h", "1", NEW), tx_put("h", "2")), True),
    (*tx(tx_put("i", "1"), tx_put("h", "1", NEW)), False),  # the condition fails: cancelled
    (*tx(tx_put("h", "2", "#n = :v", **NAMED, ExpressionAttributeValues={":v": {"N": "7"}})), True),
    (*tx(tx_put("h", "2", "#n = :v", **NAMED, ExpressionAttributeValues={":v": {"N": "6"}})), False),
    (*tx(tx_put("j", "1", NEW, ExpressionAttributeNames={"#unused": "n"})), False),
    (*tx(tx_put("k", "1"), tx_put("k", "1")), False),
    (*tx({"Delete": {"TableName": T, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}}), False),
    (*tx(tx_put("l", "1", "attribute_not_exists(")), False),  # does not parse
]


def _with(value: Any, table: str) -> Any:
    return json.loads(json.dumps(value).replace(T, table))


def _run(db: Any, table: str, fast: bool) -> list[tuple[Any, ...]]:
    """Each step's outcome (its answer, or its error's code and message), as the caller sees it."""
    outcomes: list[tuple[Any, ...]] = []
    FastWrites.enabled = fast
    try:
        for operation, arguments, _ in STEPS:
            try:
                answer = getattr(db, operation)(**_with(arguments, table))
                answer.pop("ResponseMetadata")
                outcomes.append(("ok", json.loads(json.dumps(answer).replace(table, T))))
            except ClientError as error:
                reasons = error.response.get("CancellationReasons")
                message = str(error.response["Error"].get("Message")).replace(table, T)
                outcomes.append(("error", error.response["Error"]["Code"], message, reasons))
    finally:
        FastWrites.enabled = True
    return outcomes


def _items(db: Any, table: str) -> list[dict[str, Any]]:
    return sorted(db.scan(TableName=table)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _table(db: Any) -> str:
    name = f"fast-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return name


def test_the_fast_path_answers_and_writes_as_moto_does(cloud: Cloud) -> None:
    db = cloud.client("dynamodb")
    moto_table, fast_table = _table(db), _table(db)
    expected = _run(db, moto_table, fast=False)
    before = FastWrites.answered
    got = _run(db, fast_table, fast=True)
    for step, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        assert mine == theirs, f"step {step}: {STEPS[step][0]}"
    assert _items(db, fast_table) == _items(db, moto_table)
    assert {o[0] for o in expected} == {"ok", "error"}  # both kinds of outcome were compared
    assert FastWrites.answered - before == sum(taken for _, _, taken in STEPS)


def test_what_the_fast_path_takes_and_leaves(cloud: Cloud) -> None:
    db = cloud.client("dynamodb")
    table = _table(db)
    FastWrites.enabled = True
    for step, (operation, arguments, taken) in enumerate(STEPS):
        before = FastWrites.answered
        try:
            getattr(db, operation)(**_with(arguments, table))
        except ClientError:
            pass
        assert FastWrites.answered - before == int(taken), f"step {step}: {operation}"


def test_fast_writes_are_saved_before_the_answer_and_restored(cloud: Cloud, store: StateStore) -> None:
    db = cloud.client("dynamodb")
    table = _table(db)
    before = FastWrites.answered
    db.batch_write_item(RequestItems={table: [put("p", str(i), v={"S": f"value {i}"}) for i in range(20)]})
    db.batch_write_item(RequestItems={table: [delete("p", "3"), put("p", "4", v={"S": "again"})]})
    db.transact_write_items(TransactItems=_with([tx_put("q", "1", NEW)], table))
    assert FastWrites.answered - before == 3
    rows = store.rows("SELECT hk, rk, item FROM ddb WHERE tbl = ?", table)  # on disk as answered

    def text(item: dict[str, Any]) -> str:
        return json.dumps(item, sort_keys=True)

    assert sorted(map(text, (json.loads(item) for _, _, item in rows))) == sorted(
        map(text, _items(db, table))
    )
    assert len(rows) == 20  # 20 put, 1 deleted, 1 transaction put
    for hk, rk, _ in rows:  # keys are written as moto's own writes write them
        assert hk == durable._key_text(json.loads(hk)) and rk == durable._key_text(json.loads(rk))

    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[ACCOUNT][cloud.stack.region]
    live = _items(db, table)
    backend.tables[table].items.clear()  # as a restarted emulator starts
    assert _items(db, table) == []
    durable.restore_items(store, cloud.stack.region)
    assert _items(db, table) == live


def test_reading_an_absent_item_creates_no_partition(cloud: Cloud) -> None:
    """moto's get_item made an empty partition for each key it did not find (each claim checked)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    db = cloud.client("dynamodb")
    table = _table(db)
    assert "Item" not in db.get_item(TableName=table, Key={"pk": {"S": "absent"}, "sk": {"S": "1"}})
    db.transact_write_items(TransactItems=_with([tx_put("p", "1", NEW)], table))  # reads before it writes
    partitions = dynamodb_backends[ACCOUNT][cloud.stack.region].tables[table].items
    assert DynamoType({"S": "absent"}) not in partitions and list(partitions) == [DynamoType({"S": "p"})]
