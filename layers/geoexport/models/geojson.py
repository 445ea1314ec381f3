"""GeoJSON ROI models. Polygons are validated in pure Python (see :mod:`geoexport.geometry.planar`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

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
            planar.validate_structure(value)  # topology is checked (and repaired) with the whole AoI
        except planar.GeometryProblem as problem:
            raise ValueError(str(problem)) from None
        return value

    def topology_problem(self) -> str | None:
        return planar.topology_problem(self.coordinates)


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
                planar.validate_structure(polygon)
            except planar.GeometryProblem as problem:
                raise ValueError(f"polygon {index}: {problem}") from None
        return value

    def topology_problem(self) -> str | None:
        for index, polygon in enumerate(self.coordinates):
            problem = planar.topology_problem(polygon)
            if problem:
                return f"polygon {index}: {problem}"
        return None


Geometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class RoiProperties(BaseModel):
    """Per-feature export parameters (seed 001): the finest and coarsest resolution wanted, in degrees."""

    model_config = ConfigDict(extra="allow")
    # Absent: the request's top-level maxResolutionDeg, else the record's own resolution (filled in before
    # the task is stored, so a stored ROI always has it).
    maxResolutionDeg: float | None = Field(None, ge=grid.MIN_RESOLUTION_DEG, le=grid.MAX_RESOLUTION_DEG)
    minResolutionDeg: float | None = Field(None, ge=grid.MIN_RESOLUTION_DEG, le=grid.MAX_RESOLUTION_DEG)

    @property
    def resolution(self) -> float:
        assert self.maxResolutionDeg is not None, "filled in before the task is stored"
        return self.maxResolutionDeg

    @property
    def max_zoom(self) -> int:
        return grid.zoom_for_resolution(self.resolution)

    @property
    def min_zoom(self) -> int:
        return 0 if self.minResolutionDeg is None else grid.zoom_for_resolution(self.minResolutionDeg)


class RoiFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"]
    geometry: Geometry
    properties: RoiProperties = Field(default_factory=lambda: RoiProperties.model_validate({}))
    id: str | int | None = None
    bbox: list[float] | None = None

    def geometry_mapping(self) -> dict[str, Any]:
        return self.geometry.model_dump(exclude_none=True)


class RoiFeatureCollection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["FeatureCollection"]
    features: list[RoiFeature] = Field(min_length=1, max_length=100)
    bbox: list[float] | None = None


class CountryAoi(BaseModel):
    """A national product: the country's boundary, in its national projection (CLC+)."""

    model_config = ConfigDict(extra="forbid")
    country: str = Field(min_length=2, max_length=100, description="name (France) or ISO 3166 alpha-3 (FRA)")


def _aoi_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "wkt"
    if isinstance(value, dict):
        return "country" if "country" in value else value.get("type")
    if isinstance(value, BaseModel):
        return "country" if isinstance(value, CountryAoi) else getattr(value, "type", None)
    return None


#: Every form an area of interest may take in a request: a FeatureCollection, a Feature, a bare Polygon or
#: MultiPolygon, WKT in EPSG:4326 (a string), or a country.
AoiInput = Annotated[
    Annotated[RoiFeatureCollection, Tag("FeatureCollection")]
    | Annotated[RoiFeature, Tag("Feature")]
    | Annotated[Polygon, Tag("Polygon")]
    | Annotated[MultiPolygon, Tag("MultiPolygon")]
    | Annotated[CountryAoi, Tag("country")]
    | Annotated[str, Tag("wkt"), Field(min_length=3, max_length=1_000_000)],
    Discriminator(
        _aoi_form,
        custom_error_type="aoi_form",
        custom_error_message=(
            'expected a FeatureCollection, Feature, Polygon, MultiPolygon, WKT text or {"country": ...}'
        ),
    ),
]
