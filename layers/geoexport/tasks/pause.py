"""Pausing and resuming a task (seed 001's PAUSED): stop-and-restart from the task's own record.

Pause sets PAUSED (from PENDING or IN_PROGRESS); the step running now finishes, and the next step boundary
(or work item of a fanned-out export) sees PAUSED, raises TaskPaused, and the state machine ends at its
Paused state: nothing runs, the storage reservation and the progress stay. Resume sets IN_PROGRESS again
and, unless the paused execution is still running (it then simply carries on), starts a new execution
named ``<task>-continue-K``; the steps skip what is already stored (the plan is rebuilt, a staged package
and rendered work items are reused), so the export continues where it stopped. Both are status changes
like any other: ExportTaskStatusChanged on the exports bus and an entry in the task's log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, Field

from geoexport.errors import Conflict, StaleTransition
from geoexport.models.tasks import ExportTask, OperatorPause, PausedBy, TaskRecord, TaskStatus
from geoexport.tasks.ports import Store, TaskStore
from geoexport.tasks.prepare import Limits
from geoexport.tasks.views import TaskViews, utcnow
from geoexport.tasks.workflow import ExecutionState, continue_count


class Workflow(Protocol):
    def start(self, task_id: UUID | str, resume: int = 0, continued: int = 0) -> str: ...
    def state(self, execution_arn: str) -> ExecutionState: ...


class PauseService(TaskViews):
    def __init__(
        self,
        tasks: TaskStore,
        workflow: Workflow,
        store: Store,
        limits: Limits,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(tasks, store, limits, clock=clock)
        self._tasks: TaskStore = tasks
        self._workflow = workflow

    def pause(self, task_id: UUID, owner: str) -> ExportTask:
        task = self.owned_in(task_id, owner, {TaskStatus.PENDING, TaskStatus.IN_PROGRESS}, "paused")
        try:
            self._tasks.advance(task.id, TaskStatus.PAUSED, self._clock(), pausedBy=PausedBy.OWNER)
        except StaleTransition as error:
            raise Conflict(f"export task {task_id} changed meanwhile; look again") from error
        return self.view(self._tasks.get(task.id), with_deliveries=False)

    def resume(self, task_id: UUID, owner: str) -> ExportTask:
        return self.carry_on(self.owned_in(task_id, owner, {TaskStatus.PAUSED}, "resumed"))

    def carry_on(self, task: TaskRecord) -> ExportTask:
        """Resume a PAUSED task: IN_PROGRESS, and a new execution unless the paused one still runs."""
        task_id = task.id
        try:
            self._tasks.advance(task.id, TaskStatus.IN_PROGRESS, self._clock())
        except StaleTransition as error:
            raise Conflict(f"export task {task_id} changed meanwhile; look again") from error
        running = task.executionArn and self._workflow.state(task.executionArn) is ExecutionState.RUNNING
        if not running:  # it stopped at a boundary: continue in a new execution
            execution = self._workflow.start(task.id, continued=continue_count(task.executionArn) + 1)
            self._tasks.set_execution(task.id, execution)
        return self.view(self._tasks.get(task.id), with_deliveries=False)


class OperatorSwitch(Protocol):
    def operator_pause(self) -> OperatorPause: ...
    def set_operator_pause(self, state: OperatorPause) -> None: ...
    def paused_by_operator(self, limit: int = 100) -> list[TaskRecord]: ...


class OperatorResume(BaseModel):
    """What ``POST /operations/resume`` did: the switch, the exports it resumed, whether more wait."""

    state: OperatorPause
    resumed: list[UUID]
    more: bool = Field(description="more exports wait to be resumed: call again (each call resumes a batch)")


class OperatorPauses:
    """The operator-wide pause (storage maintenance, a bad release): ``/operations/pause`` and
    ``/operations/resume`` (scope ``exports:operate``). Pausing only flips the switch: each running export
    stops at its next step boundary (see geoexport.pipeline.pause) and new ones stop at their first, so
    nothing is lost and no execution is killed mid-step. Resuming turns the switch off and resumes the
    exports the operator's pause stopped (not those their owners paused), a batch per call."""

    BATCH = 50

    def __init__(self, switch: OperatorSwitch, pauses: PauseService, clock: Callable[[], datetime] = utcnow):
        self._switch = switch
        self._pauses = pauses
        self._clock = clock

    def state(self) -> OperatorPause:
        return self._switch.operator_pause()

    def pause(self, reason: str, by: str) -> OperatorPause:
        current = self._switch.operator_pause()
        if current.paused:
            return current
        state = OperatorPause(paused=True, reason=reason, since=self._clock(), by=by)
        self._switch.set_operator_pause(state)
        return state

    def resume(self) -> OperatorResume:
        if self._switch.operator_pause().paused:
            self._switch.set_operator_pause(OperatorPause())
        waiting = self._switch.paused_by_operator(self.BATCH + 1)
        resumed = []
        for task in waiting[: self.BATCH]:
            try:
                resumed.append(self._pauses.carry_on(task).id)
            except Conflict:
                continue  # its owner resumed or aborted it meanwhile
        return OperatorResume(
            state=self._switch.operator_pause(), resumed=resumed, more=len(waiting) > self.BATCH
        )
