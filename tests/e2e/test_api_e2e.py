"""The complete export API over HTTP: dedupe, estimates, storage, listing, v1, expiry (issue 3)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Service
from tests.e2e.test_export_e2e import export_body
from tests.support import Receiver

Z8 = 0.00274658203125


def square(x: float, y: float, size: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]],
    }


def landsat(service: Service) -> str:
    return str(service.records()["landsat-bahamas-rgb"]["id"])


def test_fifty_identical_posts_make_one_task_and_every_webhook_fires(
    service: Service, receiver: Receiver
) -> None:
    record = landsat(service)
    before = service.executions()

    def post(i: int) -> tuple[int, dict[str, Any]]:
        body = export_body(record, square(-78.0, 24.3, 0.3), Z8, receiver.url(f"/h{i}"))
        status, answer, _ = service.request("POST", "/export-tasks", body)
        return status, answer

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(post, range(50)))
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 1, answers[:3]
    assert sorted(status for status, _ in answers) == [200] * 49 + [201]
    duplicates = [body for status, body in answers if status == 200]
    assert all(b["isDuplicated"] and b["dedupe"]["rule"] == "exact" for b in duplicates)
    assert service.executions() == before + 1
    (task_id,) = ids
    assert service.wait(task_id)[-1]["status"] == "COMPLETED"
    # Every webhook stored on the task (the winner's and the merged ones) fires exactly once.
    final = service.request("GET", f"/export-tasks/{task_id}")[1]
    stored = {h["url"].rsplit("/", 1)[1] for h in final["webhooks"]}
    # Every answer that was not already the finished task merged its hook into the running one (late
    # ones got the result in the answer; one that merged just before the end may show COMPLETED too).
    running = {f"h{i}" for i, (_, body) in enumerate(answers) if body["status"] != "COMPLETED"}
    # A callback that met a busy receiver is retried (30 s later at the earliest): wait for that too.
    receiver.wait_for(len(stored), timeout=120)
    time.sleep(0.5)
    assert sorted(c["path"][1:] for c in receiver.calls) == sorted(stored)
    assert {c["body"]["event"] for c in receiver.calls} == {"TASK_COMPLETED"}
    assert running <= stored <= {f"h{i}" for i in range(50)}, (sorted(running - stored), len(stored))


def test_completed_duplicate_is_answered_at_once_and_kept_longer(service: Service) -> None:
    record = landsat(service)
    body = export_body(record, square(-77.8, 24.9, 0.2), Z8)
    status, first, _ = service.request("POST", "/export-tasks", body)
    assert status == 201
    done = service.wait(first["id"])[-1]
    assert done["status"] == "COMPLETED"
    time.sleep(1.1)
    status, again, _ = service.request("POST", "/export-tasks", body)
    assert status == 200 and again["id"] == first["id"] and again["status"] == "COMPLETED"
    assert again["isDuplicated"] and again["dedupe"] == {"matchedTaskId": first["id"], "rule": "exact"}
    assert again["expiredAt"] > done["expiredAt"]
    assert {a["sha256"] for a in again["artifacts"]} == {a["sha256"] for a in done["artifacts"]}
    for artifact in again["artifacts"]:
        assert urllib.request.urlopen(artifact["url"]).status == 200
    # Another zoom is another export (MapColonies bug #115 returned a cached one at the wrong zoom).
    status, other, _ = service.request(
        "POST", "/export-tasks", export_body(record, square(-77.8, 24.9, 0.2), Z8 * 2)
    )
    assert status == 201 and other["id"] != first["id"]


def test_containment_is_opt_in(service: Service) -> None:
    record = landsat(service)
    status, first, _ = service.request(
        "POST", "/export-tasks", export_body(record, square(-78.6, 23.9, 0.4), Z8)
    )
    assert status == 201
    assert service.wait(first["id"])[-1]["status"] == "COMPLETED"
    inside = square(-78.59, 23.91, 0.38)  # inside, 90 % of the area
    status, strict, _ = service.request("POST", "/export-tasks", export_body(record, inside, Z8))
    assert status == 201 and strict["id"] != first["id"]
    loose = {**export_body(record, inside, Z8), "parameters": {"dedupe": "containment"}}
    status, matched, _ = service.request("POST", "/export-tasks", loose)
    assert status == 200 and matched["id"] in (first["id"], strict["id"])
    assert matched["dedupe"]["rule"] in ("containment", "exact")


def test_estimate_is_within_2x_and_a_dry_run_creates_nothing(service: Service) -> None:
    record = landsat(service)
    body = export_body(record, square(-78.5, 24.0, 1.4), Z8)
    tasks_before = len(service.request("GET", "/export-tasks?limit=100")[1]["items"])
    executions_before = service.executions()
    status, dry, _ = service.request("POST", "/export-tasks?dryRun=true", body)
    assert status == 200 and dry["dryRun"] is True and dry["fitsInStorage"] is True
    assert dry["tiles"] == sum(dry["tilesPerZoom"].values()) and sorted(
        map(int, dry["tilesPerZoom"])
    ) == list(range(9))
    assert len(service.request("GET", "/export-tasks?limit=100")[1]["items"]) == tasks_before
    assert service.executions() == executions_before
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201 and created["estimatedSize"] == dry["estimatedSize"]
    done = service.wait(created["id"])[-1]
    actual = sum(a["size"] for a in done["artifacts"])
    took = (
        datetime.fromisoformat(done["finishedAt"]) - datetime.fromisoformat(done["createdAt"])
    ).total_seconds()
    print(
        f"\nestimatedSize {dry['estimatedSize']} vs actual {actual} bytes "
        f"(ratio {dry['estimatedSize'] / actual:.2f}); estimatedTime {dry['estimatedTime']} s vs {took:.1f} s"
    )
    assert actual / 2 <= dry["estimatedSize"] <= actual * 2


def test_storage_ledger_follows_exports(service: Service) -> None:
    status, storage, _ = service.request("GET", "/storage")
    assert status == 200 and storage["free"] == storage["total"] - storage["used"] - storage["reserved"]
    record = landsat(service)
    status, created, _ = service.request(
        "POST", "/export-tasks", export_body(record, square(-77.3, 25.2, 0.2), Z8)
    )
    assert status == 201
    done = service.wait(created["id"])[-1]
    after = service.request("GET", "/storage")[1]
    assert after["used"] >= storage["used"] + sum(a["size"] for a in done["artifacts"])


def test_listing_is_newest_first_paged_and_filtered(service: Service) -> None:
    record = landsat(service)
    made = []
    for i in range(3):
        status, body, _ = service.request(
            "POST", "/export-tasks", export_body(record, square(-77.9 + i * 0.05, 24.7, 0.04), Z8)
        )
        assert status == 201
        made.append(body["id"])
    status, page, _ = service.request("GET", "/export-tasks?limit=2")
    assert status == 200 and [t["id"] for t in page["items"]] == made[::-1][:2] and page["nextToken"]
    status, second, _ = service.request("GET", f"/export-tasks?limit=2&nextToken={page['nextToken']}")
    assert second["items"][0]["id"] == made[0]
    for task_id in made:
        service.wait(task_id)
    completed = service.request("GET", "/export-tasks?status=COMPLETED&limit=100")[1]["items"]
    assert {t["status"] for t in completed} == {"COMPLETED"} and set(made) <= {t["id"] for t in completed}
    assert service.request("GET", "/export-tasks?nextToken=garbage")[0] == 400
    assert service.request("GET", "/export-tasks?limit=0")[0] == 400
    assert service.request("GET", "/export-tasks?status=DONE")[0] == 400


V1_KEYS = {
    "status",
    "links",
    "expirationTime",
    "fileSize",
    "recordCatalogId",
    "description",
    "roi",
    "jobId",
    "errorReason",
}


def test_v1_create_roi_task_status_and_callback(service: Service, receiver: Receiver) -> None:
    record = landsat(service)
    roi = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"maxResolutionDeg": Z8}, "geometry": square(-77.1, 24.1, 0.2)}
        ],
    }
    body = {
        "dbId": record,
        "roi": roi,
        "callbackURLs": [receiver.url("/v1")],
        "crs": "EPSG:4326",
        "priority": 0,
        "description": "v1 client",
    }
    status, answer, _ = service.request("POST", "/create/roi", body)
    assert status == 200 and answer == {
        "status": "In-Progress",
        "id": answer["id"],
        "taskIds": [answer["id"]],
    }
    deadline = time.monotonic() + 60
    while True:
        status, progress, _ = service.request("GET", f"/taskStatus/{answer['id']}")
        assert status == 200 and set(progress) == {"percentage", "status"}
        assert progress["status"] in {"Pending", "In-Progress", "Completed"}
        if progress["status"] == "Completed" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert progress == {"percentage": 100, "status": "Completed"}
    (call,) = receiver.wait_for(1)
    assert set(call["body"]) == V1_KEYS and call["body"]["status"] == "Completed"
    assert call["body"]["jobId"] == answer["id"] and call["body"]["description"] == "v1 client"
    status, cached, _ = service.request("POST", "/create/roi", body)
    assert status == 200 and set(cached) == V1_KEYS and cached["status"] == "Completed"
    assert cached["jobId"] == answer["id"] and cached["links"]["dataURI"].startswith("http")
    assert service.request("POST", "/create/roi", {**body, "crs": "EPSG:3857"})[0] == 400


def test_v1_deprecated_getmap_create(service: Service, receiver: Receiver) -> None:
    """Seed 000's create "in use of GetMap": bbox, pixel size, record; answered as v1 answers, with RFC 9745's
    Deprecation header and a Link to /create/roi; the cached answer comes back the same way."""
    record = landsat(service)
    body = {
        "dbId": record,
        "bbox": [-77.6, 23.9, -77.4, 24.1],
        "width": 73,  # ~0.00274 deg/px: zoom 8
        "height": 73,
        "callbackURLs": [receiver.url("/v1-getmap")],
        "description": "v1 GetMap client",
    }
    status, answer, headers = service.request("POST", "/create", body)
    assert status == 200 and answer["status"] == "In-Progress", answer
    assert headers["Deprecation"].startswith("@") and 'rel="successor-version"' in headers["Link"]
    task = service.wait(answer["id"])[-1]
    assert task["status"] == "COMPLETED", task
    (feature,) = task["ROI"]["features"]
    assert feature["properties"]["maxResolutionDeg"] == pytest.approx(0.2 / 73, rel=1e-9)
    (call,) = receiver.wait_for(1)
    assert set(call["body"]) == V1_KEYS and call["body"]["jobId"] == answer["id"]
    status, cached, headers = service.request("POST", "/create", body)
    assert status == 200 and cached["status"] == "Completed" and cached["jobId"] == answer["id"]
    assert "Deprecation" in headers
    status, refused, _ = service.request("POST", "/create", {**body, "bbox": [-77.4, 23.9, -77.6, 24.1]})
    assert status == 400 and refused["errors"][0]["field"] == "bbox", refused
    assert service.request("GET", "/openapi.json", token=None)[1]["paths"]["/create"]["post"]["deprecated"]


def test_3d_is_refused_naming_what_is_supported(service: Service) -> None:
    body = {**export_body(landsat(service), square(-77.1, 24.1, 0.2), Z8), "domain": "3D"}
    status, answer, _ = service.request("POST", "/export-tasks", body)
    assert status == 422 and answer["errors"] == [
        {"field": "domain", "reason": "3D is not supported; supported domains: RASTER, DEM, VECTOR"}
    ]


def test_expiry_sweep_marks_expired_frees_storage_and_tells(service: Service, receiver: Receiver) -> None:
    record = landsat(service)
    body = export_body(record, square(-76.9, 23.7, 0.2), Z8)
    body["webhooks"] = [{"url": receiver.url("/expiry"), "events": ["TASK_EXPIRED"]}]
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201
    done = service.wait(created["id"])[-1]
    used_before = service.request("GET", "/storage")[1]["used"]
    tasks_table = next(t for t in service.client("dynamodb").list_tables()["TableNames"] if "TasksTable" in t)
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    service.client("dynamodb").update_item(
        TableName=tasks_table,
        Key={"id": {"S": created["id"]}},
        UpdateExpression="SET expiredAt = :e",
        ExpressionAttributeValues={":e": {"S": past}},
    )
    result = service.client("lambda").invoke(FunctionName="geoexport-ExpiryFunction", Payload=b"{}")
    assert "FunctionError" not in result, result["Payload"].read()
    assert created["id"] in json.loads(result["Payload"].read())["expired"]
    status, expired, _ = service.request("GET", f"/export-tasks/{created['id']}")
    assert expired["status"] == "EXPIRED" and expired["artifacts"] == []
    size = sum(a["size"] for a in done["artifacts"])
    assert service.request("GET", "/storage")[1]["used"] <= used_before - size
    (call,) = receiver.wait_for(1)
    assert call["body"]["event"] == "TASK_EXPIRED" and call["body"]["status"] == "EXPIRED"
    s3 = service.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "exports" in b["Name"])
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"exports/{created['id']}/").get("KeyCount", 0) == 0
    # An expired export is no longer a duplicate: the same request makes a new task.
    status, again, _ = service.request("POST", "/export-tasks", body)
    assert status == 201 and again["id"] != created["id"]


@pytest.mark.parametrize("length", ["-1", "abc"])
def test_a_content_length_that_is_not_a_length_is_a_400(service: Service, length: str) -> None:
    """Issue 12: the local gateway held such a request open, or dropped it."""
    host, port = service.api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST /export-tasks HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n{{}}".encode()
        )
        received = b""
        while chunk := connection.recv(65536):  # the gateway closes the connection after answering
            received += chunk
        answer = received.decode()
    assert answer.startswith("HTTP/1.") and " 400 " in answer.splitlines()[0], answer
    assert "Content-Length" in answer.split("\r\n\r\n", 1)[1]


def test_unknown_routes_and_methods_answer_in_the_error_shape(service: Service) -> None:
    """Issue 12: 404/405 bodies in the documented error shape ({message, errors})."""
    missing = service.request("GET", "/nowhere")
    wrong = service.request("DELETE", "/export-tasks")
    assert (missing[0], wrong[0]) == (404, 405)
    assert set(missing[1]) == set(wrong[1]) == {"message", "errors"}
