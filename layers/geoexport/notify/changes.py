"""Callbacks as reactions to stored task changes: the one place webhooks start from.

Steps and API functions only write tasks (status, progress, artifacts). The tasks table's stream carries
every change to the TaskChanges function, which calls :func:`react` with the old and new task: a status
that became final sends the final callback (TASK_COMPLETED or TASK_FAILED; TASK_EXPIRED for EXPIRED), a
progress milestone sends TASK_PROGRESS. So no export waits on, or fails because of, a slow receiver.

Each event is claimed on the task before it is sent (``notifiedEvents``), so a redelivered stream record,
or the reconciler's sweep for announcements a lost stream record never made (:func:`announce`), cannot
send a final callback twice; the retry queue's safety net covers a crash between claim and record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel, Field

from geoexport.models.tasks import TaskRecord, TaskStatus, WebhookEvent
from geoexport.notify.delivery import Deliveries

#: Progress values the steps record at their boundaries that are announced (TASK_PROGRESS).
MILESTONES = frozenset({10, 80, 90})


class Claim(StrEnum):
    FINAL = "final"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Announcement:
    event: WebhookEvent
    claim: Claim


#: Statuses that are announced when a task reaches them, with their callback event.
ANNOUNCED: dict[TaskStatus, Announcement] = {
    TaskStatus.COMPLETED: Announcement(WebhookEvent.TASK_COMPLETED, Claim.FINAL),
    TaskStatus.FAILED: Announcement(WebhookEvent.TASK_FAILED, Claim.FINAL),
    TaskStatus.ABORTED: Announcement(WebhookEvent.TASK_FAILED, Claim.FINAL),
    TaskStatus.EXPIRED: Announcement(WebhookEvent.TASK_EXPIRED, Claim.EXPIRED),
}


class Claims(Protocol):
    def claim_notification(self, task_id: UUID | str, event: str = "final") -> bool: ...


def announce(task: TaskRecord, claims: Claims, deliveries: Deliveries) -> bool:
    """Send the callbacks of the status ``task`` is in, unless they were sent already."""
    announcement = ANNOUNCED.get(task.status)
    if announcement is None or not claims.claim_notification(task.id, announcement.claim.value):
        return False
    deliveries.first(task, announcement.event)
    return True


def restored(task: TaskRecord, claims: Claims, deliveries: Deliveries) -> bool:
    """TASK_COMPLETED again when an archived export is restored (once per restore: each has its own
    expiredAt), so a caller waiting on a slow restore hears when it can download."""
    if not claims.claim_notification(task.id, f"restored-{task.expiredAt}"):
        return False
    deliveries.first(task, WebhookEvent.TASK_COMPLETED)
    return True


def progress(task: TaskRecord, claims: Claims, deliveries: Deliveries) -> bool:
    """TASK_PROGRESS for a milestone, once per value (best effort: a late progress report is worthless)."""
    hooks = [hook for hook in task.all_webhooks() if WebhookEvent.TASK_PROGRESS in hook.events]
    if not hooks or not claims.claim_notification(task.id, f"progress-{task.progress}"):
        return False
    deliveries.first(task, WebhookEvent.TASK_PROGRESS)
    return True


def react(old: TaskRecord | None, new: TaskRecord | None, claims: Claims, deliveries: Deliveries) -> bool:
    """One stored change of a task: True when it sent callbacks."""
    if new is None:
        return False  # deleted
    if old is not None and old.status is TaskStatus.ARCHIVED and new.status is TaskStatus.COMPLETED:
        return restored(new, claims, deliveries)
    if new.status in ANNOUNCED and (old is None or old.status is not new.status):
        return announce(new, claims, deliveries)
    if (
        new.status is TaskStatus.IN_PROGRESS
        and new.progress in MILESTONES
        and (old is None or old.progress != new.progress)
    ):
        return progress(new, claims, deliveries)
    return False


#: EventBridge detail-type of every status change (issue 15: lifecycle events for subscribers).
STATUS_CHANGED = "ExportTaskStatusChanged"


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class ArtifactFacts(BaseModel):
    type: str
    name: str
    size: int
    sha256: str


class StatusChanged(BaseModel):
    """The ``detail`` of ``ExportTaskStatusChanged`` (events/schemas/ExportTaskStatusChanged.json)."""

    eventId: str = Field(description="<task id>:<status>: the same change delivered twice has the same id")
    taskId: str
    owner: str
    status: TaskStatus
    previousStatus: TaskStatus | None
    progress: int
    errorReason: str | None
    domain: str
    updatedAt: datetime
    artifacts: list[ArtifactFacts] | None = Field(
        None, description="COMPLETED: names, sizes and checksums (links come from the API, never in events)"
    )


def status_event(old: TaskRecord | None, new: TaskRecord | None) -> StatusChanged | None:
    """The ``ExportTaskStatusChanged`` detail of a stored change, or None when the status did not move.

    Names, sizes and checksums of a COMPLETED task's artifacts, never a link: an event outlives a presigned
    URL, and whoever reads the bus is not necessarily allowed to download (the owner asks the API)."""
    if new is None or (old is not None and old.status is new.status):
        return None
    artifacts = None
    if new.status is TaskStatus.COMPLETED:
        artifacts = [
            ArtifactFacts(type=a.type.value, name=a.name, size=a.size, sha256=a.sha256) for a in new.artifacts
        ]
    return StatusChanged(
        eventId=f"{new.id}:{new.status.value}",
        taskId=str(new.id),
        owner=new.owner,
        status=new.status,
        previousStatus=old.status if old is not None else None,
        progress=new.progress,
        errorReason=new.errorReason,
        domain=new.request.domain.value,
        updatedAt=new.updatedAt,
        artifacts=artifacts,
    )


def publish_status(old: TaskRecord | None, new: TaskRecord | None, publisher: Publisher) -> bool:
    """Publish a status change on the exports bus (at least once: subscribers dedupe on ``eventId``)."""
    detail = status_event(old, new)
    if detail is None:
        return False
    publisher.publish(STATUS_CHANGED, detail.model_dump(mode="json", exclude_none=False))
    return True
