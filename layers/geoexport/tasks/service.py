"""Creating export tasks: dedupe, estimate, storage reservation, start; and the dry run.

Preparation (defaults, AoI, checks) is :mod:`geoexport.tasks.prepare`; reads are :mod:`geoexport.tasks.views`;
aborts are :mod:`geoexport.tasks.abort`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, Field

from geoexport.errors import (
    FieldProblem,
    ServiceUnavailable,
    StaleTransition,
    UnprocessableRequest,
)
from geoexport.models.tasks import (
    Api,
    CreateExportTaskRequest,
    DedupeMatch,
    DedupeRule,
    ExportTask,
    TaskRecord,
    TaskStatus,
    TransportKind,
    TransportState,
    TransportStatus,
)
from geoexport.tasks import dedupe
from geoexport.tasks.estimate import Estimate, estimate
from geoexport.tasks.ports import Catalog, Geometry, Store, TaskStore, Workflow
from geoexport.tasks.prepare import Limits, Prepared, bounded, prepare
from geoexport.tasks.repository import ClaimTaken, ClientQuota
from geoexport.tasks.views import TaskViews, utcnow

__all__ = ["CreateOutcome", "DryRun", "Limits", "TaskService"]

MAX_CREATE_ATTEMPTS = 10
LIFECYCLE_SLACK = timedelta(hours=20)  # < the 1 day the lifecycle rule adds to the retention


class DryRun(BaseModel):
    dryRun: bool = True
    catalogRecordID: UUID
    tilesPerZoom: dict[int, int]
    tiles: int
    estimatedSize: int
    estimatedTime: float
    workItems: int = Field(
        description="Work items a big GeoPackage is rendered in, side by side (0: one Package invocation)"
    )
    fitsInStorage: bool
    freeBytes: int
    maxTiles: int = Field(description="the most tiles one export may have (this deployment's limit)")
    maxBytes: int = Field(description="the most bytes one export may have (this deployment's limit)")


@dataclass(frozen=True)
class CreateOutcome:
    task: ExportTask
    created: bool  # False: an existing task answers the request (dedupe)


class TaskService(TaskViews):
    """Create and dry-run on top of the read side (a create answers with the task's view)."""

    def __init__(
        self,
        tasks: TaskStore,
        catalog: Catalog,
        workflow: Workflow,
        store: Store,
        limits: Limits,
        geometry: Geometry,
        secrets: Callable[[str], str | None] = lambda owner: None,
        clock: Callable[[], datetime] = utcnow,
        new_id: Callable[[], UUID] = uuid4,
        quotas: Callable[[str], ClientQuota] | None = None,
    ) -> None:
        super().__init__(tasks, store, limits, secrets, clock)
        self._tasks: TaskStore = tasks
        self._catalog = catalog
        self._workflow = workflow
        self._geometry = geometry
        self._new_id = new_id
        self._quotas = quotas or self._default_quota

    def _default_quota(self, owner: str) -> ClientQuota:
        return ClientQuota(
            self._limits.client_storage_quota_bytes, self._limits.client_max_concurrent_exports
        )

    def prepare(self, request: CreateExportTaskRequest) -> Prepared:
        return prepare(request, self._catalog, self._geometry, self._limits)

    def dry_run(self, request: CreateExportTaskRequest) -> DryRun:
        prepared = self.prepare(request)
        record = prepared.record
        if record is None:
            raise UnprocessableRequest(
                "dry runs estimate raster tiles", [FieldProblem("domain", "dry runs are for RASTER exports")]
            )
        result = bounded(
            estimate(prepared.request, record, self._limits.fanout), self._limits, prepared.request
        )
        free = self.free_bytes()
        return DryRun(
            catalogRecordID=record.id,
            tilesPerZoom=result.tilesPerZoom,
            tiles=result.tiles,
            estimatedSize=result.bytes,
            estimatedTime=result.seconds,
            workItems=result.workItems,
            fitsInStorage=result.bytes <= free,
            freeBytes=free,
            maxTiles=self._limits.max_export_tiles,
            maxBytes=self._limits.max_export_bytes,
        )

    def create(
        self,
        request: CreateExportTaskRequest,
        owner: str = "anonymous",
        api: Api = Api.V2,
        definition: UUID | None = None,
        task_id: UUID | None = None,
    ) -> CreateOutcome:
        """A new task, or the live identical one. A run of an export definition (``definition``) is always
        a new task: a scheduled re-export must run, and its transports deliver again; it takes over the
        dedupe claim, so later identical requests are answered by the newest run. ``task_id`` (a run's
        own, derived from its key) makes a retried run find the task it made instead of making another."""
        prepared = self.prepare(request)
        request, record, notes = prepared.request, prepared.record, prepared.notes
        if record is None:
            return self._create_vector(request, owner, api, notes, definition, task_id)
        fingerprint = dedupe.fingerprint(request, f"{record.productVersion}|{owner}")
        scope = dedupe.scope(request, f"{record.productVersion}|{owner}")
        result: Estimate | None = None
        for _ in range(MAX_CREATE_ATTEMPTS):
            claimed = self._tasks.claimed_task(fingerprint)
            existing = self._tasks.find(claimed) if claimed and definition is None else None
            if existing is not None and self._alive(existing):
                answer = self._answer_duplicate(existing, request, DedupeRule.EXACT)
                if answer is not None:
                    return answer
                continue
            if request.parameters.get("dedupe") == DedupeRule.CONTAINMENT and definition is None:
                for candidate in self._tasks.in_scope(scope):
                    if self._alive(candidate) and dedupe.contained(
                        request.roi_features(),
                        candidate.roi.features,
                    ):
                        answer = self._answer_duplicate(candidate, request, DedupeRule.CONTAINMENT)
                        if answer is not None:
                            return answer
            result = result or bounded(estimate(request, record, self._limits.fanout), self._limits, request)
            task = self._new_task(
                request,
                owner,
                api,
                notes,
                fingerprint=fingerprint,
                scope=scope,
                estimatedSize=result.bytes,
                estimatedTime=result.seconds,
                reservedBytes=result.bytes,
                definitionId=definition,
                task_id=task_id,
            )
            try:
                self._tasks.create(
                    task,
                    quota=self._limits.storage_quota_bytes,
                    replace_claim_of=claimed,
                    client_quota=self._quotas(owner),
                )
            except ClaimTaken:
                continue  # an identical request won the race: answer with its task
            self._start(task)
            return CreateOutcome(self.view(self._tasks.get(task.id), with_deliveries=False), created=True)
        raise ServiceUnavailable("too many identical requests at once; try again")

    def _new_task(
        self,
        request: CreateExportTaskRequest,
        owner: str,
        api: Api,
        notes: list[str],
        task_id: UUID | None = None,
        **extra: Any,
    ) -> TaskRecord:
        now = self._clock()
        transports = {
            str(index): TransportStatus(
                index=index,
                type=transport.type,
                target=transport.target(),
                state=TransportState.DONE
                if transport.type is TransportKind.DOWNLOAD
                else TransportState.PENDING,
            )
            for index, transport in enumerate(request.transports)
        }
        return TaskRecord(
            id=task_id or self._new_id(),
            transportStates=transports,
            status=TaskStatus.PENDING,
            progress=0,
            request=request,
            createdAt=now,
            updatedAt=now,
            owner=owner,
            api=api,
            notes=notes,
            **extra,
        )

    def _create_vector(
        self,
        request: CreateExportTaskRequest,
        owner: str,
        api: Api,
        notes: list[str],
        definition: UUID | None,
        task_id: UUID | None,
    ) -> CreateOutcome:
        """Features change any time, so a vector export is never answered by an earlier one (no dedupe);
        its size is known only once written (nothing reserved ahead, the quota counts it on upload)."""
        task = self._new_task(request, owner, api, notes, task_id, definitionId=definition)
        self._tasks.create(
            task,
            quota=self._limits.storage_quota_bytes,
            replace_claim_of=None,
            client_quota=self._quotas(owner),
        )
        self._start(task)
        return CreateOutcome(self.view(self._tasks.get(task.id), with_deliveries=False), created=True)

    def _start(self, task: TaskRecord) -> None:
        try:
            execution = self._workflow.start(task.id)
        except ServiceUnavailable as error:
            # Accepted but not startable: end it honestly (and free its reservation) rather than hang.
            self._tasks.advance(
                task.id,
                TaskStatus.FAILED,
                self._clock(),
                ledger=(-task.reservedBytes, 0),
                errorReason=error.message,
                finishedAt=self._clock(),
            )
            raise
        self._tasks.set_execution(task.id, execution)

    def _alive(self, task: TaskRecord) -> bool:
        if task.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS):
            return True
        return (
            task.status is TaskStatus.COMPLETED
            and task.expiredAt is not None
            and task.expiredAt > self._clock()
        )

    def _answer_duplicate(
        self, task: TaskRecord, request: CreateExportTaskRequest, rule: DedupeRule
    ) -> CreateOutcome | None:
        """Answer with an existing task; None when it changed under us (look again)."""
        match = DedupeMatch(matchedTaskId=task.id, rule=rule)
        try:
            if task.status is TaskStatus.COMPLETED:
                extended = self._clock() + timedelta(days=self._limits.retention_days)
                # Cache hits keep an export alive, but not for ever: no later than max_lifetime_days
                # after it finished (then the next identical request makes a fresh one).
                finished = task.finishedAt or task.createdAt
                extended = min(extended, finished + timedelta(days=self._limits.max_lifetime_days))
                if task.expiredAt is None or extended > task.expiredAt:
                    for artifact in task.artifacts:
                        # The bucket deletes objects retention + 1 days after they were written; one
                        # older than LIFECYCLE_SLACK would go before the new expiredAt: rewrite it.
                        self._store.touch(artifact.key, older_than=LIFECYCLE_SLACK)
                    if not self._tasks.extend_expiry(task.id, extended):
                        # A concurrent duplicate extended it first (fine), unless it is no longer alive.
                        current = self._tasks.get(task.id)
                        if not (current.status is TaskStatus.COMPLETED and self._alive(current)):
                            return None
            else:
                self._tasks.merge_webhooks(task.id, request.webhooks)
        except StaleTransition:
            return None
        view = self.view(self._tasks.get(task.id), with_deliveries=False)
        view = view.model_copy(update={"isDuplicated": True, "dedupe": match})
        return CreateOutcome(view, created=False)

    # -- abort -------------------------------------------------------------------------------------------
