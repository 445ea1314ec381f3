"""Catalog table adapter (DynamoDB): records are stored as one JSON document keyed by id."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from geoexport.errors import NotFound
from geoexport.models.catalog import CatalogRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class CatalogRepository:
    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def put(self, record: CatalogRecord) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "id": {"S": str(record.id)},
                "name": {"S": record.name},
                "doc": {"S": record.model_dump_json()},
            },
        )

    def get(self, record_id: UUID | str) -> CatalogRecord:
        item = self._db.get_item(TableName=self._table, Key={"id": {"S": str(record_id)}}).get("Item")
        if not item:
            raise NotFound(f"catalog record {record_id} does not exist")
        return CatalogRecord.model_validate_json(item["doc"]["S"])

    def list(self) -> list[CatalogRecord]:
        records: list[CatalogRecord] = []
        paginator = self._db.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table):
            records.extend(CatalogRecord.model_validate_json(item["doc"]["S"]) for item in page["Items"])
        return sorted(records, key=lambda record: record.name)
