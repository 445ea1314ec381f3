"""Notify: end the task (COMPLETED, or FAILED with a reason a user can act on) and call its webhooks.

Runs both at the end of the happy path and on the Catch path (MarkFailed). Re-running it is harmless: the
status change is conditional and the final callbacks go out only once (the first caller claims them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from geoexport.errors import USER_FACING_STEP_ERRORS, StaleTransition
from geoexport.models.tasks import ExportTask, TaskRecord, TaskStatus, WebhookDelivery, WebhookEvent
from geoexport.notify.callback import callback_body
from geoexport.notify.webhooks import WebhookSender
from geoexport.pipeline.plan import exports_prefix, scratch_prefix


class Tasks(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        **fields: Any,
    ) -> None: ...
    def claim_notification(self, task_id: UUID | str) -> bool: ...
    def record_deliveries(self, task_id: UUID | str, deliveries: list[WebhookDelivery]) -> None: ...


class Store(Protocol):
    def delete_prefix(self, prefix: str) -> int: ...


class View(Protocol):
    def view(self, task: TaskRecord) -> ExportTask: ...


def error_reason(step: str, error: dict[str, Any] | None, task_id: str) -> str:
    """Turn the state machine's {Error, Cause} into a sentence; internal details stay in the logs."""
    name = str((error or {}).get("Error", "Unknown"))
    cause_text = str((error or {}).get("Cause", ""))
    try:
        cause = json.loads(cause_text) if cause_text else {}
    except ValueError:
        cause = {"errorMessage": cause_text}
    message = str(cause.get("errorMessage", "")).strip() if isinstance(cause, dict) else ""
    if name in USER_FACING_STEP_ERRORS and message:
        return f"{step} step failed: {message}"
    if name == "States.Timeout":
        return f"{step} step timed out; try a smaller ROI or a coarser resolution"
    return (
        f"{step} step failed with an internal error ({name}); try again, and if it persists report "
        f"task {task_id}"
    )


def run(
    task_id: str,
    tasks: Tasks,
    store: Store,
    views: View,
    sender: WebhookSender,
    now: Callable[[], datetime],
    retention_days: int,
    failed_step: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    finished = now()
    if failed_step is None:
        try:
            tasks.advance(
                task_id,
                TaskStatus.COMPLETED,
                finished,
                progress=100,
                finishedAt=finished,
                expiredAt=finished + timedelta(days=retention_days),
            )
        except StaleTransition:
            if tasks.get(task_id).status is not TaskStatus.COMPLETED:
                raise
        event = WebhookEvent.TASK_COMPLETED
    else:
        try:
            tasks.advance(
                task_id,
                TaskStatus.FAILED,
                finished,
                finishedAt=finished,
                errorReason=error_reason(failed_step, error, task_id),
            )
        except StaleTransition:
            pass  # already final (aborted, or this is a re-run): keep what is stored
        store.delete_prefix(scratch_prefix(task_id))
        store.delete_prefix(exports_prefix(task_id))
        event = WebhookEvent.TASK_FAILED
    task = tasks.get(task_id)
    if not tasks.claim_notification(task_id):
        return {"taskId": task_id, "status": task.status.value, "notified": False}
    view = views.view(task)
    body = callback_body(view, event.value)
    deliveries = [
        sender.send(str(hook.url), event, body) for hook in task.request.webhooks if event in hook.events
    ]
    if deliveries:
        tasks.record_deliveries(task_id, deliveries)
    return {"taskId": task_id, "status": task.status.value, "notified": True}
