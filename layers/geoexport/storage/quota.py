"""Storage accounting for ``GET /storage``: the configured quota against the ledger.

``used`` is what live exports hold; ``reserved`` is the estimated size of exports still running (reserved
when they were accepted, settled when they finish), so concurrent creates cannot over-commit the bucket.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from geoexport.tasks.repository import Ledger


class LedgerSource(Protocol):
    def ledger(self) -> Ledger: ...


class StorageReport(BaseModel):
    free: int
    total: int
    used: int
    reserved: int


def storage_report(tasks: LedgerSource, quota_bytes: int) -> StorageReport:
    ledger = tasks.ledger()
    return StorageReport(
        free=max(0, quota_bytes - ledger.committed),
        total=quota_bytes,
        used=ledger.used,
        reserved=ledger.reserved,
    )
