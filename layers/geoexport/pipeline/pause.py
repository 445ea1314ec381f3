"""Step boundaries: where a paused task's workflow stops (see geoexport.tasks.pause).

A boundary also honours the operator-wide pause: while it is on, a running export moves to PAUSED
(``pausedBy: operator``) here and stops; turning the pause off resumes exactly those exports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from geoexport.errors import StaleTransition, TaskPaused
from geoexport.models.tasks import OperatorPause, PausedBy, TaskRecord, TaskStatus


class TaskReader(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def operator_pause(self) -> OperatorPause: ...
    def advance(self, task_id: UUID | str, status: TaskStatus, now: datetime, **fields: Any) -> None: ...


def stop_if_paused(task: TaskRecord) -> None:
    if task.status is TaskStatus.PAUSED:
        raise TaskPaused(f"export {task.id} is paused: it continues from here when resumed")


def boundary(tasks: TaskReader, task_id: UUID | str) -> None:
    """Raise TaskPaused when the task is paused, or the operator-wide pause is on (the task is then
    paused here, by the operator)."""
    task = tasks.get(task_id)
    stop_if_paused(task)
    switch = tasks.operator_pause()
    if not switch.paused or task.status not in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS):
        return
    try:
        tasks.advance(task.id, TaskStatus.PAUSED, datetime.now(UTC), pausedBy=PausedBy.OPERATOR)
    except StaleTransition:
        stop_if_paused(tasks.get(task_id))  # its owner paused it meanwhile; anything else: carry on
        return
    reason = f": {switch.reason}" if switch.reason else ""
    raise TaskPaused(f"export {task.id} is paused by the operator{reason}; it continues when they resume")
