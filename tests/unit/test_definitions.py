"""Export definitions' pure parts: schedule expressions as Scheduler checks them, the local Scheduler's
times, what the run queue carries, which feature changes concern a definition, and a run's recovery after
a crash between its claim and its task (the service with in-memory stand-ins for its ports)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from geoexport.definitions import triggers
from geoexport.definitions.models import (
    DefinitionInput,
    DefinitionRun,
    ExportDefinition,
    RunCause,
    RunOutcome,
    schedule_problem,
)
from geoexport.definitions.service import DefinitionService
from geoexport.errors import UnprocessableRequest
from geoexport.features.journal import Change, ChangeKind, latest_per_feature
from geoexport.models.tasks import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.tasks.service import CreateOutcome
from geoexport_local.schedules import cron_expression, fill, next_time

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
RECORD = "4f65986c-0205-5599-b079-9fe14db4d1bd"


@pytest.mark.parametrize(
    ("expression", "fine"),
    [
        ("rate(1 minute)", True),
        ("rate(5 minutes)", True),
        ("rate(1 minutes)", False),
        ("rate(2 hour)", False),
        ("rate(0 days)", False),
        ("cron(0 6 * * ? *)", True),
        ("cron(0/15 8-17 ? * MON-FRI *)", True),
        ("cron(0 6 * * * *)", False),  # '?' in neither day field
        ("cron(0 6 ? * ? *)", False),  # in both
        ("cron(0 6 * * ?)", False),  # five fields
        ("at(2026-12-01T00:00:00)", False),  # one-time schedules are the service's own
        ("every day", False),
    ],
)
def test_schedule_expressions_are_checked_as_scheduler_does(expression: str, fine: bool) -> None:
    assert (schedule_problem(expression) is None) is fine


def test_a_definition_refuses_what_could_never_run() -> None:
    request = {"catalogRecordID": RECORD, "domain": "RASTER"}
    with pytest.raises(ValidationError, match="schedules\\[1\\]"):
        DefinitionInput.model_validate(
            {"name": "x", "request": request, "schedules": ["rate(1 day)", "daily"]}
        )
    with pytest.raises(ValidationError, match="VECTOR"):
        DefinitionInput.model_validate({"name": "x", "request": request, "type": "export_incremental"})
    with pytest.raises(ValidationError, match="top level"):
        DefinitionInput.model_validate(
            {"name": "x", "request": {**request, "transports": [{"type": "download"}]}}
        )
    vector = DefinitionInput.model_validate(
        {"name": "x", "request": {"domain": "VECTOR"}, "trigger": "on-source-change"}
    )
    assert vector.source_key("alice") == "features#alice"
    raster = DefinitionInput.model_validate({"name": "x", "request": request, "trigger": "on-source-change"})
    assert raster.source_key("alice") == RECORD


def test_the_local_scheduler_fires_as_scheduler_would() -> None:
    created = T0 + timedelta(seconds=7)
    assert next_time("rate(1 minute)", created, created) == created + timedelta(minutes=1)
    assert next_time("rate(1 minute)", created, created + timedelta(minutes=1)) == created + timedelta(
        minutes=2
    )
    assert next_time("rate(2 hours)", created, T0 + timedelta(hours=5)) == created + timedelta(hours=6)
    # AWS cron: day-of-week 1-7 is SUN-SAT (croniter's 0-6), '?' any, the year dropped.
    assert cron_expression("cron(0 6 ? * 2-6 *)") == "0 6 * * 1-5"
    assert cron_expression("cron(30 8 1 * ? 2027)") == "30 8 1 * *"
    assert next_time("cron(0 6 ? * 2 *)", created, T0) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # a Monday
    assert next_time("at(2026-11-28T06:05:00)", created, T0) == T0 + timedelta(minutes=5)
    assert next_time("at(2026-11-28T06:05:00)", created, T0 + timedelta(minutes=5)) is None  # once
    body = fill('{"t": "<aws.scheduler.scheduled-time>", "a": "<aws.scheduler.schedule-arn>"}', "arn:x", T0)
    assert json.loads(body) == {"t": "2026-11-28T06:00:00Z", "a": "arn:x"}


def test_the_run_queue_carries_firings_and_source_changes() -> None:
    definition = uuid4()
    fired = triggers.parse(
        json.dumps(
            {"definitionId": str(definition), "cause": "schedule", "scheduledTime": "2026-11-28T06:00:00Z"}
        )
    )
    assert fired == triggers.RunDue(definition, RunCause.SCHEDULE, T0)
    record = triggers.parse(
        json.dumps({"detail-type": "CatalogRecordUpdated", "detail": {"recordId": RECORD}})
    )
    assert record == triggers.SourceChanged(RECORD)
    features = triggers.parse(
        json.dumps(
            {
                "detail-type": "FeaturesChanged",
                "detail": {"owner": "alice", "count": 2, "models": ["roads"], "bbox": [1, 2, 3, 4]},
            }
        )
    )
    assert features == triggers.SourceChanged("features#alice", [1.0, 2.0, 3.0, 4.0], ["roads"])
    for junk in ("[]", '{"detail-type": "Other"}'):
        with pytest.raises(ValueError):
            triggers.parse(junk)


def test_a_features_last_change_in_the_window_decides() -> None:
    def change(base: str, kind: ChangeKind, minutes: int) -> Change:
        return Change(
            base=base, urn=base, featureId=base, model="m", entityType="DATA", version=1, kind=kind,
            at=T0 + timedelta(minutes=minutes),
        )  # fmt: skip

    last = latest_per_feature(
        [
            change("a", ChangeKind.DELETED, 3),
            change("a", ChangeKind.CREATED, 1),
            change("b", ChangeKind.UPDATED, 2),
        ]
    )
    assert {b: c.kind for b, c in last.items()} == {"a": ChangeKind.DELETED, "b": ChangeKind.UPDATED}


# -- the service, with its ports in memory ----------------------------------------------------------------
class Memory:
    """The definitions table and the task service as far as runs use them."""

    def __init__(self) -> None:
        self.definitions: dict[UUID, ExportDefinition] = {}
        self.runs: dict[tuple[UUID, str], DefinitionRun] = {}
        self.tasks: dict[UUID, TaskRecord] = {}
        self.created: list[UUID] = []
        self.fail_next_create: Exception | None = None
        self.coalesced: list[UUID] = []

    # Definitions
    def find(self, definition_id: Any) -> Any:
        if isinstance(definition_id, UUID) and definition_id in self.tasks:
            return self.tasks[definition_id]
        return self.definitions.get(UUID(str(definition_id)))

    def claim_run(self, run: DefinitionRun) -> DefinitionRun | None:
        key = (run.definitionId, run.runId)
        if key in self.runs:
            return None
        self.runs[key] = run
        return run

    def save_run(self, run: DefinitionRun) -> None:
        self.runs[(run.definitionId, run.runId)] = run

    def get_run(self, definition_id: Any, run_id: str) -> DefinitionRun | None:
        return self.runs.get((UUID(str(definition_id)), run_id))

    def subscribed(self, source: str) -> list[UUID]:
        return [d.id for d in self.definitions.values() if d.source_key(d.owner) == source]

    # Schedules
    def change_handled(self, definition_id: UUID) -> None:
        pass

    def coalesce(self, definition_id: UUID, at: datetime) -> bool:
        if definition_id in self.coalesced:
            return False
        self.coalesced.append(definition_id)
        return True

    # Tasks
    def create(
        self,
        request: CreateExportTaskRequest,
        owner: str = "anonymous",
        *,
        definition: UUID | None = None,
        task_id: UUID | None = None,
    ) -> CreateOutcome:
        if self.fail_next_create is not None:
            error, self.fail_next_create = self.fail_next_create, None
            raise error
        assert task_id is not None
        now = datetime.now(UTC)
        self.tasks[task_id] = TaskRecord(
            id=task_id, status=TaskStatus.PENDING, progress=0, request=request, createdAt=now, updatedAt=now,
            owner=owner, definitionId=definition,
        )  # fmt: skip
        self.created.append(task_id)
        return CreateOutcome(task=type("View", (), {"id": task_id})(), created=True)  # type: ignore[arg-type]


def service(memory: Memory, owner_enabled: bool = True) -> DefinitionService:
    class Tasks:
        def prepare(self, request: CreateExportTaskRequest) -> None:
            return None

        create = memory.create

        def find(self, task_id: Any) -> TaskRecord | None:
            return memory.tasks.get(UUID(str(task_id)))

        def presign(self, task: TaskRecord, key: str, name: str) -> str:
            return f"https://example/{key}"

    return DefinitionService(
        memory,  # type: ignore[arg-type]
        memory,  # type: ignore[arg-type]
        Tasks(),  # type: ignore[arg-type]
        owner_enabled=lambda owner: owner_enabled,
        clock=lambda: T0,
        change_window=timedelta(seconds=5),
    )


def definition(memory: Memory, **extra: Any) -> ExportDefinition:
    saved = ExportDefinition.model_validate(
        {
            "name": "d",
            "request": {"catalogRecordID": RECORD, "domain": "RASTER"},
            "id": uuid4(),
            "owner": "alice",
            "createdAt": T0,
            "updatedAt": T0,
            **extra,
        }
    )
    memory.definitions[saved.id] = saved
    return saved


def test_a_trigger_delivered_twice_makes_one_run_and_a_crash_is_finished_with_the_same_task() -> None:
    memory = Memory()
    saved = definition(memory)
    runs = service(memory)
    first = runs.run(saved.id, RunCause.SCHEDULE, T0)
    assert first is not None and first.outcome is RunOutcome.STARTED and first.taskId in memory.tasks
    assert runs.run(saved.id, RunCause.SCHEDULE, T0) == first and len(memory.created) == 1  # delivered twice

    # A crash after the claim and the task, before the run was saved: the retry finds the task it made.
    later = T0 + timedelta(minutes=1)
    memory.fail_next_create = UnprocessableRequest("unused")
    crashed = DefinitionRun(
        definitionId=saved.id, runId=f"{later.isoformat()}#schedule", at=later, cause=RunCause.SCHEDULE,
        outcome=RunOutcome.STARTING, statusCode=0,
    )  # fmt: skip
    memory.claim_run(crashed)
    memory.fail_next_create = None
    first_try = runs.run(saved.id, RunCause.SCHEDULE, later)  # nothing was made yet: it is made now
    assert first_try is not None and first_try.outcome is RunOutcome.STARTED
    made = first_try.taskId
    memory.runs[(saved.id, crashed.runId)] = crashed  # as if that save had been lost
    again = runs.run(saved.id, RunCause.SCHEDULE, later)
    assert again is not None and again.taskId == made and len(memory.created) == 2  # no third task


def test_refused_runs_say_why() -> None:
    memory = Memory()
    saved = definition(memory)
    refused = service(memory, owner_enabled=False).run(saved.id, RunCause.SCHEDULE, T0)
    assert refused is not None and refused.outcome is RunOutcome.REFUSED and refused.statusCode == 403
    assert "disabled" in (refused.reason or "") and memory.created == []
    memory.fail_next_create = UnprocessableRequest("the ROI cannot be exported from this record")
    no_longer = service(memory).run(saved.id, RunCause.MANUAL)
    assert no_longer is not None and no_longer.statusCode == 422 and "ROI" in (no_longer.reason or "")
    assert service(memory).run(uuid4(), RunCause.SCHEDULE, T0) is None  # deleted meanwhile


def test_feature_changes_wake_only_the_definitions_they_concern() -> None:
    memory = Memory()
    area = {"type": "Polygon", "coordinates": [[[20, 60], [22, 60], [22, 61], [20, 61], [20, 60]]]}
    follows = definition(
        memory,
        request={"domain": "VECTOR", "ROI": area, "parameters": {"model": "roads"}},
        trigger="on-source-change",
    )
    runs = service(memory)
    assert runs.source_changed("features#alice", [0, 0, 1, 1], ["roads"]) == []  # elsewhere
    assert runs.source_changed("features#alice", [21, 60, 21, 60], ["sites"]) == []  # another model
    assert runs.source_changed("features#bob", [21, 60, 21, 60], ["roads"]) == []  # another owner
    assert runs.source_changed("features#alice", [21, 60, 21, 60], ["roads"]) == [follows.id]
    assert runs.source_changed("features#alice", [21, 60, 21, 60], ["roads"]) == []  # one run waits already


def test_a_definition_that_could_never_run_is_refused_with_its_fields() -> None:
    from geoexport.errors import FieldProblem

    memory = Memory()
    runs = service(memory)

    def refuse(request: CreateExportTaskRequest) -> None:
        raise UnprocessableRequest("outside", [FieldProblem("ROI.features[0]", "outside the record")])

    runs._tasks.prepare = refuse  # type: ignore[method-assign]
    body = DefinitionInput.model_validate(
        {"name": "x", "request": {"catalogRecordID": RECORD, "domain": "RASTER"}}
    )
    with pytest.raises(UnprocessableRequest) as refused:
        runs.create(body, "alice")
    assert [p.field for p in refused.value.problems] == ["request.ROI.features[0]"]
    assert memory.definitions == {}
