"""Upload: publish the staged files under exports/, check them, record them as the task's artifacts."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from geoexport.errors import ArtifactMismatch, NotFound, StaleTransition
from geoexport.models.tasks import StoredArtifact, TaskRecord, TaskStatus
from geoexport.pipeline.pause import stop_if_paused
from geoexport.pipeline.plan import exports_prefix, scratch_prefix


class Store(Protocol):
    def head(self, key: str) -> dict[str, Any] | None: ...
    def copy(self, source_key: str, target_key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...


class Artifacts(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def report_progress(self, task_id: UUID | str, progress: int) -> bool: ...
    def set_artifacts(self, task_id: UUID | str, artifacts: list[StoredArtifact], progress: int) -> None: ...


def _matches(head: dict[str, Any] | None, size: int, sha256: str) -> bool:
    return (
        head is not None
        and int(head["ContentLength"]) == size
        and head.get("Metadata", {}).get("sha256") == sha256
    )


def run(task_id: str, files: list[dict[str, Any]], tasks: Artifacts, store: Store) -> dict[str, Any]:
    task = tasks.get(task_id)
    stop_if_paused(task)
    if task.status is TaskStatus.COMPLETED and {a.sha256 for a in task.artifacts} == {
        f["sha256"] for f in files
    }:
        return {"taskId": task_id}  # a late re-run: already published and recorded
    artifacts: list[StoredArtifact] = []
    for entry in files:
        final_key = f"{exports_prefix(task_id)}{entry['name']}"
        if not _matches(store.head(final_key), entry["size"], entry["sha256"]):  # not yet published
            if store.head(entry["key"]) is None:
                raise NotFound(f"staged file {entry['name']} is missing; the Package step must run again")
            store.copy(entry["key"], final_key)
            if not _matches(store.head(final_key), entry["size"], entry["sha256"]):
                raise ArtifactMismatch(f"{entry['name']} does not match its checksum after upload")
        artifacts.append(
            StoredArtifact(
                type=entry["type"],
                name=entry["name"],
                size=entry["size"],
                sha256=entry["sha256"],
                key=final_key,
                bounds=entry.get("bounds"),
            )
        )
    try:
        tasks.set_artifacts(task_id, artifacts, progress=85)
    except StaleTransition:
        store.delete_prefix(exports_prefix(task_id))  # the task ended meanwhile (aborted): leave nothing
        raise
    store.delete_prefix(scratch_prefix(task_id))
    tasks.report_progress(task_id, 90)
    return {"taskId": task_id}
