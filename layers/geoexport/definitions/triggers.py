"""What arrives on the definition run queue: a schedule's firing, a catalog record's new source, or a
client's changed features."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from geoexport.definitions.models import RunCause, features_key
from geoexport.features.journal import FEATURES_CHANGED

RECORD_UPDATED = "CatalogRecordUpdated"


@dataclass(frozen=True)
class RunDue:
    """Scheduler's input: run this definition (``due``: the scheduled time, the run's key)."""

    definition_id: UUID
    cause: RunCause
    due: datetime | None


@dataclass(frozen=True)
class SourceChanged:
    """A CatalogRecordUpdated or FeaturesChanged event from the exports bus: what changed (a record id, or
    ``features#<owner>`` with the changes' bbox and models)."""

    source: str
    bbox: list[float] | None = None
    models: list[str] | None = None


def parse(body: str) -> RunDue | SourceChanged:
    """Raises ValueError for anything else (the message is retried, then dead-lettered)."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    if message.get("detail-type") == RECORD_UPDATED:
        return SourceChanged(str(UUID(str(message["detail"]["recordId"]))))
    if message.get("detail-type") == FEATURES_CHANGED:
        detail = message["detail"]
        bbox = detail.get("bbox")
        return SourceChanged(
            features_key(str(detail["owner"])),
            [float(v) for v in bbox] if bbox else None,
            [str(m) for m in detail.get("models", [])],
        )
    if "definitionId" in message:
        due = None
        if message.get("scheduledTime"):
            due = datetime.fromisoformat(str(message["scheduledTime"]).replace("Z", "+00:00")).astimezone(UTC)
        return RunDue(UUID(str(message["definitionId"])), RunCause(message.get("cause", "schedule")), due)
    raise ValueError("neither a definition run nor a CatalogRecordUpdated event")
