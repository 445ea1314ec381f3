"""Export definitions and their runs in DynamoDB (the definitions table).

One partition per definition: the definition itself (sort key ``DEF``) and its runs (``RUN#<time>#<cause>``,
so a Query newest first lists them in order, and a run's key is its idempotency key: a schedule delivered
twice for the same time makes one run). The definition item carries ``owner`` (index ``ByOwner``) and, when
it follows a source, ``sourceRecord`` (index ``BySource``: a catalog record's id, or ``features#<owner>``);
run items carry neither, so both indexes hold definitions only.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

from geoexport import aws
from geoexport.definitions.models import DefinitionRun, ExportDefinition
from geoexport.errors import FieldProblem, InvalidRequest, NotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_OWNER, BY_SOURCE = "ByOwner", "BySource"
DEFINITION = "DEF"


def _encode(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode(token: str, expected: set[str], pinned: tuple[str, str]) -> dict[str, Any]:
    """A page token back to the key it stands for, only if this query could have issued it (else 400)."""
    problem = InvalidRequest(
        "nextToken is not valid", [FieldProblem("nextToken", "not a token of this list")]
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise problem from None
    if not isinstance(key, dict) or set(key) != expected:
        raise problem
    if any(not isinstance(v, dict) or set(v) != {"S"} or not isinstance(v["S"], str) for v in key.values()):
        raise problem
    if key[pinned[0]]["S"] != pinned[1]:
        raise problem
    return key


class DefinitionRepository:
    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    def _call(self, what: str, operation: str, **request: Any) -> Any:
        with aws.translated(what):
            return getattr(self._db, operation)(TableName=self._table, **request)

    # -- definitions -----------------------------------------------------------------------------------------
    def put(self, definition: ExportDefinition, new: bool) -> None:
        item: dict[str, Any] = {
            "definitionId": {"S": str(definition.id)},
            "sk": {"S": DEFINITION},
            "owner": {"S": definition.owner},
            "createdAt": {"S": definition.createdAt.isoformat()},
            "body": {"S": definition.model_dump_json()},
        }
        followed = definition.source_key(definition.owner)
        if followed:
            item["sourceRecord"] = {"S": followed}
        condition = "attribute_not_exists(definitionId)" if new else "attribute_exists(definitionId)"
        try:
            self._call("storing the definition", "put_item", Item=item, ConditionExpression=condition)
        except self._db.exceptions.ConditionalCheckFailedException:
            raise NotFound(f"export definition {definition.id} does not exist") from None

    def find(self, definition_id: UUID | str) -> ExportDefinition | None:
        item = self._call(
            "reading the definition",
            "get_item",
            Key={"definitionId": {"S": str(definition_id)}, "sk": {"S": DEFINITION}},
            ConsistentRead=True,
        ).get("Item")
        return ExportDefinition.model_validate_json(item["body"]["S"]) if item else None

    def delete(self, definition_id: UUID | str) -> None:
        """The definition and its runs (the runs' tasks stay, as ordinary tasks)."""
        request: dict[str, Any] = {
            "KeyConditionExpression": "definitionId = :d",
            "ExpressionAttributeValues": {":d": {"S": str(definition_id)}},
            "ProjectionExpression": "definitionId, sk",
        }
        while True:
            page = self._call("listing the definition's items", "query", **request)
            for item in page["Items"]:
                self._call("deleting the definition", "delete_item", Key=item)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def page(self, owner: str, limit: int, token: str | None) -> tuple[list[ExportDefinition], str | None]:
        request: dict[str, Any] = {
            "IndexName": BY_OWNER,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": owner}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if token:
            request["ExclusiveStartKey"] = _decode(
                token, {"definitionId", "sk", "owner", "createdAt"}, ("owner", owner)
            )
        answer = self._call("listing definitions", "query", **request)
        items = [ExportDefinition.model_validate_json(i["body"]["S"]) for i in answer["Items"]]
        last = answer.get("LastEvaluatedKey")
        return items, _encode(last) if last else None

    def subscribed(self, source: str) -> list[UUID]:
        """Definitions that follow this source: a catalog record's id, or ``features#<owner>``."""
        ids: list[UUID] = []
        request: dict[str, Any] = {
            "IndexName": BY_SOURCE,
            "KeyConditionExpression": "sourceRecord = :r",
            "ExpressionAttributeValues": {":r": {"S": source}},
        }
        while True:
            answer = self._call("finding subscribed definitions", "query", **request)
            ids += [UUID(item["definitionId"]["S"]) for item in answer["Items"]]
            if "LastEvaluatedKey" not in answer:
                return ids
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # -- runs ------------------------------------------------------------------------------------------------
    def _run_item(self, run: DefinitionRun) -> dict[str, Any]:
        return {
            "definitionId": {"S": str(run.definitionId)},
            "sk": {"S": f"RUN#{run.runId}"},
            "body": {"S": run.model_dump_json(exclude={"taskStatus"})},
        }

    def claim_run(self, run: DefinitionRun) -> DefinitionRun | None:
        """Store a new run; None when a run with its key exists (a repeated trigger)."""
        try:
            self._call(
                "storing the run",
                "put_item",
                Item=self._run_item(run),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return run

    def save_run(self, run: DefinitionRun) -> None:
        self._call("storing the run", "put_item", Item=self._run_item(run))

    def get_run(self, definition_id: UUID | str, run_id: str) -> DefinitionRun | None:
        item = self._call(
            "reading the run",
            "get_item",
            Key={"definitionId": {"S": str(definition_id)}, "sk": {"S": f"RUN#{run_id}"}},
            ConsistentRead=True,
        ).get("Item")
        return DefinitionRun.model_validate_json(item["body"]["S"]) if item else None

    def runs(
        self, definition_id: UUID | str, limit: int, token: str | None = None
    ) -> tuple[list[DefinitionRun], str | None]:
        """Newest first."""
        request: dict[str, Any] = {
            "KeyConditionExpression": "definitionId = :d AND begins_with(sk, :r)",
            "ExpressionAttributeValues": {":d": {"S": str(definition_id)}, ":r": {"S": "RUN#"}},
            "ScanIndexForward": False,
            "Limit": limit,
            "ConsistentRead": True,
        }
        if token:
            request["ExclusiveStartKey"] = _decode(
                token, {"definitionId", "sk"}, ("definitionId", str(definition_id))
            )
        answer = self._call("listing runs", "query", **request)
        runs = [DefinitionRun.model_validate_json(i["body"]["S"]) for i in answer["Items"]]
        last = answer.get("LastEvaluatedKey")
        return runs, _encode(last) if last else None
