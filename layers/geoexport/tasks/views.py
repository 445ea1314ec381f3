"""The API's view of tasks: ownership, reads, lists, free storage, and download links minted on read."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from geoexport.errors import Conflict, FieldProblem, NotFound
from geoexport.models.tasks import (
    Artifact,
    ArtifactType,
    ExportTask,
    QuicklookView,
    TaskRecord,
    TaskStatus,
    WebhookDelivery,
)
from geoexport.tasks.ports import Store, TaskReader
from geoexport.tasks.prepare import Limits


class DeliveryReader(Protocol):
    def latest(self, task_id: UUID | str) -> list[WebhookDelivery]: ...


class NoDeliveries:
    """For callers that never show deliveries (the create and abort answers of a new task)."""

    def latest(self, task_id: UUID | str) -> list[WebhookDelivery]:
        return []


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskViews:
    """Read side of the tasks: what a caller may see of its own tasks (another's do not exist for it)."""

    def __init__(
        self,
        tasks: TaskReader,
        store: Store,
        limits: Limits,
        secrets: Callable[[str], str | None] = lambda owner: None,
        clock: Callable[[], datetime] = utcnow,
        deliveries: DeliveryReader | None = None,
    ) -> None:
        self._deliveries = deliveries or NoDeliveries()
        self._tasks = tasks
        self._store = store
        self._limits = limits
        self._secrets = secrets
        self._clock = clock

    def owned(self, task_id: UUID | str, owner: str) -> TaskRecord:
        task = self._tasks.get(task_id)
        if task.owner != owner:  # another caller's task does not exist, as far as this caller can tell
            raise NotFound(f"export task {task_id} does not exist")
        return task

    def owned_in(self, task_id: UUID | str, owner: str, statuses: set[TaskStatus], action: str) -> TaskRecord:
        """The caller's task, if it is in one of ``statuses``; else the 409 saying which it is in."""
        task = self.owned(task_id, owner)
        if task.status not in statuses:
            allowed = " or ".join(sorted(status.value for status in statuses))
            article = "an" if allowed[0] in "AEIOU" else "a"
            raise Conflict(
                f"only {article} {allowed} export can be {action}; this one is {task.status.value}",
                [FieldProblem("id", f"the task is {task.status.value}")],
            )
        return task

    def get(self, task_id: UUID, owner: str = "anonymous") -> ExportTask:
        return self.view(self.owned(task_id, owner))

    def quicklook(self, task_id: UUID | str, owner: str) -> QuicklookView:
        """The preview of the caller's COMPLETED raster export, inline: a web page overlays it without
        fetching from the bucket (whose origin a browser's WebGL would need CORS for)."""
        task = self.owned_in(task_id, owner, {TaskStatus.COMPLETED}, "previewed")
        stored = next((a for a in task.artifacts if a.type is ArtifactType.QUICKLOOK), None)
        if stored is None or stored.bounds is None:
            raise NotFound(f"export task {task_id} has no quicklook (vector exports have none)")
        west, south, east, north = stored.bounds
        body = self._store.get_bytes(stored.key)
        width, height = struct.unpack(">II", body[16:24])  # the PNG's IHDR
        return QuicklookView(
            taskId=task.id,
            name=stored.name,
            bounds=stored.bounds,
            coordinates=[[west, north], [east, north], [east, south], [west, south]],
            width=width,
            height=height,
            dataUrl="data:image/png;base64," + base64.b64encode(body).decode(),
        )

    def list_tasks(
        self, owner: str, status: TaskStatus | None, limit: int, next_token: str | None
    ) -> tuple[list[ExportTask], str | None]:
        page = self._tasks.page(owner, status, limit, next_token)
        # A list shows no delivery outcomes: that would be one more query per task of the page.
        return [self.view(task, with_deliveries=False) for task in page.items], page.next_token

    def free_bytes(self) -> int:
        return max(0, self._limits.storage_quota_bytes - self._tasks.ledger().committed)

    def webhook_secret(self, owner: str) -> str | None:
        """The secret the owner's callbacks are signed with."""
        return self._secrets(owner)

    def find(self, task_id: UUID | str) -> TaskRecord | None:
        return self._tasks.find(task_id)

    def _link_lifetime(self, task: TaskRecord) -> int:
        lifetime = self._limits.download_url_ttl_seconds
        if task.expiredAt is not None:
            lifetime = min(lifetime, int((task.expiredAt - self._clock()).total_seconds()))
        return lifetime

    def presign(self, task: TaskRecord, key: str, name: str) -> str | None:
        """A download link for one of the task's files (None: it has expired)."""
        lifetime = self._link_lifetime(task)
        return self._store.presign_get(key, lifetime, name) if lifetime > 0 else None

    def view(self, task: TaskRecord, with_deliveries: bool = True) -> ExportTask:
        """Download links are minted now, short-lived, and never outlive ``expiredAt``."""
        artifacts: list[Artifact] = []
        if task.status is TaskStatus.COMPLETED:
            lifetime = self._link_lifetime(task)
            for stored in task.artifacts:
                url = self._store.presign_get(stored.key, lifetime, stored.name) if lifetime > 0 else None
                artifacts.append(
                    Artifact(
                        type=stored.type, name=stored.name, size=stored.size, sha256=stored.sha256, url=url
                    )
                )
        request = task.request
        return ExportTask(
            id=task.id,
            status=task.status,
            progress=task.progress,
            catalogRecordID=request.catalogRecordID,
            domain=request.domain,
            ROI=task.roi.model_dump(mode="json", exclude_none=True),
            artifactCRS=request.artifactCRS,
            format=request.format,
            packer=request.packer,
            maxPartSize=request.maxPartSize,
            notes=task.notes,
            description=request.description,
            keywords=request.keywords,
            parameters=request.parameters,
            webhooks=task.all_webhooks(),
            artifacts=artifacts,
            estimatedSize=task.estimatedSize,
            estimatedTime=task.estimatedTime,
            createdAt=task.createdAt,
            expiredAt=task.expiredAt,
            finishedAt=task.finishedAt,
            errorReason=task.errorReason,
            failureKind=task.failureKind,
            webhookDeliveries=self._deliveries.latest(task.id) if with_deliveries else None,
            transports=[task.transportStates[k] for k in sorted(task.transportStates, key=int)],
            definitionId=task.definitionId,
            archive=task.archive,
            pausedBy=task.pausedBy if task.status is TaskStatus.PAUSED else None,
        )
