"""Export definitions: saved exports that run on demand, on schedules and on source changes.

A run goes through the same TaskService as every other door (validation, quotas, ownership) and is always a
new task linked to its definition (``definitionId``). It acts with the rights of the definition's owner as
they are when it runs: a disabled owner's run is refused with the reason, and the refusal is kept among the
runs. The stable link (``GET /export-definitions/{id}/latest``) answers with the newest run that completed
and has not expired, so its URL stays the same across runs (easydb: "after a scheduled update of the export,
the URL does not change").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4, uuid5

from geoexport.api.http import status_for
from geoexport.definitions.models import (
    DefinitionInput,
    DefinitionRun,
    DefinitionType,
    ExportDefinition,
    LatestArtifact,
    RunCause,
    RunOutcome,
)
from geoexport.errors import (
    FieldProblem,
    GeoexportError,
    NotFound,
    ServiceUnavailable,
    TransientError,
    UnprocessableRequest,
)
from geoexport.models.tasks import ArtifactType, CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.tasks.service import CreateOutcome

#: Namespace of the task ids of runs (uuid5 of the definition and the run's key).
RUN_TASKS = UUID("6f1d1b9e-3c4a-5e2b-9d7f-2a8c4e6b0d13")
#: Runs looked through for the newest successful one (stable link, incremental window).
RECENT_RUNS = 100
_DATA = (ArtifactType.BUNDLE, ArtifactType.GPKG, ArtifactType.GTIFF)


class Definitions(Protocol):
    def put(self, definition: ExportDefinition, new: bool) -> None: ...
    def find(self, definition_id: UUID | str) -> ExportDefinition | None: ...
    def delete(self, definition_id: UUID | str) -> None: ...
    def page(
        self, owner: str, limit: int, token: str | None
    ) -> tuple[list[ExportDefinition], str | None]: ...
    def subscribed(self, source: str) -> list[UUID]: ...
    def claim_run(self, run: DefinitionRun) -> DefinitionRun | None: ...
    def save_run(self, run: DefinitionRun) -> None: ...
    def get_run(self, definition_id: UUID | str, run_id: str) -> DefinitionRun | None: ...
    def runs(
        self, definition_id: UUID | str, limit: int, token: str | None = None
    ) -> tuple[list[DefinitionRun], str | None]: ...


class Schedules(Protocol):
    def sync(self, definition: ExportDefinition) -> None: ...
    def remove(self, definition_id: UUID) -> None: ...
    def coalesce(self, definition_id: UUID, at: datetime) -> bool: ...
    def change_handled(self, definition_id: UUID) -> None: ...


class Tasks(Protocol):
    def prepare(self, request: CreateExportTaskRequest) -> Any: ...
    def create(
        self,
        request: CreateExportTaskRequest,
        owner: str = ...,
        *,
        definition: UUID | None = ...,
        task_id: UUID | None = ...,
    ) -> CreateOutcome: ...
    def find(self, task_id: UUID | str) -> TaskRecord | None: ...
    def presign(self, task: TaskRecord, key: str, name: str) -> str | None: ...


class DefinitionService:
    def __init__(
        self,
        definitions: Definitions,
        schedules: Schedules,
        tasks: Tasks,
        owner_enabled: Callable[[str], bool],
        clock: Callable[[], datetime],
        change_window: timedelta,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._definitions = definitions
        self._schedules = schedules
        self._tasks = tasks
        self._owner_enabled = owner_enabled
        self._clock = clock
        self._window = change_window
        self._new_id = new_id

    # -- definitions -----------------------------------------------------------------------------------------
    def owned(self, definition_id: UUID | str, owner: str) -> ExportDefinition:
        definition = self._definitions.find(definition_id)
        if definition is None or definition.owner != owner:  # another's does not exist for this caller
            raise NotFound(f"export definition {definition_id} does not exist")
        return definition

    def create(self, body: DefinitionInput, owner: str) -> ExportDefinition:
        """Checked as a task would be (record, ROI, limits) before it is saved: a definition that could
        never run is refused now, with the fields, not at its first scheduled run."""
        _checked(self._tasks, body)
        now = self._clock()
        definition = ExportDefinition(
            **body.model_dump(), id=self._new_id(), owner=owner, createdAt=now, updatedAt=now
        )
        self._definitions.put(definition, new=True)
        self._sync(definition)
        return definition

    def _sync(self, definition: ExportDefinition) -> None:
        try:
            self._schedules.sync(definition)
        except GeoexportError as error:
            if isinstance(error, TransientError | ServiceUnavailable):
                raise
            raise UnprocessableRequest(
                "the schedules were refused", [FieldProblem("schedules", error.message)]
            ) from error

    def replace(self, definition_id: UUID, body: DefinitionInput, owner: str) -> ExportDefinition:
        current = self.owned(definition_id, owner)
        _checked(self._tasks, body)
        definition = ExportDefinition(
            **body.model_dump(),
            id=current.id,
            owner=owner,
            createdAt=current.createdAt,
            updatedAt=self._clock(),
        )
        self._definitions.put(definition, new=False)
        self._sync(definition)
        return definition

    def delete(self, definition_id: UUID, owner: str) -> None:
        """Its schedules and runs go; the runs' tasks stay (they are ordinary tasks)."""
        self.owned(definition_id, owner)
        self._schedules.remove(definition_id)
        self._definitions.delete(definition_id)

    def page(self, owner: str, limit: int, token: str | None) -> tuple[list[ExportDefinition], str | None]:
        return self._definitions.page(owner, limit, token)

    # -- runs ------------------------------------------------------------------------------------------------
    def run(
        self, definition_id: UUID | str, cause: RunCause, due: datetime | None = None
    ) -> DefinitionRun | None:
        """Run once (None: the definition is gone). ``due`` (a schedule's time) makes the run's key, so the
        same trigger delivered twice makes one run; a manual run is always new. The run's task id derives
        from its key: a trigger retried after a crash finishes the run it began, with the same task."""
        definition = self._definitions.find(definition_id)
        if definition is None:
            return None
        if cause is RunCause.SOURCE_CHANGE:
            self._schedules.change_handled(definition.id)
        at = due or self._clock()
        suffix = str(self._new_id())[:8] if cause is RunCause.MANUAL else cause.value
        run = DefinitionRun(
            definitionId=definition.id,
            runId=f"{at.isoformat()}#{suffix}",
            at=at,
            cause=cause,
            outcome=RunOutcome.STARTING,
            statusCode=0,
        )
        if self._definitions.claim_run(run) is None:
            existing = self._definitions.get_run(definition.id, run.runId)
            if existing is not None and existing.outcome is not RunOutcome.STARTING:
                return existing  # delivered again: the first delivery's run stands
        task_id = uuid5(RUN_TASKS, f"{definition.id}#{run.runId}")
        made = self._tasks.find(task_id)
        if made is not None:  # begun before a crash: the task is there
            run = run.model_copy(update={"outcome": RunOutcome.STARTED, "taskId": made.id, "statusCode": 201})
        else:
            try:
                run = self._start(definition, run, task_id)
            except (TransientError, ServiceUnavailable) as error:
                if cause is RunCause.MANUAL:  # no trigger retries it: say so, the caller gets the 503
                    failed = {"outcome": RunOutcome.REFUSED, "statusCode": 503, "reason": error.message}
                    self._definitions.save_run(run.model_copy(update=failed))
                raise  # a schedule's or a source change's: its message is delivered again
        self._definitions.save_run(run)
        return run

    def _start(self, definition: ExportDefinition, run: DefinitionRun, task_id: UUID) -> DefinitionRun:
        """The run's task, or why there is none (a passing fault is raised: the trigger is retried)."""
        if not definition.enabled and run.cause is not RunCause.MANUAL:
            return run.model_copy(
                update={
                    "outcome": RunOutcome.REFUSED,
                    "statusCode": 409,
                    "reason": "the definition is disabled",
                }
            )
        if not self._owner_enabled(definition.owner):
            return run.model_copy(
                update={
                    "outcome": RunOutcome.REFUSED,
                    "statusCode": 403,
                    "reason": f"the definition's owner {definition.owner} is disabled or gone: runs act with "
                    "its rights, so nothing was exported",
                }
            )
        parameters: dict[str, Any] = {}
        since = None
        if definition.type is DefinitionType.INCREMENTAL:
            last = self._last_success(definition.id)
            if last is not None:  # windows meet: [last success's time, this run's time)
                since = last.at
                parameters["changedSince"] = since.isoformat()
                parameters["changedUntil"] = run.at.isoformat()
        try:
            outcome = self._tasks.create(
                definition.run_request(parameters),
                definition.owner,
                definition=definition.id,
                task_id=task_id,
            )
        except (TransientError, ServiceUnavailable):
            raise
        except GeoexportError as error:
            problems = "; ".join(f"{p.field}: {p.reason}" for p in error.problems)
            reason = f"{error.message} ({problems})" if problems else error.message
            return run.model_copy(
                update={"outcome": RunOutcome.REFUSED, "statusCode": status_for(error), "reason": reason}
            )
        return run.model_copy(
            update={
                "outcome": RunOutcome.STARTED,
                "taskId": outcome.task.id,
                "statusCode": 201,
                "reason": None,
                "changedSince": since,
            }
        )

    def runs(
        self, definition_id: UUID, owner: str, limit: int, token: str | None
    ) -> tuple[list[DefinitionRun], str | None]:
        """Newest first, each with its task's status now."""
        self.owned(definition_id, owner)
        runs, next_token = self._definitions.runs(definition_id, limit, token)
        shown = []
        for run in runs:
            task = self._tasks.find(run.taskId) if run.taskId else None
            shown.append(run.model_copy(update={"taskStatus": task.status.value if task else None}))
        return shown, next_token

    def _successes(self, definition_id: UUID) -> list[tuple[DefinitionRun, TaskRecord]]:
        runs, _ = self._definitions.runs(definition_id, RECENT_RUNS)
        found = []
        for run in runs:
            task = self._tasks.find(run.taskId) if run.taskId else None
            if task is not None and task.status is TaskStatus.COMPLETED:
                found.append((run, task))
        return found

    def _last_success(self, definition_id: UUID) -> DefinitionRun | None:
        successes = self._successes(definition_id)
        return successes[0][0] if successes else None

    def latest(self, definition_id: UUID, owner: str, artifact: str | None) -> LatestArtifact:
        """The stable link: the newest completed run's file (the data file unless ``artifact`` names one)."""
        self.owned(definition_id, owner)
        for run, task in self._successes(definition_id):
            if task.expiredAt is not None and task.expiredAt <= self._clock():
                continue
            chosen = (
                [a for a in task.artifacts if a.name == artifact]
                if artifact
                else [a for a in task.artifacts if a.type in _DATA][:1]
            )
            if not chosen:
                raise NotFound(f"the latest run has no artifact named {artifact}")
            url = self._tasks.presign(task, chosen[0].key, chosen[0].name)
            if url is None:
                continue
            return LatestArtifact(
                definitionId=definition_id,
                taskId=task.id,
                runAt=run.at,
                name=chosen[0].name,
                size=chosen[0].size,
                sha256=chosen[0].sha256,
                url=url,
            )
        raise NotFound(f"export definition {definition_id} has no completed run to download yet")

    # -- source changes --------------------------------------------------------------------------------------
    def source_changed(
        self, source: str, bbox: list[float] | None = None, models: list[str] | None = None
    ) -> list[UUID]:
        """Schedule a run of every definition following ``source`` (a record id, or ``features#<owner>``
        with the changes' bbox and models: a definition whose AoI or model they miss is left alone),
        ``change_window`` from now; a run already waiting covers this change too. Returns those scheduled."""
        scheduled = []
        for definition_id in self._definitions.subscribed(source):
            if bbox is not None or models is not None:
                definition = self._definitions.find(definition_id)
                if definition is None or not _meets(definition, bbox, models):
                    continue
            if self._schedules.coalesce(definition_id, self._clock() + self._window):
                scheduled.append(definition_id)
        return scheduled


