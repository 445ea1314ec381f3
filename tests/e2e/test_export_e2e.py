"""A user's walk through the service over HTTP: catalog, export, status, download, webhook, storage."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from geoexport.notify.webhooks import sign
from tests.e2e.conftest import Service
from tests.support import SAMPLES, Receiver, compare_with_source, tile_counts, validate_gpkg

PENTAGON = {
    "type": "Polygon",
    "coordinates": [
        [[-78.2, 24.2], [-77.4, 24.2], [-77.0, 24.6], [-77.4, 25.0], [-78.2, 25.0], [-78.2, 24.2]]
    ],
}
ORDER = ["PENDING", "IN_PROGRESS", "COMPLETED"]


def export_body(
    record_id: str, geometry: dict[str, Any], res: float, hook: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "catalogRecordID": record_id,
        "domain": "RASTER",
        "description": "e2e export",
        "ROI": {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {"maxResolutionDeg": res}, "geometry": geometry}],
        },
    }
    if hook:
        body["webhooks"] = [{"url": hook, "events": ["TASK_COMPLETED", "TASK_FAILED"]}]
    return body


def test_health_catalog_and_storage(service: Service) -> None:
    assert service.request("GET", "/health")[:2] == (200, {"status": "ok", "version": "0.1.0"})
    records = service.records()
    assert {"landsat-bahamas-rgb", "colorado-hillshade", "world-rgb"} <= set(records)
    landsat = records["landsat-bahamas-rgb"]
    assert landsat["domain"] == "RASTER" and landsat["crs"] == "EPSG:32618"
    assert landsat["footprint"]["type"] == "Polygon"
    assert 0.0026 < landsat["maxResolutionDeg"] < 0.0028
    assert landsat["source"]["uri"].startswith("s3://") and landsat["source"]["uri"].endswith(".tif")
    status, storage, _ = service.request("GET", "/storage")
    assert status == 200 and storage["total"] > 0 and 0 <= storage["free"] <= storage["total"]


def test_raster_export_end_to_end(service: Service, receiver: Receiver, tmp_path: Path) -> None:
    landsat = service.records()["landsat-bahamas-rgb"]
    used_before = service.request("GET", "/storage")[1]["used"]
    status, created, headers = service.request(
        "POST", "/export-tasks", export_body(landsat["id"], PENTAGON, 0.00274658203125, receiver.url("/done"))
    )
    assert status == 201, created
    assert created["status"] == "PENDING" and created["progress"] == 0
    assert headers["Location"] == f"/export-tasks/{created['id']}"
    seen = service.wait(created["id"])
    statuses = [s["status"] for s in seen]
    assert statuses[-1] == "COMPLETED", seen[-1].get("errorReason")
    assert [ORDER.index(s) for s in statuses] == sorted(ORDER.index(s) for s in statuses)
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(s["status"] == "IN_PROGRESS" and 0 < s["progress"] < 100 for s in seen), seen

    task = seen[-1]
    assert task["expiredAt"] > task["finishedAt"] > task["createdAt"]
    by_type = {a["type"]: a for a in task["artifacts"]}
    assert set(by_type) == {"GPKG", "METADATA", "STAC", "QUICKLOOK"}
    gpkg, meta = by_type["GPKG"], by_type["METADATA"]
    assert gpkg["name"].endswith(".gpkg") and meta["name"] == gpkg["name"][:-5] + ".json"

    # Download like a user would: curl on the presigned link.
    target = tmp_path / gpkg["name"]
    if shutil.which("curl"):
        subprocess.run(["curl", "-sSf", "-o", str(target), gpkg["url"]], check=True)
    else:
        target.write_bytes(urllib.request.urlopen(gpkg["url"]).read())
    data = target.read_bytes()
    assert len(data) == gpkg["size"] and hashlib.sha256(data).hexdigest() == gpkg["sha256"]
    validate_gpkg(target)
    assert sorted(tile_counts(target)) == list(range(9))
    comparison = compare_with_source(target, SAMPLES / "RGB.byte.tif", PENTAGON)
    assert comparison.compared > 50_000
    assert comparison.mean_abs_diff < 2.0 and comparison.p99_abs_diff <= 12
    assert comparison.visible_outside_roi == 0

    metadata = json.loads(urllib.request.urlopen(meta["url"]).read())
    assert metadata["recordCatalogId"] == landsat["id"] and metadata["jobId"] == task["id"]
    assert metadata["sha256"] == gpkg["sha256"] and metadata["fileSize"] == gpkg["size"]
    assert metadata["crs"] == "EPSG:4326" and metadata["maxZoom"] == 8
    assert metadata["description"] == "e2e export" and metadata["roi"]["features"][0]["geometry"] == PENTAGON
    assert metadata["footprint"]["type"] in ("Polygon", "MultiPolygon") and metadata["createdAt"]

    # Exactly one callback, with seed 000 Appendix 1's fields.
    (call,) = receiver.wait_for(1)
    body = call["body"]
    assert call["path"] == "/done"
    # Signed per Standard Webhooks with the owning client's secret; the id is stable per task and event.
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["webhook-id"] == f"msg_{task['id']}_TASK_COMPLETED"
    expected = sign(
        service.webhook_secret, headers["webhook-id"], int(headers["webhook-timestamp"]), call["raw"]
    )
    assert headers["webhook-signature"] == expected
    assert body["status"] == "COMPLETED" and body["jobId"] == task["id"] and body["errorReason"] == ""
    assert body["recordCatalogId"] == landsat["id"] and body["description"] == "e2e export"
    assert body["fileSize"] == gpkg["size"] and body["expirationTime"] == task["expiredAt"]
    assert body["roi"]["features"][0]["geometry"] == PENTAGON
    for link in ("dataURI", "metadataURI"):
        with urllib.request.urlopen(body["links"][link]) as response:
            assert response.status == 200
    assert service.request("GET", "/storage")[1]["used"] >= used_before + gpkg["size"] + meta["size"]
    # Links are minted per GET; each callback's outcome is on the task.
    again = service.request("GET", f"/export-tasks/{task['id']}")[1]
    (delivery,) = again["webhookDeliveries"]
    assert (
        delivery["statusCode"] == 204 and delivery["event"] == "TASK_COMPLETED" and delivery["error"] is None
    )
    assert {a["sha256"] for a in again["artifacts"]} == {
        gpkg["sha256"],
        meta["sha256"],
        by_type["STAC"]["sha256"],
        by_type["QUICKLOOK"]["sha256"],
    }


def test_unreadable_source_ends_failed_with_reason_and_one_callback(
    service: Service, receiver: Receiver
) -> None:
    corrupt = service.records()["corrupt-sample"]
    status, created, _ = service.request(
        "POST",
        "/export-tasks",
        export_body(corrupt["id"], corrupt["footprint"], corrupt["maxResolutionDeg"], receiver.url()),
    )
    assert status == 201, created
    task = service.wait(created["id"])[-1]
    assert task["status"] == "FAILED"
    assert task["errorReason"].startswith("Package step failed:") and "cannot be read" in task["errorReason"]
    assert task["artifacts"] == []
    (call,) = receiver.wait_for(1)
    assert call["body"]["status"] == "FAILED" and call["body"]["errorReason"] == task["errorReason"]
    assert call["body"]["links"] == {"dataURI": None, "metadataURI": None}


BAD_GEOMETRY = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0]]]}  # no closed ring
FAR_AWAY = {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}


@pytest.mark.parametrize(
    ("make", "status", "field"),
    [
        (lambda r: b"{not json", 400, "body"),
        (lambda r: export_body(r["id"], BAD_GEOMETRY, 0.01), 400, "ROI.features[0].geometry.coordinates"),
        (lambda r: export_body("00000000-0000-4000-8000-000000000000", PENTAGON, 0.01), 404, None),
        (lambda r: export_body(r["id"], FAR_AWAY, 0.01), 422, "ROI.features[0].geometry"),
        (
            lambda r: export_body(r["id"], PENTAGON, 0.0001),
            422,
            "ROI.features[0].properties.maxResolutionDeg",
        ),
        (lambda r: {**export_body(r["id"], PENTAGON, 0.01), "domain": "ELEVATION"}, 400, "domain"),
        (lambda r: {**export_body(r["id"], PENTAGON, 0.01), "domain": "DEM"}, 422, "domain"),  # imagery
    ],
)
def test_bad_input_is_refused_before_anything_starts(
    service: Service, make: Any, status: int, field: str | None
) -> None:
    landsat = service.records()["landsat-bahamas-rgb"]
    before = service.executions()
    payload = make(landsat)
    if isinstance(payload, bytes):
        got, body, _ = service.request("POST", "/export-tasks", raw=payload)
    else:
        got, body, _ = service.request("POST", "/export-tasks", payload)
    assert got == status, body
    assert body["message"]
    if field is not None:
        assert field in {e["field"] for e in body["errors"]}, body
        assert all(e["reason"] for e in body["errors"])
    assert service.executions() == before


def test_unknown_and_malformed_task_ids(service: Service) -> None:
    status, body, _ = service.request("GET", "/export-tasks/00000000-0000-4000-8000-000000000000")
    assert status == 404 and "does not exist" in body["message"]
    status, body, _ = service.request("GET", "/export-tasks/not-a-uuid")
    assert status == 400 and body["errors"][0]["field"] == "task_id"
    assert service.request("GET", "/no-such-route")[0] == 404
    assert service.request("DELETE", "/storage")[0] == 405


def test_webhooks_to_private_addresses_are_refused_when_registered(service: Service) -> None:
    """Literal non-public addresses (every spelling: the URL parser turns the decimal 2852039166 into
    169.254.169.254) are a 422 naming each hook (issue 12); a host name is checked again at every
    connection (unit-tested in test_webhooks: a name resolving to any private address is refused)."""
    landsat = service.records()["landsat-bahamas-rgb"]
    body = export_body(landsat["id"], PENTAGON, 0.0054931640625)
    urls = [
        "http://2852039166/",
        "http://169.254.169.254/x/",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/",
    ]
    body["webhooks"] = [{"url": url, "events": ["TASK_COMPLETED"]} for url in urls]
    before = service.executions()
    status, refused, _ = service.request("POST", "/export-tasks", body)
    assert status == 422, refused
    assert [e["field"] for e in refused["errors"]] == [f"webhooks[{i}].url" for i in range(4)]
    assert all("not a public address" in e["reason"] for e in refused["errors"])
    assert service.executions() == before  # nothing was started
