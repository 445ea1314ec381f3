"""The embedded AWS emulator: moto's server with its ASL interpreter, provisioned from template.yaml."""

from __future__ import annotations

import copy
import io
import json
import logging
import operator
import os
import secrets
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

import boto3
from botocore.config import Config

from geoexport_local.durable import DurableApp, install_sqs_hooks, make_durable_batch, make_durable_write
from geoexport_local.fastwrites import FastWrites
from geoexport_local.functions import Functions, Invoker
from geoexport_local.template import ACCOUNT, QueueEvent, Stack, StreamEvent

log = logging.getLogger("geoexport_local")
_ROLE = "geoexport-local-role"


class SentMail:
    """``GET /_aws/ses`` as LocalStack answers it: the messages SES accepted (moto keeps them but has no API
    to read them back), optionally filtered by ``id`` or sender ``email``. Everything else passes through."""

    def __init__(self, app: Any, region: str) -> None:
        self._app = app
        self._region = region

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/_aws/ses" or environ.get("REQUEST_METHOD") != "GET":
            return self._app(environ, start_response)
        from urllib.parse import parse_qs

        from moto.ses.models import ses_backends

        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        messages = []
        for message in ses_backends[ACCOUNT][self._region].sent_messages:
            if not hasattr(message, "subject"):  # raw and templated messages: not sent by the service
                continue
            if query.get("id") not in (None, message.id) or query.get("email") not in (None, message.source):
                continue
            messages.append(
                {
                    "Id": message.id,
                    "Region": self._region,
                    "Source": message.source,
                    "Destination": message.destinations,
                    "Subject": message.subject,
                    "Body": {"text_part": message.body, "html_part": None},
                }
            )
        body = json.dumps({"messages": messages}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def start_moto(host: str, port: int, region: str = "us-east-1") -> Any:
    """Start moto's server in a thread, with real ASL execution switched on and every accepted write
    saved by :mod:`geoexport_local.durable` once a data directory is attached."""
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    from geoexport_local.keepalive import KeepAliveHandler
    from geoexport_local.presigned import PresignedS3

    # moto's server and ASL interpreter log every request and every caught state error; keep them quiet.
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(os.environ.get("GEOEXPORT_EMULATOR_LOG_LEVEL", "CRITICAL"))
    list_moto_modules_once()
    serialise_dynamodb_writes()
    snapshot_only_touched_partitions()
    sorted_partitions()
    plain_json_reads()
    fast_json_requests()
    parsed_expressions_once()
    items_sized_once()
    retention_read_once()
    ranged_s3_reads()
    install_sqs_hooks()
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False
    os.environ["MOTO_PORT"] = str(port)  # where moto's ASL interpreter sends its Lambda invokes

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = SentMail(
                PresignedS3(
                    FastWrites(
                        DurableApp(DomainDispatcherApplication(create_backend_app), region), DYNAMODB_WRITES
                    )
                ),
                region,
            )
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=KeepAliveHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.1)

    server = Server(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def list_moto_modules_once() -> None:
    """moto's dispatcher lists its package directory (and stats every entry) on every request to tell a
    service from its host name; the list does not change while it runs."""
    import functools

    from moto import backends

    if not getattr(backends, "_geoexport_listed", False):
        listed = tuple(backends.list_of_moto_modules())
        backends.list_of_moto_modules = functools.partial(iter, listed)
        backends._geoexport_listed = True  # type: ignore[attr-defined]


_ranged = threading.local()


class _Window:
    """A stored object's bytes, read only where sliced (what a ranged GET sends)."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def __len__(self) -> int:
        return int(self._key.size)

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(len(self))
        with self._key.lock:
            self._key._value_buffer.seek(start)
            data: bytes = self._key._value_buffer.read(max(0, stop - start))
        return data


def ranged_s3_reads() -> None:
    """moto answers a ranged GET by reading and copying the whole object, then slicing the range out: GDAL
    reading a 378 MB COG through /vsis3/ moved ~750 MB per 16 KB request, and the emulator, not the
    renderer, set the pace of a big export. During a ranged GET the key's value is a window that reads only
    the range moto slices (anything else it answers gets the whole value, as before)."""
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    if getattr(S3Response, "_geoexport_ranged", False):
        return
    whole: property = FakeKey.__dict__["value"]

    def value(self: Any) -> Any:
        return _Window(self) if getattr(_ranged, "on", False) else whole.__get__(self)

    FakeKey.value = property(value, whole.fset)  # type: ignore[assignment]
    key_response = S3Response.key_response

    def ranged(self: Any, request: Any, full_url: str, headers: dict[str, Any]) -> Any:
        _ranged.on = request.method == "GET" and bool(request.headers.get("range"))
        try:
            answer = key_response(self, request, full_url, headers)
        finally:
            _ranged.on = False
        if isinstance(answer, tuple) and len(answer) == 3 and isinstance(answer[2], _Window):
            answer = (answer[0], answer[1], answer[2][:])  # a range moto ignored: the whole object
        return answer

    S3Response.key_response = ranged  # type: ignore[method-assign]
    S3Response._geoexport_ranged = True  # type: ignore[attr-defined]


#: DynamoDB's write lock: moto's writes and the fast path's (geoexport_local.fastwrites) take it.
DYNAMODB_WRITES = threading.RLock()


def serialise_dynamodb_writes() -> None:
    """DynamoDB applies each write (and each transaction) atomically; moto's threaded server does a
    read-modify-write without a lock, so concurrent conditional updates could both pass or lose an append.
    One lock around the writing calls gives the emulator DynamoDB's semantics; the same wrapper saves each
    write's items before it returns (see geoexport_local.durable)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_geoexport_serialised", False):
        return
    from moto.dynamodb.responses import DynamoHandler

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(
            DynamoDBBackend, name, make_durable_write(getattr(DynamoDBBackend, name), name, DYNAMODB_WRITES)
        )
    DynamoHandler.batch_write_item = make_durable_batch(DynamoHandler.batch_write_item, DYNAMODB_WRITES)  # type: ignore[method-assign]
    DynamoDBBackend._geoexport_serialised = True  # type: ignore[attr-defined]


_touched = threading.local()


def snapshot_only_touched_partitions() -> None:
    """moto backs up every table a transaction names with a deep copy of the whole table (to roll back),
    so each TransactWriteItems cost O(table) and loading features got quadratically slower (a 100-feature
    batch passed the 29 s API timeout after a few hundred features). Deep-copying the touched partitions
    instead was still O(partition): a journal or index partition that takes every feature of an owner made
    loading 100,000 features quadratic again (and a process loading them grew past 24 GB). The backup now
    shares the live table's items and keeps an undo log of the items the transaction names
    (their state before it, or their absence); when moto rolls back to the backup, the log is applied to
    the shared partitions: the same rollback, in O(items of the transaction)."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, "_geoexport_snapshots", False):
        return
    real = vars(models)["copy"]  # the copy module as moto's models module imported it

    class _Copy:
        copy = staticmethod(real.copy)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            clones = getattr(_touched, "clones", None)
            if not isinstance(value, Table) or clones is None:
                return real.deepcopy(value, memo)
            if value.name not in clones:  # moto backs a table up once per item of a transaction
                clones[value.name] = real.copy(value)  # its items shared: the undo log restores them
            return clones[value.name]

    vars(models)["copy"] = _Copy
    original = DynamoDBBackend.transact_write_items

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        # Under DynamoDB's write lock from the first read of the undo log: a log read before another write
        # and applied after it (this transaction refused) undid that write too (a dedupe claim, a ledger's
        # reservation). The lock is reentrant: moto's transaction, wrapped by serialise_dynamodb_writes,
        # takes it again inside.
        with DYNAMODB_WRITES:
            return logged(self, transact_items)

    def logged(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        undo: list[tuple[str, Any, Any, Any, bool]] = []  # table, hash, range, item before, partition existed
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = self.tables.get(operation.get("TableName"))
            attributes = operation.get("Key") or operation.get("Item") or {}
            if table is None or table.hash_key_attr not in attributes:
                continue
            hash_key = DynamoType(attributes[table.hash_key_attr])
            existed = hash_key in table.items
            range_key = None
            if table.range_key_attr and table.range_key_attr in attributes:
                range_key = DynamoType(attributes[table.range_key_attr])
                before = table.items[hash_key].get(range_key) if existed else None
            else:
                before = table.items.get(hash_key)
            undo.append((table.name, hash_key, range_key, real.deepcopy(before), existed))
        _touched.clones = {}
        try:
            return original(self, transact_items)
        finally:
            clones, _touched.clones = _touched.clones, None
            for name, hash_key, range_key, before, existed in reversed(undo):
                clone = clones.get(name)
                if clone is None or self.tables.get(name) is not clone:
                    continue  # committed (or the table was not backed up): nothing to undo
                if not existed:
                    clone.items.pop(hash_key, None)
                elif range_key is None:
                    clone.items[hash_key] = before
                elif before is None:
                    clone.items[hash_key].pop(range_key, None)
                else:
                    clone.items[hash_key][range_key] = before

    DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    DynamoDBBackend._geoexport_snapshots = True  # type: ignore[attr-defined]


def _key_range(comparison: str | None, values: list[Any], start: Any, forward: bool) -> tuple[Any, Any]:
    """Inclusive (low, high) range keys a key condition (and ExclusiveStartKey) can match; None: open."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    low = high = None
    if comparison == "BEGINS_WITH":
        low = values[0]
        high = DynamoType({"S": low.value + "\U0010ffff"}) if low.type == "S" else None
    elif comparison == "BETWEEN":
        low, high = values
    elif comparison in ("EQ", "GE", "GT"):
        low = values[0]
    if comparison in ("EQ", "LE", "LT"):
        high = values[0]
    if start is not None and forward:
        low = start if low is None or start > low else low
    elif start is not None:
        high = start if high is None or start < high else high
    return low, high


_CAST_VALUE = operator.attrgetter("cast_value")


class Partition(dict[Any, Any]):
    """A partition's items by range key (moto's dict), with the keys in order for a Query (``irange``): kept
    in a SortedList from the first Query of the partition on. Most partitions are never queried by range
    (a feature's HEAD and versions, a provider-id claim): they cost a dict, not a SortedDict (building and
    filling those took 10% of the emulator while features loaded)."""

    __slots__ = ("_keys",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys: Any = None

    def irange(self, low: Any, high: Any, reverse: bool = False) -> Any:
        """The keys from ``low`` to ``high`` (inclusive; None: open), in order (SortedList.irange)."""
        if self._keys is None:
            from sortedcontainers import SortedList

            # moto orders keys by their cast value: sorted by it first (each read once, compared in C), the
            # SortedList's own sort only confirms the order (100,000 keys: 0.17 s; sorted with moto's own
            # comparisons, the first page of a world listing at 100,000 features took 1.7 s, now 0.95 s).
            self._keys = SortedList(sorted(self, key=_CAST_VALUE))
        return self._keys.irange(low, high, reverse=reverse)

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._keys is not None and key not in self:
            self._keys.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        if self._keys is not None:
            self._keys.remove(key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            return dict.pop(self, key, *default)  # the default, or KeyError
        value = dict.pop(self, key)
        if self._keys is not None:
            self._keys.remove(key)
        return value

    def _forget(self) -> None:
        self._keys = None  # built again at the next Query

    def popitem(self) -> tuple[Any, Any]:
        self._forget()
        return dict.popitem(self)

    def clear(self) -> None:
        self._forget()
        dict.clear(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        dict.update(self, *args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._forget()
        return dict.setdefault(self, key, default)

    def __ior__(self, other: Any) -> Any:  # type: ignore[misc]
        self._forget()
        return dict.__ior__(self, other)

    def __deepcopy__(self, memo: dict[int, Any]) -> Partition:
        copied = Partition()
        memo[id(self)] = copied
        for key, value in self.items():
            dict.__setitem__(copied, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return copied

    def __reduce__(self) -> Any:
        return Partition, (dict(self),)


def sorted_partitions() -> None:
    """moto answers a Query by walking every item of the table, sorting the partition and skipping to the
    ExclusiveStartKey, so one Query cost O(table) (~4 s at 5,000 features, and paging a partition was
    quadratic). Partitions now keep their range keys in order once queried (a :class:`Partition`), and a
    Query on a table's own key reads only the key range it asks for: O(log n + page), as DynamoDB. Queries
    on an index, or with the legacy filter arguments, still take moto's path."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    if getattr(Table, "_geoexport_sorted", False):
        return
    original_init, original_query = Table.__init__, cast(Any, Table.query)
    original_get = cast(Any, Table.get_item)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.range_key_attr:
            self.items = defaultdict(Partition)

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: str | None,
        range_objs: list[Any],
        limit: int,
        exclusive_start_key: dict[str, Any] | None,
        scan_index_forward: bool,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: Any = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Any:
        if (
            index_name
            or filter_kwargs
            or hash_key is None
            or (range_key_conditions and len(range_key_conditions) > 1)
            or self.items.default_factory is not Partition
        ):
            return original_query(
                self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                scan_index_forward, projection_expressions, index_name, consistent_read,
                filter_expression, hash_key_conditions, range_key_conditions, **filter_kwargs,
            )  # fmt: skip
        partition = self.items.get(hash_key)
        if partition is None:  # nothing under this key (not created by asking, as defaultdict would)
            return [], 0, None
        start = DynamoType(exclusive_start_key[self.range_key_attr]) if exclusive_start_key else None
        low, high = _key_range(range_comparison, range_objs, start, scan_index_forward)
        results: list[Any] = []
        size, scanned, last = 0, 0, None
        for key in partition.irange(low, high, reverse=not scan_index_forward):
            if start is not None and key == start:
                continue
            item = partition[key]
            if range_comparison and not key.compare(range_comparison, range_objs):
                continue
            if len(results) == limit or size + item.size() > RESULT_SIZE_LIMIT:
                last = self._get_last_evaluated_key(results[-1], None)
                break
            results.append(item)
            size += item.size()
            scanned += 1
        results = copy.deepcopy(results)
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expressions:
            results = [item.project(projection_expressions) for item in results]
        return results, scanned, last

    def get_item(self: Any, hash_key: Any, range_key: Any = None, projection_expression: Any = None) -> Any:
        if range_key and hash_key not in self.items:  # absent: not created by asking (as defaultdict would)
            return None
        return original_get(self, hash_key, range_key, projection_expression)

    Table.__init__ = init  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.get_item = get_item  # type: ignore[method-assign]
    Table._geoexport_sorted = True  # type: ignore[attr-defined]


def _plain(value: Any) -> Any:
    """JSON for what moto's results hold besides JSON types: binary values, timestamps."""
    import base64
    from datetime import datetime

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_IDENTITY: Callable[[Any, Any], Any] = lambda parser, node: node  # noqa: E731  (what parses as itself)


def _json_plan(shape: Any) -> Callable[[Any, Any], Any]:
    """How moto's JSON parser turns a node of ``shape`` into its parameters, compiled once per shape (kept
    on the shape): strings, booleans and lists or maps of them are the node itself; structures look up
    the node's own keys (moto tries every member of the shape: ten for each DynamoDB AttributeValue);
    blobs, timestamps and numbers go to moto's own handlers."""
    plan: Callable[[Any, Any], Any] | None = vars(shape).get("_geoexport_plan")
    if plan is not None:
        return plan
    from moto.core.parse import JSONParser

    kind = shape.type_name
    if kind == "structure" and not shape.is_document_type:
        members = {m.serialization.get("name", name): (name, m) for name, m in shape.members.items()}

        def structure(parser: Any, node: Any) -> Any:
            if node is None:
                return None
            parsed = parser.MAP_TYPE()
            for key, value in node.items():
                member = members.get(key)
                if member is not None and value is not None:  # moto drops unknown keys and nulls
                    parsed[member[0]] = _json_plan(member[1])(parser, value)
            return parsed

        plan = structure
    elif kind == "list":
        member = shape.member

        def listing(parser: Any, node: Any) -> Any:
            each = _json_plan(member)
            return node if each is _IDENTITY else [each(parser, item) for item in node]

        plan = listing
    elif kind == "map":
        key_shape, value_shape = shape.key, shape.value

        def mapping(parser: Any, node: Any) -> Any:
            keys, values = _json_plan(key_shape), _json_plan(value_shape)
            parsed = parser.MAP_TYPE()
            for key, value in node.items():
                parsed[keys(parser, key)] = values(parser, value)
            return parsed

        plan = mapping
    elif kind == "structure" or getattr(JSONParser, f"_parse_{kind}", None) is None:
        plan = _IDENTITY  # a document, a string or a boolean: moto's default handler returns it as it is
    else:
        handler = getattr(JSONParser, f"_parse_{kind}")

        def leaf(parser: Any, node: Any) -> Any:
            return handler(parser, shape, node)

        plan = leaf
    setattr(shape, "_geoexport_plan", plan)  # noqa: B010
    return plan


def fast_json_requests() -> None:
    """moto parses every JSON-protocol request by walking the botocore shape of its body, trying every
    member of every structure: a 100-item DynamoDB transaction took 5 to 7 ms to parse, against 0.3 ms for
    json.loads (a tenth of the stack's sampled time while features loaded). The same walk, compiled per
    shape, visits only the keys a node has and returns plain values as they are: 1.1 ms, and the same
    parameters (tests/unit/test_emulator_requests.py compares both on every kind of value)."""
    from moto.core.parse import JSONParser

    if getattr(JSONParser, "_geoexport_fast", False):
        return

    def parse_json_body(self: Any, raw_body: Any, shape: Any) -> Any:
        return _json_plan(shape)(self, self._parse_body_as_json(raw_body))

    JSONParser._parse_json_body = parse_json_body  # type: ignore[method-assign]
    JSONParser._geoexport_fast = True  # type: ignore[attr-defined]


def parsed_expressions_once() -> None:
    """moto parses a condition expression twice for every item it writes (its handler to validate the
    names, its backend to evaluate it; lexing, paths and operators: a tenth of the emulator's time while
    loading features), and builds a new JSONPath parser (PLY's tables included) for every path of every
    event a rule delivers. Both parses depend only on their text (the expression with its names and
    values), and what they return is only read, so each is kept for the next request with the same text."""
    import functools

    import jsonpath_ng.ext
    from moto.dynamodb import comparisons
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb import responses as dynamodb_responses
    from moto.dynamodb.models import table as dynamodb_table

    if getattr(comparisons, "_geoexport_cached", False):
        return
    base = comparisons.ConditionExpressionParser

    @functools.lru_cache(maxsize=4096)
    def parsed(expression: str | None, names: str, values: str) -> tuple[Any, Any, Any]:
        parser = base(expression, json.loads(names), json.loads(values))
        return parser.parse(), tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    class Parsed(base):  # type: ignore[misc, valid-type]
        """moto's parser, whose parse() answers from the texts parsed before (raising as moto's does) and
        gives the names and values it found as new lists (moto's handlers extend them)."""

        def parse(self) -> Any:
            names, values = self.expression_attribute_names, self.expression_attribute_values
            if not names and not values:  # most writes (and dumps costs 4 us)
                key: tuple[str | None, str, str] = (
                    self.condition_expression,
                    "{}" if names is not None else "null",
                    "{}" if values is not None else "null",
                )
            else:
                try:
                    key = (
                        self.condition_expression,
                        json.dumps(names, sort_keys=True),
                        json.dumps(values, sort_keys=True),
                    )
                except TypeError:  # a value that is not plain JSON: parsed by moto every time
                    return super().parse()
            op, names_found, values_found = parsed(*key)
            self.expr_attr_names_found = list(names_found)
            self.expr_attr_values_found = list(values_found)
            return op

    def get_filter_expression(expression: str | None, names: Any, values: Any) -> Any:
        return Parsed(expression, names, values).parse()

    vars(dynamodb_responses)["create_condition_expression_parser"] = Parsed  # what moto's handlers create
    for module in (comparisons, dynamodb_models, dynamodb_table):
        module.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]
    comparisons._geoexport_cached = True  # type: ignore[attr-defined]


def items_sized_once() -> None:
    """moto checks DynamoDB's 400 KB item limit as it builds an item, attribute by attribute, by summing
    the sizes of every attribute already set (encoding each string again): quadratic in the attributes,
    and a feature's document was encoded once per attribute of its item. The sizes are added once here;
    since no size is negative, the whole is over the limit exactly when one of moto's partial sums is,
    so the same items are refused (with moto's own error). Also: a string value is its own cast value
    (moto asked five questions of its type first, for every key hashed, compared or sorted)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if getattr(Item, "_geoexport_sized", False):
        return

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # later writes of an attribute still go through moto's check

    Item.__init__ = __init__  # type: ignore[method-assign]
    moto_cast = DynamoType.__dict__["cast_value"].fget

    def cast_value(self: Any) -> Any:
        """A string's value is itself (moto asks five questions of its type first): every key that is
        hashed, compared or sorted in a partition is one."""
        return self.value if self.type == "S" else moto_cast(self)

    DynamoType.cast_value = property(cast_value)  # type: ignore[method-assign, assignment]
    Item._geoexport_sized = True  # type: ignore[attr-defined]


def retention_read_once() -> None:
    """moto checks each message it hands out against its queue's retention period by asking for the
    queue's attributes, which builds every attribute of the queue (counting its messages) twice: 6% of the
    emulator's time while features loaded (their change events go through a queue). The period is read
    from the queue instead, with moto's arithmetic."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_geoexport_retention", False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    SQSBackend._geoexport_retention = True  # type: ignore[attr-defined]


#: moto's item size limit (DynamoDB's 400 KB, as moto measured it: 405,000 bytes of names and values).
ITEM_SIZE_LIMIT = 405_000


def plain_json_reads() -> None:
    """moto's generic response serializer walks the botocore shape of every attribute of every item: it
    took most of a query's time (a 1,000-feature page spent seconds there). DynamoDB answers reads in
    plain JSON with the items as their DynamoDB JSON, which is what moto's result already is: reads are
    written with json.dumps. Other operations keep moto's serializer."""
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult, "_geoexport_plain", False):
        return
    original = DynamoResult.execute_result
    reads = {"Query", "BatchGetItem", "GetItem", "Scan"}

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in reads or not isinstance(self.result, dict):
            return original(self, context)
        body = json.dumps(self.result, default=_plain, separators=(",", ":"))
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    DynamoResult._geoexport_plain = True  # type: ignore[attr-defined]


def dispatch_lambda_to(host: Invoker) -> None:
    """moto's Lambda backend wants Docker; route every Invoke to the function host instead (in this
    process, or the stack's main process: see ``geoexport_local.__main__``)."""
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        if str(headers.get("X-Amz-Invocation-Type", "")) == "Event":  # asynchronous: accept, run later
            threading.Thread(target=host.invoke, args=(function_name, body), daemon=True).start()
            return b""
        payload, errored = host.invoke(function_name, body)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["Content-Length"] = str(len(payload))
        return payload

    # With use_docker off moto serves Lambda from its 'simple' backend; patch both to be sure.
    LambdaBackend.invoke = invoke  # type: ignore[method-assign]
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def client(service: str, endpoint: str, region: str) -> Any:
    make: Any = boto3.client  # Any: the service is a runtime string
    return make(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in-process in the local stack; see geoexport_local.functions.")
    return buffer.getvalue()


def _provision_messaging(stack: Stack, endpoint: str) -> None:
    """Event buses and rules, mail identities, schedule groups."""
    events = client("events", endpoint, stack.region)
    existing_buses = {bus["Name"] for bus in events.list_event_buses()["EventBuses"]}
    for bus in stack.event_buses:
        if bus not in existing_buses:  # a restart: buses (and rules) come back from the data directory
            events.create_event_bus(Name=bus)
    for rule, props in stack.event_rules.items():
        bus = str(props.get("EventBusName", "default"))
        events.put_rule(
            Name=rule,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=str(props.get("State", "ENABLED")),
        )
        events.put_targets(
            Rule=rule,
            EventBusName=bus,
            Targets=[{"Id": str(t["Id"]), "Arn": str(t["Arn"])} for t in props.get("Targets", [])],
        )
    ses = client("ses", endpoint, stack.region)
    for identity in stack.email_identities:  # AWS sends a confirmation message; the emulator trusts it
        ses.verify_email_identity(EmailAddress=identity)
    scheduler = client("scheduler", endpoint, stack.region)
    existing_groups = {g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]}
    for group in stack.schedule_groups:
        if group not in existing_groups:  # a restart: groups and schedules come from the data directory
            scheduler.create_schedule_group(Name=group)


def provision(stack: Stack, endpoint: str) -> None:
    """Create every bucket, table, function and state machine of the template in the emulator."""
    s3 = client("s3", endpoint, stack.region)
    for name, props in stack.buckets.items():
        s3.create_bucket(Bucket=name)
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
    dynamodb = client("dynamodb", endpoint, stack.region)
    for name, props in stack.tables.items():
        indexes = props.get("GlobalSecondaryIndexes")
        dynamodb.create_table(
            TableName=name,
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
            **(
                {"StreamSpecification": {"StreamEnabled": True, **props["StreamSpecification"]}}
                if "StreamSpecification" in props
                else {}
            ),
        )
    sqs = client("sqs", endpoint, stack.region)
    for name, props in stack.queues.items():  # first all queues, then their redrive (it names another)
        attributes = {k: str(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        sqs.create_queue(QueueName=name, Attributes=attributes)
    for name, props in stack.queues.items():
        if "RedrivePolicy" in props:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            redrive = json.dumps(props["RedrivePolicy"])
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive})
    for name, props in stack.buckets.items():  # after the queues they name
        queues = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if queues:
            s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration={
                    "QueueConfigurations": [{"QueueArn": q["Queue"], "Events": [q["Event"]]} for q in queues]
                },
            )
    _provision_messaging(stack, endpoint)
    apigateway = client("apigateway", endpoint, stack.region)
    plans = {plan["name"]: plan["id"] for plan in apigateway.get_usage_plans(limit=500).get("items", [])}
    for logical, props in stack.usage_plans.items():
        name = str(props.get("UsagePlanName", logical))
        if name in plans:  # kept from the last run, with the client keys enrolled in it
            stack.physical[logical] = plans[name]
            continue
        plan = apigateway.create_usage_plan(
            name=name,
            description=str(props.get("Description", "")),
            throttle={
                "rateLimit": float(props["Throttle"]["RateLimit"]),
                "burstLimit": int(props["Throttle"]["BurstLimit"]),
            },
            quota={"limit": int(props["Quota"]["Limit"]), "period": str(props["Quota"]["Period"])},
        )
        stack.physical[logical] = plan["id"]
    secretsmanager = client("secretsmanager", endpoint, stack.region)
    kept = {secret["Name"] for secret in secretsmanager.list_secrets()["SecretList"]}
    for name, props in stack.secrets.items():
        if name in kept:  # the signing key of the last run: tokens issued before a restart stay valid
            continue
        generate = props.get("GenerateSecretString", {})
        value = secrets.token_urlsafe(int(generate.get("PasswordLength", 32)))
        secretsmanager.create_secret(Name=name, SecretString=value, Description=props.get("Description", ""))
    iam = client("iam", endpoint, stack.region)
    role = iam.create_role(RoleName=_ROLE, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambdas = client("lambda", endpoint, stack.region)
    code = _zip()
    for function in stack.functions.values():
        lambdas.create_function(
            FunctionName=function.name,
            Runtime="python3.11",
            Role=role,
            Handler=function.handler,
            Code={"ZipFile": code},
            Timeout=function.timeout,
            Environment={"Variables": function.environment},
        )
    sfn = client("stepfunctions", endpoint, stack.region)
    for name, definition in stack.state_machines.items():
        sfn.create_state_machine(
            name=name, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/{_ROLE}"
        )


_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
)


def poll_queue(event: QueueEvent, host: Functions, endpoint: str, region: str, stop: threading.Event) -> None:
    """Lambda's SQS event source mapping: batches to the function, delete what it handled.

    A function error leaves the whole batch on the queue (visible again after the visibility timeout, and
    moved to the dead-letter queue by the redrive policy); with ReportBatchItemFailures only the listed
    messages stay.
    """
    sqs = client("sqs", endpoint, region)
    url = sqs.get_queue_url(QueueName=event.queue_name)["QueueUrl"]
    while not stop.is_set():
        try:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, event.batch_size),
                WaitTimeSeconds=20,  # long polling, as Lambda's pollers (answers as soon as a message comes)
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except Exception as error:  # the emulator is stopping
            log.debug("queue poll failed: %s", error)
            stop.wait(0.5)
            continue
        if not messages:
            continue
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": event.queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
        try:
            payload, failed = host.invoke(event.function, json.dumps({"Records": records}).encode())
            if failed:
                log.warning(
                    "%s failed a batch of %d; it comes back after the visibility timeout",
                    event.function,
                    len(records),
                )
                continue
            kept: set[str] = set()
            if event.partial_failures:
                answer = json.loads(payload or b"{}") or {}
                kept = {str(f.get("itemIdentifier")) for f in answer.get("batchItemFailures", [])}
                if kept:
                    log.warning("%s reported %d failed records", event.function, len(kept))
            done = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)
                if m["MessageId"] not in kept
            ]
            if done:
                sqs.delete_message_batch(QueueUrl=url, Entries=done)
        except Exception:  # one bad batch must not end the mapping (Lambda's poller keeps going too)
            log.exception("delivering a batch from %s failed", event.queue_name)


