"""The scheduled sweep: completed exports past their expiredAt become EXPIRED and their files go.

The exports bucket's lifecycle rule deletes the objects a day later in any case; the sweep frees the storage
ledger on time. Subscribers hear of it (TASK_EXPIRED) from the stored status change, as of every other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from geoexport.pipeline import notify


class Tasks(notify.Tasks, Protocol):
    def due_for_expiry(self, now: datetime, limit: int = 100) -> list[str]: ...


def run(
    tasks: Tasks, store: notify.Store, now: Callable[[], datetime], retention_days: int
) -> dict[str, Any]:
    expired = []
    for task_id in tasks.due_for_expiry(now()):
        notify.run(task_id, tasks, store, now, retention_days, outcome=notify.Outcome.EXPIRED)
        expired.append(task_id)
    return {"expired": expired}
