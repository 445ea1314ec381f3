"""How a catalog record is shown by the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel

from geoexport.models.catalog import CatalogRecord


class SourceView(BaseModel):
    bucket: str
    key: str
    uri: str


class RecordView(BaseModel):
    id: UUID
    name: str
    domain: str
    description: str
    footprint: dict[str, Any]
    maxResolutionDeg: float
    crs: str
    bands: int
    dtype: str
    nodata: float | None
    width: int
    height: int
    productVersion: str
    source: SourceView


class RecordList(BaseModel):
    records: list[RecordView]


def record_view(record: CatalogRecord) -> dict[str, Any]:
    body = record.model_dump(mode="json", exclude={"source", "tileBytesByZoom", "tileSecondsByZoom"})
    body["source"] = {"bucket": record.source.bucket, "key": record.source.key, "uri": record.source.uri}
    return body
