"""Notify: end the task and call its webhooks once per event.

Outcomes: ``completed`` (end of the happy path), ``failed`` (the Catch path, MarkFailed), ``aborted`` (after
an abort: clean up and tell), ``expired`` (the sweep). Re-running is harmless: status changes are
conditional, the storage ledger moves with them in one transaction, and each event's callbacks are claimed
once (then retried until delivered, see geoexport.notify.delivery). Progress events (TASK_PROGRESS) are
best effort and sent by the steps through :func:`progress`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from geoexport.errors import INPUT_ERRORS, USER_FACING_STEP_ERRORS, StaleTransition
from geoexport.models.tasks import TaskRecord, TaskStatus, WebhookEvent
from geoexport.notify.delivery import Deliveries
from geoexport.pipeline.plan import exports_prefix, scratch_prefix

INTERRUPTED = "Interrupted"  # the reconciler's error name: the workflow died or was lost


class Tasks(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        ledger: tuple[int, int] | None = None,
        **fields: Any,
    ) -> None: ...
    def claim_notification(self, task_id: UUID | str, event: str = "final") -> bool: ...


class Store(Protocol):
    def delete_prefix(self, prefix: str) -> int: ...


def failure_kind(error: dict[str, Any] | None) -> str:
    """``input`` when the request itself cannot be served (CLC+'s INVALID), else ``internal``."""
    return "input" if str((error or {}).get("Error")) in INPUT_ERRORS else "internal"


def error_reason(step: str, error: dict[str, Any] | None, task_id: str) -> str:
    """Turn the state machine's {Error, Cause} into a sentence; internal details stay in the logs."""
    name = str((error or {}).get("Error", "Unknown"))
    cause_text = str((error or {}).get("Cause", ""))
    try:
        cause = json.loads(cause_text) if cause_text else {}
    except ValueError:
        cause = {"errorMessage": cause_text}
    message = str(cause.get("errorMessage", "")).strip() if isinstance(cause, dict) else ""
    if name == INTERRUPTED and message:  # from the reconciler: the cause is written for users
        return f"{message[0].upper()}{message[1:]}; request the export again"
    if name in USER_FACING_STEP_ERRORS and message:
        return f"{step} step failed: {message}"
    if name in ("States.Timeout", "Sandbox.Timedout"):
        return f"{step} step timed out; try a smaller ROI or a coarser resolution"
    return (
        f"{step} step failed with an internal error ({name}); try again, and if it persists report "
        f"task {task_id}"
    )


def progress(task_id: str, tasks: Tasks, deliveries: Deliveries, value: int) -> None:
    """TASK_PROGRESS callbacks for a step boundary, once per value (best effort, not retried)."""
    task = tasks.get(task_id)
    hooks = [hook for hook in task.all_webhooks() if WebhookEvent.TASK_PROGRESS in hook.events]
    if hooks and tasks.claim_notification(task_id, f"progress-{value}"):
        deliveries.first(task, WebhookEvent.TASK_PROGRESS)


def run(
    task_id: str,
    tasks: Tasks,
    store: Store,
    deliveries: Deliveries,
    now: Callable[[], datetime],
    retention_days: int,
    outcome: str = "completed",
    failed_step: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    finished = now()
    task = tasks.get(task_id)
    event = WebhookEvent.TASK_FAILED
    if outcome == "completed":
        used = sum(artifact.size for artifact in task.artifacts)
        try:
            tasks.advance(
                task_id,
                TaskStatus.COMPLETED,
                finished,
                progress=100,
                ledger=(-task.reservedBytes, used),
                finishedAt=finished,
                expiredAt=finished + timedelta(days=retention_days),
            )
        except StaleTransition:
            if tasks.get(task_id).status is not TaskStatus.COMPLETED:
                raise
        event = WebhookEvent.TASK_COMPLETED
    elif outcome == "failed":
        try:
            tasks.advance(
                task_id,
                TaskStatus.FAILED,
                finished,
                ledger=(-task.reservedBytes, 0),
                finishedAt=finished,
                errorReason=error_reason(failed_step or "Export", error, task_id),
                failureKind=failure_kind(error),
            )
        except StaleTransition:
            pass  # already final (aborted, or this is a re-run): keep what is stored
    elif outcome == "expired":
        used = sum(artifact.size for artifact in task.artifacts)
        try:
            tasks.advance(task_id, TaskStatus.EXPIRED, finished, ledger=(0, -used))
        except StaleTransition:
            if tasks.get(task_id).status is not TaskStatus.EXPIRED:
                raise
        event = WebhookEvent.TASK_EXPIRED
    if outcome in ("failed", "aborted", "expired"):
        store.delete_prefix(scratch_prefix(task_id))
        store.delete_prefix(exports_prefix(task_id))
    task = tasks.get(task_id)
    claim = "expired" if event is WebhookEvent.TASK_EXPIRED else "final"
    if not tasks.claim_notification(task_id, claim):
        return {"taskId": task_id, "status": task.status.value, "notified": False}
    deliveries.first(task, event)
    return {"taskId": task_id, "status": task.status.value, "notified": True}


class ProgressCallbacks:
    """The task store as the steps see it: a step boundary's progress also reaches TASK_PROGRESS hooks."""

    MILESTONES = frozenset({10, 80, 90})

    def __init__(self, tasks: Any, deliveries: Deliveries) -> None:
        self._tasks = tasks
        self._deliveries = deliveries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tasks, name)

    def report_progress(self, task_id: UUID | str, value: int) -> bool:
        moved = bool(self._tasks.report_progress(task_id, value))
        if value in self.MILESTONES:
            progress(str(task_id), self._tasks, self._deliveries, value)
        return moved
