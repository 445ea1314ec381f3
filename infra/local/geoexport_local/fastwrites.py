"""DynamoDB's batch writes and put transactions answered without moto's request machinery, for the plain
requests that loading features sends (each of its writes costs ~0.5 ms of moto per item: Flask, a shape
walk of the body, validations that build every value three times, a response serializer).

A request is taken here only when every part of it is plain: tables with a string hash and range key and
no index or stream, items of string and integer values, keys present, non-empty and within DynamoDB's
sizes, no key twice, items under the size limit; for a transaction, only Puts whose conditions moto
parses and whose names are all used. Everything else, and every request that would fail (a condition
that does not hold, for one), goes to moto unchanged, which then answers as it always did: refusals are
never produced here. What is applied is what moto would apply: moto's own items, written under the same
DynamoDB write lock, in the same order (a batch's puts, then its deletes), and saved by the same group
commit before the answer. ``tests/integration/test_emulator_fast_writes.py`` runs the same requests both
ways and compares the answers and the tables.
"""

from __future__ import annotations

import functools
import io
import json
import re
import zlib
from types import SimpleNamespace
from typing import Any

from geoexport_local import durable

BATCH = "DynamoDB_20120810.BatchWriteItem"
TRANSACT = "DynamoDB_20120810.TransactWriteItems"
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,37})")
_BATCH_KEYS = {"RequestItems", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}
_TRANSACT_KEYS = {
    "TransactItems",
    "ClientRequestToken",
    "ReturnConsumedCapacity",
    "ReturnItemCollectionMetrics",
}
_PUT_KEYS = {
    "TableName",
    "Item",
    "ConditionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
}


class _Moto(Exception):
    """This request is moto's to answer."""


@functools.cache
def _moto() -> Any:
    """moto's parts used here, imported once (per item, the imports alone cost ~5% of a transaction)."""
    from moto.dynamodb.limits import HASH_KEY_MAX_LENGTH, RANGE_KEY_MAX_LENGTH
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from geoexport_local.emulator import ITEM_SIZE_LIMIT, Partition

    return SimpleNamespace(
        DynamoType=DynamoType,
        Item=Item,
        Partition=Partition,
        ITEM_SIZE_LIMIT=ITEM_SIZE_LIMIT,
        limits=(HASH_KEY_MAX_LENGTH, RANGE_KEY_MAX_LENGTH),
    )


class FastWrites:
    """WSGI middleware in front of moto (see the module's docstring). ``enabled`` is for the tests that
    compare both paths."""

    enabled = True
    answered = 0  # requests answered here (the tests check which ones)

    def __init__(self, app: Any, lock: Any) -> None:
        self._app = app
        self._lock = lock

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target not in (BATCH, TRANSACT) or not self.enabled or not environ.get("CONTENT_LENGTH"):
            return self._app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again when the request is its own
        try:
            answer = self._write(environ, target, json.loads(raw))
        except (_Moto, ValueError, TypeError, AttributeError, KeyError):
            return self._app(environ, start_response)
        body = json.dumps(answer).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("Access-Control-Allow-Origin", "*"),  # as moto answers
                ("x-amzn-requestid", _request_id()),
                ("x-amz-crc32", str(zlib.crc32(body))),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def _write(self, environ: dict[str, Any], target: str, body: dict[str, Any]) -> dict[str, Any]:
        backend = _backend(environ)
        if target == BATCH:
            puts, deletes, names = _batch(backend, body)
            conditions: list[Any] = []
        else:
            puts, conditions = _transaction(backend, body)
            deletes, names = [], []
        _unique([(t.name, h, r) for t, h, r, _, _ in puts] + [(t.name, h, r) for t, h, r, _ in deletes])
        with self._lock:
            for (table, hash_key, range_key, _, _), condition in zip(puts, conditions, strict=False):
                if condition is not None:
                    partition = table.items.get(hash_key)
                    if not condition.expr(partition.get(range_key) if partition is not None else None):
                        raise _Moto  # moto answers with the cancellation reasons
            rows: list[tuple[str, str, str, str | None]] = []
            for table, hash_key, range_key, item, attributes in puts:
                table.items[hash_key][range_key] = item
                rows.append(_row(table, attributes, attributes))
            for table, hash_key, range_key, key in deletes:
                partition = table.items.get(hash_key)
                if partition is not None:
                    partition.pop(range_key, None)
                rows.append(_row(table, key, None))
            FastWrites.answered += 1
            store = durable.DURABLE.active()
            saved = store.group_commit.submit(rows) if store is not None and rows else None
        if saved is not None:
            saved()  # answered once on disk, as every other write
        if target == TRANSACT:
            return {"ConsumedCapacity": [], "ItemCollectionMetrics": {}}
        return {
            "UnprocessedItems": {},
            "ItemCollectionMetrics": {},
            "ConsumedCapacity": [
                {"TableName": name, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}} for name in names
            ],
        }


def _request_id() -> str:
    from moto.moto_api._internal import mock_random

    return str(mock_random.get_random_string(length=52))


