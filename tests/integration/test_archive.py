"""Archive and restore against moto over HTTP: files move to GLACIER and out of the storage ledger, come back
byte-identical, and the sweep archives exports that asked for it instead of deleting them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from geoexport import bootstrap
from geoexport.errors import Conflict
from geoexport.models import TaskStatus
from geoexport.pipeline import expiry
from tests.integration.conftest import Cloud
from tests.integration.test_pipeline import (
    PENTAGON,
    download,
    loopback_deliveries,
    make_task,
    run_steps,
)
from tests.support import Receiver

RES = 0.0054931640625


def completed(cloud: Cloud, receiver: Receiver, on_expiry: str | None = None) -> str:
    task = make_task(cloud, "landsat-bahamas-rgb", PENTAGON, RES, receiver.url())
    if on_expiry:
        request = task.request.model_copy(update={"parameters": {"onExpiry": on_expiry}})
        cloud.client("dynamodb").update_item(
            TableName=cloud.stack.physical["TasksTable"],
            Key={"id": {"S": str(task.id)}},
            UpdateExpression="SET #r = :r",
            ExpressionAttributeNames={"#r": "request"},
            ExpressionAttributeValues={":r": {"S": request.model_dump_json()}},
        )
    run_steps(cloud, str(task.id), loopback_deliveries(cloud))
    return str(task.id)


def test_archive_then_restore_gives_back_the_same_files(
    cloud: Cloud, receiver: Receiver, tmp_path: Path
) -> None:
    s = cloud.settings
    tasks, views, s3 = bootstrap.task_repository(s), bootstrap.task_views(s), cloud.client("s3")
    bucket = s.exports_bucket
    task_id = completed(cloud, receiver)
    receiver.wait_for(1)
    before = views.get(task_id, cloud.owner)  # type: ignore[arg-type]
    originals = {a.name: download(a.url or "", tmp_path / a.name) for a in before.artifacts}
    used = sum(a.size for a in before.artifacts)
    ledger = tasks.client_ledger(cloud.owner).used

    service = bootstrap.archive_service(s)
    archived = service.archive(before.id, cloud.owner)
    assert archived.status is TaskStatus.ARCHIVED and archived.artifacts == []
    assert archived.archive is not None and archived.archive.storageClass == "GLACIER"
    assert tasks.client_ledger(cloud.owner).used == ledger - used  # out of the hot quota
    assert not list(bootstrap.exports_store(s).keys(f"exports/{task_id}/"))
    cold = list(bootstrap.exports_store(s).keys(f"archive/{task_id}/"))
    assert sorted(key.rsplit("/", 1)[-1] for key, _ in cold) == sorted(originals)
    for key, _ in cold:
        assert s3.head_object(Bucket=bucket, Key=key)["StorageClass"] == "GLACIER"
        with pytest.raises(ClientError, match="InvalidObjectState"):
            s3.get_object(Bucket=bucket, Key=key)  # archived: not readable before a restore
    with pytest.raises(Conflict):
        service.archive(before.id, cloud.owner)

    changes = cloud.task_changes()
    done, restored = service.restore(before.id, cloud.owner)
    assert done and restored.status is TaskStatus.COMPLETED  # moto thaws at once
    assert restored.expiredAt is not None and before.expiredAt is not None
    assert restored.expiredAt > before.expiredAt
    assert restored.archive is not None and restored.archive.restoredAt is not None
    for artifact in restored.artifacts:
        data = download(artifact.url or "", tmp_path / f"again-{artifact.name}")
        assert data == originals[artifact.name] and hashlib.sha256(data).hexdigest() == artifact.sha256
    assert tasks.client_ledger(cloud.owner).used == ledger
    assert not list(bootstrap.exports_store(s).keys(f"archive/{task_id}/"))
    assert changes.deliver(loopback_deliveries(cloud)) == 1  # TASK_COMPLETED again, once
    calls = receiver.wait_for(2)
    assert calls[-1]["body"]["status"] == "COMPLETED"
    with pytest.raises(Conflict):
        service.restore(before.id, cloud.owner)


def test_the_sweep_archives_exports_that_asked_for_it(cloud: Cloud, receiver: Receiver) -> None:
    s = cloud.settings
    tasks = bootstrap.task_repository(s)
    keep = completed(cloud, receiver, on_expiry="archive")
    drop = completed(cloud, receiver)
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for task_id in (keep, drop):
        cloud.client("dynamodb").update_item(
            TableName=cloud.stack.physical["TasksTable"],
            Key={"id": {"S": task_id}},
            UpdateExpression="SET expiredAt = :e",
            ExpressionAttributeValues={":e": {"S": past}},
        )
    result = expiry.run(
        tasks, bootstrap.exports_store(s), lambda: datetime.now(UTC), s.retention_days, bootstrap.archiver(s)
    )
    assert keep in result["archived"] and drop in result["expired"]
    assert tasks.get(keep).status is TaskStatus.ARCHIVED and tasks.get(drop).status is TaskStatus.EXPIRED
    assert list(bootstrap.exports_store(s).keys(f"archive/{keep}/"))
