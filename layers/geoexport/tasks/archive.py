"""Archive and restore (seed 001's ARCHIVED): an export kept in cold storage instead of being deleted.

Archiving copies every artifact from ``exports/<task>/`` to ``archive/<task>/`` in the archive storage class
(``ARCHIVE_STORAGE_CLASS``, GLACIER by default), then moves the task COMPLETED -> ARCHIVED with its bytes
out of the hot storage ledger in the same write, then deletes the hot copies. The ``archive/`` prefix has
its own lifecycle rule (``ArchiveExpirationDays``), so the exports rule never deletes archived files.
A crash between steps is safe: copies are repeated, the status change is conditional, and a hot copy left
behind is deleted by the exports lifecycle rule.

Restoring asks the archive storage to thaw each file (``restore_object``; on AWS this takes minutes to
hours by tier, ``ARCHIVE_RESTORE_TIER``), records the request on the task, and finishes as soon as every
file is readable: copied back to ``exports/`` (STANDARD), the task COMPLETED again with a new expiredAt and
its bytes back in the ledger, the archive copies deleted. When the files are not readable yet, the API
answers 202 and the hourly sweep (the expiry function) finishes the restore; the completion sends
TASK_COMPLETED again. The local emulator (moto) thaws at once, so a local restore finishes in its request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from geoexport.errors import Conflict, FieldProblem, NotFound, StaleTransition
from geoexport.models.tasks import ArchiveInfo, ExportTask, OnExpiry, TaskRecord, TaskStatus
from geoexport.pipeline.plan import exports_prefix
from geoexport.tasks.ports import Store, TaskStore, TaskWriter
from geoexport.tasks.prepare import Limits
from geoexport.tasks.views import TaskViews, utcnow

log = logging.getLogger(__name__)

ARCHIVE_PREFIX = "archive/"
RESTORE_DAYS = 1  # a thawed copy only has to last until it is copied back to exports/


def archive_prefix(task_id: UUID | str) -> str:
    return f"{ARCHIVE_PREFIX}{task_id}/"


def archive_key(task_id: UUID | str, hot_key: str) -> str:
    """Where a hot artifact's archived copy lives: the same name under ``archive/<task>/``."""
    return archive_prefix(task_id) + hot_key.rsplit("/", 1)[-1]


def archives_on_expiry(task: TaskRecord) -> bool:
    """``parameters.onExpiry: "archive"``: the sweep archives the export instead of deleting it."""
    return str(task.request.parameters.get("onExpiry", OnExpiry.DELETE.value)) == OnExpiry.ARCHIVE.value