def _backend(environ: dict[str, Any]) -> Any:
    """The DynamoDB backend of the request's account and region (as moto finds it)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.iam.models import get_account_id_from

    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        raise _Moto
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    if len(scope) < 5 or scope[3] != "dynamodb":
        raise _Moto
    return dynamodb_backends[get_account_id_from(scope[0])][scope[2]]


def _table(backend: Any, name: Any) -> Any:
    table = backend.tables.get(name) if isinstance(name, str) else None
    if (
        table is None
        or table.global_indexes
        or table.indexes
        or table.stream_shard is not None
        or table.hash_key_type != "S"
        or table.range_key_attr is None
        or table.range_key_type != "S"
        or getattr(table.items, "default_factory", None) is not _moto().Partition
    ):
        raise _Moto
    return table


def _plain(attributes: Any) -> None:
    """String and integer values only (what moto stores as given, and sizes as their text)."""
    if type(attributes) is not dict or not attributes:
        raise _Moto
    for value in attributes.values():
        if type(value) is not dict or len(value) != 1:
            raise _Moto
        kind, text = next(iter(value.items()))
        if type(text) is not str or not (kind == "S" or (kind == "N" and _INTEGER.fullmatch(text))):
            raise _Moto


def _keys(table: Any, attributes: dict[str, Any]) -> tuple[Any, Any]:
    """The item's hash and range keys as moto's values; present, non-empty and within DynamoDB's sizes."""
    found = []
    for name, limit in zip((table.hash_key_attr, table.range_key_attr), _moto().limits, strict=True):
        value = attributes.get(name)
        if value is None or list(value) != ["S"] or not value["S"] or len(value["S"].encode()) > limit:
            raise _Moto
        found.append(_value("S", value["S"]))
    return found[0], found[1]


def _put(table: Any, attributes: Any) -> tuple[Any, Any, Any, Any, Any]:
    """The item moto would build, built in one pass: ``_plain``'s checks, DynamoDB's size (moto's measure:
    each name's UTF-8 bytes, a string's UTF-8 bytes, a number's digits) and moto's values, made as moto's
    constructor makes a plain string or number (a type and its text; it asked four questions of each value
    first, then measured each again). A single-thread replay of 3,000 features' transactions took ~35% less
    time in this module's writes (garbage collection and saving aside)."""
    moto = _moto()
    if type(attributes) is not dict or not attributes:
        raise _Moto
    values = {}
    size = 0
    for name, value in attributes.items():
        if type(value) is not dict or len(value) != 1:
            raise _Moto
        kind, text = next(iter(value.items()))
        if type(text) is not str:
            raise _Moto
        if kind == "S":
            size += len(name.encode()) + len(text.encode())
        elif kind == "N" and _INTEGER.fullmatch(text):
            size += len(name.encode()) + len(text)
        else:
            raise _Moto
        values[name] = _value(kind, text)
    if size > moto.ITEM_SIZE_LIMIT:
        raise _Moto  # moto refuses it, with its own error
    hash_key, range_key = _keys(table, attributes)
    item = moto.Item(hash_key, range_key, {})
    dict.update(item.attrs, values)  # as moto's constructor fills it (later writes go through its checks)
    return table, hash_key, range_key, item, attributes


def _value(kind: str, text: str) -> Any:
    """moto's value of a plain string or number: what ``DynamoType({kind: text})`` holds."""
    dynamo_type = _moto().DynamoType
    value = dynamo_type.__new__(dynamo_type)
    value.type = kind
    value.value = text
    return value


def _batch(backend: Any, body: dict[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    if not set(body) <= _BATCH_KEYS or type(body.get("RequestItems")) is not dict or not body["RequestItems"]:
        raise _Moto
    puts, deletes = [], []
    for name, requests in body["RequestItems"].items():
        table = _table(backend, name)
        if type(requests) is not list or not requests:
            raise _Moto
        for request in requests:
            if type(request) is not dict or len(request) != 1:
                raise _Moto
            kind, operation = next(iter(request.items()))
            if kind == "PutRequest" and list(operation) == ["Item"]:
                puts.append(_put(table, operation["Item"]))
            elif kind == "DeleteRequest" and list(operation) == ["Key"]:
                key = operation["Key"]
                _plain(key)
                if set(key) != {table.hash_key_attr, table.range_key_attr}:
                    raise _Moto
                deletes.append((table, *_keys(table, key), key))
            else:
                raise _Moto
    if len(puts) + len(deletes) > 25:
        raise _Moto
    return puts, deletes, list(body["RequestItems"])


def _transaction(backend: Any, body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The puts, and the condition of each (None without one)."""
    from moto.dynamodb import responses
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.responses import validate_attributes_used

    create_condition_expression_parser = vars(responses)["create_condition_expression_parser"]  # as moto's

    items = body.get("TransactItems")
    if not set(body) <= _TRANSACT_KEYS or type(items) is not list or not 0 < len(items) <= 100:
        raise _Moto
    puts: list[Any] = []
    conditions: list[Any] = []
    for entry in items:
        if type(entry) is not dict or list(entry) != ["Put"] or not set(entry["Put"]) <= _PUT_KEYS:
            raise _Moto
        operation = entry["Put"]
        puts.append(_put(_table(backend, operation["TableName"]), operation["Item"]))
        expression = operation.get("ConditionExpression")
        names = operation.get("ExpressionAttributeNames")
        values = operation.get("ExpressionAttributeValues")
        if values == {} or names == {} or (expression is None and (names or values)):
            raise _Moto  # moto's own refusals
        if expression is None:
            conditions.append(None)
            continue
        try:  # moto's handler: the expression parses and every name given is used
            parser = create_condition_expression_parser(expression, names or {}, values or {})
            parser.parse()
            validate_attributes_used(names or {}, parser.expr_attr_names_found, validation_error_prefix=False)
            conditions.append(get_filter_expression(expression, names, values))
        except Exception as error:
            raise _Moto from error
    return puts, conditions


def _unique(keys: list[tuple[str, Any, Any]]) -> None:
    """A key written twice in one request: moto decides (it refuses some cases, DynamoDB all)."""
    if len(set(keys)) != len(keys):
        raise _Moto


def _row(
    table: Any, key: dict[str, Any], attributes: dict[str, Any] | None
) -> tuple[str, str, str, str | None]:
    """The saved row, as moto's own writes save it (durable.item_row)."""
    return durable.item_row(table.name, key[table.hash_key_attr], key[table.range_key_attr], attributes)
