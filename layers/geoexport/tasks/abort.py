"""Aborting a task: end it (freeing its reservation), stop its workflow, and have its files cleaned up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from geoexport.errors import Conflict, FieldProblem, StaleTransition
from geoexport.models.tasks import FINAL_STATUSES, ExportTask, TaskStatus
from geoexport.tasks.ports import Notifier, Store, TaskStore, Workflow
from geoexport.tasks.prepare import Limits
from geoexport.tasks.views import TaskViews, utcnow


class AbortService(TaskViews):
    def __init__(
        self,
        tasks: TaskStore,
        workflow: Workflow,
        store: Store,
        limits: Limits,
        notifier: Notifier,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(tasks, store, limits, clock=clock)
        self._tasks: TaskStore = tasks
        self._workflow = workflow
        self._notifier = notifier

    def abort(self, task_id: UUID, owner: str = "anonymous") -> ExportTask:
        task = self.owned(task_id, owner)
        if task.status in FINAL_STATUSES or task.status is TaskStatus.EXPIRED:
            raise Conflict(
                f"export task {task_id} already ended ({task.status.value})",
                [FieldProblem("id", f"the task is {task.status.value}")],
            )
        now = self._clock()
        try:
            self._tasks.advance(
                task.id,
                TaskStatus.ABORTED,
                now,
                ledger=(-task.reservedBytes, 0),
                finishedAt=now,
                errorReason="aborted at the user's request",
            )
        except StaleTransition as error:
            raise Conflict(f"export task {task_id} ended meanwhile") from error
        if task.executionArn:
            self._workflow.stop(task.executionArn, "aborted at the user's request")
        self._notifier.notify_async({"taskId": str(task.id), "outcome": "aborted"})
        return self.view(self._tasks.get(task.id), with_deliveries=False)
