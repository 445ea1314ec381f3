"""The callback body (seed 000, Appendix 1) for a finished task."""

from __future__ import annotations

from typing import Any

from geoexport.models.tasks import ArtifactType, ExportTask


def callback_body(task: ExportTask, event: str) -> dict[str, Any]:
    data = next((a for a in task.artifacts if a.type is ArtifactType.GPKG), None)
    meta = next((a for a in task.artifacts if a.type is ArtifactType.METADATA), None)
    return {
        "event": event,
        "status": task.status.value,
        "links": {"dataURI": data.url if data else None, "metadataURI": meta.url if meta else None},
        "expirationTime": task.expiredAt.isoformat() if task.expiredAt else None,
        "fileSize": data.size if data else 0,
        "recordCatalogId": str(task.catalogRecordID),
        "description": task.description,
        "roi": task.ROI,
        "jobId": str(task.id),
        "errorReason": task.errorReason or "",
        "artifacts": [a.model_dump(mode="json") for a in task.artifacts],
    }
