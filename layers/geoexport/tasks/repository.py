"""Tasks table adapter (DynamoDB). Scalars the conditions need are attributes; the rest is JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from geoexport.errors import NotFound, StaleTransition, TransientError
from geoexport.models.tasks import (
    CreateExportTaskRequest,
    StoredArtifact,
    TaskRecord,
    TaskStatus,
    WebhookDelivery,
)
from geoexport.tasks.transitions import ALLOWED_FROM


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class TaskRepository:
    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, task_id: UUID | str) -> TaskRecord:
        try:
            item = self._db.get_item(
                TableName=self._table, Key={"id": {"S": str(task_id)}}, ConsistentRead=True
            ).get("Item")
        except Exception as error:
            raise _transient(error, "reading the task") from error
        if not item:
            raise NotFound(f"export task {task_id} does not exist")
        return _from_item(item)

    # -- writes ------------------------------------------------------------------------------------------
    def create(self, record: TaskRecord) -> None:
        item = _to_item(record)
        self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(id)")

    def set_execution(self, task_id: UUID, execution_arn: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"id": {"S": str(task_id)}},
            UpdateExpression="SET executionArn = :e",
            ExpressionAttributeValues={":e": {"S": execution_arn}},
        )

    def start(self, task_id: UUID | str) -> TaskRecord:
        """PENDING -> IN_PROGRESS (a re-run finds it IN_PROGRESS already); refused once the task is final."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET #s = :ip, updatedAt = :u",
                ConditionExpression="attribute_exists(id) AND #s IN (:pending, :ip)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":ip": {"S": "IN_PROGRESS"},
                    ":pending": {"S": "PENDING"},
                    ":u": {"S": datetime.now(UTC).isoformat()},
                },
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer active") from error
        return _from_item(response["Attributes"])

    def report_progress(self, task_id: UUID | str, progress: int) -> None:
        """Raise progress of a running task; a lower value (a re-run step) or a finished task is ignored."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET #p = :p",
                ConditionExpression="#s = :ip AND #p < :p",
                ExpressionAttributeNames={"#s": "status", "#p": "progress"},
                ExpressionAttributeValues={":p": {"N": str(progress)}, ":ip": {"S": "IN_PROGRESS"}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            pass

    def set_artifacts(self, task_id: UUID | str, artifacts: list[StoredArtifact], progress: int) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET artifacts = :a, #p = :p",
                ConditionExpression="#s = :ip AND #p <= :p",
                ExpressionAttributeNames={"#s": "status", "#p": "progress"},
                ExpressionAttributeValues={
                    ":a": _attr(artifacts),
                    ":p": {"N": str(progress)},
                    ":ip": {"S": "IN_PROGRESS"},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer active") from error

    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        **fields: Any,
    ) -> None:
        """Move to ``status`` (and at least ``progress``); StaleTransition if that would go backwards.

        Extra ``fields`` are set in the same conditional write (finishedAt, errorReason...).
        """
        allowed = sorted(ALLOWED_FROM[status])
        if not allowed:
            raise StaleTransition(f"no transition leads to {status}")
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": {"S": status.value}, ":u": {"S": now.isoformat()}}
        sets = ["#s = :s", "updatedAt = :u"]
        conditions = ["attribute_exists(id)"]
        if progress is not None:
            names["#p"] = "progress"
            values[":p"] = {"N": str(progress)}
            sets.append("#p = :p")
            conditions.append("#p <= :p")
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = _attr(value)
            sets.append(f"#f{index} = :f{index}")
        refs = []
        for index, previous in enumerate(allowed):
            values[f":a{index}"] = {"S": previous.value}
            refs.append(f":a{index}")
        conditions.append(f"#s IN ({', '.join(refs)})")
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} cannot move to {status}") from error

    def claim_notification(self, task_id: UUID | str) -> bool:
        """Mark the final notification as sent; True only for the first caller (no second final webhook)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET notified = :t",
                ConditionExpression=(
                    "attribute_exists(id) AND (attribute_not_exists(notified) OR notified = :f)"
                ),
                ExpressionAttributeValues={":t": {"BOOL": True}, ":f": {"BOOL": False}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_deliveries(self, task_id: UUID | str, deliveries: list[WebhookDelivery]) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"id": {"S": str(task_id)}},
            UpdateExpression="SET deliveries = :d",
            ExpressionAttributeValues={":d": _attr(deliveries)},
        )


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        return {"S": value.isoformat()}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, list):
        return {
            "S": json.dumps([v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value])
        }
    return {"S": json.dumps(value)}


def _to_item(record: TaskRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": str(record.id)},
        "status": {"S": record.status.value},
        "progress": {"N": str(record.progress)},
        "request": {"S": record.request.model_dump_json()},
        "createdAt": {"S": record.createdAt.isoformat()},
        "updatedAt": {"S": record.updatedAt.isoformat()},
        "artifacts": _attr(record.artifacts),
        "deliveries": _attr(record.deliveries),
        "notified": {"BOOL": record.notified},
    }
    for name in ("finishedAt", "expiredAt"):
        stamp = _iso(getattr(record, name))
        if stamp:
            item[name] = {"S": stamp}
    if record.errorReason:
        item["errorReason"] = {"S": record.errorReason}
    if record.executionArn:
        item["executionArn"] = {"S": record.executionArn}
    return item


def _from_item(item: dict[str, Any]) -> TaskRecord:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    return TaskRecord(
        id=UUID(item["id"]["S"]),
        status=TaskStatus(item["status"]["S"]),
        progress=int(item["progress"]["N"]),
        request=CreateExportTaskRequest.model_validate_json(item["request"]["S"]),
        createdAt=datetime.fromisoformat(item["createdAt"]["S"]),
        updatedAt=datetime.fromisoformat(item["updatedAt"]["S"]),
        finishedAt=datetime.fromisoformat(f) if (f := text("finishedAt")) else None,
        expiredAt=datetime.fromisoformat(e) if (e := text("expiredAt")) else None,
        errorReason=text("errorReason"),
        artifacts=[StoredArtifact.model_validate(a) for a in json.loads(text("artifacts") or "[]")],
        deliveries=[WebhookDelivery.model_validate(d) for d in json.loads(text("deliveries") or "[]")],
        executionArn=text("executionArn"),
        notified=bool(item.get("notified", {}).get("BOOL", False)),
    )


def _transient(error: Exception, what: str) -> Exception:
    from botocore.exceptions import BotoCoreError

    if isinstance(error, BotoCoreError):
        return TransientError(f"{what}: {error}")
    return error
