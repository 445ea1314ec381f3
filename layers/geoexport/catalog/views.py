"""How a catalog record is shown by the API."""

from __future__ import annotations

from typing import Any

from geoexport.models.catalog import CatalogRecord


def record_view(record: CatalogRecord) -> dict[str, Any]:
    body = record.model_dump(mode="json", exclude={"source"})
    body["source"] = {"bucket": record.source.bucket, "key": record.source.key, "uri": record.source.uri}
    return body