def _checked(tasks: Tasks, body: DefinitionInput) -> None:
    """The request checked as its tasks' will be; problems name their field inside the definition."""
    try:
        tasks.prepare(body.request)
    except GeoexportError as error:
        if isinstance(error, TransientError | ServiceUnavailable):
            raise
        error.problems = [FieldProblem(f"request.{p.field}", p.reason) for p in error.problems]
        raise


def _meets(definition: ExportDefinition, bbox: list[float] | None, models: list[str] | None) -> bool:
    """Whether changed features (their bbox and models) may concern a VECTOR definition."""
    model = definition.request.parameters.get("model")
    if model and models is not None and model not in models:
        return False
    boxes = _roi_boxes(definition)
    if bbox is None or boxes is None:
        return True
    x0, y0, x1, y1 = bbox
    return any(fx0 <= x1 and x0 <= fx1 and fy0 <= y1 and y0 <= fy1 for fx0, fy0, fx1, fy1 in boxes)


def _roi_boxes(definition: ExportDefinition) -> list[tuple[float, float, float, float]] | None:
    """The bounds of each part of a GeoJSON AoI (None: the whole world, or a country or WKT AoI whose
    shape is known once prepared: the definition then runs rather than miss a change)."""
    from pydantic import BaseModel

    from geoexport.features.spatial import bounds_of

    roi = definition.request.ROI
    if not isinstance(roi, BaseModel):
        return None
    document = roi.model_dump(mode="json", exclude_none=True)
    if document.get("type") == "FeatureCollection":
        return [bounds_of(f["geometry"]) for f in document["features"]]
    if document.get("type") == "Feature":
        return [bounds_of(document["geometry"])]
    if document.get("type") in ("Polygon", "MultiPolygon"):
        return [bounds_of(document)]
    return None
