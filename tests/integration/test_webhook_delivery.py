"""At-least-once webhooks against moto's SQS: retried with backoff, dead-lettered when exhausted, replayed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from geoexport import bootstrap
from geoexport.auth.clients import ClientRepository
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.models.tasks import MAX_WEBHOOKS_PER_TASK, DeliveryOutcome, Webhook, WebhookEvent
from geoexport.notify.delivery import Deliveries, DeliveryJob
from tests.integration.conftest import Cloud
from tests.support import Receiver

COMPRESSED = {
    "webhook_allow_loopback": True,
    "webhook_https_only": False,
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_delay_seconds": 0.4,
    "webhook_retry_window_seconds": 2.0,
    "webhook_safety_net_seconds": 0.0,
}


def completed_task(cloud: Cloud, hooks: list[str]) -> TaskRecord:
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(cloud.records["landsat-bahamas-rgb"].id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": 0.01},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[-78, 24], [-77.9, 24], [-77.9, 24.1], [-78, 24]]],
                        },
                    }
                ],
            },
            "webhooks": [{"url": url, "events": ["TASK_COMPLETED"]} for url in hooks[:10]],
        }
    )
    merged = [Webhook.model_validate({"url": url, "events": ["TASK_COMPLETED"]}) for url in hooks[10:]]
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(),
        status=TaskStatus.COMPLETED,
        progress=100,
        request=request,
        createdAt=now,
        updatedAt=now,
        owner=cloud.owner,
        extraWebhooks=merged,  # what identical creates merge in, up to the per-task bound
    )
    bootstrap.task_repository(cloud.settings).create(task)
    return task


def drain(cloud: Cloud, deliveries: Deliveries, task_id: str, until: float) -> list[DeliveryJob]:
    """What the retry function's event source mapping does: run each due job of this task."""
    sqs = cloud.client("sqs")
    url = cloud.settings.webhook_queue_url
    seen: list[DeliveryJob] = []
    while time.monotonic() < until:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            job = DeliveryJob.model_validate_json(message["Body"])
            if str(job.taskId) == task_id:
                seen.append(job)
                deliveries.retry(job)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def dead_letters(cloud: Cloud) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    found = []
    for _ in range(3):
        messages = sqs.receive_message(
            QueueUrl=cloud.settings.webhook_dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=cloud.settings.webhook_dead_letter_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return found


def test_a_failing_receiver_gets_the_event_again_until_it_answers(cloud: Cloud, receiver: Receiver) -> None:
    deliveries = bootstrap.deliveries(cloud.settings.model_copy(update=COMPRESSED))
    receiver.failing["/flaky"] = 2
    task = completed_task(cloud, [receiver.url("/flaky"), receiver.url("/fine")])
    first = deliveries.first(task, WebhookEvent.TASK_COMPLETED)
    outcomes = {d.url.rsplit("/", 1)[1]: d for d in first}
    assert outcomes["fine"].outcome is DeliveryOutcome.DELIVERED
    assert outcomes["flaky"].outcome is DeliveryOutcome.RETRYING and outcomes["flaky"].nextAttemptAt
    drain(cloud, deliveries, str(task.id), time.monotonic() + 4)
    flaky = [c for c in receiver.calls if c["path"] == "/flaky"]
    assert [c["status"] for c in flaky] == [503, 503, 204]
    # Every attempt is the same message: receivers can drop repeats by webhook-id.
    assert len({c["headers"]["webhook-id"] for c in flaky}) == 1
    records = bootstrap.delivery_records(cloud.settings)
    latest = {d.url.rsplit("/", 1)[1]: d for d in records.latest(task.id)}
    assert latest["flaky"].outcome is DeliveryOutcome.DELIVERED and latest["flaky"].attempts == 3
    assert latest["fine"].attempts == 1 and len([c for c in receiver.calls if c["path"] == "/fine"]) == 1


def test_exhausted_deliveries_are_dead_lettered_and_can_be_replayed(cloud: Cloud, receiver: Receiver) -> None:
    settings = cloud.settings.model_copy(update=COMPRESSED)
    deliveries = bootstrap.deliveries(settings)
    receiver.failing["/down"] = 10_000
    task = completed_task(cloud, [receiver.url("/down")])
    deliveries.first(task, WebhookEvent.TASK_COMPLETED)
    drain(cloud, deliveries, str(task.id), time.monotonic() + 5)
    calls = [c for c in receiver.calls if c["path"] == "/down"]
    assert len(calls) >= 3  # backed off, not hammered: 0.1..0.4 s apart over the 2 s window
    spent = calls[-1]["at"] - calls[0]["at"]
    assert spent >= 1.9  # retried for the whole window (the first call goes out just after it opens)
    stored = bootstrap.task_repository(cloud.settings).get(task.id)
    (latest,) = bootstrap.delivery_records(cloud.settings).latest(task.id)
    assert latest.outcome is DeliveryOutcome.EXHAUSTED and latest.attempts == len(calls)
    parked = [d for d in dead_letters(cloud) if str(task.id) in d["job"]]
    assert len(parked) == 1 and "503" in parked[0]["reason"]

    # The receiver is fixed; a replay delivers the same event (same webhook-id) once more.
    receiver.failing["/down"] = 0
    queued = deliveries.replay(stored)
    assert [d.outcome for d in queued] == [DeliveryOutcome.RETRYING]
    assert deliveries.replay(bootstrap.task_repository(cloud.settings).get(task.id)) == []  # not twice
    drain(cloud, deliveries, str(task.id), time.monotonic() + 2)
    calls = [c for c in receiver.calls if c["path"] == "/down"]
    assert calls[-1]["status"] == 204 and len({c["headers"]["webhook-id"] for c in calls}) == 1
    (latest,) = bootstrap.delivery_records(cloud.settings).latest(task.id)
    assert latest.outcome is DeliveryOutcome.DELIVERED


def test_a_callback_of_a_deleted_client_is_never_sent_unsigned(cloud: Cloud, receiver: Receiver) -> None:
    """Issue 12: the callback of a deleted client went out unsigned."""
    clients = ClientRepository(cloud.client("dynamodb"), cloud.stack.physical["ClientsTable"])
    clients.create("short-lived", client_id="short-lived-client")
    task = completed_task(cloud, [receiver.url("/gone")]).model_copy(update={"owner": "short-lived-client"})
    assert clients.delete("short-lived-client")
    settings = cloud.settings.model_copy(update={"webhook_allow_loopback": True, "webhook_https_only": False})
    (delivery,) = bootstrap.deliveries(settings).first(task, WebhookEvent.TASK_COMPLETED)
    assert delivery.outcome is DeliveryOutcome.REFUSED and "unsigned" in (delivery.error or "")
    time.sleep(0.5)
    assert [c for c in receiver.calls if c["path"] == "/gone"] == []


def test_delivery_records_stay_bounded_and_off_the_task_item(cloud: Cloud, receiver: Receiver) -> None:
    """Issue 12: attempts were appended to the task item until it overflowed 400 KB and Notify failed."""
    settings = cloud.settings.model_copy(update=COMPRESSED)
    hooks = [receiver.url(f"/many/{n}") for n in range(MAX_WEBHOOKS_PER_TASK)]
    for n in range(MAX_WEBHOOKS_PER_TASK):
        receiver.failing[f"/many/{n}"] = 10_000
    task = completed_task(cloud, hooks)
    db = cloud.client("dynamodb")
    key = {"id": {"S": str(task.id)}}
    before = db.get_item(TableName=settings.tasks_table, Key=key, ConsistentRead=True)["Item"]
    deliveries = bootstrap.deliveries(settings)
    deliveries.first(task, WebhookEvent.TASK_COMPLETED)
    records = bootstrap.delivery_records(settings)
    for attempt in range(2, 6):  # retries for every hook, recorded as the retry function does
        records.record(task.id, [d.model_copy(update={"attempts": attempt}) for d in records.latest(task.id)])
    after = db.get_item(TableName=settings.tasks_table, Key=key, ConsistentRead=True)["Item"]
    assert after == before  # delivering never writes (or re-streams) the task
    latest = records.latest(task.id)
    assert len(latest) == MAX_WEBHOOKS_PER_TASK and {d.attempts for d in latest} == {5}
    stored = db.query(
        TableName=settings.deliveries_table,
        KeyConditionExpression="taskId = :t",
        ExpressionAttributeValues={":t": {"S": str(task.id)}},
        Select="COUNT",
    )
    assert stored["Count"] == MAX_WEBHOOKS_PER_TASK  # one item per hook, whatever the attempts