def poll_stream(
    event: StreamEvent,
    host: Functions,
    endpoint: str,
    region: str,
    stop: threading.Event,
    ready: threading.Event | None = None,
) -> None:
    """Lambda's DynamoDB stream event source mapping: the table's changes in order, in batches.

    It reads from the stream's end as it is when the mapping starts (the stack's start: the state restored
    from disk is not replayed; the reconciler announces what a stopped stack never did). A failed batch,
    or the records from the first one a function reports failed, is retried in order, up to
    MaximumRetryAttempts times, then skipped, as Lambda does.
    """
    dynamodb = client("dynamodb", endpoint, region)
    streams = client("dynamodbstreams", endpoint, region)
    arn = dynamodb.describe_table(TableName=event.table)["Table"]["LatestStreamArn"]
    iterators = {
        shard["ShardId"]: streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    }
    if ready is not None:
        ready.set()
    pending: list[dict[str, Any]] = []
    attempts = 0
    while not stop.is_set():
        try:
            for shard, iterator in list(iterators.items()):
                answer = streams.get_records(ShardIterator=iterator, Limit=1000)
                pending += answer.get("Records", [])
                iterators[shard] = answer.get("NextShardIterator") or iterator
        except Exception as error:  # the emulator is stopping
            log.debug("stream poll failed: %s", error)
            stop.wait(0.5)
            continue
        if not pending:
            stop.wait(0.2)
            continue
        batch = [{**r, "eventSourceARN": arn, "awsRegion": region} for r in pending[: event.batch_size]]
        try:
            payload, failed = host.invoke(
                event.function, json.dumps({"Records": batch}, default=str).encode()
            )
        except Exception:
            log.exception("delivering a batch from the %s stream failed", event.table)
            payload, failed = b"", True
        first_failed = 0 if failed else len(batch)
        if not failed and event.partial_failures:
            answer = json.loads(payload or b"{}") or {}
            reported = {str(f.get("itemIdentifier")) for f in answer.get("batchItemFailures", [])}
            numbers = [str(r["dynamodb"]["SequenceNumber"]) for r in batch]
            first_failed = min((numbers.index(n) for n in reported if n in numbers), default=len(batch))
        if first_failed == len(batch):
            del pending[: len(batch)]
            attempts = 0
            continue
        attempts += 1
        if 0 <= event.max_retries < attempts:
            log.warning(
                "%s: record %d of a batch skipped after %d retries",
                event.function,
                first_failed,
                attempts - 1,
            )
            del pending[: first_failed + 1]
            attempts = 0
            continue
        del pending[:first_failed]  # the records before the failed one are done
        stop.wait(min(5.0, 0.2 * 2**attempts))


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule spelling -> S3 API's."""
    out: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule.get("Status", "Enabled"),
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def wait_until_up(endpoint: str, region: str, seconds: float = 20.0) -> None:
    s3 = client("s3", endpoint, region)
    deadline = time.monotonic() + seconds
    while True:
        try:
            s3.list_buckets()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_provisioned(stack: Stack, port: int) -> tuple[Any, dict[str, str]]:
    """A moto server on 127.0.0.1:``port`` holding the template's resources, and every function's
    environment pointed at it (what the integration tests and the benches run the steps against)."""
    endpoint = f"http://127.0.0.1:{port}"
    server = start_moto("127.0.0.1", port, stack.region)
    wait_until_up(endpoint, stack.region)
    provision(stack, endpoint)
    environment: dict[str, str] = {}
    for function in stack.functions.values():
        environment.update(function.environment)
    return server, {**environment, "AWS_ENDPOINT_URL": endpoint}
