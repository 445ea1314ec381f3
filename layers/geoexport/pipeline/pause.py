"""Step boundaries: where a paused task's workflow stops (see geoexport.tasks.pause)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from geoexport.errors import TaskPaused
from geoexport.models.tasks import TaskRecord, TaskStatus


class TaskReader(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...


def stop_if_paused(task: TaskRecord) -> None:
    if task.status is TaskStatus.PAUSED:
        raise TaskPaused(f"export {task.id} is paused: it continues from here when resumed")


def boundary(tasks: TaskReader, task_id: UUID | str) -> None:
    """Raise TaskPaused when the task is paused (one consistent read of the task)."""
    stop_if_paused(tasks.get(task_id))
