"""Webhook delivery records in their own table, one item per (task, webhook, event).

Why not on the task: attempts were appended to the task item, so a task with many hooks retried for a day
could grow past DynamoDB's 400 KB item limit and take its status writes down with it. Here each hook's
latest outcome overwrites its own small item: a task holds at most ``MAX_WEBHOOKS_PER_TASK`` x events
records, whatever the retries, and writing one never touches (or re-streams) the task.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from uuid import UUID

from geoexport import aws
from geoexport.models.tasks import WebhookDelivery

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def record_key(url: str, event: str) -> str:
    """Fixed length whatever the URL (up to 2 KB): the sort key's limit is 1 KB."""
    return f"{event}#{hashlib.sha256(url.encode()).hexdigest()}"


class DeliveryRecords:
    """The latest delivery outcome of each webhook of each task."""

    def __init__(self, db: DynamoDBClient, table: str) -> None:
        self._db = db
        self._table = table

    def record(self, task_id: UUID | str, deliveries: list[WebhookDelivery]) -> None:
        """Each delivery replaces the previous outcome of its (url, event)."""
        for delivery in deliveries:
            with aws.translated("recording a webhook delivery"):
                self._db.put_item(
                    TableName=self._table,
                    Item={
                        "taskId": {"S": str(task_id)},
                        "hook": {"S": record_key(delivery.url, delivery.event.value)},
                        "delivery": {"S": delivery.model_dump_json()},
                    },
                )

    def latest(self, task_id: UUID | str) -> list[WebhookDelivery]:
        """Every hook's latest outcome for the task, in a stable order (event, then URL hash)."""
        found: list[WebhookDelivery] = []
        start: dict[str, object] | None = None
        while True:
            with aws.translated("reading webhook deliveries"):
                page = self._db.query(
                    TableName=self._table,
                    KeyConditionExpression="taskId = :t",
                    ExpressionAttributeValues={":t": {"S": str(task_id)}},
                    ConsistentRead=True,
                    **({"ExclusiveStartKey": start} if start else {}),  # type: ignore[arg-type]
                )
            found += [WebhookDelivery.model_validate_json(item["delivery"]["S"]) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")  # type: ignore[assignment]
            if not start:
                return found
