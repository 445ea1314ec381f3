"""A create whose estimate exceeds the free storage answers 507 with the numbers and starts nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from geoexport import bootstrap
from geoexport.errors import InsufficientStorage
from geoexport.geometry.repair import InProcessGeometry
from geoexport.models import CreateExportTaskRequest
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


def service(cloud: Cloud, quota: int, workflow: Any) -> TaskService:
    s = cloud.settings
    limits = Limits(download_url_ttl_seconds=60, retention_days=1, storage_quota_bytes=quota)
    return TaskService(
        bootstrap.task_repository(s),
        bootstrap.catalog_repository(s),
        workflow,
        bootstrap.exports_store(s),
        limits,
        geometry=InProcessGeometry(),
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
