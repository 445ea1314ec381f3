"""Tasks, their dedupe claims and the storage ledger in DynamoDB.

Every status change is a conditional write (status never goes backwards). Writes that must agree with each
other go in one transaction: a new task, its dedupe claim and its storage reservation; a task's end and the
ledger's settlement. Scalars that conditions and indexes need are attributes; the rest is JSON.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from geoexport.errors import InsufficientStorage, NotFound, StaleTransition, TransientError
from geoexport.models.tasks import (
    CreateExportTaskRequest,
    StoredArtifact,
    TaskRecord,
    TaskStatus,
    Webhook,
    WebhookDelivery,
)
from geoexport.tasks.transitions import ALLOWED_FROM

LEDGER_KEY = {"name": {"S": "exports-storage"}}
BY_OWNER, BY_OWNER_STATUS, BY_SCOPE, BY_STATUS_EXPIRY, BY_STATUS_UPDATED = (
    "ByOwner",
    "ByOwnerStatus",
    "ByScope",
    "ByStatusExpiry",
    "ByStatusUpdated",
)


class ClaimTaken(Exception):
    """Another request claimed this fingerprint first (its task is the one to answer with)."""


@dataclass(frozen=True)
class Ledger:
    used: int
    reserved: int

    @property
    def committed(self) -> int:
        return self.used + self.reserved


@dataclass(frozen=True)
class Page:
    items: list[TaskRecord]
    next_token: str | None


class TaskRepository:
    def __init__(
        self, dynamodb_client: Any, table: str, dedupe_table: str = "", counters_table: str = ""
    ) -> None:
        self._db = dynamodb_client
        self._table = table
        self._dedupe = dedupe_table
        self._counters = counters_table

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

    def find(self, task_id: UUID | str) -> TaskRecord | None:
        try:
            return self.get(task_id)
        except NotFound:
            return None

    def claimed_task(self, fingerprint: str) -> str | None:
        item = self._db.get_item(
            TableName=self._dedupe, Key={"fingerprint": {"S": fingerprint}}, ConsistentRead=True
        ).get("Item")
        return item["taskId"]["S"] if item else None

    def page(self, owner: str, status: TaskStatus | None, limit: int, next_token: str | None) -> Page:
        """Newest first; ``next_token`` is opaque (DynamoDB's LastEvaluatedKey, encoded)."""
        if status is None:
            index, key, value = BY_OWNER, "owner", owner
        else:
            index, key, value = BY_OWNER_STATUS, "ownerStatus", f"{owner}#{status.value}"
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "Limit": limit,
            "ScanIndexForward": False,
            "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": key},
            "ExpressionAttributeValues": {":v": {"S": value}},
        }
        if next_token:
            query["ExclusiveStartKey"] = _decode_token(next_token)
        response = self._db.query(**query)
        last = response.get("LastEvaluatedKey")
        return Page([_from_item(item) for item in response["Items"]], _encode_token(last) if last else None)

    def in_scope(self, scope: str, limit: int = 50) -> list[TaskRecord]:
        response = self._db.query(
            TableName=self._table,
            IndexName=BY_SCOPE,
            Limit=limit,
            ScanIndexForward=False,
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": "scope"},
            ExpressionAttributeValues={":v": {"S": scope}},
        )
        return [self.get(item["id"]["S"]) for item in response["Items"]]

    def due_for_expiry(self, now: datetime, limit: int = 100) -> list[str]:
        response = self._db.query(
            TableName=self._table,
            IndexName=BY_STATUS_EXPIRY,
            Limit=limit,
            KeyConditionExpression="#s = :s AND expiredAt <= :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": TaskStatus.COMPLETED.value}, ":now": {"S": _stamp(now)}},
        )
        return [item["id"]["S"] for item in response["Items"]]

    def unfinished(self, updated_before: datetime, limit: int = 100) -> list[str]:
        """PENDING and IN_PROGRESS tasks whose status last changed before ``updated_before`` (oldest first),
        for the reconciler: a task the service accepted must end, whatever happened to its workflow."""
        found: list[str] = []
        for status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": BY_STATUS_UPDATED,
                "Limit": limit,
                "KeyConditionExpression": "#s = :s AND updatedAt <= :before",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":s": {"S": status.value},
                    ":before": {"S": _stamp(updated_before)},
                },
            }
            try:
                response = self._db.query(**query)
            except Exception as error:
                raise _transient(error, "list unfinished tasks") from error
            found.extend(item["id"]["S"] for item in response["Items"])
        return found

    def ledger(self) -> Ledger:
        item = self._db.get_item(TableName=self._counters, Key=LEDGER_KEY, ConsistentRead=True).get(
            "Item", {}
        )
        return Ledger(
            int(item.get("usedBytes", {}).get("N", "0")), int(item.get("reservedBytes", {}).get("N", "0"))
        )

    # -- writes ------------------------------------------------------------------------------------------
    def create(
        self, record: TaskRecord, quota: int | None = None, replace_claim_of: str | None = None
    ) -> None:
        """Store a new task with its dedupe claim and storage reservation, all or nothing.

        Raises ClaimTaken when another request holds the fingerprint (unless it is the dead task
        ``replace_claim_of``), InsufficientStorage when the reservation does not fit the quota.
        """
        if quota is not None and record.reservedBytes > quota:
            raise self._insufficient(record.reservedBytes, quota)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _to_item(record),
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            }
        ]
        if record.fingerprint and self._dedupe:
            claim: dict[str, Any] = {
                "TableName": self._dedupe,
                "Item": {
                    "fingerprint": {"S": record.fingerprint},
                    "taskId": {"S": str(record.id)},
                    "createdAt": {"S": _stamp(record.createdAt)},
                },
            }
            if replace_claim_of:
                claim["ConditionExpression"] = "attribute_not_exists(fingerprint) OR taskId = :old"
                claim["ExpressionAttributeValues"] = {":old": {"S": replace_claim_of}}
            else:
                claim["ConditionExpression"] = "attribute_not_exists(fingerprint)"
            items.append({"Put": claim})
        if quota is not None and self._counters:
            items.append(
                {
                    "Update": {
                        "TableName": self._counters,
                        "Key": LEDGER_KEY,
                        "UpdateExpression": "ADD reservedBytes :r, committedBytes :r",
                        "ConditionExpression": (
                            "attribute_not_exists(committedBytes) OR committedBytes <= :limit"
                        ),
                        "ExpressionAttributeValues": {
                            ":r": {"N": str(record.reservedBytes)},
                            ":limit": {"N": str(quota - record.reservedBytes)},
                        },
                    }
                }
            )
        try:
            self._db.transact_write_items(TransactItems=items)
        except self._db.exceptions.TransactionCanceledException as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed" and record.fingerprint:
                raise ClaimTaken(record.fingerprint) from error
            if reasons and reasons[-1] == "ConditionalCheckFailed" and quota is not None:
                raise self._insufficient(record.reservedBytes, quota) from error
            raise

    def _insufficient(self, needed: int, quota: int) -> InsufficientStorage:
        free = max(0, quota - self.ledger().committed)
        return InsufficientStorage(
            f"the export needs about {needed} bytes but only {free} of {quota} are free",
            needed=needed,
            free=free,
            total=quota,
        )

    def set_execution(self, task_id: UUID, execution_arn: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"id": {"S": str(task_id)}},
            UpdateExpression="SET executionArn = :e",
            ExpressionAttributeValues={":e": {"S": execution_arn}},
        )

    def start(self, task_id: UUID | str) -> TaskRecord:
        """PENDING -> IN_PROGRESS (a re-run finds it IN_PROGRESS already); refused once the task is final."""
        task = self.get(task_id)
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET #s = :ip, ownerStatus = :os, updatedAt = :u",
                ConditionExpression="attribute_exists(id) AND #s IN (:pending, :ip)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":ip": {"S": "IN_PROGRESS"},
                    ":pending": {"S": "PENDING"},
                    ":os": {"S": f"{task.owner}#IN_PROGRESS"},
                    ":u": {"S": _stamp(datetime.now(UTC))},
                },
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer active") from error
        return _from_item(response["Attributes"])

    def report_progress(self, task_id: UUID | str, progress: int) -> bool:
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
            return False
        return True

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

    def merge_webhooks(self, task_id: UUID | str, hooks: list[Webhook]) -> None:
        """Add a duplicate request's webhooks to a task that has not finished yet."""
        if not hooks:
            return
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET extraWebhooks = list_append(if_not_exists(extraWebhooks, :empty), :h)",
                ConditionExpression="#s IN (:pending, :ip)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":h": {"L": [{"S": hook.model_dump_json()} for hook in hooks]},
                    ":empty": {"L": []},
                    ":pending": {"S": "PENDING"},
                    ":ip": {"S": "IN_PROGRESS"},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} finished meanwhile") from error

    def extend_expiry(self, task_id: UUID | str, expired_at: datetime) -> bool:
        """Push expiredAt later; False when the task is not completed or already expires that late."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="SET expiredAt = :e",
                ConditionExpression="#s = :done AND expiredAt < :e",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":e": {"S": _stamp(expired_at)}, ":done": {"S": "COMPLETED"}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        ledger: tuple[int, int] | None = None,
        **fields: Any,
    ) -> None:
        """Move to ``status`` (and at least ``progress``); StaleTransition if that would go backwards.

        ``ledger`` = (reserved delta, used delta) is applied to the storage ledger in the same transaction.
        Extra ``fields`` are set in the same conditional write (finishedAt, errorReason...).
        """
        allowed = sorted(ALLOWED_FROM[status])
        if not allowed:
            raise StaleTransition(f"no transition leads to {status}")
        task = self.get(task_id)
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":s": {"S": status.value},
            ":u": {"S": _stamp(now)},
            ":os": {"S": f"{task.owner}#{status.value}"},
        }
        sets = ["#s = :s", "updatedAt = :u", "ownerStatus = :os"]
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
        update = {
            "TableName": self._table,
            "Key": {"id": {"S": str(task_id)}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        try:
            if ledger is None or not self._counters or ledger == (0, 0):
                self._db.update_item(**update)
            else:
                reserved, used = ledger
                self._db.transact_write_items(
                    TransactItems=[
                        {"Update": update},
                        {
                            "Update": {
                                "TableName": self._counters,
                                "Key": LEDGER_KEY,
                                "UpdateExpression": "ADD reservedBytes :r, usedBytes :d, committedBytes :c",
                                "ExpressionAttributeValues": {
                                    ":r": {"N": str(reserved)},
                                    ":d": {"N": str(used)},
                                    ":c": {"N": str(reserved + used)},
                                },
                            }
                        },
                    ]
                )
        except (
            self._db.exceptions.ConditionalCheckFailedException,
            self._db.exceptions.TransactionCanceledException,
        ) as error:
            raise StaleTransition(f"task {task_id} cannot move to {status}") from error

    def claim_notification(self, task_id: UUID | str, event: str = "final") -> bool:
        """Mark a callback event as sent; True only for the first caller (no second final webhook)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"id": {"S": str(task_id)}},
                UpdateExpression="ADD notifiedEvents :e",
                ConditionExpression="attribute_exists(id) AND NOT contains(notifiedEvents, :v)",
                ExpressionAttributeValues={":e": {"SS": [event]}, ":v": {"S": event}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_deliveries(self, task_id: UUID | str, deliveries: list[WebhookDelivery]) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"id": {"S": str(task_id)}},
            UpdateExpression="SET deliveries = list_append(if_not_exists(deliveries, :empty), :d)",
            ExpressionAttributeValues={
                ":d": {"L": [{"S": d.model_dump_json()} for d in deliveries]},
                ":empty": {"L": []},
            },
        )


