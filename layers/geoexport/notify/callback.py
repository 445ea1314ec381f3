"""The callback body (seed 000, Appendix 1) for a finished task."""

from __future__ import annotations

from typing import Any

from geoexport.models.tasks import ArtifactType, ExportTask


def callback_body(task: ExportTask, event: str) -> dict[str, Any]:
    dumped = task.model_dump(mode="json")  # the same spellings (e.g. timestamps) as GET /export-tasks/{id}
    data = next((a for a in task.artifacts if a.type is ArtifactType.GPKG), None)
    meta = next((a for a in task.artifacts if a.type is ArtifactType.METADATA), None)
    return {
        "event": event,
        "status": task.status.value,
        "links": {"dataURI": data.url if data else None, "metadataURI": meta.url if meta else None},
        "expirationTime": dumped["expiredAt"],
        "fileSize": data.size if data else 0,
        "recordCatalogId": str(task.catalogRecordID),
        "description": task.description,
        "roi": task.ROI,
        "jobId": str(task.id),
        "errorReason": task.errorReason or "",
        "artifacts": dumped["artifacts"],
    }
