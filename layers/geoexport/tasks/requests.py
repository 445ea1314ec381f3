"""Exports requested by events (issue 15): the third door, beside the API and v1.

An ``ExportRequested`` event on the exports bus carries the body of ``POST /export-tasks`` plus
``requestOwner`` (the client it acts for; who may put events on the bus is trusted for that, as a REST
caller is after its token: SECURITY.md says how to scope it) and optionally ``requestId``. A rule sends it
to a queue; each message is answered through the same TaskService as the API (validation, dedupe, quotas,
ownership), and the answer goes back on the bus: ``ExportRequestAccepted`` (the task, and whether an
identical one answered) or ``ExportRequestRejected`` (the API's status code and ``errors``). The request id
(``detail.requestId``, else the event's ``id``) is an idempotency key: a redelivered or repeated event gets
the first answer and makes nothing new. A message that is not a request at all is dead-lettered with the
reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from geoexport.api.http import error_body, problems_from_pydantic, status_for
from geoexport.errors import FieldProblem, GeoexportError, ServiceUnavailable, TransientError
from geoexport.models.tasks import CreateExportTaskRequest, ExportTask
from geoexport.tasks.service import CreateOutcome

REQUESTED = "ExportRequested"


class Outcome(StrEnum):
    """How a request was answered: also the answer event's detail-type."""

    ACCEPTED = "ExportRequestAccepted"
    REJECTED = "ExportRequestRejected"


ACCEPTED, REJECTED = Outcome.ACCEPTED, Outcome.REJECTED
SOURCE = "geoexport.exports"
REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"


class Envelope(BaseModel):
    """What an event's ``detail`` carries besides the create body."""

    requestOwner: str = Field(min_length=1, max_length=128, description="the client the export is for")
    requestId: str = Field(pattern=REQUEST_ID, description="idempotency key (default: the event's id)")


class Answer(BaseModel):
    """The event answering a request (and what a repeated request gets again)."""

    requestId: str
    requestOwner: str
    outcome: Outcome
    taskId: str | None = None
    created: bool | None = None  # False: an identical task answered (dedupe)
    status: str | None = None  # the task's status when accepted
    statusCode: int  # what the API would have answered
    message: str = ""
    errors: list[dict[str, str]] = Field(default_factory=list)


class Creator(Protocol):
    def create(self, request: CreateExportTaskRequest, owner: str = "anonymous") -> CreateOutcome: ...


class Answers(Protocol):
    def get(self, owner: str, request_id: str) -> Answer | None: ...
    def put(self, answer: Answer) -> None: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class DeadLetters(Protocol):
    def park(self, body: str, reason: str) -> None: ...


class Malformed(Exception):
    """Not an export request at all: dead-lettered with this reason."""


def parse(body: str, message_id: str) -> tuple[Envelope, dict[str, Any]]:
    """An SQS body (EventBridge's envelope around the detail) -> who asks, and the create body."""
    try:
        message = json.loads(body)
    except ValueError as error:
        raise Malformed(f"not JSON: {error}") from None
    if not isinstance(message, dict) or message.get("detail-type") != REQUESTED:
        raise Malformed(f"not an EventBridge event with detail-type {REQUESTED}")
    detail = message.get("detail")
    if not isinstance(detail, dict):
        raise Malformed("detail is not a JSON object")
    fields = {"requestId": str(message.get("id") or message_id), **detail}
    try:
        envelope = Envelope.model_validate({k: fields.get(k) for k in ("requestOwner", "requestId")})
    except ValidationError as error:
        reasons = "; ".join(f"{p.field}: {p.reason}" for p in problems_from_pydantic(error.errors()))
        raise Malformed(reasons) from None
    return envelope, {k: v for k, v in detail.items() if k not in ("requestOwner", "requestId")}


class ExportRequests:
    def __init__(
        self,
        service: Creator,
        answers: Answers,
        publisher: Publisher,
        dead_letters: DeadLetters,
        client_enabled: Callable[[str], bool],
    ) -> None:
        self._service = service
        self._answers = answers
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._client_enabled = client_enabled

    def handle(self, body: str, message_id: str) -> Answer | None:
        """Answer one message (None: dead-lettered). Passing failures are raised: SQS delivers it again."""
        try:
            envelope, create_body = parse(body, message_id)
        except Malformed as error:
            self._dead_letters.park(body, str(error))
            return None
        known = self._answers.get(envelope.requestOwner, envelope.requestId)
        if known is not None:
            return known  # redelivered or repeated: the first answer stands, nothing new is made
        answer = self._answer(envelope, create_body)
        self._answers.put(answer)
        self._publisher.publish(answer.outcome.value, answer.model_dump(mode="json"))
        return answer

    def _answer(self, envelope: Envelope, create_body: dict[str, Any]) -> Answer:
        if not self._client_enabled(envelope.requestOwner):
            problem = FieldProblem("requestOwner", "no such client, or it is disabled")
            return _rejected(envelope, 403, "the request's owner cannot export", [problem])
        try:
            request = CreateExportTaskRequest.model_validate(create_body)
        except ValidationError as error:
            problems = problems_from_pydantic(list(error.errors(include_url=False)))
            return _rejected(envelope, 400, "the request is invalid", problems)
        try:
            outcome = self._service.create(request, owner=envelope.requestOwner)
        except (TransientError, ServiceUnavailable):
            raise
        except GeoexportError as error:
            return _rejected(envelope, status_for(error), error.message, error.problems)
        task: ExportTask = outcome.task
        return Answer(
            requestId=envelope.requestId,
            requestOwner=envelope.requestOwner,
            outcome=ACCEPTED,
            taskId=str(task.id),
            created=outcome.created,
            status=task.status.value,
            statusCode=201 if outcome.created else 200,
        )


def _rejected(envelope: Envelope, status: int, message: str, problems: list[FieldProblem]) -> Answer:
    """What the API would have answered: its status code, message and ``errors``."""
    body = error_body(message, problems)
    return Answer(
        requestId=envelope.requestId,
        requestOwner=envelope.requestOwner,
        outcome=REJECTED,
        statusCode=status,
        message=body["message"],
        errors=body["errors"],
    )
