"""The messaging API (seed 004's AMQP, here EventBridge -> SQS): create, patch and delete requests as events.

Each request runs through the same FeatureService as REST. Its life is GRANTED (well-formed, accepted), then
SUCCESS (with the urn) or DENIED (with every reason) or ERROR (an internal failure: SQS delivers it again).
Each step is kept (``GET /requests/{id}``, the owner only) and published on the bus. A message that is not a
request at all goes to the dead-letter queue with the reason, and the batch goes on.

A request names the client it acts for (``requestOwner``): putting events on the bus is IAM-guarded, so the
producer is trusted for that, as a REST caller is trusted after its token; the client must exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geoexport.api.http import problems_from_pydantic
from geoexport.errors import FieldProblem, GeoexportError, InvalidRequest, NotFound, TransientError
from geoexport.features.feature import DataType, FeatureIn
from geoexport.features.files import StorageTarget
from geoexport.features.service import FeatureService

#: EventBridge ``detail-type`` of requests, and the prefix of the outcome events.
REQUEST_DETAIL_TYPE = "FeatureRequest"
OUTCOME_SOURCE = "geoexport.features"


class Priority(StrEnum):
    HIGH = "HIGH"
    NORMAL = "NORMAL"
    LOW = "LOW"


PRIORITY_ORDER = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}


class StorageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pluginBusinessId: str = Field(min_length=1, max_length=128)
    targetTypes: list[DataType] = Field(default_factory=list)
    storePath: str = Field("", max_length=512)


class RequestMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str = Field(min_length=1, max_length=256)
    sessionOwner: str = Field(min_length=1, max_length=256)
    storages: list[StorageIn] = Field(default_factory=list, max_length=20)
    priority: Priority = Priority.NORMAL

    def targets(self) -> list[StorageTarget]:
        return [
            StorageTarget(s.pluginBusinessId, frozenset(s.targetTypes), s.storePath) for s in self.storages
        ]


class FeatureRequest(BaseModel):
    """One request (the event's ``detail``, or a queue message's body)."""

    model_config = ConfigDict(extra="forbid")
    requestId: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    requestType: Literal["CREATE", "PATCH", "DELETE"]
    requestOwner: str = Field(min_length=1, max_length=128, description="the client the request acts for")
    metadata: RequestMetadata
    feature: dict[str, Any] = Field(
        description="CREATE: the feature; PATCH: urn plus a merge patch; DELETE: urn (and optional etag)"
    )


class RequestState(StrEnum):
    GRANTED = "GRANTED"
    DENIED = "DENIED"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


class RequestStep(BaseModel):
    state: RequestState
    at: datetime


class RequestRecord(BaseModel):
    """What ``GET /requests/{id}`` answers and the outcome events carry."""

    requestId: str
    requestType: str
    requestOwner: str
    session: str
    sessionOwner: str
    priority: Priority
    state: RequestState
    urn: str | None = None
    providerId: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)
    steps: list[RequestStep] = Field(default_factory=list)
    receivedAt: datetime
    updatedAt: datetime


class RequestStore(Protocol):
    def put(self, record: RequestRecord) -> None: ...
    def get(self, request_id: str) -> RequestRecord | None: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class DeadLetters(Protocol):
    def park(self, body: str, reason: str) -> None: ...


class Malformed(Exception):
    """Not a request at all: dead-lettered with this reason."""


def parse(body: str, fallback_id: str) -> FeatureRequest:
    """An SQS body: EventBridge's envelope around a request, or a request sent straight to the queue."""
    try:
        message = json.loads(body)
    except ValueError as error:
        raise Malformed(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise Malformed("not a JSON object")
    if "detail" in message and "detail-type" in message:
        if message["detail-type"] != REQUEST_DETAIL_TYPE:
            raise Malformed(f"detail-type {message['detail-type']!r} is not {REQUEST_DETAIL_TYPE}")
        fallback_id = str(message.get("id") or fallback_id)
        message = message["detail"]
        if not isinstance(message, dict):
            raise Malformed("detail is not a JSON object")
    try:
        return FeatureRequest.model_validate({"requestId": fallback_id, **message})
    except ValidationError as error:
        reasons = "; ".join(f"{p.field}: {p.reason}" for p in problems_from_pydantic(error.errors()))
        raise Malformed(reasons) from None


class FeatureRequests:
    def __init__(
        self,
        features: FeatureService,
        store: RequestStore,
        publisher: Publisher,
        dead_letters: DeadLetters,
        client_exists: Callable[[str], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._features = features
        self._store = store
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._client_exists = client_exists
        self._clock = clock

    def take(self, messages: list[tuple[str, str]]) -> list[tuple[str, FeatureRequest]]:
        """Well-formed requests of a batch of (message id, body), HIGH first (then in arrival order); the
        rest are dead-lettered with the reason."""
        requests = []
        for message_id, body in messages:
            try:
                requests.append((message_id, parse(body, message_id)))
            except Malformed as error:
                self._dead_letters.park(body, str(error))
        return sorted(requests, key=lambda pair: PRIORITY_ORDER[pair[1].metadata.priority])

    def _step(self, record: RequestRecord, state: RequestState, **update: Any) -> RequestRecord:
        now = self._clock()
        record = record.model_copy(
            update={
                "state": state,
                "updatedAt": now,
                "steps": [*record.steps, RequestStep(state=state, at=now)],
            }
            | update
        )
        self._store.put(record)
        self._publisher.publish(f"{REQUEST_DETAIL_TYPE}{state.value.title()}", record.model_dump(mode="json"))
        return record

    def handle(self, request: FeatureRequest) -> RequestRecord:
        """Run one request; an internal failure is recorded (ERROR) and raised again, for SQS to retry."""
        known = self._store.get(request.requestId)
        if known is not None and known.state in (RequestState.SUCCESS, RequestState.DENIED):
            return known  # delivered again (at least once): the outcome stands
        now = self._clock()
        record = known or RequestRecord(
            requestId=request.requestId,
            requestType=request.requestType,
            requestOwner=request.requestOwner,
            session=request.metadata.session,
            sessionOwner=request.metadata.sessionOwner,
            priority=request.metadata.priority,
            state=RequestState.GRANTED,
            providerId=str(request.feature.get("id")) if request.requestType == "CREATE" else None,
            receivedAt=now,
            updatedAt=now,
        )
        if known is not None and known.requestOwner != request.requestOwner:
            return known  # a request id is the first sender's
        if not self._client_exists(request.requestOwner):
            return self._step(
                record,
                RequestState.DENIED,
                errors=[{"field": "requestOwner", "reason": "no such client"}],
            )
        record = self._step(record, RequestState.GRANTED)
        try:
            urn = self._run(request)
        except GeoexportError as error:
            if isinstance(error, TransientError):
                self._step(record, RequestState.ERROR, errors=[{"field": "", "reason": error.message}])
                raise
            errors = [p.as_dict() for p in error.problems or [FieldProblem("feature", error.message)]]
            return self._step(record, RequestState.DENIED, errors=errors)
        except Exception as error:
            self._step(
                record,
                RequestState.ERROR,
                errors=[{"field": "", "reason": f"internal: {type(error).__name__}"}],
            )
            raise
        return self._step(record, RequestState.SUCCESS, urn=urn, errors=[])

    def _run(self, request: FeatureRequest) -> str:
        owner, storages = request.requestOwner, request.metadata.targets()
        body = request.feature
        if request.requestType == "CREATE":
            try:
                feature_in = FeatureIn.model_validate(body)
            except ValidationError as error:
                raise _invalid(error) from None
            created, _ = self._features.create(feature_in, owner, storages)
            return created.urn
        urn = body.get("urn")
        if not isinstance(urn, str):
            raise InvalidRequest(
                "the urn is expected", [FieldProblem("feature.urn", "required for PATCH and DELETE")]
            )
        etag = body.get("etag") if isinstance(body.get("etag"), str) else None
        if request.requestType == "PATCH":
            patch = {k: v for k, v in body.items() if k not in ("urn", "etag", "id", "type")}
            patched, _ = self._features.patch(urn, patch, etag, owner, storages)
            return patched.urn
        self._features.delete(urn, etag, owner)
        return urn


def request_of(store: RequestStore, request_id: str, owner: str) -> RequestRecord:
    """A request's record, for the client it acted for only (others get 404, as for features)."""
    record = store.get(request_id)
    if record is None or record.requestOwner != owner:
        raise NotFound(f"no request {request_id}")
    return record


def _invalid(error: ValidationError) -> GeoexportError:
    problems = [
        FieldProblem(f"feature.{p.field}" if p.field else "feature", p.reason)
        for p in problems_from_pydantic(error.errors())
    ]
    return InvalidRequest("the feature is not valid", problems)
