"""Export task models: the create request, the stored record and the API view of a task."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from geoexport.models.geojson import RoiFeatureCollection


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    PAUSED = "PAUSED"
    EXPIRED = "EXPIRED"
    ARCHIVED = "ARCHIVED"


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED})


class Domain(StrEnum):
    RASTER = "RASTER"


class WebhookEvent(StrEnum):
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_FAILED = "TASK_FAILED"
    TASK_PROGRESS = "TASK_PROGRESS"
    TASK_EXPIRED = "TASK_EXPIRED"


class ArtifactType(StrEnum):
    GPKG = "GPKG"
    METADATA = "METADATA"


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl
    events: list[WebhookEvent] = Field(min_length=1)


class CreateExportTaskRequest(BaseModel):
    """Body of ``POST /export-tasks`` (seed 001)."""

    model_config = ConfigDict(extra="forbid")
    catalogRecordID: UUID
    domain: Domain
    ROI: RoiFeatureCollection | None = None  # absent: the record's whole footprint at its own resolution
    artifactCRS: Literal["4326"] = "4326"
    description: str = Field("", max_length=2000)
    keywords: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    webhooks: list[Webhook] = Field(default_factory=list, max_length=10)


class StoredArtifact(BaseModel):
    """An artifact as stored on the task: where it lives, not a link (links are minted per GET)."""

    type: ArtifactType
    name: str
    size: int
    sha256: str
    key: str


class Artifact(BaseModel):
    type: ArtifactType
    name: str
    size: int
    sha256: str
    url: str | None = None


class DeliveryOutcome(StrEnum):
    """Where one webhook delivery stands: ``retrying`` until it is ``delivered`` or ``exhausted``."""

    DELIVERED = "delivered"  # a 2xx answer
    RETRYING = "retrying"  # failed so far; the next attempt is queued (nextAttemptAt)
    EXHAUSTED = "exhausted"  # every attempt of the retry window failed; in the dead-letter queue
    REFUSED = "refused"  # the destination is not allowed (SSRF guard); never retried


class WebhookDelivery(BaseModel):
    """The outcome of one attempt to deliver one event to one webhook (the latest per hook is shown)."""

    url: str
    event: WebhookEvent
    statusCode: int | None = None
    error: str | None = None
    deliveredAt: datetime  # when this attempt ended
    outcome: DeliveryOutcome = DeliveryOutcome.DELIVERED
    attempts: int = 1
    nextAttemptAt: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.statusCode is not None and 200 <= self.statusCode < 300


class DedupeMatch(BaseModel):
    """Why a create answered with an existing task."""

    matchedTaskId: UUID
    rule: Literal["exact", "containment"]


class TaskRecord(BaseModel):
    """A task as stored in the tasks table. ``request.ROI`` is always filled in (defaults applied)."""

    id: UUID
    status: TaskStatus
    progress: int = Field(ge=0, le=100)
    request: CreateExportTaskRequest
    createdAt: datetime
    updatedAt: datetime
    finishedAt: datetime | None = None
    expiredAt: datetime | None = None
    errorReason: str | None = None
    artifacts: list[StoredArtifact] = Field(default_factory=list)
    deliveries: list[WebhookDelivery] = Field(default_factory=list)
    executionArn: str | None = None
    owner: str = "anonymous"
    api: Literal["v2", "v1"] = "v2"  # which contract its callbacks follow
    fingerprint: str | None = None
    scope: str | None = None
    estimatedSize: int | None = None
    estimatedTime: float | None = None
    reservedBytes: int = 0
    extraWebhooks: list[Webhook] = Field(default_factory=list)  # merged in from duplicate requests

    def latest_deliveries(self) -> list[WebhookDelivery]:
        """The most recent outcome per (url, event): attempts are appended, the last one counts."""
        found: dict[tuple[str, WebhookEvent], WebhookDelivery] = {}
        for delivery in self.deliveries:
            found[(delivery.url, delivery.event)] = delivery
        return list(found.values())

    def all_webhooks(self) -> list[Webhook]:
        seen: set[tuple[str, tuple[str, ...]]] = set()
        hooks: list[Webhook] = []
        for hook in [*self.request.webhooks, *self.extraWebhooks]:
            key = (str(hook.url), tuple(sorted(hook.events)))
            if key not in seen:
                seen.add(key)
                hooks.append(hook)
        return hooks

    @property
    def roi(self) -> RoiFeatureCollection:
        assert self.request.ROI is not None, "stored tasks always carry their effective ROI"
        return self.request.ROI


class ExportTask(BaseModel):
    """The API view of a task (``POST``/``GET /export-tasks``): the request echoed plus its state."""

    id: UUID
    status: TaskStatus
    progress: int
    catalogRecordID: UUID
    domain: Domain
    ROI: dict[str, Any]  # the request's FeatureCollection as sent (absent members stay absent)
    artifactCRS: str
    description: str
    keywords: dict[str, Any]
    parameters: dict[str, Any]
    webhooks: list[Webhook]
    estimatedSize: int | None = None
    estimatedTime: float | None = None
    artifacts: list[Artifact] = Field(default_factory=list)
    createdAt: datetime
    expiredAt: datetime | None = None
    finishedAt: datetime | None = None
    errorReason: str | None = None
    isDuplicated: bool = False
    dedupe: DedupeMatch | None = None
    webhookDeliveries: list[WebhookDelivery] = Field(default_factory=list)  # each callback's outcome
