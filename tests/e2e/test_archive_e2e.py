"""Issue 18, archive and restore as a user does it over HTTP: a completed export is archived (no links; out
of the storage quota, which tests/integration/test_archive.py checks on the ledger), restored (the emulator
thaws at once: 200), and downloads byte-identical files."""

from __future__ import annotations

import urllib.request
from typing import Any

from tests.e2e.conftest import Service
from tests.e2e.test_api_e2e import landsat

SQUARE = "POLYGON((-77.9 24.3, -77.7 24.3, -77.7 24.5, -77.9 24.5, -77.9 24.3))"


def files(task: dict[str, Any]) -> dict[str, bytes]:
    return {a["name"]: urllib.request.urlopen(a["url"], timeout=30).read() for a in task["artifacts"]}


def test_archive_then_restore_is_byte_identical(service: Service) -> None:
    body = {
        "catalogRecordID": landsat(service),
        "domain": "RASTER",
        "ROI": SQUARE,
        "maxResolutionDeg": 0.0054931640625,
        "description": "archive me",
        "parameters": {"onExpiry": "archive"},
    }
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201, created
    done = service.wait(created["id"])[-1]
    assert done["status"] == "COMPLETED", done
    originals = files(done)

    status, archived, _ = service.request("POST", f"/export-tasks/{created['id']}/archive")
    assert status == 200 and archived["status"] == "ARCHIVED", archived
    assert archived["artifacts"] == [] and archived["archive"]["storageClass"] == "GLACIER"
    shown = service.request("GET", f"/export-tasks/{created['id']}")[1]
    assert shown["status"] == "ARCHIVED" and shown["artifacts"] == []
    status, again, _ = service.request("POST", f"/export-tasks/{created['id']}/archive")
    assert status == 409 and again["errors"][0]["field"] == "id", again

    status, restored, _ = service.request("POST", f"/export-tasks/{created['id']}/restore")
    assert status == 200 and restored["status"] == "COMPLETED", restored  # moto thaws at once
    assert restored["expiredAt"] > done["expiredAt"] and restored["archive"]["restoredAt"]
    assert files(restored) == originals
    assert service.request("POST", f"/export-tasks/{created['id']}/restore")[0] == 409

    kinds = [entry["type"] for entry in service.log_with(created["id"], "EXPORT_RESTORED")]
    assert "EXPORT_ARCHIVED" in kinds and "EXPORT_RESTORED" in kinds, kinds


def test_on_expiry_is_checked(service: Service) -> None:
    body = {
        "catalogRecordID": landsat(service),
        "domain": "RASTER",
        "ROI": SQUARE,
        "parameters": {"onExpiry": 3},
    }
    status, answer, _ = service.request("POST", "/export-tasks?dryRun=true", body)
    assert status == 400 and answer["errors"][0]["field"] == "parameters.onExpiry", answer
