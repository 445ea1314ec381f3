"""The features table (single-table design); models live under ``pk = MODEL``, ``sk = <name>``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from geoexport.errors import Conflict, FieldProblem, NotFound, PreconditionFailed
from geoexport.features import spatial
from geoexport.features.feature import Feature
from geoexport.features.models import FeatureModel
from geoexport.features.requests import RequestRecord

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


class FeatureRepository:
    """Features in the same table: ``F#<urn base>`` holds ``HEAD`` (the current version) and ``V#<n>``
    (every version, immutable); ``P#<owner>#<model>#<provider id>`` claims the provider id (409)."""

    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    @staticmethod
    def _claim_key(owner: str, model: str, provider_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"P#{owner}#{model}#{provider_id}"}, "sk": {"S": "ID"}}

    def _item(self, base: str, sk: str, feature: Feature, owner: str, etag: str) -> dict[str, Any]:
        return {
            "pk": {"S": f"F#{base}"},
            "sk": {"S": sk},
            "owner": {"S": owner},
            "version": {"N": str(feature.version)},
            "etag": {"S": etag},
            "document": {"S": feature.model_dump_json()},
        }

    def create(self, base: str, feature: Feature, owner: str, etag: str) -> None:
        claim = self._claim_key(owner, feature.model, feature.id)
        try:
            self._db.transact_write_items(
                TransactItems=[
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
                            "Item": self._item(base, "HEAD", feature, owner, etag),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._item(base, "V#00000001", feature, owner, etag),
                        }
                    },
                ]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            existing = self._db.get_item(TableName=self._table, Key=claim, ConsistentRead=True).get("Item")
            head = self.head(existing["base"]["S"]) if existing else None
            urn = head[0].urn if head else "(being created)"
            raise Conflict(
                f"feature {feature.id} of model {feature.model} exists: {urn}",
                [FieldProblem("id", f"already registered as {urn}; PATCH it instead")],
            ) from error

    def head(self, base: str) -> tuple[Feature, str, str] | None:
        """(current version, owner, etag)."""
        item = self._db.get_item(
            TableName=self._table, Key={"pk": {"S": f"F#{base}"}, "sk": {"S": "HEAD"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Feature.model_validate_json(item["document"]["S"]), item["owner"]["S"], item["etag"]["S"]

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

    def add_version(self, base: str, feature: Feature, owner: str, etag: str, previous_etag: str) -> None:
        """Store ``feature`` as the next version, unless someone else got there first (412)."""
        head = self._item(base, "HEAD", feature, owner, etag)
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
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._item(base, f"V#{feature.version:08d}", feature, owner, etag),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
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
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._item(base, f"V#{feature.version:08d}", feature, owner, etag),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        except self._db.exceptions.TransactionCanceledException as error:
            raise PreconditionFailed("the feature changed meanwhile", []) from error

    def delete(self, base: str, feature: Feature, owner: str, etag: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"F#{base}"}, "sk": {"S": "HEAD"}},
                ConditionExpression="etag = :etag",
                ExpressionAttributeValues={":etag": {"S": etag}},
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
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


class FeatureIndex:
    """Who owns which features (``O#<owner>``) and where they are (``G#...``, see features.spatial)."""

    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def _keys(self, owner: str, base: str, geometry: dict[str, Any] | None) -> list[dict[str, Any]]:
        keys = [{"pk": {"S": f"O#{owner}"}, "sk": {"S": base}}]
        if geometry is not None:
            keys += [
                {"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in spatial.index_keys(owner, base, geometry)
            ]
        return keys

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self._table: requests[start : start + 25]}
            while pending:
                pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def put(self, owner: str, base: str, geometry: dict[str, Any] | None) -> None:
        self._write([{"PutRequest": {"Item": key}} for key in self._keys(owner, base, geometry)])

    def remove(self, owner: str, base: str, geometry: dict[str, Any] | None) -> None:
        self._write([{"DeleteRequest": {"Key": key}} for key in self._keys(owner, base, geometry)])

    def drop_stale(
        self, owner: str, base: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        """After a move: drop the entries of ``old`` that ``new`` does not share (its own are written)."""
        current = self._keys(owner, base, new)
        stale = [key for key in self._keys(owner, base, old) if key not in current]
        self._write([{"DeleteRequest": {"Key": key}} for key in stale])

    def _query(self, pk: str, prefix: str | None) -> list[str]:
        kwargs: dict[str, Any] = {"TableName": self._table, "ProjectionExpression": "sk"}
        if prefix is None:
            kwargs["KeyConditionExpression"] = "pk = :pk"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}}
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :p)"
            kwargs["ExpressionAttributeValues"] = {":pk": {"S": pk}, ":p": {"S": prefix}}
        found: list[str] = []
        while True:
            page = self._db.query(**kwargs)
            found += [item["sk"]["S"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def owned(self, owner: str) -> set[str]:
        return set(self._query(f"O#{owner}", None))

    def near(self, owner: str, box: spatial.Bounds) -> set[str]:
        """Candidates whose indexed cells meet ``box`` (a superset: filter exactly afterwards). The
        partitions are read in parallel (a world-wide box is one query per level-1 cell)."""
        from concurrent.futures import ThreadPoolExecutor

        plan = spatial.query_plan(owner, box)
        with ThreadPoolExecutor(min(8, max(1, len(plan)))) as pool:
            pages = list(pool.map(lambda step: self._query(*step), plan))
        return {sk.split("#", 2)[2] for page in pages for sk in page}


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
