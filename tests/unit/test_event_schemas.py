"""Issue 15: the exports bus's event schemas are in the repository (events/schemas/), generated from the
models, and the events the service reads and writes validate against them."""

from __future__ import annotations

import json

import jsonschema
import pytest

from geoexport_local.event_schemas import render, schemas, target
from tests.support import ROOT


def test_committed_schemas_match_the_code() -> None:
    for name, document in schemas().items():
        path = target(ROOT) / f"{name}.json"
        assert path.read_text() == render(name, document), f"{path} drifted: run `make openapi`"


def test_the_sample_request_validates_and_a_request_without_owner_does_not() -> None:
    schema = json.loads((target(ROOT) / "ExportRequested.json").read_text())
    sample = json.loads((ROOT / "events" / "export_requests.json").read_text())
    detail = json.loads(sample["Records"][0]["body"])["detail"]
    jsonschema.validate(detail, schema)
    with pytest.raises(jsonschema.ValidationError, match="requestOwner"):
        jsonschema.validate({k: v for k, v in detail.items() if k != "requestOwner"}, schema)


def test_a_status_change_validates() -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
    from geoexport.models.tasks import ArtifactType, StoredArtifact
    from geoexport.notify.changes import status_event

    sample = json.loads((ROOT / "events" / "create_task.json").read_text())
    now = datetime.now(UTC)
    old = TaskRecord(
        id=uuid4(),
        status=TaskStatus.IN_PROGRESS,
        progress=90,
        request=CreateExportTaskRequest.model_validate_json(sample["body"]),
        createdAt=now,
        updatedAt=now,
        owner="c1",
    )
    artifact = StoredArtifact(
        type=ArtifactType.GPKG, name="a.gpkg", size=3, sha256="ab" * 32, key="exports/x/a.gpkg"
    )
    new = old.model_copy(update={"status": TaskStatus.COMPLETED, "progress": 100, "artifacts": [artifact]})
    assert status_event(old, old) is None  # progress alone is not a status change
    event = status_event(old, new)
    assert event is not None
    detail = event.model_dump(mode="json")
    jsonschema.validate(detail, json.loads((target(ROOT) / "ExportTaskStatusChanged.json").read_text()))
    assert detail["previousStatus"] == "IN_PROGRESS" and detail["artifacts"][0]["sha256"] == "ab" * 32
    assert "key" not in detail["artifacts"][0] and "url" not in json.dumps(detail)
