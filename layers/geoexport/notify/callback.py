"""Callback bodies: seed 000 Appendix 1 (v2 status values plus event and artifacts), and v1 exactly."""

from __future__ import annotations

from typing import Any

from geoexport.models.tasks import ArtifactType, ExportTask, TaskStatus

V1_STATUS = {
    TaskStatus.PENDING: "Pending",
    TaskStatus.IN_PROGRESS: "In-Progress",
    TaskStatus.COMPLETED: "Completed",
    TaskStatus.FAILED: "Failed",
    TaskStatus.ABORTED: "Aborted",
    TaskStatus.EXPIRED: "Expired",
    TaskStatus.PAUSED: "Pending",
    TaskStatus.ARCHIVED: "Expired",
}


def v1_body(task: ExportTask) -> dict[str, Any]:
    """Appendix 1/2 to the letter: the fields MapColonies' v1 clients parse, and only those."""
    dumped = task.model_dump(mode="json")
    data = next((a for a in task.artifacts if a.type is ArtifactType.GPKG), None)
    meta = next((a for a in task.artifacts if a.type is ArtifactType.METADATA), None)
    return {
        "status": V1_STATUS[task.status],
        "links": {"dataURI": data.url if data else None, "metadataURI": meta.url if meta else None},
        "expirationTime": dumped["expiredAt"],
        "fileSize": data.size if data else 0,
        "recordCatalogId": str(task.catalogRecordID) if task.catalogRecordID else None,
        "description": task.description,
        "roi": task.ROI,
        "jobId": str(task.id),
        "errorReason": task.errorReason or "",
    }


def callback_body(task: ExportTask, event: str) -> dict[str, Any]:
    body = v1_body(task)
    body.update(
        status=task.status.value,
        event=event,
        progress=task.progress,
        artifacts=task.model_dump(mode="json")["artifacts"],
    )
    return body
