"""GeoJSON ROI models. Polygons are validated in pure Python (see :mod:`geoexport.geometry.planar`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from geoexport.geometry import grid, planar

Position = Annotated[list[float], Field(min_length=2, max_length=3)]
Ring = list[Position]


class Polygon(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Polygon"]
    coordinates: list[Ring] = Field(min_length=1)
    bbox: list[float] | None = None

    @field_validator("coordinates")
    @classmethod
    def _valid(cls, value: list[Ring]) -> list[Ring]:
        try:
            planar.validate_polygon(value)
        except planar.GeometryProblem as problem:
            raise ValueError(str(problem)) from None
        return value


class MultiPolygon(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["MultiPolygon"]
    coordinates: list[list[Ring]] = Field(min_length=1)
    bbox: list[float] | None = None

    @field_validator("coordinates")
    @classmethod
    def _valid(cls, value: list[list[Ring]]) -> list[list[Ring]]:
        for index, polygon in enumerate(value):
            try:
                planar.validate_polygon(polygon)
            except planar.GeometryProblem as problem:
                raise ValueError(f"polygon {index}: {problem}") from None
        return value


Geometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class RoiProperties(BaseModel):
    """Per-feature export parameters (seed 001): the finest and coarsest resolution wanted, in degrees."""

    model_config = ConfigDict(extra="allow")
    maxResolutionDeg: float = Field(ge=grid.MIN_RESOLUTION_DEG, le=grid.MAX_RESOLUTION_DEG)
    minResolutionDeg: float | None = Field(None, ge=grid.MIN_RESOLUTION_DEG, le=grid.MAX_RESOLUTION_DEG)

    @property
    def max_zoom(self) -> int:
        return grid.zoom_for_resolution(self.maxResolutionDeg)

    @property
    def min_zoom(self) -> int:
        return 0 if self.minResolutionDeg is None else grid.zoom_for_resolution(self.minResolutionDeg)


class RoiFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"]
    geometry: Geometry
    properties: RoiProperties
    id: str | int | None = None
    bbox: list[float] | None = None

    def geometry_mapping(self) -> dict[str, Any]:
        return self.geometry.model_dump(exclude_none=True)


class RoiFeatureCollection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["FeatureCollection"]
    features: list[RoiFeature] = Field(min_length=1, max_length=100)
    bbox: list[float] | None = None
