"""Catalog records: the map products one can export."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class SourceLocation(BaseModel):
    model_config = ConfigDict(frozen=True)
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class CatalogRecord(BaseModel):
    """One raster product. ``footprint`` is a GeoJSON Polygon in EPSG:4326; resolution in degrees/pixel."""

    model_config = ConfigDict(frozen=True)
    id: UUID
    name: str
    domain: Literal["RASTER"] = "RASTER"
    description: str = ""
    footprint: dict[str, Any]
    maxResolutionDeg: float
    crs: str
    bands: int
    dtype: str
    nodata: float | None = None
    width: int
    height: int
    source: SourceLocation
    productVersion: str = "1.0"
