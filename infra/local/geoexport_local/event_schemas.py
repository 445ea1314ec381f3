"""JSON Schemas of the events on the exports bus, generated from the models that make and read them
(`make openapi` writes them to events/schemas/; a test fails when the committed files drift)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def schemas() -> dict[str, dict[str, Any]]:
    from geoexport.catalog.update import UPDATED, RecordUpdated
    from geoexport.features.journal import FEATURES_CHANGED, FeaturesChanged
    from geoexport.models.tasks import CreateExportTaskRequest
    from geoexport.notify.changes import STATUS_CHANGED, StatusChanged
    from geoexport.tasks.requests import ACCEPTED, REJECTED, REQUESTED, Answer, Envelope

    request = CreateExportTaskRequest.model_json_schema()
    envelope = Envelope.model_json_schema()
    request["properties"].update(envelope["properties"])
    request["required"] = [*request.get("required", []), "requestOwner"]
    request["title"] = REQUESTED
    request["description"] = (
        "detail of an ExportRequested event: the body of POST /export-tasks, plus the client it is for "
        "and an optional idempotency key (default: the event's id)"
    )
    answer = Answer.model_json_schema()
    documents = {
        REQUESTED: request,
        ACCEPTED: {**answer, "title": ACCEPTED},
        REJECTED: {**answer, "title": REJECTED},
        STATUS_CHANGED: {**StatusChanged.model_json_schema(), "title": STATUS_CHANGED},
        UPDATED: {**RecordUpdated.model_json_schema(), "title": UPDATED},
        FEATURES_CHANGED: {**FeaturesChanged.model_json_schema(), "title": FEATURES_CHANGED},
    }
    dialect = "https://json-schema.org/draft/2020-12/schema"
    return {name: {"$schema": dialect, **document} for name, document in documents.items()}


def target(root: Path) -> Path:
    return root / "events" / "schemas"


def render(name: str, document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write(root: Path) -> list[Path]:
    folder = target(root)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in schemas().items():
        path = folder / f"{name}.json"
        path.write_text(render(name, document))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()):
        print(f"wrote {path}")
