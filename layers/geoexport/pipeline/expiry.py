"""The scheduled sweep: completed exports past their expiredAt become EXPIRED, their files go, callbacks fire.

The exports bucket's lifecycle rule deletes the objects a day later in any case; the sweep frees the storage
ledger on time and tells subscribers (TASK_EXPIRED).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from geoexport.notify.delivery import Deliveries
from geoexport.pipeline import notify


class Due(Protocol):
    def due_for_expiry(self, now: datetime, limit: int = 100) -> list[str]: ...


def run(
    tasks: Any,
    store: notify.Store,
    deliveries: Deliveries,
    now: Callable[[], datetime],
    retention_days: int,
) -> dict[str, Any]:
    expired = []
    for task_id in tasks.due_for_expiry(now()):
        notify.run(task_id, tasks, store, deliveries, now, retention_days, outcome="expired")
        expired.append(task_id)
    return {"expired": expired}
