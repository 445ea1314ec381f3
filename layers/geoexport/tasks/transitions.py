"""Which status may follow which. Stored writes are conditional on these, so status never goes back."""

from __future__ import annotations

from geoexport.models.tasks import TaskStatus

S = TaskStatus

# target status -> statuses it may be reached from
ALLOWED_FROM: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.PENDING: frozenset(),
    S.IN_PROGRESS: frozenset({S.PENDING, S.IN_PROGRESS, S.PAUSED}),  # from PAUSED: resumed
    # A step that finished or failed after the pause request but before its boundary check: the end wins.
    S.COMPLETED: frozenset({S.IN_PROGRESS, S.PAUSED}),
    S.FAILED: frozenset({S.PENDING, S.IN_PROGRESS, S.PAUSED}),
    S.ABORTED: frozenset({S.PENDING, S.IN_PROGRESS, S.PAUSED}),
    S.PAUSED: frozenset({S.PENDING, S.IN_PROGRESS}),
    S.EXPIRED: frozenset({S.COMPLETED}),
    S.ARCHIVED: frozenset({S.COMPLETED}),  # an expired export has no files left to archive
    # COMPLETED again from ARCHIVED only by a restore, which names that source (TaskRepository.advance)
}


def can_move(current: TaskStatus, target: TaskStatus) -> bool:
    return current in ALLOWED_FROM[target]


#: Statuses of a task that has not ended: it may still gain webhooks, and the reconciler watches it.
ACTIVE: frozenset[TaskStatus] = frozenset({S.PENDING, S.IN_PROGRESS})
#: Statuses in which a step may record progress and artifacts.
RUNNING: frozenset[TaskStatus] = frozenset({S.IN_PROGRESS})