def _stamp(value: datetime) -> str:
    """Fixed-width UTC timestamps, so string order is time order in the indexes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        return {"S": _stamp(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
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
        "createdAt": {"S": _stamp(record.createdAt)},
        "updatedAt": {"S": _stamp(record.updatedAt)},
        "artifacts": _attr(record.artifacts),
        "deliveries": {"L": [{"S": d.model_dump_json()} for d in record.deliveries]},
        "extraWebhooks": {"L": [{"S": h.model_dump_json()} for h in record.extraWebhooks]},
        "owner": {"S": record.owner},
        "ownerStatus": {"S": f"{record.owner}#{record.status.value}"},
        "api": {"S": record.api},
        "reservedBytes": {"N": str(record.reservedBytes)},
    }
    for name in ("finishedAt", "expiredAt"):
        stamp = getattr(record, name)
        if stamp:
            item[name] = {"S": _stamp(stamp)}
    if record.notes:
        item["notes"] = {"L": [{"S": note} for note in record.notes]}
    for name in ("errorReason", "executionArn", "fingerprint", "scope", "failureKind"):
        if getattr(record, name):
            item[name] = {"S": getattr(record, name)}
    for name in ("estimatedSize", "estimatedTime"):
        if getattr(record, name) is not None:
            item[name] = {"N": str(getattr(record, name))}
    return item


def _from_item(item: dict[str, Any]) -> TaskRecord:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    size = number("estimatedSize")
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
        deliveries=[
            WebhookDelivery.model_validate_json(d["S"]) for d in item.get("deliveries", {}).get("L", [])
        ],
        executionArn=text("executionArn"),
        owner=text("owner") or "anonymous",
        api=text("api") or "v2",  # type: ignore[arg-type]
        fingerprint=text("fingerprint"),
        scope=text("scope"),
        estimatedSize=int(size) if size is not None else None,
        estimatedTime=number("estimatedTime"),
        reservedBytes=int(number("reservedBytes") or 0),
        extraWebhooks=[
            Webhook.model_validate_json(h["S"]) for h in item.get("extraWebhooks", {}).get("L", [])
        ],
        notes=[note["S"] for note in item.get("notes", {}).get("L", [])],
        failureKind=text("failureKind"),  # type: ignore[arg-type]
    )


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    from geoexport.errors import FieldProblem, InvalidRequest

    try:
        padded = token + "=" * (-len(token) % 4)
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(decoded, dict) or "id" not in decoded:
            raise ValueError("not a page token")
    except (ValueError, TypeError) as error:
        raise InvalidRequest(
            "nextToken is not valid", [FieldProblem("nextToken", "not a token this API issued")]
        ) from error
    return decoded


def _transient(error: Exception, what: str) -> Exception:
    from botocore.exceptions import BotoCoreError

    if isinstance(error, BotoCoreError):
        return TransientError(f"{what}: {error}")
    return error
