"""A create whose estimate exceeds the free storage answers 507 with the numbers and starts nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from geoexport import bootstrap
from geoexport.auth.clients import ClientRepository
from geoexport.errors import InsufficientStorage, TooManyExports
from geoexport.geometry.repair import InProcessGeometry
from geoexport.models import CreateExportTaskRequest, TaskStatus
from geoexport.tasks import dedupe
from geoexport.tasks.service import Limits, TaskService
from tests.integration.conftest import Cloud


class CountingWorkflow:
    def __init__(self) -> None:
        self.started: list[UUID] = []

    def start(self, task_id: UUID) -> str:
        self.started.append(task_id)
        return f"arn:aws:states:us-east-1:123456789012:execution:x:{task_id}"

    def stop(self, execution_arn: str, cause: str) -> None:
        pass


def service(cloud: Cloud, quota: int, workflow: Any, **limits: Any) -> TaskService:
    s = cloud.settings
    return TaskService(
        bootstrap.task_repository(s),
        bootstrap.catalog_repository(s),
        workflow,
        bootstrap.exports_store(s),
        Limits(download_url_ttl_seconds=60, retention_days=1, storage_quota_bytes=quota, **limits),
        geometry=InProcessGeometry(),
        quotas=bootstrap.client_quotas(s),  # each client's own record, else the defaults in ``limits``
    )


def body(cloud: Cloud, x: float) -> CreateExportTaskRequest:
    return CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(cloud.records["landsat-bahamas-rgb"].id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": 0.00274658203125},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [[x, 24.0], [x + 0.5, 24.0], [x + 0.5, 24.5], [x, 24.5], [x, 24.0]]
                            ],
                        },
                    }
                ],
            },
        }
    )


def test_an_export_that_does_not_fit_is_refused_whole(cloud: Cloud) -> None:
    tasks = bootstrap.task_repository(cloud.settings)
    workflow = CountingWorkflow()
    ledger = tasks.ledger()
    dry = service(cloud, 10**12, workflow).dry_run(body(cloud, -78.4))
    quota = ledger.committed + dry.estimatedSize - 1  # one byte short
    with pytest.raises(InsufficientStorage) as refused:
        service(cloud, quota, workflow).create(body(cloud, -78.4))
    assert refused.value.needed == dry.estimatedSize and refused.value.total == quota
    assert refused.value.free == quota - ledger.committed
    assert workflow.started == [] and tasks.ledger() == ledger
    prepared, _, _ = service(cloud, quota, workflow).prepare(body(cloud, -78.4))
    assert tasks.claimed_task(dedupe.fingerprint(prepared, "1.0|anonymous")) is None  # no claim left behind
    # With exactly enough room it is accepted and the reservation is taken.
    outcome = service(cloud, quota + 1, workflow).create(body(cloud, -78.4))
    assert outcome.created and workflow.started == [outcome.task.id]
    assert tasks.ledger().reserved == ledger.reserved + dry.estimatedSize
    # The next one does not fit any more.
    with pytest.raises(InsufficientStorage):
        service(cloud, quota + 1, workflow).create(body(cloud, -77.6))


def new_client(cloud: Cloud, storage: int | None = None, running: int | None = None) -> str:
    clients = ClientRepository(cloud.client("dynamodb"), cloud.stack.physical["ClientsTable"])
    client_id = f"quota-{uuid4().hex[:8]}"
    clients.create(client_id, client_id=client_id)
    assert clients.set_quotas(client_id, storage, running)
    return client_id


def test_one_clients_exports_do_not_use_up_anothers_quota(cloud: Cloud) -> None:
    """Issue 12: one client's running exports gave another a 507 (one pool for all)."""
    workflow = CountingWorkflow()
    size = service(cloud, 10**12, workflow).dry_run(body(cloud, -78.4)).estimatedSize
    greedy, other = new_client(cloud, storage=size * 3 // 2), new_client(cloud)
    exports = service(cloud, 10**12, workflow, client_storage_quota_bytes=size * 3 // 2)
    exports.create(body(cloud, -78.4), owner=greedy)
    with pytest.raises(InsufficientStorage) as refused:
        exports.create(body(cloud, -78.3), owner=greedy)  # its own quota is spent...
    assert refused.value.quota == "clientStorageQuota" and refused.value.total == size * 3 // 2
    assert refused.value.free == size * 3 // 2 - size
    assert exports.create(body(cloud, -78.3), owner=other).created  # ...the other's is not
    report = bootstrap.task_repository(cloud.settings).client_ledger(greedy)
    assert (report.reserved, report.running) == (size, 1)


def test_concurrent_exports_are_bounded_per_client_and_freed_when_one_ends(cloud: Cloud) -> None:
    workflow = CountingWorkflow()
    client = new_client(cloud, running=2)
    exports = service(cloud, 10**12, workflow)
    first = exports.create(body(cloud, -78.4), owner=client).task
    exports.create(body(cloud, -78.3), owner=client)
    with pytest.raises(TooManyExports) as refused:
        exports.create(body(cloud, -78.2), owner=client)
    assert (refused.value.running, refused.value.limit) == (2, 2) and refused.value.retry_after_seconds
    assert len(workflow.started) == 2  # the refused one was never started
    tasks = bootstrap.task_repository(cloud.settings)
    now = datetime.now(UTC)
    tasks.advance(first.id, TaskStatus.FAILED, now, ledger=(-(first.estimatedSize or 0), 0), finishedAt=now)
    assert exports.create(body(cloud, -78.2), owner=client).created  # the ended one freed its slot
    assert tasks.client_ledger(client).running == 2


def test_cache_hits_extend_an_export_only_up_to_its_maximum_lifetime(cloud: Cloud) -> None:
    """Issue 12: re-requesting a completed export extended its expiry for ever."""
    workflow = CountingWorkflow()
    client = new_client(cloud)
    exports = service(cloud, 10**12, workflow, max_lifetime_days=30)
    task = exports.create(body(cloud, -78.1), owner=client).task
    tasks = bootstrap.task_repository(cloud.settings)
    finished = datetime.now(UTC) - timedelta(days=29, hours=12)
    tasks.advance(task.id, TaskStatus.IN_PROGRESS, finished, progress=10)
    tasks.advance(
        task.id,
        TaskStatus.COMPLETED,
        finished,
        progress=100,
        ledger=(-(task.estimatedSize or 0), 0),
        finishedAt=finished,
        expiredAt=datetime.now(UTC) + timedelta(hours=1),
    )
    again = exports.create(body(cloud, -78.1), owner=client).task  # retention (1 day) would reach past 30
    assert again.id == task.id and again.expiredAt is not None
    assert abs((again.expiredAt - (finished + timedelta(days=30))).total_seconds()) < 1
