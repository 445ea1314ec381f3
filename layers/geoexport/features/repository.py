"""The features table (single-table design); models live under ``pk = MODEL``, ``sk = <name>``."""

from __future__ import annotations

import json
from typing import Any

from geoexport.errors import Conflict, FieldProblem, NotFound
from geoexport.features.models import FeatureModel

MODEL_PK = "MODEL"


class ModelRepository:
    def __init__(self, dynamodb_client: Any, table: str) -> None:
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
