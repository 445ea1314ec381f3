"""What arrives on the definition run queue: a schedule's firing, or a catalog record's new source."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from geoexport.definitions.models import RunCause

RECORD_UPDATED = "CatalogRecordUpdated"


@dataclass(frozen=True)
class RunDue:
    """Scheduler's input: run this definition (``due``: the scheduled time, the run's key)."""

    definition_id: UUID
    cause: RunCause
    due: datetime | None


@dataclass(frozen=True)
class SourceChanged:
    """A CatalogRecordUpdated event from the exports bus."""

    record_id: UUID


def parse(body: str) -> RunDue | SourceChanged:
    """Raises ValueError for anything else (the message is retried, then dead-lettered)."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    if message.get("detail-type") == RECORD_UPDATED:
        return SourceChanged(UUID(str(message["detail"]["recordId"])))
    if "definitionId" in message:
        due = None
        if message.get("scheduledTime"):
            due = datetime.fromisoformat(str(message["scheduledTime"]).replace("Z", "+00:00")).astimezone(UTC)
        return RunDue(UUID(str(message["definitionId"])), RunCause(message.get("cause", "schedule")), due)
    raise ValueError("neither a definition run nor a CatalogRecordUpdated event")