class ArchiveStore(Protocol):
    def copy_as(self, source_key: str, target_key: str, storage_class: str = "STANDARD") -> None: ...
    def restore(self, key: str, days: int, tier: str) -> None: ...
    def readable(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...


class ArchiveTasks(TaskWriter, Protocol):
    def request_restore(self, task_id: UUID | str, archive: ArchiveInfo) -> None: ...
    def restoring(self, limit: int = 100) -> list[str]: ...


@dataclass(frozen=True)
class ArchivePolicy:
    storage_class: str = "GLACIER"
    restore_tier: str = "Standard"
    retention_days: int = 14  # a restored export's new lifetime, as a fresh one's


class Archiver:
    """The archive and restore steps on stored tasks (used by the API and by the sweep)."""

    def __init__(self, tasks: ArchiveTasks, store: ArchiveStore, policy: ArchivePolicy) -> None:
        self._tasks = tasks
        self._store = store
        self._policy = policy

    def archive(self, task: TaskRecord, now: datetime) -> None:
        """COMPLETED -> ARCHIVED; StaleTransition when the task is no longer COMPLETED."""
        for artifact in task.artifacts:
            self._store.copy_as(artifact.key, archive_key(task.id, artifact.key), self._policy.storage_class)
        used = sum(artifact.size for artifact in task.artifacts)
        info = ArchiveInfo(storageClass=self._policy.storage_class, archivedAt=now)
        self._tasks.advance(task.id, TaskStatus.ARCHIVED, now, ledger=(0, -used), archive=info)
        self._store.delete_prefix(exports_prefix(str(task.id)))

    def request_restore(self, task: TaskRecord, now: datetime) -> bool:
        """Thaw the archived files and finish at once if they are readable; True when COMPLETED again."""
        assert task.archive is not None, "an ARCHIVED task says where its files are"
        for artifact in task.artifacts:
            key = archive_key(task.id, artifact.key)
            if not self._store.readable(key):
                self._store.restore(key, RESTORE_DAYS, self._policy.restore_tier)
        if task.archive.restoreRequestedAt is None:
            info = task.archive.model_copy(
                update={
                    "restoreRequestedAt": now,
                    "restoreTier": self._policy.restore_tier,
                    "restoredAt": None,
                }
            )
            self._tasks.request_restore(task.id, info)
        return self.finish_restore(self._tasks.get(task.id), now)

    def finish_restore(self, task: TaskRecord, now: datetime) -> bool:
        """Copy the thawed files back and complete the task; False while any file is still frozen."""
        if task.status is not TaskStatus.ARCHIVED or task.archive is None:
            return task.status is TaskStatus.COMPLETED
        keys = [(artifact.key, archive_key(task.id, artifact.key)) for artifact in task.artifacts]
        if not all(self._store.readable(archived) for _, archived in keys):
            return False
        for hot, archived in keys:
            self._store.copy_as(archived, hot)
        used = sum(artifact.size for artifact in task.artifacts)
        info = task.archive.model_copy(update={"restoredAt": now})
        try:
            self._tasks.advance(
                task.id,
                TaskStatus.COMPLETED,
                now,
                ledger=(0, used),
                allowed_from=frozenset({TaskStatus.ARCHIVED}),
                remove=("restoreState",),
                archive=info,
                expiredAt=now + timedelta(days=self._policy.retention_days),
            )
        except StaleTransition:
            return self._tasks.get(task.id).status is TaskStatus.COMPLETED  # another run finished it
        self._store.delete_prefix(archive_prefix(task.id))
        return True

    def sweep_restores(self, now: datetime) -> list[str]:
        """Finish every restore whose files have thawed; returns the tasks completed again."""
        done = []
        for task_id in self._tasks.restoring():
            try:
                if self.finish_restore(self._tasks.get(task_id), now):
                    done.append(task_id)
            except Exception:  # one restore S3 cannot finish now does not hold up the others
                log.exception("restore of %s not finished; the next sweep tries again", task_id)
        return done


class ArchiveService(TaskViews):
    """``POST /export-tasks/{id}/archive`` and ``.../restore`` for the task's owner."""

    def __init__(
        self,
        tasks: TaskStore,
        archiver: Archiver,
        store: Store,
        limits: Limits,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(tasks, store, limits, clock=clock)
        self._archiver = archiver

    def archive(self, task_id: UUID, owner: str) -> ExportTask:
        task = self.owned_in(task_id, owner, {TaskStatus.COMPLETED}, "archived")
        try:
            self._archiver.archive(task, self._clock())
        except StaleTransition as error:
            raise Conflict(f"export task {task_id} changed meanwhile; look again") from error
        return self.view(self._tasks.get(task.id), with_deliveries=False)

    def restore(self, task_id: UUID, owner: str) -> tuple[bool, ExportTask]:
        """(done, task): done when the export is COMPLETED again; else the restore is under way."""
        task = self.owned_in(task_id, owner, {TaskStatus.ARCHIVED}, "restored")
        try:
            done = self._archiver.request_restore(task, self._clock())
        except StaleTransition as error:
            raise Conflict(f"export task {task_id} changed meanwhile; look again") from error
        except NotFound as error:  # the archive/ lifecycle rule deleted them (ArchiveExpirationDays)
            raise Conflict(
                f"the archived files of export {task_id} are gone (archives are kept for a limited time); "
                "request the export again",
                [FieldProblem("id", "its archive has expired")],
            ) from error
        return done, self.view(self._tasks.get(task.id), with_deliveries=False)
