"""Response declarations for the OpenAPI document, shared by every route (errors have one shape)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel

from geoexport.models.tasks import ExportTask, WebhookDelivery

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, wrong types, unknown fields, invalid geometry or parameters",
    401: "Missing, invalid or expired bearer token (or, for /auth/token, wrong client credentials)",
    403: "The token's scopes do not allow this method",
    404: "No such task or catalog record (or not yours)",
    409: "The task's state does not allow this (e.g. it already ended), or the name/id is taken",
    412: "If-Match names a version that is no longer the current one",
    413: "The request body is too large",
    415: "The body is not JSON",
    422: "Well-formed but cannot be served (ROI outside the record, resolution finer than the source)",
    429: "Too many: the client's usage plan throttles it, it runs as many exports as its quota allows "
    "(Retry-After), or (for /auth/token) too many failed attempts for this client id or address "
    "(Retry-After)",
    503: "A dependency is unavailable; try again",
    507: "The export does not fit the free storage (the service's or the client's own quota, named in "
    "`quota`); nothing was started",
}


class Problem(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Our errors always list the problems; API Gateway's own 401/403/413 bodies carry only a message."""

    message: str
    errors: list[Problem] = []


class TaskPage(BaseModel):
    items: list[ExportTask]
    nextToken: str | None = None


class ReplayAnswer(BaseModel):
    """What ``callbacks:replay`` queued: each exhausted delivery, due at once."""

    taskId: UUID
    replayed: list[WebhookDelivery]


def responses(
    success: dict[int, tuple[str, Any]],
    *errors: int,
    public: bool = False,
    media_type: str = "application/json",
) -> dict[int, Any]:
    """Success and error responses of a route (success in ``media_type``); authenticated routes also answer
    401, 403 and 429 (the client's usage plan throttles it)."""
    declared: dict[int, Any] = {
        code: {"description": text, "content": {media_type: {"model": model}}}
        for code, (text, model) in success.items()
    }
    for code in (400, *errors, *(() if public else (401, 403, 429))):
        declared[code] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return declared
