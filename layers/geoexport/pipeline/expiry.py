"""The scheduled sweep: completed exports past their expiredAt become EXPIRED and their files go, or, when
the request said ``parameters.onExpiry: "archive"``, they are archived (ARCHIVED); restores whose files have
thawed are finished (see :mod:`geoexport.tasks.archive`).

The exports bucket's lifecycle rule deletes the objects a day later in any case; the sweep frees the storage
ledger on time. Subscribers hear of it (TASK_EXPIRED) from the stored status change, as of every other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from geoexport.errors import NotFound, StaleTransition
from geoexport.pipeline import notify
from geoexport.tasks.archive import Archiver, archives_on_expiry

log = logging.getLogger(__name__)


class Tasks(notify.Tasks, Protocol):
    def due_for_expiry(self, now: datetime, limit: int = 100) -> list[str]: ...


def run(
    tasks: Tasks,
    store: notify.Store,
    now: Callable[[], datetime],
    retention_days: int,
    archiver: Archiver | None = None,
) -> dict[str, Any]:
    expired, archived, postponed = [], [], []
    for task_id in tasks.due_for_expiry(now()):
        task = tasks.get(task_id)
        if archiver is not None and archives_on_expiry(task):
            try:
                archiver.archive(task, now())
                archived.append(task_id)
                continue
            except StaleTransition:
                continue  # archived (or restored) by someone else meanwhile
            except NotFound:
                pass  # its files are gone already (deleted outside the service): nothing to archive, expire
            except Exception:  # S3 refused or failed (any error): the next sweep tries again; others go on
                log.exception("archiving %s failed; the next sweep tries again", task_id)
                postponed.append(task_id)
                continue
        notify.run(task_id, tasks, store, now, retention_days, outcome=notify.Outcome.EXPIRED)
        expired.append(task_id)
    restored = archiver.sweep_restores(now()) if archiver is not None else []
    return {"expired": expired, "archived": archived, "restored": restored, "postponed": postponed}
