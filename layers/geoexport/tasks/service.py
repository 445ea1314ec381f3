"""Create and read export tasks: the use cases behind ``POST``/``GET /export-tasks``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID, uuid4

from geoexport.errors import FieldProblem, ServiceUnavailable, UnprocessableRequest
from geoexport.geometry import planar
from geoexport.models.catalog import CatalogRecord
from geoexport.models.tasks import (
    Artifact,
    CreateExportTaskRequest,
    ExportTask,
    TaskRecord,
    TaskStatus,
)


class Catalog(Protocol):
    def get(self, record_id: UUID | str) -> CatalogRecord: ...


class Tasks(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def create(self, record: TaskRecord) -> None: ...
    def set_execution(self, task_id: UUID, execution_arn: str) -> None: ...
    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        **fields: object,
    ) -> None: ...


class Workflow(Protocol):
    def start(self, task_id: UUID) -> str: ...


class Links(Protocol):
    def presign_get(self, key: str, expires_in: int, filename: str) -> str: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_against_record(request: CreateExportTaskRequest, record: CatalogRecord) -> None:
    """Refuse, before anything starts, an ROI the record cannot serve; every problem is listed."""
    problems: list[FieldProblem] = []
    for index, feature in enumerate(request.ROI.features):
        where = f"ROI.features[{index}]"
        if not planar.geometries_intersect(feature.geometry_mapping(), record.footprint):
            problems.append(
                FieldProblem(
                    f"{where}.geometry",
                    f"does not intersect the footprint of record {record.id} ({record.name})",
                )
            )
        wanted = feature.properties.maxResolutionDeg
        if wanted < record.maxResolutionDeg * (1 - 1e-9):
            problems.append(
                FieldProblem(
                    f"{where}.properties.maxResolutionDeg",
                    f"{wanted} is finer than the source allows; the finest is {record.maxResolutionDeg}",
                )
            )
        low = feature.properties.minResolutionDeg
        if low is not None and low < wanted:
            problems.append(
                FieldProblem(
                    f"{where}.properties.minResolutionDeg", "must not be finer than maxResolutionDeg"
                )
            )
    if problems:
        raise UnprocessableRequest("the ROI cannot be exported from this record", problems)


class TaskService:
    def __init__(
        self,
        tasks: Tasks,
        catalog: Catalog,
        workflow: Workflow,
        links: Links,
        download_url_ttl_seconds: int,
        clock: Callable[[], datetime] = utcnow,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._tasks = tasks
        self._catalog = catalog
        self._workflow = workflow
        self._links = links
        self._ttl = download_url_ttl_seconds
        self._clock = clock
        self._new_id = new_id

    def create(self, request: CreateExportTaskRequest) -> ExportTask:
        record = self._catalog.get(request.catalogRecordID)
        check_against_record(request, record)
        now = self._clock()
        task = TaskRecord(
            id=self._new_id(),
            status=TaskStatus.PENDING,
            progress=0,
            request=request,
            createdAt=now,
            updatedAt=now,
        )
        self._tasks.create(task)
        try:
            execution = self._workflow.start(task.id)
        except ServiceUnavailable as error:
            # Accepted but not startable: end it honestly rather than leave it PENDING forever.
            self._tasks.advance(
                task.id, TaskStatus.FAILED, self._clock(), errorReason=error.message, finishedAt=self._clock()
            )
            raise
        self._tasks.set_execution(task.id, execution)
        return self.view(task)

    def get(self, task_id: UUID) -> ExportTask:
        return self.view(self._tasks.get(task_id))

    def view(self, task: TaskRecord) -> ExportTask:
        """The API view; download links are minted now, short-lived, and never outlive ``expiredAt``."""
        artifacts: list[Artifact] = []
        if task.status is TaskStatus.COMPLETED:
            now = self._clock()
            lifetime = self._ttl
            if task.expiredAt is not None:
                lifetime = min(lifetime, int((task.expiredAt - now).total_seconds()))
            for stored in task.artifacts:
                url = self._links.presign_get(stored.key, lifetime, stored.name) if lifetime > 0 else None
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
            ROI=request.ROI.model_dump(mode="json", exclude_none=True),
            artifactCRS=request.artifactCRS,
            description=request.description,
            keywords=request.keywords,
            parameters=request.parameters,
            webhooks=request.webhooks,
            artifacts=artifacts,
            createdAt=task.createdAt,
            expiredAt=task.expiredAt,
            finishedAt=task.finishedAt,
            errorReason=task.errorReason,
        )
