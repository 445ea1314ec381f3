"""Tasks, their dedupe claims and the storage ledger in DynamoDB.

Every status change is a conditional write derived from :mod:`geoexport.tasks.transitions` (status never
goes backwards). Writes that must agree with each other go in one transaction: a new task, its dedupe claim
and its storage reservation; a task's end and the ledger's settlement. Scalars that conditions and indexes
need are attributes; nested values are JSON strings (one encoding for every write, :func:`to_item`).
Every call goes through :meth:`TaskRepository._call`, so a throttled or dropped call is a TransientError.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel

from geoexport import aws
from geoexport.errors import (
    FieldProblem,
    GeoexportError,
    InsufficientStorage,
    InvalidRequest,
    NotFound,
    StaleTransition,
    TooManyExports,
    UnprocessableRequest,
)
from geoexport.models.tasks import (
    MAX_WEBHOOKS_PER_TASK,
    ArchiveInfo,
    OperatorPause,
    PausedBy,
    StoredArtifact,
    TaskRecord,
    TaskStatus,
    TransportStatus,
    Webhook,
)
from geoexport.tasks.transitions import ACTIVE, ALLOWED_FROM, RUNNING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from geoexport.tasks.log import LogEntry
    from geoexport.tasks.requests import Answer

LEDGER_KEY = {"name": {"S": "exports-storage"}}
OPERATOR_PAUSE_KEY = {"name": {"S": "operator-pause"}}
BY_OWNER, BY_OWNER_STATUS, BY_SCOPE, BY_STATUS_EXPIRY, BY_STATUS_UPDATED, BY_RESTORE = (
    "ByOwner",
    "ByOwnerStatus",
    "ByScope",
    "ByStatusExpiry",
    "ByStatusUpdated",
    "ByRestore",  # sparse: only archived tasks whose restore is under way carry ``restoreState``
)
RESTORING = "RESTORING"
#: Fields stored as one JSON string each (nested models).
JSON_FIELDS = ("request", "artifacts", "archive")
#: Lists stored as a list of JSON strings (appended to in place).
JSON_LISTS = ("extraWebhooks",)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


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
class ClientLedger(Ledger):
    """One client's share: its bytes as in :class:`Ledger`, and how many of its exports are running."""

    running: int = 0


@dataclass(frozen=True)
class ClientQuota:
    """What one client may hold at once (set per client, defaults from the template)."""

    storage_bytes: int
    concurrent_exports: int


#: Statuses that end a run: reaching one frees a concurrent-export slot (once: the move is conditional).
ENDS_RUN = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED})


def client_ledger_key(owner: str) -> dict[str, Any]:
    return {"name": {"S": f"client#{owner}"}}


@dataclass(frozen=True)
class Page:
    items: list[TaskRecord]
    next_token: str | None


