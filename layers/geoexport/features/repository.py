"""The features table (single-table design); models live under ``pk = MODEL``, ``sk = <name>``."""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from geoexport.errors import Conflict, FieldProblem, GeoexportError, NotFound, PreconditionFailed
from geoexport.features import spatial
from geoexport.features.feature import Feature
from geoexport.features.journal import Change, ChangeKind, changes_in, journal_group, journal_item, stamp
from geoexport.features.models import FeatureModel
from geoexport.features.requests import RequestRecord
from geoexport.features.spatial import Indexed, Position

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MODEL_PK = "MODEL"


class ModelRepository:
    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def create(self, model: FeatureModel) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": MODEL_PK},
                    "sk": {"S": model.name},
                    "document": {"S": model.model_dump_json(by_alias=True)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise Conflict(
                f"a model named {model.name} already exists",
                [FieldProblem("name", "taken: models are immutable, register a new name (e.g. name.v2)")],
            ) from error

    def get(self, name: str) -> FeatureModel:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": {"S": MODEL_PK}, "sk": {"S": name}}, ConsistentRead=True
        ).get("Item")
        if not item:
            raise NotFound(f"no model named {name}")
        return FeatureModel.model_validate(json.loads(item["document"]["S"]))

    def all_models(self) -> list[FeatureModel]:
        models: list[FeatureModel] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": MODEL_PK}},
        }
        while True:
            page = self._db.query(**kwargs)
            models += [FeatureModel.model_validate(json.loads(i["document"]["S"])) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return models
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


_In = TypeVar("_In")
_Out = TypeVar("_Out")


def at_once(work: Callable[[_In], _Out], items: list[_In], workers: int) -> list[_Out]:
    """``work`` on each item, up to ``workers`` at once (a single item runs here, with no thread); the
    results in the items' order, the first error raised."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(work, items))


class FeatureRepository:
    """Features in the same table: ``F#<urn base>`` holds ``HEAD`` (the current version) and ``V#<n>``
    (every earlier version, immutable, written when a new version supersedes it: creating a feature writes
    its document once, not twice); ``P#<owner>#<model>#<provider id>`` claims the provider id (409).
    Features stored before that layout also have a ``V#<n>`` of their current version: never read (the
    current version is read from HEAD), and overwritten with HEAD's document when a new version comes."""

    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    @staticmethod
    def _claim_key(owner: str, model: str, provider_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"P#{owner}#{model}#{provider_id}"}, "sk": {"S": "ID"}}

    def _item(
        self, base: str, sk: str, feature: Feature, owner: str, etag: str, document: str | None = None
    ) -> dict[str, Any]:
        return {
            "pk": {"S": f"F#{base}"},
            "sk": {"S": sk},
            "owner": {"S": owner},
            "version": {"N": str(feature.version)},
            "etag": {"S": etag},
            "document": {"S": document if document is not None else feature.model_dump_json()},
        }

    def _journal(self, base: str, feature: Feature, owner: str, change: ChangeKind) -> dict[str, Any]:
        """The change's entry in its owner's journal (written in the same transaction as the change)."""
        return {"Put": {"TableName": self._table, "Item": journal_item(base, feature, owner, change)}}

    def _creation(
        self, base: str, feature: Feature, owner: str, etag: str, document: str | None = None
    ) -> list[dict[str, Any]]:
        """A new feature's provider-id claim (refused when taken) and HEAD; its journal entry is the
        caller's (its own, or a batch's group entry)."""
        claim = self._claim_key(owner, feature.model, feature.id)
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {**claim, "base": {"S": base}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._item(base, "HEAD", feature, owner, etag, document),
                }
            },
        ]

    def create(
        self,
        base: str,
        feature: Feature,
        owner: str,
        etag: str,
        also: Sequence[dict[str, Any]] = (),
        document: str | None = None,
    ) -> None:
        """Store a new feature: its claim, HEAD (``document`` when its JSON is at hand) and journal entry,
        and ``also`` (its index entries), in one transaction; Conflict when its provider id is taken."""
        claim = self._claim_key(owner, feature.model, feature.id)
        writes = [
            *self._creation(base, feature, owner, etag, document),
            *also,
            self._journal(base, feature, owner, ChangeKind.CREATED),
        ]
        try:
            self._db.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]
        except self._db.exceptions.TransactionCanceledException as error:
            existing = self._db.get_item(TableName=self._table, Key=claim, ConsistentRead=True).get("Item")
            head = self.head(existing["base"]["S"]) if existing else None
            urn = head[0].urn if head else "(being created)"
            raise Conflict(
                f"feature {feature.id} of model {feature.model} exists: {urn}",
                [FieldProblem("id", f"already registered as {urn}; PATCH it instead")],
            ) from error

    #: Items of one transaction (DynamoDB's limit is 100): a batch's features, each with its claim, HEAD and
    #: index entries, and one journal entry for them all.
    ITEMS = 100
    WRITERS = 4  # transactions of one batch at once

    def create_many(
        self,
        created: list[tuple[str, Feature, str]],
        owner: str,
        also: Mapping[str, Sequence[dict[str, Any]]] | None = None,
        documents: Mapping[str, str] | None = None,
    ) -> dict[str, GeoexportError]:
        """Store many new features, as many to a transaction as fit (up to 100 items and under 4 MB): their
        claims, HEADs (``documents``: their JSON by urn base, when at hand) and ``also`` (their index
        entries, by urn base), with one journal entry for them all; up to WRITERS transactions at once
        (one after the other, they were most of a batch's latency). A
        transaction refused because a provider id is taken is redone one feature at a time. Returns the
        refusals by urn base. Two features of one batch with one provider id are the caller's to refuse:
        here the transactions race, and which of the two is stored is not known in advance."""
        also = also or {}
        documents = documents or {}
        failed: dict[str, GeoexportError] = {}
        chunks: list[list[tuple[str, Feature, str, str]]] = [[]]
        size = count = 0
        for base, feature, etag in created:
            document = documents.get(base) or feature.model_dump_json()  # once: its weight and its HEAD
            weight = len(document) + 2048
            items = 2 + len(also.get(base, ()))
            if chunks[-1] and (count + items > self.ITEMS - 1 or size + weight > 3_500_000):
                chunks.append([])
                size = count = 0
            chunks[-1].append((base, feature, etag, document))
            size += weight
            count += items

        def store(chunk: list[tuple[str, Feature, str, str]]) -> dict[str, GeoexportError]:
            operations: list[dict[str, Any]] = []
            for base, feature, etag, document in chunk:
                operations += self._creation(base, feature, owner, etag, document)
                operations += also.get(base, ())
            group = journal_group(owner, [(base, feature) for base, feature, _, _ in chunk])
            operations.append({"Put": {"TableName": self._table, "Item": group}})
            try:
                self._db.transact_write_items(TransactItems=operations)  # type: ignore[arg-type]
                return {}
            except self._db.exceptions.TransactionCanceledException:
                pass
            except self._db.exceptions.ClientError as error:  # two features of one batch claim one id
                if error.response["Error"]["Code"] != "ValidationException":
                    raise
            refused: dict[str, GeoexportError] = {}
            for base, feature, etag, document in chunk:
                try:
                    self.create(base, feature, owner, etag, also.get(base, ()), document)
                except Conflict as error:
                    refused[base] = error
            return refused

        for refused in at_once(store, [chunk for chunk in chunks if chunk], self.WRITERS):
            failed.update(refused)
        return failed

    def head(self, base: str) -> tuple[Feature, str, str] | None:
        """(current version, owner, etag)."""
        item = self._db.get_item(
            TableName=self._table, Key={"pk": {"S": f"F#{base}"}, "sk": {"S": "HEAD"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Feature.model_validate_json(item["document"]["S"]), item["owner"]["S"], item["etag"]["S"]

    def all_heads(self) -> Iterator[tuple[str, Feature, str]]:
        """(urn base, current version, owner) of every feature: a table scan, for rebuilding the index."""
        pages = self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="sk = :head AND begins_with(pk, :f)",
            ExpressionAttributeValues={":head": {"S": "HEAD"}, ":f": {"S": "F#"}},
        )
        for page in pages:
            for item in page["Items"]:
                yield (
                    item["pk"]["S"][2:],
                    Feature.model_validate_json(item["document"]["S"]),
                    item["owner"]["S"],
                )

    def heads(self, bases: list[str]) -> dict[str, tuple[Feature, str, str]]:
        """Many current versions at once (BatchGetItem, 100 keys per call)."""
        found: dict[str, tuple[Feature, str, str]] = {}
        for start in range(0, len(bases), 100):
            keys = [{"pk": {"S": f"F#{b}"}, "sk": {"S": "HEAD"}} for b in bases[start : start + 100]]
            pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while pending:
                answer = self._db.batch_get_item(RequestItems=pending)
                for item in answer["Responses"].get(self._table, []):
                    feature = Feature.model_validate_json(item["document"]["S"])
                    found[item["pk"]["S"][2:]] = (feature, item["owner"]["S"], item["etag"]["S"])
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def version(self, base: str, number: int) -> Feature | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"F#{base}"}, "sk": {"S": f"V#{number:08d}"}},
            ConsistentRead=True,
        ).get("Item")
        return Feature.model_validate_json(item["document"]["S"]) if item else None

    def add_version(
        self, base: str, feature: Feature, owner: str, etag: str, previous: Feature, previous_etag: str
    ) -> None:
        """Store ``feature`` as the next version and keep ``previous`` (the HEAD it supersedes, whose ETag is
        ``previous_etag``) as ``V#<its version>``, unless someone else got there first (412)."""
        head = self._item(base, "HEAD", feature, owner, etag)
        kept = self._item(base, f"V#{previous.version:08d}", previous, owner, previous_etag)
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": head,
                            "ConditionExpression": "etag = :previous",
                            "ExpressionAttributeValues": {":previous": {"S": previous_etag}},
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": kept}},  # HEAD's condition guards it
                    self._journal(base, feature, owner, ChangeKind.UPDATED),  # type: ignore[list-item]
                ]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            raise PreconditionFailed(
                "the feature changed meanwhile", [FieldProblem("If-Match", "stale: GET it again, then retry")]
            ) from error

    def replace_head(self, base: str, feature: Feature, owner: str, etag: str, previous_etag: str) -> None:
        """Rewrite the current version in place (storage news about its files, not a user's change)."""
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._item(base, "HEAD", feature, owner, etag),
                            "ConditionExpression": "etag = :previous",
                            "ExpressionAttributeValues": {":previous": {"S": previous_etag}},
                        }
                    },
                    # its files' state changed: a change for subscribers too
                    self._journal(base, feature, owner, ChangeKind.UPDATED),  # type: ignore[list-item]
                ]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            raise PreconditionFailed("the feature changed meanwhile", []) from error

    def delete(self, base: str, feature: Feature, owner: str, etag: str) -> None:
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": f"F#{base}"}, "sk": {"S": "HEAD"}},
                            "ConditionExpression": "etag = :etag",
                            "ExpressionAttributeValues": {":etag": {"S": etag}},
                        }
                    },
                    self._journal(base, feature, owner, ChangeKind.DELETED),  # type: ignore[list-item]
                ]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            raise PreconditionFailed(
                "the feature changed meanwhile", [FieldProblem("If-Match", "stale: GET it again, then retry")]
            ) from error
        self._db.delete_item(TableName=self._table, Key=self._claim_key(owner, feature.model, feature.id))
        keys = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"F#{base}"}},
            "ProjectionExpression": "pk, sk",
        }
        while True:
            page = self._db.query(**kwargs)
            keys += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for start in range(0, len(keys), 25):
            self._db.batch_write_item(
                RequestItems={self._table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            )

    def changes(self, owner: str, since: datetime, until: datetime) -> list[Change]:
        """The owner's journal from ``since`` (inclusive) to ``until`` (exclusive), oldest first."""
        found: list[Change] = []
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": {
                    ":pk": {"S": f"C#{owner}#{day.isoformat()}"},
                    ":a": {"S": stamp(since)},
                    ":b": {"S": stamp(until)},
                },
                "ConsistentRead": True,
            }
            for page in self._db.get_paginator("query").paginate(**request):
                for item in page["Items"]:
                    found += [change for change in changes_in(item) if since <= change.at < until]
            day += timedelta(days=1)
        return found


