"""Request, response and stored-record models (pydantic v2). Light: no numpy."""

from geoexport.models.catalog import CatalogRecord, SourceLocation
from geoexport.models.geojson import RoiFeature, RoiFeatureCollection, RoiProperties
from geoexport.models.tasks import (
    Artifact,
    ArtifactType,
    CreateExportTaskRequest,
    DedupeMatch,
    Domain,
    ExportTask,
    StoredArtifact,
    TaskRecord,
    TaskStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)

__all__ = [
    "Artifact",
    "ArtifactType",
    "CatalogRecord",
    "CreateExportTaskRequest",
    "DedupeMatch",
    "Domain",
    "ExportTask",
    "RoiFeature",
    "RoiFeatureCollection",
    "RoiProperties",
    "SourceLocation",
    "StoredArtifact",
    "TaskRecord",
    "TaskStatus",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
]