class _Condition:
    """Builds ``#s IN (...)`` conditions and their values from sets of statuses."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {"#s": "status"}
        self.values: dict[str, Any] = {}

    def status_in(self, statuses: Iterable[TaskStatus]) -> str:
        refs = []
        for status in sorted(statuses):
            ref = f":st{len(self.values)}"
            self.values[ref] = {"S": status.value}
            refs.append(ref)
        if not refs:
            raise StaleTransition("no status allows this change")
        return f"#s IN ({', '.join(refs)})"

    def value(self, name: str, value: Any) -> str:
        self.values[name] = serialize(value)
        return name


class TaskRepository:
    """The tasks table (with its dedupe claims and the storage ledger); see :class:`TaskStore`."""

    def __init__(
        self, dynamodb_client: DynamoDBClient, table: str, dedupe_table: str = "", counters_table: str = ""
    ) -> None:
        self._db = dynamodb_client
        self._table = table
        self._dedupe = dedupe_table
        self._counters = counters_table

    def _call(self, what: str, operation: str, **request: Any) -> Any:
        """One DynamoDB call; passing AWS failures become TransientError (503 in the API, a retry in a
        step), failed conditions propagate for the caller to interpret."""
        with aws.translated(what):
            return getattr(self._db, operation)(**request)

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, task_id: UUID | str) -> TaskRecord:
        item = self._call(
            "reading the task",
            "get_item",
            TableName=self._table,
            Key={"id": {"S": str(task_id)}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            raise NotFound(f"export task {task_id} does not exist")
        return from_item(item)

    def find(self, task_id: UUID | str) -> TaskRecord | None:
        try:
            return self.get(task_id)
        except NotFound:
            return None

    def claimed_task(self, fingerprint: str) -> str | None:
        item = self._call(
            "reading the dedupe claim",
            "get_item",
            TableName=self._dedupe,
            Key={"fingerprint": {"S": fingerprint}},
            ConsistentRead=True,
        ).get("Item")
        return str(item["taskId"]["S"]) if item else None

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
            query["ExclusiveStartKey"] = _decode_token(next_token, key, value)
        response = self._call("listing tasks", "query", **query)
        last = response.get("LastEvaluatedKey")
        return Page([from_item(item) for item in response["Items"]], _encode_token(last) if last else None)

    def in_scope(self, scope: str, limit: int = 50) -> list[TaskRecord]:
        response = self._call(
            "finding tasks of the same scope",
            "query",
            TableName=self._table,
            IndexName=BY_SCOPE,
            Limit=limit,
            ScanIndexForward=False,
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": "scope"},
            ExpressionAttributeValues={":v": {"S": scope}},
        )
        return [self.get(item["id"]["S"]) for item in response["Items"]]

    def _by_status(
        self, what: str, index: str, status: TaskStatus, key: str, before: datetime, limit: int
    ) -> list[str]:
        response = self._call(
            what,
            "query",
            TableName=self._table,
            IndexName=index,
            Limit=limit,
            KeyConditionExpression=f"#s = :s AND {key} <= :before",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status.value}, ":before": {"S": stamp(before)}},
        )
        return [str(item["id"]["S"]) for item in response["Items"]]

    def due_for_expiry(self, now: datetime, limit: int = 100) -> list[str]:
        return self._by_status(
            "listing expired tasks", BY_STATUS_EXPIRY, TaskStatus.COMPLETED, "expiredAt", now, limit
        )

    def unfinished(self, updated_before: datetime, limit: int = 100) -> list[str]:
        """PENDING and IN_PROGRESS tasks whose status last changed before ``updated_before`` (oldest first),
        for the reconciler: a task the service accepted must end, whatever happened to its workflow."""
        found: list[str] = []
        for status in sorted(ACTIVE):
            found += self._by_status(
                "listing unfinished tasks", BY_STATUS_UPDATED, status, "updatedAt", updated_before, limit
            )
        return found

    def unannounced(
        self, claims: Mapping[TaskStatus, str], after: datetime, before: datetime, limit: int = 100
    ) -> list[TaskRecord]:
        """Tasks that reached one of ``claims``' statuses in [after, before] and whose notification of it
        (the mapped claim) was never claimed: the reconciler announces them (a lost stream record, a crash
        between the write and its callback). The index carries the claims, so only those are read."""
        found: list[TaskRecord] = []
        for status, claim in sorted(claims.items()):
            response = self._call(
                "listing unannounced tasks",
                "query",
                TableName=self._table,
                IndexName=BY_STATUS_UPDATED,
                Limit=limit,
                KeyConditionExpression="#s = :s AND updatedAt BETWEEN :after AND :before",
                FilterExpression="NOT contains(notifiedEvents, :claim)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":s": {"S": status.value},
                    ":after": {"S": stamp(after)},
                    ":before": {"S": stamp(before)},
                    ":claim": {"S": claim},
                },
            )
            found += [self.get(item["id"]["S"]) for item in response["Items"]]
        return found

    def ledger(self) -> Ledger:
        item = self._call(
            "reading the storage ledger",
            "get_item",
            TableName=self._counters,
            Key=LEDGER_KEY,
            ConsistentRead=True,
        ).get("Item", {})
        return Ledger(
            int(item.get("usedBytes", {}).get("N", "0")), int(item.get("reservedBytes", {}).get("N", "0"))
        )

    def operator_pause(self) -> OperatorPause:
        """The operator-wide pause switch (off when never set); read at every step boundary."""
        item = self._call(
            "reading the operator pause", "get_item", TableName=self._counters, Key=OPERATOR_PAUSE_KEY
        ).get("Item")
        return OperatorPause.model_validate_json(item["state"]["S"]) if item else OperatorPause()

    def set_operator_pause(self, state: OperatorPause) -> None:
        self._call(
            "setting the operator pause",
            "put_item",
            TableName=self._counters,
            Item={**OPERATOR_PAUSE_KEY, "state": {"S": state.model_dump_json()}},
        )

    def paused_by_operator(self, limit: int = 100) -> list[TaskRecord]:
        """PAUSED tasks the operator-wide pause stopped (not those their owners paused), oldest first."""
        found: list[TaskRecord] = []
        start: dict[str, Any] | None = None
        while len(found) < limit:
            response = self._call(
                "listing paused tasks",
                "query",
                TableName=self._table,
                IndexName=BY_STATUS_UPDATED,
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": TaskStatus.PAUSED.value}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            tasks = [self.get(item["id"]["S"]) for item in response["Items"]]
            found += [task for task in tasks if task.pausedBy is PausedBy.OPERATOR]
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return found[:limit]

    def client_ledger(self, owner: str) -> ClientLedger:
        item = self._call(
            "reading the client's ledger",
            "get_item",
            TableName=self._counters,
            Key=client_ledger_key(owner),
            ConsistentRead=True,
        ).get("Item", {})
        return ClientLedger(
            int(item.get("usedBytes", {}).get("N", "0")),
            int(item.get("reservedBytes", {}).get("N", "0")),
            max(0, int(item.get("running", {}).get("N", "0"))),
        )

    # -- writes ------------------------------------------------------------------------------------------
    def create(
        self,
        record: TaskRecord,
        quota: int | None = None,
        replace_claim_of: str | None = None,
        client_quota: ClientQuota | None = None,
    ) -> None:
        """Store a new task with its dedupe claim and storage reservation, all or nothing.

        Raises ClaimTaken when another request holds the fingerprint (unless it is the dead task
        ``replace_claim_of``), InsufficientStorage when the reservation does not fit the service's quota
        or the owner's, TooManyExports when the owner already runs as many exports as it may.
        """
        if quota is not None and record.reservedBytes > quota:
            raise self._insufficient(record.reservedBytes, quota)
        if client_quota is not None and record.reservedBytes > client_quota.storage_bytes:
            raise self._client_insufficient(record, client_quota, slots=False)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(record),
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
                    "createdAt": {"S": stamp(record.createdAt)},
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
        global_at = len(items) - 1 if quota is not None and self._counters else None
        if self._counters:  # the owner's share is counted always, checked when it has a quota
            share: dict[str, Any] = {
                "TableName": self._counters,
                "Key": client_ledger_key(record.owner),
                "UpdateExpression": "ADD reservedBytes :r, committedBytes :r, running :one",
                "ExpressionAttributeValues": {":r": {"N": str(record.reservedBytes)}, ":one": {"N": "1"}},
            }
            if client_quota is not None:
                share["ConditionExpression"] = (
                    "(attribute_not_exists(committedBytes) OR committedBytes <= :limit)"
                    " AND (attribute_not_exists(running) OR running < :slots)"
                )
                share["ExpressionAttributeValues"] |= {
                    ":limit": {"N": str(client_quota.storage_bytes - record.reservedBytes)},
                    ":slots": {"N": str(client_quota.concurrent_exports)},
                }
            items.append({"Update": share})
        try:
            self._call("storing the task", "transact_write_items", TransactItems=items)
        except self._db.exceptions.TransactionCanceledException as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            failed = {index for index, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
            if record.fingerprint and self._dedupe and 1 in failed:
                raise ClaimTaken(record.fingerprint) from error
            if quota is not None and global_at in failed:
                raise self._insufficient(record.reservedBytes, quota) from error
            if client_quota is not None and len(items) - 1 in failed:
                raise self._client_insufficient(record, client_quota) from error
            raise

    def _client_insufficient(
        self, record: TaskRecord, quota: ClientQuota, slots: bool = True
    ) -> GeoexportError:
        """Which of the owner's quotas the new task does not fit (read after the refused write)."""
        ledger = self.client_ledger(record.owner)
        free = max(0, quota.storage_bytes - ledger.committed)
        # The write failed on one of the two; if the bytes fit now, it was the slots (one may have freed
        # since: still report the limit that refused it).
        if slots and (ledger.running >= quota.concurrent_exports or record.reservedBytes <= free):
            return TooManyExports(
                f"client {record.owner} already runs as many exports as its quota "
                "(maxConcurrentExports) allows; retry when one ends",
                running=max(ledger.running, quota.concurrent_exports),
                limit=quota.concurrent_exports,
            )
        return InsufficientStorage(
            f"the export needs about {record.reservedBytes} bytes but only {free} of client {record.owner}'s "
            f"{quota.storage_bytes} (clientStorageQuota) are free; delete or let expire earlier exports",
            needed=record.reservedBytes,
            free=free,
            total=quota.storage_bytes,
            quota="clientStorageQuota",
        )

    def _insufficient(self, needed: int, quota: int) -> InsufficientStorage:
        free = max(0, quota - self.ledger().committed)
        return InsufficientStorage(
            f"the export needs about {needed} bytes but only {free} of {quota} are free",
            needed=needed,
            free=free,
            total=quota,
        )

    def _update(self, what: str, task_id: UUID | str, **request: Any) -> Any:
        return self._call(
            what, "update_item", TableName=self._table, Key={"id": {"S": str(task_id)}}, **request
        )

    def set_execution(self, task_id: UUID, execution_arn: str) -> None:
        self._update(
            "recording the execution",
            task_id,
            UpdateExpression="SET executionArn = :e",
            ExpressionAttributeValues={":e": {"S": execution_arn}},
        )

    def start(self, task_id: UUID | str) -> TaskRecord:
        """PENDING -> IN_PROGRESS (a re-run finds it IN_PROGRESS already); refused once the task is final."""
        task = self.get(task_id)
        status = TaskStatus.IN_PROGRESS
        condition = _Condition()
        allowed = condition.status_in(ALLOWED_FROM[status])
        try:
            response = self._update(
                "starting the task",
                task_id,
                UpdateExpression="SET #s = :ip, ownerStatus = :os, updatedAt = :u",
                ConditionExpression=f"attribute_exists(id) AND {allowed}",
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={
                    **condition.values,
                    ":ip": {"S": status.value},
                    ":os": {"S": f"{task.owner}#{status.value}"},
                    ":u": {"S": stamp(datetime.now(UTC))},
                },
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer active") from error
        return from_item(response["Attributes"])

    def report_progress(self, task_id: UUID | str, progress: int) -> bool:
        """Raise progress of a running task; a lower value (a re-run step) or a finished task is ignored."""
        condition = _Condition()
        condition.names["#p"] = "progress"
        try:
            self._update(
                "recording progress",
                task_id,
                UpdateExpression="SET #p = :p",
                ConditionExpression=f"{condition.status_in(RUNNING)} AND #p < :p",
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={**condition.values, ":p": {"N": str(progress)}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish_item(self, task_id: UUID | str, index: int) -> int:
        """Record a fanned-out export's finished work item (a set: a retried item counts once); returns how
        many distinct items have finished (0 once the task is no longer running)."""
        condition = _Condition()
        try:
            response = self._update(
                "recording a finished work item",
                task_id,
                UpdateExpression="ADD itemsDone :i",
                ConditionExpression=condition.status_in(RUNNING),
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={**condition.values, ":i": {"NS": [str(index)]}},
                ReturnValues="ALL_NEW",  # moto leaves ADDed sets out of UPDATED_NEW
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return 0
        return len(response["Attributes"]["itemsDone"]["NS"])

    def set_artifacts(self, task_id: UUID | str, artifacts: list[StoredArtifact], progress: int) -> None:
        condition = _Condition()
        condition.names["#p"] = "progress"
        try:
            self._update(
                "recording the artifacts",
                task_id,
                UpdateExpression="SET artifacts = :a, #p = :p",
                ConditionExpression=f"{condition.status_in(RUNNING)} AND #p <= :p",
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={
                    **condition.values,
                    ":a": serialize(artifacts),
                    ":p": {"N": str(progress)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer active") from error

    def merge_webhooks(self, task_id: UUID | str, hooks: list[Webhook]) -> None:
        """Add a duplicate request's webhooks to a task that has not finished yet.

        Hooks the task already has are not added again; the task holds at most MAX_WEBHOOKS_PER_TASK
        (UnprocessableRequest over it), so its item cannot grow without bound however many identical
        requests arrive. StaleTransition when the task finished meanwhile.
        """
        task = self.get(task_id)
        known = {(str(h.url), tuple(sorted(h.events))) for h in task.all_webhooks()}
        new = []
        for hook in hooks:
            key = (str(hook.url), tuple(sorted(hook.events)))
            if key not in known:
                known.add(key)
                new.append(hook)
        if not new:
            return
        room = MAX_WEBHOOKS_PER_TASK - len(task.request.webhooks) - len(new)
        if room < 0:
            raise _too_many_webhooks(task_id)
        condition = _Condition()
        try:
            self._update(
                "adding webhooks",
                task_id,
                UpdateExpression="SET extraWebhooks = list_append(if_not_exists(extraWebhooks, :empty), :h)",
                ConditionExpression=(
                    f"{condition.status_in(ACTIVE)} AND "
                    "(attribute_not_exists(extraWebhooks) OR size(extraWebhooks) <= :room)"
                ),
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={
                    **condition.values,
                    ":h": _json_list(new),
                    ":empty": {"L": []},
                    ":room": {"N": str(room)},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            if self.get(task_id).status in ACTIVE:
                raise _too_many_webhooks(task_id) from error
            raise StaleTransition(f"task {task_id} finished meanwhile") from error

    def add_notes(self, task_id: UUID | str, notes: list[str]) -> None:
        """Append notes a running task does not have yet (a re-run step adds nothing twice)."""
        if not notes:
            return  # most exports: no read at all
        new = [note for note in notes if note not in self.get(task_id).notes]
        if not new:
            return
        condition = _Condition()
        try:
            self._update(
                "adding notes",
                task_id,
                UpdateExpression="SET notes = list_append(if_not_exists(notes, :empty), :n)",
                ConditionExpression=condition.status_in(ACTIVE),
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={
                    **condition.values,
                    ":n": {"L": [{"S": note} for note in new]},
                    ":empty": {"L": []},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer active") from error

    def set_transport(self, task_id: UUID | str, status: TransportStatus) -> None:
        """Store one transport's state (the others are untouched)."""
        self._update(
            "storing a transport's state",
            task_id,
            UpdateExpression="SET transportStates.#i = :v",
            ConditionExpression="attribute_exists(transportStates.#i)",
            ExpressionAttributeNames={"#i": str(status.index)},
            ExpressionAttributeValues={":v": {"S": status.model_dump_json()}},
        )

    def extend_expiry(self, task_id: UUID | str, expired_at: datetime) -> bool:
        """Push expiredAt later; False when the task is not completed or already expires that late."""
        condition = _Condition()
        try:
            self._update(
                "extending the expiry",
                task_id,
                UpdateExpression="SET expiredAt = :e",
                ConditionExpression=f"{condition.status_in({TaskStatus.COMPLETED})} AND expiredAt < :e",
                ExpressionAttributeNames=condition.names,
                ExpressionAttributeValues={**condition.values, ":e": {"S": stamp(expired_at)}},
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
        allowed_from: frozenset[TaskStatus] | None = None,
        remove: tuple[str, ...] = (),
        **fields: Any,
    ) -> None:
        """Move to ``status`` (and at least ``progress``); StaleTransition if that would go backwards.

        ``ledger`` = (reserved delta, used delta) is applied to the storage ledger in the same transaction.
        Extra ``fields`` are set (and ``remove`` attributes removed) in the same conditional write.
        ``allowed_from`` narrows or replaces the usual sources (a restore: COMPLETED only from ARCHIVED).
        """
        task = self.get(task_id)
        sources = allowed_from if allowed_from is not None else ALLOWED_FROM[status]
        condition = _Condition()
        conditions = ["attribute_exists(id)", condition.status_in(sources)]
        values: dict[str, Any] = {
            **condition.values,
            ":s": {"S": status.value},
            ":u": {"S": stamp(now)},
            ":os": {"S": f"{task.owner}#{status.value}"},
        }
        names = condition.names
        sets = ["#s = :s", "updatedAt = :u", "ownerStatus = :os"]
        if progress is not None:
            names["#p"] = "progress"
            values[":p"] = {"N": str(progress)}
            sets.append("#p = :p")
            conditions.append("#p <= :p")
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = serialize(value)
            sets.append(f"#f{index} = :f{index}")
        update = {
            "TableName": self._table,
            "Key": {"id": {"S": str(task_id)}},
            "UpdateExpression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(remove) if remove else ""),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        what = f"moving the task to {status.value}"
        reserved, used = ledger or (0, 0)
        moves_bytes = (reserved, used) != (0, 0)
        ends_run = status in ENDS_RUN and TaskStatus.ARCHIVED not in sources  # a restore starts no run
        try:
            if not self._counters or not (moves_bytes or ends_run):
                self._call(what, "update_item", **update)
            else:
                settle = {
                    ":r": {"N": str(reserved)},
                    ":d": {"N": str(used)},
                    ":c": {"N": str(reserved + used)},
                }
                items: list[dict[str, Any]] = [{"Update": update}]
                if moves_bytes:
                    items.append(
                        {
                            "Update": {
                                "TableName": self._counters,
                                "Key": LEDGER_KEY,
                                "UpdateExpression": "ADD reservedBytes :r, usedBytes :d, committedBytes :c",
                                "ExpressionAttributeValues": settle,
                            }
                        }
                    )
                client = "ADD reservedBytes :r, usedBytes :d, committedBytes :c"
                items.append(
                    {
                        "Update": {
                            "TableName": self._counters,
                            "Key": client_ledger_key(task.owner),
                            "UpdateExpression": client + (", running :m" if ends_run else ""),
                            "ExpressionAttributeValues": {
                                **settle,
                                **({":m": {"N": "-1"}} if ends_run else {}),
                            },
                        }
                    }
                )
                self._call(what, "transact_write_items", TransactItems=items)
        except (
            self._db.exceptions.ConditionalCheckFailedException,
            self._db.exceptions.TransactionCanceledException,
        ) as error:
            raise StaleTransition(f"task {task_id} cannot move to {status}") from error

    def request_restore(self, task_id: UUID | str, archive: ArchiveInfo) -> None:
        """Record that an ARCHIVED task's restore was requested (the sweep finishes it when thawed)."""
        condition = _Condition()
        try:
            self._update(
                "recording the restore request",
                task_id,
                UpdateExpression="SET #a = :a, restoreState = :r",
                ConditionExpression=condition.status_in({TaskStatus.ARCHIVED}),
                ExpressionAttributeNames={**condition.names, "#a": "archive"},
                ExpressionAttributeValues={
                    **condition.values,
                    ":a": serialize(archive),
                    ":r": {"S": RESTORING},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException as error:
            raise StaleTransition(f"task {task_id} is no longer ARCHIVED") from error

    def restoring(self, limit: int = 100) -> list[str]:
        """Archived tasks whose restore was requested and has not finished."""
        response = self._call(
            "listing restoring tasks",
            "query",
            TableName=self._table,
            IndexName=BY_RESTORE,
            Limit=limit,
            KeyConditionExpression="restoreState = :r",
            ExpressionAttributeValues={":r": {"S": RESTORING}},
        )
        return [str(item["id"]["S"]) for item in response["Items"]]

    def claim_notification(self, task_id: UUID | str, event: str = "final") -> bool:
        """Mark a callback event as sent; True only for the first caller (no second final webhook)."""
        try:
            self._update(
                "claiming the notification",
                task_id,
                UpdateExpression="ADD notifiedEvents :e",
                ConditionExpression="attribute_exists(id) AND NOT contains(notifiedEvents, :v)",
                ExpressionAttributeValues={":e": {"SS": [event]}, ":v": {"S": event}},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _too_many_webhooks(task_id: UUID | str) -> UnprocessableRequest:
    return UnprocessableRequest(
        f"export task {task_id} answers this request but already has as many webhooks as a task may hold",
        [FieldProblem("webhooks", f"at most {MAX_WEBHOOKS_PER_TASK} per task, identical requests included")],
    )


def stamp(value: datetime) -> str:
    """Fixed-width UTC timestamps, so string order is time order in the indexes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    """A Python value as the table stores it: timestamps fixed-width, models and lists of them as JSON,
    numbers as Decimal (DynamoDB's number type)."""
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, list | dict):
        return json.dumps(_jsonable(value))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def serialize(value: Any) -> dict[str, Any]:
    """One attribute value (boto3's TypeSerializer over the stored form)."""
    return dict(_serializer.serialize(_plain(value)))


def _json_list(models: Iterable[BaseModel]) -> dict[str, Any]:
    return {"L": [{"S": model.model_dump_json()} for model in models]}


def to_item(record: TaskRecord) -> dict[str, Any]:
    """The stored item of a task: the indexed scalars as attributes, nested models as JSON."""
    values = record.model_dump(
        exclude={*JSON_FIELDS, *JSON_LISTS, "notes", "transportStates"}, exclude_none=True
    )
    item = {name: serialize(value) for name, value in values.items()}
    if record.transportStates:  # one JSON string per transport: each is updated on its own
        item["transportStates"] = {
            "M": {k: {"S": v.model_dump_json()} for k, v in record.transportStates.items()}
        }
    item["request"] = serialize(record.request)
    item["artifacts"] = serialize(record.artifacts)
    if record.archive is not None:
        item["archive"] = serialize(record.archive)
    item["ownerStatus"] = {"S": f"{record.owner}#{record.status.value}"}
    for name in JSON_LISTS:
        item[name] = _json_list(getattr(record, name))
    if record.notes:
        item["notes"] = {"L": [{"S": note} for note in record.notes]}
    return item


def from_item(item: dict[str, Any]) -> TaskRecord:
    """The task a stored item (or a stream image) holds."""
    values = {name: _deserializer.deserialize(value) for name, value in item.items()}
    for name in JSON_FIELDS:
        if name in values:
            values[name] = json.loads(values[name])
    for name in JSON_LISTS:
        values[name] = [json.loads(entry) for entry in values.get(name, [])]
    values["transportStates"] = {k: json.loads(v) for k, v in values.get("transportStates", {}).items()}
    values.pop("ownerStatus", None)
    values.pop("restoreState", None)
    values.pop("notifiedEvents", None)
    values.pop("itemsDone", None)  # work items of a fanned-out export (progress says how far it is)
    values.pop("deliveries", None)  # items written before delivery records had their own table
    return TaskRecord.model_validate(values)


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_token(token: str, partition: str, value: str) -> dict[str, Any]:
    """The LastEvaluatedKey a page token stands for, only if it is one this query could have issued: the
    index's keys and the table's, each a string, in this caller's partition. Anything else is a 400 (a
    foreign or forged key would otherwise reach DynamoDB and fail there)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(decoded, dict) or set(decoded) != {"id", partition, "createdAt"}:
            raise ValueError("not a page token")
        for attribute in decoded.values():
            if not (
                isinstance(attribute, dict) and set(attribute) == {"S"} and isinstance(attribute["S"], str)
            ):
                raise ValueError("not a page token")
        if decoded[partition]["S"] != value:
            raise ValueError("another listing's token")
    except (ValueError, TypeError) as error:
        raise InvalidRequest(
            "nextToken is not valid", [FieldProblem("nextToken", "not a token this API issued")]
        ) from error
    return decoded


class RequestAnswers:
    """Answers to exports requested by events, kept in the dedupe table under ``request#<owner>#<id>``: the
    idempotency record that makes a redelivered or repeated event harmless."""

    def __init__(self, dynamodb_client: DynamoDBClient, dedupe_table: str) -> None:
        self._db = dynamodb_client
        self._table = dedupe_table

    @staticmethod
    def _key(owner: str, request_id: str) -> dict[str, Any]:
        return {"fingerprint": {"S": f"request#{owner}#{request_id}"}}

    def get(self, owner: str, request_id: str) -> Answer | None:
        from geoexport.tasks.requests import Answer

        with aws.translated("reading an export request's answer"):
            item = self._db.get_item(
                TableName=self._table, Key=self._key(owner, request_id), ConsistentRead=True
            )
        if "Item" not in item:
            return None
        return Answer.model_validate_json(item["Item"]["answer"]["S"])

    def put(self, answer: Answer) -> None:
        """Keep the first answer (a concurrent duplicate that answered first wins; both met one task)."""
        item = {**self._key(answer.requestOwner, answer.requestId), "answer": {"S": answer.model_dump_json()}}
        with aws.translated("recording an export request's answer"):
            try:
                self._db.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(fingerprint)"
                )
            except self._db.exceptions.ConditionalCheckFailedException:
                pass


class TaskLogRepository:
    """Task logs: one item per entry, keyed by task and by what the entry records (see tasks.log)."""

    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def add(self, task_id: UUID | str, entry: LogEntry, key: str) -> None:
        item = {"taskId": {"S": str(task_id)}, "entry": {"S": key}, "body": {"S": entry.model_dump_json()}}
        with aws.translated("writing the task's log"):
            self._db.put_item(TableName=self._table, Item=item)

    def _query(self, task_id: UUID | str, prefix: str = "") -> list[dict[str, Any]]:
        condition = "taskId = :t" + (" AND begins_with(#e, :p)" if prefix else "")
        values: dict[str, Any] = {":t": {"S": str(task_id)}}
        if prefix:
            values[":p"] = {"S": prefix}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if prefix:
            request["ExpressionAttributeNames"] = {"#e": "entry"}
        items: list[dict[str, Any]] = []
        with aws.translated("reading the task's log"):
            for page in self._db.get_paginator("query").paginate(**request):
                items.extend(page["Items"])
        return items

    def entries(self, task_id: UUID | str) -> list[LogEntry]:
        from geoexport.tasks.log import LogEntry

        return [LogEntry.model_validate_json(item["body"]["S"]) for item in self._query(task_id)]

    def runs(self, task_id: UUID | str, step: str) -> tuple[int, bool]:
        from geoexport.tasks.log import LogEntry, LogType, step_key

        items = {item["entry"]["S"]: item for item in self._query(task_id, f"step#{step}#")}
        started = sum(1 for key in items if key.endswith("#start"))
        end = items.get(step_key(step, started, "end"))
        finished = (
            end is not None and LogEntry.model_validate_json(end["body"]["S"]).type is LogType.STEP_FINISH
        )
        return started, finished
