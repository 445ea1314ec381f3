"""Storage accounting for ``GET /storage``: the configured quotas against the ledgers.

``used`` is what live exports hold; ``reserved`` is the estimated size of exports still running (reserved
when they were accepted, settled when they finish), so concurrent creates cannot over-commit the bucket.
Each client also has its own share (``client``): what its exports hold against its own quota, and how many
of them run against its concurrency limit.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from geoexport.tasks.repository import ClientLedger, ClientQuota, Ledger


class LedgerSource(Protocol):
    def ledger(self) -> Ledger: ...
    def client_ledger(self, owner: str) -> ClientLedger: ...


class ClientStorage(BaseModel):
    """The caller's own share: a create that does not fit it is a 507 (storage) or 429 (running)."""

    free: int
    total: int = Field(description="clientStorageQuota: bytes this client's exports may hold at once")
    used: int
    reserved: int
    running: int = Field(description="exports of this client not yet ended")
    maxConcurrentExports: int


class StorageReport(BaseModel):
    free: int
    total: int
    used: int
    reserved: int
    client: ClientStorage | None = None


def storage_report(
    tasks: LedgerSource, quota_bytes: int, owner: str | None = None, client_quota: ClientQuota | None = None
) -> StorageReport:
    ledger = tasks.ledger()
    client = None
    if owner is not None and client_quota is not None:
        share = tasks.client_ledger(owner)
        client = ClientStorage(
            free=max(0, client_quota.storage_bytes - share.committed),
            total=client_quota.storage_bytes,
            used=share.used,
            reserved=share.reserved,
            running=share.running,
            maxConcurrentExports=client_quota.concurrent_exports,
        )
    return StorageReport(
        free=max(0, quota_bytes - ledger.committed),
        total=quota_bytes,
        used=ledger.used,
        reserved=ledger.reserved,
        client=client,
    )
