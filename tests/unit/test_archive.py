"""Archive and restore (geoexport.tasks.archive) with the task store and object store in memory: a restore
whose files are still frozen waits (the API's 202) and the sweep finishes it once they thaw; the restore's
callback is TASK_COMPLETED once per restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from geoexport.errors import StaleTransition
from geoexport.models.tasks import ArtifactType, StoredArtifact, TaskRecord, TaskStatus, WebhookEvent
from geoexport.notify import changes
from geoexport.tasks.archive import ArchivePolicy, Archiver, archive_key, archives_on_expiry
from geoexport.tasks.transitions import can_move
from tests.unit.test_pause import Tasks as PauseTasks

NOW = datetime(2026, 11, 29, tzinfo=UTC)


class Tasks(PauseTasks):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = 0
        self.restores: set[str] = set()

    def advance(self, task_id: Any, status: TaskStatus, now: datetime, **fields: Any) -> None:
        task = self.get(task_id)
        allowed = fields.pop("allowed_from", None)
        fields.pop("remove", None)
        if not (task.status in allowed if allowed else can_move(task.status, status)):
            raise StaleTransition("no")
        self.ledger += (fields.pop("ledger", None) or (0, 0))[1]
        self.tasks[task.id] = task.model_copy(update={"status": status, **fields})
        if status is TaskStatus.COMPLETED:
            self.restores.discard(str(task.id))

    def request_restore(self, task_id: Any, archive: Any) -> None:
        task = self.get(task_id)
        self.tasks[task.id] = task.model_copy(update={"archive": archive})
        self.restores.add(str(task.id))

    def restoring(self, limit: int = 100) -> list[str]:
        return sorted(self.restores)


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}  # key -> storage class
        self.thawed: set[str] = set()
        self.asked: list[str] = []
        self.thaw_at_once = False

    def copy_as(self, source_key: str, target_key: str, storage_class: str = "STANDARD") -> None:
        assert self.readable(source_key)
        self.objects[target_key] = storage_class

    def restore(self, key: str, days: int, tier: str) -> None:
        self.asked.append(key)
        if self.thaw_at_once:
            self.thawed.add(key)

    def readable(self, key: str) -> bool:
        return self.objects[key] not in ("GLACIER", "DEEP_ARCHIVE") or key in self.thawed

    def delete_prefix(self, prefix: str) -> int:
        gone = [key for key in self.objects if key.startswith(prefix)]
        for key in gone:
            del self.objects[key]
        return len(gone)


def completed(tasks: Tasks, store: Store) -> TaskRecord:
    task = tasks.add(TaskStatus.COMPLETED)
    key = f"exports/{task.id}/a.gpkg"
    store.objects[key] = "STANDARD"
    artifact = StoredArtifact(type=ArtifactType.GPKG, name="a.gpkg", size=100, sha256="0" * 64, key=key)
    tasks.tasks[task.id] = task.model_copy(update={"artifacts": [artifact], "expiredAt": NOW})
    tasks.ledger = 100
    return tasks.get(task.id)


def test_a_frozen_restore_waits_for_the_sweep() -> None:
    tasks, store = Tasks(), Store()
    archiver = Archiver(tasks, store, ArchivePolicy(storage_class="DEEP_ARCHIVE", restore_tier="Bulk"))
    task = completed(tasks, store)
    archiver.archive(task, NOW)
    cold = archive_key(task.id, task.artifacts[0].key)
    assert store.objects == {cold: "DEEP_ARCHIVE"} and tasks.ledger == 0
    assert tasks.get(task.id).status is TaskStatus.ARCHIVED

    assert not archiver.request_restore(tasks.get(task.id), NOW)  # the API answers 202
    assert store.asked == [cold] and tasks.get(task.id).status is TaskStatus.ARCHIVED
    info = tasks.get(task.id).archive
    assert info is not None and info.restoreRequestedAt == NOW and info.restoreTier == "Bulk"
    assert archiver.sweep_restores(NOW) == []  # still frozen
    store.thawed.add(cold)
    later = NOW + timedelta(hours=5)
    assert archiver.sweep_restores(later) == [str(task.id)]
    done = tasks.get(task.id)
    assert done.status is TaskStatus.COMPLETED and done.expiredAt == later + timedelta(days=14)
    assert store.objects == {task.artifacts[0].key: "STANDARD"} and tasks.ledger == 100
    assert archiver.sweep_restores(later) == []


def test_a_restore_finishes_at_once_when_the_archive_thaws_at_once() -> None:
    tasks, store = Tasks(), Store()
    store.thaw_at_once = True
    archiver = Archiver(tasks, store, ArchivePolicy())
    task = completed(tasks, store)
    archiver.archive(task, NOW)
    assert archiver.request_restore(tasks.get(task.id), NOW)
    assert tasks.get(task.id).status is TaskStatus.COMPLETED


def test_on_expiry_reads_the_request() -> None:
    tasks = Tasks()
    task = tasks.add(TaskStatus.COMPLETED)
    assert not archives_on_expiry(task)
    asked = task.request.model_copy(update={"parameters": {"onExpiry": "archive"}})
    assert archives_on_expiry(task.model_copy(update={"request": asked}))


class Claims:
    def __init__(self) -> None:
        self.claimed: set[str] = set()

    def claim_notification(self, task_id: UUID | str, event: str = "final") -> bool:
        if event in self.claimed:
            return False
        self.claimed.add(event)
        return True


class Deliveries:
    def __init__(self) -> None:
        self.sent: list[WebhookEvent] = []

    def first(self, task: TaskRecord, event: WebhookEvent) -> None:
        self.sent.append(event)


def test_each_restore_sends_task_completed_once() -> None:
    tasks = Tasks()
    archived = tasks.add(TaskStatus.ARCHIVED)
    claims, deliveries = Claims(), Deliveries()
    claims.claimed.add("final")  # the export's own completion was announced long ago
    first = archived.model_copy(update={"status": TaskStatus.COMPLETED, "expiredAt": NOW})
    assert changes.react(archived, first, claims, deliveries)  # type: ignore[arg-type]
    assert not changes.react(archived, first, claims, deliveries)  # type: ignore[arg-type]  # redelivered
    second = first.model_copy(update={"expiredAt": NOW + timedelta(days=30)})
    assert changes.react(archived, second, claims, deliveries)  # type: ignore[arg-type]
    assert deliveries.sent == [WebhookEvent.TASK_COMPLETED, WebhookEvent.TASK_COMPLETED]


def test_one_restore_that_fails_does_not_hold_up_the_others() -> None:
    tasks, store = Tasks(), Store()
    archiver = Archiver(tasks, store, ArchivePolicy())
    broken, fine = completed(tasks, store), completed(tasks, store)
    for task in (broken, fine):
        archiver.archive(task, NOW)
        archiver.request_restore(tasks.get(task.id), NOW)
    del store.objects[archive_key(broken.id, broken.artifacts[0].key)]  # gone: readable() raises KeyError
    store.thawed.update(store.objects)
    assert archiver.sweep_restores(NOW) == [str(fine.id)]
    assert tasks.get(broken.id).status is TaskStatus.ARCHIVED and str(broken.id) in tasks.restoring()


def test_restoring_an_archive_the_lifecycle_deleted_says_so() -> None:
    from geoexport.errors import Conflict, NotFound
    from geoexport.tasks.archive import ArchiveService
    from geoexport.tasks.prepare import Limits
    from tests.unit.test_pause import Store as Links

    class Expired(Store):
        def readable(self, key: str) -> bool:
            if key not in self.objects:
                raise NotFound(f"s3://exports/{key}: not found")
            return super().readable(key)

    tasks, store = Tasks(), Expired()
    archiver = Archiver(tasks, store, ArchivePolicy())
    task = completed(tasks, store)
    archiver.archive(task, NOW)
    store.objects.clear()  # ArchiveExpirationDays later
    limits = Limits(download_url_ttl_seconds=600, retention_days=1, storage_quota_bytes=10**9)
    service = ArchiveService(tasks, archiver, Links(), limits, clock=lambda: NOW)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match=r"archived files of export .* are gone"):
        service.restore(task.id, "alice")
