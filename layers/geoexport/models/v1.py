"""MapColonies' v1 contract (seed 000): /create/roi and /taskStatus, mapped onto the same domain."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from geoexport.models.geojson import RoiFeatureCollection
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