class FeatureIndex:
    """Who owns which features (``O#<owner>``) and where they are (``G#...``, see features.spatial). Every
    entry carries the feature's bbox, model and entity type, so scans filter before documents are read."""

    PAGE = 500  # index entries per DynamoDB Query page (about 100 KB)
    FIRST_PAGE = 100  # entries of a key range's first page, read ahead
    AHEAD = 4  # key ranges read ahead in parallel

    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    @staticmethod
    def _items(feature: Indexed) -> list[dict[str, Any]]:
        extra: dict[str, Any] = {"m": {"S": feature.model}, "e": {"S": feature.entity_type}}
        box = spatial.bounds_of(feature.geometry) if feature.geometry is not None else None
        if box is not None:
            extra["b"] = {"S": spatial.box_text(box)}
        items = [{"pk": {"S": f"O#{feature.owner}"}, "sk": {"S": feature.base}, **extra}]
        if feature.geometry is not None:
            items += [
                {"pk": {"S": pk}, "sk": {"S": sk}, **extra}
                for pk, sk in spatial.index_keys(feature.owner, feature.base, feature.geometry, box)
            ]
        return items

    def writes(self, feature: Indexed) -> list[dict[str, Any]]:
        """A new feature's entries as transaction Puts, stored in its own transaction (see create_many): no
        entry names a feature that is not stored, and 100 features take ~5 calls, not 10 batch writes and 3
        transactions (on AWS the entries cost twice as much as in batch writes: ~2.4 more WCU a feature)."""
        return [{"Put": {"TableName": self._table, "Item": item}} for item in self._items(feature)]

    def _write(self, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 entries to a call and up to WRITERS calls at once (a rebuild, a move or a
        delete; ten calls one after the other were most of a batch's latency)."""
        at_once(
            self._write_chunk,
            [requests[start : start + 25] for start in range(0, len(requests), 25)],
            self.WRITERS,
        )

    WRITERS = 4

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table: chunk}
        while pending:
            pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    #: The layout of the entries; an index written by another layout is rebuilt (see FeatureService.reindex).
    VERSION = "2"
    _MARKER = {"pk": {"S": "INDEX"}, "sk": {"S": "VERSION"}}

    def is_current(self) -> bool:
        item = self._db.get_item(TableName=self._table, Key=self._MARKER, ConsistentRead=True).get("Item")
        return item is not None and item["version"]["S"] == self.VERSION

    def mark_current(self) -> None:
        self._db.put_item(TableName=self._table, Item={**self._MARKER, "version": {"S": self.VERSION}})

    def clear(self) -> int:
        """Remove every index entry (owner and cell entries, of any layout); how many."""
        pages = self._db.get_paginator("scan").paginate(
            TableName=self._table,
            ProjectionExpression="pk, sk",
            FilterExpression="begins_with(pk, :g) OR begins_with(pk, :o)",
            ExpressionAttributeValues={":g": {"S": "G#"}, ":o": {"S": "O#"}},
        )
        keys = [item for page in pages for item in page["Items"]]
        self._write([{"DeleteRequest": {"Key": key}} for key in keys])
        return len(keys)

    def put(self, *features: Indexed) -> None:
        self._write([{"PutRequest": {"Item": item}} for f in features for item in self._items(f)])

    def remove(self, *features: Indexed) -> None:
        self._write(
            [
                {"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
                for f in features
                for item in self._items(f)
            ]
        )

    def drop_stale(self, old: Indexed, new: Indexed) -> None:
        """After a move: drop the entries of ``old`` that ``new`` does not share (its own are written)."""
        current = {(i["pk"]["S"], i["sk"]["S"]) for i in self._items(new)}
        stale = [i for i in self._items(old) if (i["pk"]["S"], i["sk"]["S"]) not in current]
        self._write([{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in stale])

    def _query(
        self, pk: str, low: str | None, high: str | None, after: str | None, limit: int
    ) -> dict[str, Any]:
        """Query arguments for one partition's entries (within [low, high]) strictly after ``after``."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": limit}
        if low is None or high is None:
            kwargs["KeyConditionExpression"] = "pk = :pk"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}}
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND sk BETWEEN :low AND :high"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}}
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after}}
        return kwargs

    def _read(
        self, pk: str, low: str | None, high: str | None, after: str | None
    ) -> Iterator[dict[str, Any]]:
        """Entries of one partition (within [low, high]) in key order, strictly after ``after``."""
        for page in self._db.get_paginator("query").paginate(**self._query(pk, low, high, after, self.PAGE)):
            yield from page["Items"]

    def _page(
        self, pk: str, low: str, high: str, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The first (small) page of a key range, and the sort key to go on after, if more follow."""
        page = self._db.query(**self._query(pk, low, high, after, self.FIRST_PAGE))
        last = page.get("LastEvaluatedKey")
        return page["Items"], last["sk"]["S"] if last else None

    def scan(
        self,
        owner: str,
        box: spatial.Bounds | None,
        model: str | None = None,
        entity_type: str | None = None,
        start: Position | None = None,
    ) -> Iterator[tuple[str, Position]]:
        """(urn base, position) of the owner's features whose bbox meets ``box`` (all without one) and
        that have the model and type asked for, each once, in a stable order, resuming after ``start``.
        Candidates only: the exact geometry test needs the document."""

        def wanted(item: dict[str, Any]) -> bool:
            return (model is None or item["m"]["S"] == model) and (
                entity_type is None or item["e"]["S"] == entity_type
            )

        if box is None or spatial.area_share(box) >= spatial.OWNER_SCAN_SHARE:
            # Without a box, or one holding much of the world: the owner's entries (one query per 500)
            # beat a spatial plan of up to 192 mostly sparse key ranges.
            for item in self._read(f"O#{owner}", None, None, start[1] if start else None):
                if wanted(item) and (
                    box is None
                    or ("b" in item and spatial.boxes_meet(spatial.parse_box(item["b"]["S"]), box))
                ):
                    yield item["sk"]["S"], (0, item["sk"]["S"])
            return
        plan = spatial.query_plan(owner, box)
        first = start[0] if start is not None else 0
        pool = ThreadPoolExecutor(self.AHEAD)
        try:
            # The first page of the next few key ranges is read ahead, in parallel (most are small or
            # empty); the entries are still consumed in plan order, so positions stay exact.
            ahead: deque[tuple[int, Future[tuple[list[dict[str, Any]], str | None]]]] = deque()
            upcoming = iter(range(first, len(plan.steps)))

            def read_ahead() -> None:
                number = next(upcoming, None)
                if number is not None:
                    step = plan.steps[number]
                    after = start[1] if start is not None and number == start[0] else None
                    ahead.append((number, pool.submit(self._page, step.pk, step.low, step.high, after)))

            for _ in range(self.AHEAD):
                read_ahead()
            while ahead:
                number, future = ahead.popleft()
                read_ahead()
                step = plan.steps[number]
                items, more = future.result()
                rest = self._read(step.pk, step.low, step.high, more) if more else iter(())
                for item in itertools.chain(items, rest):
                    cell, base = item["sk"]["S"].split("#", 1)
                    found = spatial.parse_box(item["b"]["S"])
                    if wanted(item) and spatial.boxes_meet(found, box) and plan.first_read(cell, found):
                        yield base, (number, item["sk"]["S"])
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


class RequestRepository:
    """Messaging requests' outcomes, ``R#<request id>`` in the features table."""

    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def put(self, record: RequestRecord) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"R#{record.requestId}"},
                "sk": {"S": "REQUEST"},
                "owner": {"S": record.requestOwner},
                "document": {"S": record.model_dump_json()},
            },
        )

    def get(self, request_id: str) -> RequestRecord | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"R#{request_id}"}, "sk": {"S": "REQUEST"}},
            ConsistentRead=True,
        ).get("Item")
        return RequestRecord.model_validate_json(item["document"]["S"]) if item else None
