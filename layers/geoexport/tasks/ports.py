"""What the task use cases need from the outside world, as interfaces (adapters live elsewhere)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from geoexport.models.catalog import CatalogRecord
from geoexport.models.tasks import TaskRecord, TaskStatus, Webhook
from geoexport.tasks.repository import ClientQuota, Ledger, Page


class TaskReader(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def find(self, task_id: UUID | str) -> TaskRecord | None: ...
    def page(self, owner: str, status: TaskStatus | None, limit: int, next_token: str | None) -> Page: ...
    def ledger(self) -> Ledger: ...


class TaskWriter(Protocol):
    """Status changes: conditional (never backwards), with the storage ledger in the same write."""

    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        ledger: tuple[int, int] | None = None,
        allowed_from: frozenset[TaskStatus] | None = None,
        remove: tuple[str, ...] = (),
        **fields: Any,
    ) -> None: ...


class TaskStore(TaskReader, TaskWriter, Protocol):
    """The tasks table as the use cases see it (:class:`geoexport.tasks.repository.TaskRepository`)."""

    def claimed_task(self, fingerprint: str) -> str | None: ...
    def in_scope(self, scope: str, limit: int = 50) -> list[TaskRecord]: ...
    def create(
        self,
        record: TaskRecord,
        quota: int | None = None,
        replace_claim_of: str | None = None,
        client_quota: ClientQuota | None = None,
    ) -> None: ...
    def set_execution(self, task_id: UUID, execution_arn: str) -> None: ...
    def merge_webhooks(self, task_id: UUID | str, hooks: list[Webhook]) -> None: ...
    def extend_expiry(self, task_id: UUID | str, expired_at: datetime) -> bool: ...


class Catalog(Protocol):
    def get(self, record_id: UUID | str) -> CatalogRecord: ...


class Workflow(Protocol):
    def start(self, task_id: UUID) -> str: ...
    def stop(self, execution_arn: str, cause: str) -> None: ...


class Store(Protocol):
    def presign_get(self, key: str, expires_in: int, filename: str) -> str: ...
    def touch(self, key: str, older_than: timedelta) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...


class Geometry(Protocol):
    """GEOS repairs and CRS checks (the geometry function; the API functions do not import GEOS)."""

    def repair(self, geometry: dict[str, Any]) -> tuple[dict[str, Any], str]: ...
    def crs_problem(self, code: str) -> str | None: ...


class Notifier(Protocol):
    def notify_async(self, payload: dict[str, Any]) -> None: ...
