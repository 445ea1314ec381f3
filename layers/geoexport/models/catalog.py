"""Catalog records: the map products one can export."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

# Used only for a record that could not be sampled (its pixels do not read): a typical PNG tile.
DEFAULT_TILE_BYTES = 40_000.0
DEFAULT_TILE_SECONDS = 0.02
# A DEM tile: 256 x 256 float32 heights, deflate-compressed TIFF (about 110 kB for the sample's relief).
DEM_TILE_BYTES = 110_000.0


class SourceLocation(BaseModel):
    model_config = ConfigDict(frozen=True)
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class CatalogRecord(BaseModel):
    """One raster product. ``footprint`` is a GeoJSON Polygon in EPSG:4326; resolution in degrees/pixel.

    A ``DEM`` record holds one band of heights (``heightUnit``, ``verticalDatum`` when known)."""

    model_config = ConfigDict(frozen=True)
    id: UUID
    name: str
    domain: Literal["RASTER", "DEM"] = "RASTER"
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
    heightUnit: str | None = None  # DEM: the unit of the heights (e.g. "metre")
    verticalDatum: str | None = None  # DEM: what the heights are measured from, when the source says
    # Measured when the record was registered: per zoom, encoded bytes and render seconds of one tile.
    tileBytesByZoom: dict[int, float] = Field(default_factory=dict)
    tileSecondsByZoom: dict[int, float] = Field(default_factory=dict)

    def tile_cost(self, zoom: int) -> tuple[float, float]:
        """(bytes, seconds) per tile at ``zoom``: the sample of that zoom, else the nearest sampled one."""
        if not self.tileBytesByZoom:
            return (DEM_TILE_BYTES if self.domain == "DEM" else DEFAULT_TILE_BYTES), DEFAULT_TILE_SECONDS
        nearest = min(self.tileBytesByZoom, key=lambda z: (abs(z - zoom), -z))
        return self.tileBytesByZoom[nearest], self.tileSecondsByZoom.get(nearest, DEFAULT_TILE_SECONDS)
