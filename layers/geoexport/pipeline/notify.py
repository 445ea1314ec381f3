"""Notify: end the task (status, storage ledger) and clean up after failures.

Outcomes: ``completed`` (end of the happy path), ``failed`` (the Catch path, MarkFailed), ``aborted`` (after
an abort: clean up), ``expired`` (the sweep). Re-running is harmless: status changes are conditional and the
storage ledger moves with them in one transaction. This step calls no receiver: the callbacks react to the
stored status change (:mod:`geoexport.notify.changes`), so a slow receiver never holds an export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from geoexport.errors import INPUT_ERRORS, USER_FACING_STEP_ERRORS, StaleTransition
from geoexport.models.tasks import FailureKind, TaskStatus
from geoexport.pipeline.pause import stop_if_paused
from geoexport.pipeline.plan import exports_prefix, scratch_prefix
from geoexport.tasks.ports import TaskWriter

INTERRUPTED = "Interrupted"  # the reconciler's error name: the workflow died or was lost


class Outcome(StrEnum):
    """How an export ends, as the state machine (and the abort, sweep and reconciler) tell Notify."""

    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    EXPIRED = "expired"


Tasks = TaskWriter  # what ending a task needs


class Store(Protocol):
    def delete_prefix(self, prefix: str) -> int: ...


def failure_kind(error: dict[str, Any] | None) -> FailureKind:
    """``input`` when the request itself cannot be served (CLC+'s INVALID), else ``internal``."""
    return FailureKind.INPUT if str((error or {}).get("Error")) in INPUT_ERRORS else FailureKind.INTERNAL


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


def run(
    task_id: str,
    tasks: Tasks,
    store: Store,
    now: Callable[[], datetime],
    retention_days: int,
    outcome: Outcome = Outcome.COMPLETED,
    failed_step: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    finished = now()
    task = tasks.get(task_id)
    if outcome is Outcome.COMPLETED:
        stop_if_paused(task)  # a failure still ends a paused task; completing waits for the resume
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
    elif outcome is Outcome.FAILED:
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
    elif outcome is Outcome.EXPIRED:
        used = sum(artifact.size for artifact in task.artifacts)
        try:
            tasks.advance(task_id, TaskStatus.EXPIRED, finished, ledger=(0, -used))
        except StaleTransition:
            if tasks.get(task_id).status is not TaskStatus.EXPIRED:
                raise
    if outcome is not Outcome.COMPLETED:
        store.delete_prefix(scratch_prefix(task_id))
        store.delete_prefix(exports_prefix(task_id))
    return {"taskId": task_id, "status": tasks.get(task_id).status.value}
