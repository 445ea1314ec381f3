"""Pause and resume (geoexport.tasks.pause, geoexport.pipeline.pause) with the task store and workflow in
memory: which statuses may move, when a new execution starts, and where the pipeline stops."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from geoexport.errors import Conflict, NotFound, StaleTransition, TaskPaused
from geoexport.models.tasks import CreateExportTaskRequest, OperatorPause, PausedBy, TaskRecord, TaskStatus
from geoexport.pipeline.pause import boundary
from geoexport.tasks.pause import OperatorPauses, PauseService
from geoexport.tasks.prepare import Limits
from geoexport.tasks.transitions import can_move
from geoexport.tasks.workflow import ExecutionState, continue_count, resume_count

NOW = datetime(2026, 11, 28, tzinfo=UTC)


class Tasks:
    def __init__(self) -> None:
        self.tasks: dict[UUID, TaskRecord] = {}
        self.switch = OperatorPause()

    def add(self, status: TaskStatus, execution: str | None = None) -> TaskRecord:
        square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
        roi = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": square}]}
        request = CreateExportTaskRequest.model_validate({"domain": "VECTOR", "ROI": roi})
        task = TaskRecord(
            id=uuid4(), status=status, progress=40, request=request, createdAt=NOW, updatedAt=NOW,
            owner="alice", executionArn=execution,
        )  # fmt: skip
        self.tasks[task.id] = task
        return task

    def get(self, task_id: Any) -> TaskRecord:
        if UUID(str(task_id)) not in self.tasks:
            raise NotFound("no task")
        return self.tasks[UUID(str(task_id))]

    def find(self, task_id: Any) -> TaskRecord | None:
        return self.tasks.get(UUID(str(task_id)))

    def advance(self, task_id: Any, status: TaskStatus, now: datetime, **fields: Any) -> None:
        task = self.get(task_id)
        if not can_move(task.status, status):
            raise StaleTransition(f"{task.status} -> {status}")
        self.tasks[task.id] = task.model_copy(update={"status": status, **fields})

    def operator_pause(self) -> OperatorPause:
        return self.switch

    def set_operator_pause(self, state: OperatorPause) -> None:
        self.switch = state

    def paused_by_operator(self, limit: int = 100) -> list[TaskRecord]:
        paused = [t for t in self.tasks.values() if t.status is TaskStatus.PAUSED]
        return [t for t in paused if t.pausedBy is PausedBy.OPERATOR][:limit]

    def set_execution(self, task_id: Any, execution_arn: str) -> None:
        task = self.get(task_id)
        self.tasks[task.id] = task.model_copy(update={"executionArn": execution_arn})


class Workflow:
    def __init__(self, state: ExecutionState) -> None:
        self.state_now = state
        self.started: list[str] = []

    def start(self, task_id: Any, resume: int = 0, continued: int = 0) -> str:
        name = (
            f"{task_id}"
            + (f"-continue-{continued}" if continued else "")
            + (f"-resume-{resume}" if resume else "")
        )
        self.started.append(name)
        return f"arn:execution:{name}"

    def state(self, execution_arn: str) -> ExecutionState:
        return self.state_now


class Store:
    def presign_get(self, key: str, expires_in: int, filename: str) -> str:
        return key

    def touch(self, key: str, older_than: Any) -> None:
        pass


def service(tasks: Tasks, workflow: Workflow) -> PauseService:
    limits = Limits(download_url_ttl_seconds=600, retention_days=1, storage_quota_bytes=10**9)
    return PauseService(tasks, workflow, Store(), limits, clock=lambda: NOW)  # type: ignore[arg-type]


def test_pause_then_resume_in_a_new_execution_or_the_running_one() -> None:
    tasks = Tasks()
    running = tasks.add(TaskStatus.IN_PROGRESS, "arn:execution:t")
    stopped = Workflow(ExecutionState.PAUSED)
    pauses = service(tasks, stopped)
    assert pauses.pause(running.id, "alice").status is TaskStatus.PAUSED
    with pytest.raises(TaskPaused):
        boundary(tasks, running.id)  # the next step stops here
    assert pauses.resume(running.id, "alice").status is TaskStatus.IN_PROGRESS
    assert stopped.started == [f"{running.id}-continue-1"]  # its execution had ended: a new one
    boundary(tasks, running.id)  # runs on

    still = tasks.add(TaskStatus.PAUSED, "arn:execution:s")
    carrying_on = Workflow(ExecutionState.RUNNING)
    service(tasks, carrying_on).resume(still.id, "alice")
    assert carrying_on.started == []  # its execution had not reached the boundary: it simply carries on


@pytest.mark.parametrize(
    "status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED, TaskStatus.PAUSED]
)
def test_what_cannot_be_paused(status: TaskStatus) -> None:
    tasks = Tasks()
    task = tasks.add(status)
    with pytest.raises(Conflict, match="can be paused"):
        service(tasks, Workflow(ExecutionState.RUNNING)).pause(task.id, "alice")
    if status is not TaskStatus.PAUSED:
        with pytest.raises(Conflict, match="can be resumed"):
            service(tasks, Workflow(ExecutionState.RUNNING)).resume(task.id, "alice")
    with pytest.raises(NotFound):
        service(tasks, Workflow(ExecutionState.RUNNING)).pause(task.id, "bob")  # not theirs


def test_execution_names_count_resumes_and_restarts_apart() -> None:
    arn = "arn:aws:states:us-east-1:1:execution:m:5d1c-continue-2-resume-1"
    assert continue_count(arn) == 2 and resume_count(arn) == 1
    assert continue_count("arn:...:5d1c-resume-3") == 0 and resume_count("arn:...:5d1c-continue-4") == 0
    # A task that ends (or fails) while paused may: the end wins over the pause.
    assert can_move(TaskStatus.PAUSED, TaskStatus.COMPLETED) and can_move(
        TaskStatus.PAUSED, TaskStatus.FAILED
    )
    assert not can_move(TaskStatus.COMPLETED, TaskStatus.PAUSED)


def test_the_operator_pause_stops_everyone_at_a_boundary_and_resumes_only_those() -> None:
    tasks, stopped = Tasks(), Workflow(ExecutionState.PAUSED)
    pauses = service(tasks, stopped)
    operator = OperatorPauses(tasks, pauses, clock=lambda: NOW)  # type: ignore[arg-type]
    running = tasks.add(TaskStatus.IN_PROGRESS, "arn:execution:a")
    fresh = tasks.add(TaskStatus.PENDING, "arn:execution:b")
    mine = tasks.add(TaskStatus.IN_PROGRESS, "arn:execution:c")
    pauses.pause(mine.id, "alice")  # its owner's pause: the operator's resume leaves it alone
    boundary(tasks, running.id)  # the switch is off: it runs on
    state = operator.pause("storage maintenance", "ops")
    assert (
        state.paused and state.since == NOW and operator.pause("again", "ops").reason == "storage maintenance"
    )
    for task in (running, fresh):
        with pytest.raises(TaskPaused, match="by the operator: storage maintenance"):
            boundary(tasks, task.id)
        assert tasks.get(task.id).status is TaskStatus.PAUSED
        assert tasks.get(task.id).pausedBy is PausedBy.OPERATOR
    assert pauses.view(tasks.get(running.id)).pausedBy is PausedBy.OPERATOR
    result = operator.resume()
    assert not result.state.paused and not result.more
    assert sorted(result.resumed) == sorted([running.id, fresh.id])
    assert tasks.get(mine.id).status is TaskStatus.PAUSED and tasks.get(mine.id).pausedBy is PausedBy.OWNER
    assert {tasks.get(t.id).status for t in (running, fresh)} == {TaskStatus.IN_PROGRESS}
    assert len(stopped.started) == 2  # each continues in a new execution
    boundary(tasks, running.id)  # and runs on
