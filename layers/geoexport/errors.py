"""Domain errors. Each says which input field is at fault (when one is) and why.

HTTP status codes are assigned in one place, :data:`geoexport.api.http.STATUS_BY_ERROR`; pipeline steps
raise these too and the state machine's Retry/Catch match on the class name (Lambda's ``errorType``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class GeoexportError(Exception):
    """Base of every error the service raises on purpose; its message is safe to show a user."""

    #: When set, the API answers with a ``Retry-After`` header: the same request may pass after that long.
    retry_after_seconds: int | None = None

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidRequest(GeoexportError):
    """The request is malformed or breaks the schema."""


class Unauthorized(GeoexportError):
    """No valid credentials (401)."""


class Forbidden(GeoexportError):
    """Authenticated, but the token's scopes do not allow this (403)."""


class PayloadTooLarge(GeoexportError):
    """The request is larger than a configured bound (413)."""


class NotFound(GeoexportError):
    """A referenced thing (task, catalog record) does not exist."""


class Conflict(GeoexportError):
    """The request clashes with the resource's state (e.g. aborting a finished task)."""


class PreconditionFailed(GeoexportError):
    """If-Match names a version that is no longer the current one (412)."""


class UnprocessableRequest(GeoexportError):
    """Well-formed, but cannot be done: ROI outside the record, resolution finer than the source."""


class InsufficientStorage(GeoexportError):
    """The export's estimated size does not fit the free storage (the service's, or the client's own
    quota: ``quota`` names which); nothing was started."""

    def __init__(self, message: str, needed: int, free: int, total: int, quota: str = "storageQuota") -> None:
        super().__init__(
            message,
            [FieldProblem("ROI", f"needs about {needed} bytes; {free} of {total} free ({quota})")],
        )
        self.quota = quota
        self.needed, self.free, self.total = needed, free, total


class TooManyExports(GeoexportError):
    """The client already runs as many exports as its quota allows (429); retry when one ends."""

    def __init__(self, message: str, running: int, limit: int) -> None:
        super().__init__(
            message,
            [FieldProblem("maxConcurrentExports", f"{running} of {limit} concurrent exports are running")],
        )
        self.running, self.limit = running, limit
        self.retry_after_seconds = 60  # exports take minutes; asking again sooner only burns requests


class TooManyAttempts(GeoexportError):
    """Too many failed token requests for this client id or from this address (429 with Retry-After)."""

    def __init__(self, field: str, seconds: int) -> None:
        super().__init__(
            "too many failed attempts; wait before trying again",
            [FieldProblem(field, f"locked for {seconds} s after repeated failures")],
        )
        self.retry_after_seconds = seconds


class ServiceUnavailable(GeoexportError):
    """A dependency failed; the request may be retried."""


class TransientError(GeoexportError):
    """A pipeline step hit a passing fault (throttling, a dropped connection); the state machine retries."""


class SourceUnreadable(GeoexportError):
    """The source raster opens but its pixels cannot be read; retrying will not help."""


class UnsupportedSource(GeoexportError):
    """The source raster is of a kind this export cannot render (e.g. not 8-bit)."""


class PartsFailed(GeoexportError):
    """More work items of a fanned-out export failed than the merge may redo."""


class TaskPaused(GeoexportError):
    """The task was paused: its workflow stops at this step boundary (the state machine catches it) and a
    resume continues from what is stored."""


class StaleTransition(GeoexportError):
    """A status change lost a race or would move a task backwards; the caller keeps the stored state."""


class ArtifactMismatch(GeoexportError):
    """An artifact's stored bytes do not match the checksum computed when it was written."""


# Error names the user-facing errorReason may quote verbatim (everything else is reported generically).
USER_FACING_STEP_ERRORS = frozenset(
    {
        "SourceUnreadable",
        "UnsupportedSource",
        "UnprocessableRequest",
        "NotFound",
        "ArtifactMismatch",
        "TransientError",
        "PartsFailed",
    }
)


#: Step errors caused by what was asked for, not by the service (an order CLC+ would call INVALID).
INPUT_ERRORS = frozenset({"UnprocessableRequest", "UnsupportedSource"})
