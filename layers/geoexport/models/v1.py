"""MapColonies' v1 contract (seed 000): /create/roi and /taskStatus, mapped onto the same domain."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from geoexport.models.geojson import MultiPolygon, Polygon, RoiFeatureCollection
from geoexport.models.tasks import CreateExportTaskRequest, Domain, Webhook, WebhookEvent


class CreateRoiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dbId: str = Field(description="catalog record id")
    roi: RoiFeatureCollection
    callbackURLs: list[AnyHttpUrl] = Field(default_factory=list, max_length=10)
    crs: Literal["EPSG:4326", "4326"] = "EPSG:4326"
    priority: int | None = None
    description: str = Field("", max_length=2000)

    def to_canonical(self) -> CreateExportTaskRequest:
        return CreateExportTaskRequest(
            catalogRecordID=self.dbId,  # type: ignore[arg-type]
            domain=Domain.RASTER,
            ROI=self.roi,
            artifactCRS="4326",
            maxResolutionDeg=None,
            maxPartSize=None,
            description=self.description,
            parameters={} if self.priority is None else {"priority": self.priority},
            webhooks=[
                Webhook(url=url, events=[WebhookEvent.TASK_COMPLETED, WebhookEvent.TASK_FAILED])
                for url in self.callbackURLs
            ],
        )


BBox = tuple[float, float, float, float]


class CreateGetMapRequest(BaseModel):
    """Body of the deprecated ``POST /create`` (seed 000, "in use of GetMap"): a bbox (or a polygon), a
    resolution in deg/px or a GetMap-style pixel size, the record. Translated into the canonical request;
    answered as ``/create/roi`` answers."""

    model_config = ConfigDict(extra="forbid")
    dbId: str = Field(description="catalog record id (GetMap's LAYERS)")
    bbox: BBox | Polygon | MultiPolygon | None = Field(
        None,
        description="[minLon, minLat, maxLon, maxLat] (GetMap's BBOX in EPSG:4326), or a GeoJSON Polygon or "
        "MultiPolygon; absent: the record's whole footprint",
    )
    targetResolution: float | None = Field(
        None, gt=0, description="deg/px (absent: from width, or the record's)"
    )
    width: int | None = Field(None, ge=1, le=1_000_000, description="GetMap WIDTH: pixels across the bbox")
    height: int | None = Field(
        None, ge=1, le=1_000_000, description="GetMap HEIGHT (only checked with width)"
    )
    callbackURLs: list[AnyHttpUrl] = Field(default_factory=list, max_length=10)
    crs: Literal["EPSG:4326", "4326", "CRS:84"] = "EPSG:4326"
    priority: int | None = None
    description: str = Field("", max_length=2000)

    @field_validator("bbox")
    @classmethod
    def _within_globe(
        cls, bbox: BBox | Polygon | MultiPolygon | None
    ) -> BBox | Polygon | MultiPolygon | None:
        if isinstance(bbox, tuple):
            x0, y0, x1, y1 = bbox
            if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
                raise ValueError("[minLon, minLat, maxLon, maxLat] with min < max, within the globe")
        return bbox

    @model_validator(mode="after")
    def _consistent(self) -> CreateGetMapRequest:
        if (self.width or self.height) and not isinstance(self.bbox, tuple):
            raise ValueError("width and height size a bbox: give bbox as [minLon, minLat, maxLon, maxLat]")
        if self.width and self.targetResolution:
            raise ValueError("give targetResolution or width, not both")
        return self

    def resolution(self) -> float | None:
        """deg/px: targetResolution, else the bbox's width over ``width`` (a GetMap's pixel size)."""
        if self.targetResolution:
            return self.targetResolution
        if self.width and isinstance(self.bbox, tuple):
            return (self.bbox[2] - self.bbox[0]) / self.width
        return None

    def to_canonical(self) -> CreateExportTaskRequest:
        roi: dict[str, Any] | None = None
        if isinstance(self.bbox, tuple):
            x0, y0, x1, y1 = self.bbox
            roi = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
        elif self.bbox is not None:
            roi = self.bbox.model_dump(mode="json", exclude_none=True)
        body: dict[str, Any] = {
            "catalogRecordID": self.dbId,
            "domain": Domain.RASTER,
            "artifactCRS": "4326",
            "description": self.description,
            "parameters": {} if self.priority is None else {"priority": self.priority},
            "webhooks": [
                {"url": str(url), "events": [WebhookEvent.TASK_COMPLETED, WebhookEvent.TASK_FAILED]}
                for url in self.callbackURLs
            ],
        }
        if roi is not None:
            body["ROI"] = roi
        if (resolution := self.resolution()) is not None:
            body["maxResolutionDeg"] = resolution
        return CreateExportTaskRequest.model_validate(body)


class InProgressAnswer(BaseModel):
    """Appendix 3."""

    status: Literal["In-Progress"] = "In-Progress"
    id: str
    taskIds: list[str]


class Links(BaseModel):
    dataURI: str | None
    metadataURI: str | None


class CompletedAnswer(BaseModel):
    """Appendix 4 (and the v1 callback body, Appendix 1/2)."""

    status: str
    links: Links
    expirationTime: str | None
    fileSize: int
    recordCatalogId: str
    description: str
    roi: dict[str, object]
    jobId: str
    errorReason: str


class TaskStatusAnswer(BaseModel):
    percentage: int
    status: str
