"""Storage accounting for ``GET /storage``: a configured quota against what live exports use."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

EXPORTS_PREFIX = "exports/"
SCRATCH_PREFIX = "scratch/"


class Usage(Protocol):
    def used_bytes(self, prefix: str) -> int: ...


class StorageReport(BaseModel):
    free: int
    total: int


def storage_report(store: Usage, quota_bytes: int) -> StorageReport:
    used = store.used_bytes(EXPORTS_PREFIX) + store.used_bytes(SCRATCH_PREFIX)
    return StorageReport(free=max(0, quota_bytes - used), total=quota_bytes)
