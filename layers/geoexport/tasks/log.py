"""A task's log (easydb's /api/event for exports): what happened to it, when, and how long each step took.

Entries come from three places: status changes (TaskChanges, from the tasks table's stream: EXPORT_INSERT,
EXPORT_START, EXPORT_FINISH, EXPORT_FAILED, EXPORT_STOPPED for an abort, EXPORT_EXPIRED), the pipeline steps
themselves (STEP_START, or STEP_RETRY when a step runs again for the task; STEP_FINISH with its duration;
STEP_FAILED with the error), and the webhook outcomes already kept per hook (WEBHOOK, merged in when read).
Each entry's key is derived from what it records, so a redelivered stream record or a re-run write
replaces itself instead of adding a twin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel

from geoexport.models.tasks import TaskRecord, TaskStatus, WebhookDelivery


class LogType(StrEnum):
    EXPORT_INSERT = "EXPORT_INSERT"
    EXPORT_START = "EXPORT_START"
    EXPORT_FINISH = "EXPORT_FINISH"
    EXPORT_FAILED = "EXPORT_FAILED"
    EXPORT_STOPPED = "EXPORT_STOPPED"
    EXPORT_EXPIRED = "EXPORT_EXPIRED"
    EXPORT_PAUSED = "EXPORT_PAUSED"
    EXPORT_RESUMED = "EXPORT_RESUMED"
    EXPORT_ARCHIVED = "EXPORT_ARCHIVED"
    EXPORT_RESTORED = "EXPORT_RESTORED"
    STEP_START = "STEP_START"
    STEP_RETRY = "STEP_RETRY"
    STEP_FINISH = "STEP_FINISH"
    STEP_FAILED = "STEP_FAILED"
    WEBHOOK = "WEBHOOK"
    TRANSPORT_DONE = "TRANSPORT_DONE"
    TRANSPORT_FAILED = "TRANSPORT_FAILED"


class LogEntry(BaseModel):
    time: datetime
    type: LogType
    message: str
    step: str | None = None
    attempt: int | None = None  # the step's run for this task (2+: a retry)
    durationSeconds: float | None = None


class TaskLog(BaseModel):
    taskId: UUID
    entries: list[LogEntry]


_STATUS: dict[TaskStatus, tuple[LogType, str]] = {
    TaskStatus.PENDING: (LogType.EXPORT_INSERT, "export accepted"),
    TaskStatus.IN_PROGRESS: (LogType.EXPORT_START, "export started"),
    TaskStatus.COMPLETED: (LogType.EXPORT_FINISH, "export finished"),
    TaskStatus.FAILED: (LogType.EXPORT_FAILED, "export failed"),
    TaskStatus.ABORTED: (LogType.EXPORT_STOPPED, "export stopped (aborted)"),
    TaskStatus.EXPIRED: (LogType.EXPORT_EXPIRED, "export expired; its files are deleted"),
    TaskStatus.PAUSED: (LogType.EXPORT_PAUSED, "export paused: it stops at the next step boundary"),
    TaskStatus.ARCHIVED: (LogType.EXPORT_ARCHIVED, "export archived: its files are in archive storage"),
}


def status_entry(old: TaskRecord | None, new: TaskRecord | None) -> LogEntry | None:
    """The entry a stored status change makes (None: the status did not move)."""
    if new is None or (old is not None and old.status is new.status) or new.status not in _STATUS:
        return None
    kind, message = _STATUS[new.status]
    if old is not None and old.status is TaskStatus.PAUSED and new.status is TaskStatus.IN_PROGRESS:
        kind, message = LogType.EXPORT_RESUMED, "export resumed"
    if old is not None and old.status is TaskStatus.ARCHIVED and new.status is TaskStatus.COMPLETED:
        kind, message = LogType.EXPORT_RESTORED, "export restored from the archive"
    if new.status is TaskStatus.COMPLETED:
        size = sum(artifact.size for artifact in new.artifacts)
        message = f"{message}: {len(new.artifacts)} files, {size} bytes"
    elif new.errorReason:
        message = f"{message}: {new.errorReason}"
    return LogEntry(time=new.updatedAt, type=kind, message=message)


class LogStore(Protocol):
    def add(self, task_id: UUID | str, entry: LogEntry, key: str) -> None: ...
    def entries(self, task_id: UUID | str) -> list[LogEntry]: ...
    def runs(self, task_id: UUID | str, step: str) -> tuple[int, bool]:
        """How many runs of ``step`` started for the task, and whether the last one finished."""
        ...


def step_key(step: str, attempt: int, edge: str) -> str:
    """Entries of one step sort together (``runs`` reads them by prefix)."""
    return f"step#{step}#{attempt:04d}#{edge}"


def status_key(entry: LogEntry) -> str:
    return f"status#{entry.time.isoformat()}#{entry.type.value}"


class StepLog:
    """What a pipeline step writes about its own run."""

    def __init__(self, store: LogStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._clock = clock

    @contextmanager
    def run(self, task_id: str, step: str) -> Iterator[None]:
        """STEP_START, then STEP_FINISH with the duration, or STEP_FAILED with the error (raised again). A
        run after one that failed or never ended is a STEP_RETRY; a run after one that finished is the
        workflow calling the step again (a VECTOR selection's Clip loop, a resumed export): STEP_START,
        "continued"."""
        previous, finished = self._store.runs(task_id, step)
        attempt = previous + 1
        kind = LogType.STEP_START if attempt == 1 or finished else LogType.STEP_RETRY
        word = "started" if attempt == 1 else f"started again (run {attempt})"
        word = f"continued (call {attempt})" if previous and finished else word
        start = LogEntry(time=self._clock(), type=kind, message=f"{step} {word}", step=step, attempt=attempt)
        self._store.add(task_id, start, step_key(step, attempt, "start"))
        started = time.perf_counter()
        try:
            yield
        except Exception as error:
            self._end(
                task_id, step, attempt, started, LogType.STEP_FAILED, f"{type(error).__name__}: {error}"
            )
            raise
        self._end(task_id, step, attempt, started, LogType.STEP_FINISH)

    def _end(
        self, task_id: str, step: str, attempt: int, started: float, kind: LogType, error: str = ""
    ) -> None:
        seconds = round(time.perf_counter() - started, 3)
        message = (
            f"{step} failed after {seconds} s: {error[:300]}" if error else f"{step} finished in {seconds} s"
        )
        entry = LogEntry(
            time=self._clock(),
            type=kind,
            message=message,
            step=step,
            attempt=attempt,
            durationSeconds=seconds,
        )
        self._store.add(task_id, entry, step_key(step, attempt, "end"))


def task_log(task_id: UUID, entries: list[LogEntry], deliveries: list[WebhookDelivery]) -> TaskLog:
    """The whole log, oldest first: stored entries and each hook's latest delivery outcome."""
    hooks = [
        LogEntry(
            time=delivery.deliveredAt,
            type=LogType.WEBHOOK,
            message=(
                f"{delivery.event.value} to {delivery.url}: {delivery.outcome.value}"
                + (f" (HTTP {delivery.statusCode})" if delivery.statusCode is not None else "")
                + (f", {delivery.error}" if delivery.error else "")
                + (f", after {delivery.attempts} attempts" if delivery.attempts > 1 else "")
            ),
            attempt=delivery.attempts,
        )
        for delivery in deliveries
    ]
    return TaskLog(taskId=task_id, entries=sorted([*entries, *hooks], key=lambda entry: entry.time))
