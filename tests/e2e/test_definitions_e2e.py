"""Issue 15, exports that run themselves, over HTTP on the local stack as a user runs them: a definition with
a one-minute schedule runs twice on its own (EventBridge Scheduler in the emulator, fired by the local
stack) and its stable link follows the newest run; transports copy to a bucket (checksums read back), mail
through SES (read back from the emulator) and fail with a reason where the service may not write, while the
export stays COMPLETED; a catalog record's source replaced three times re-runs a subscribed definition
once; an incremental VECTOR definition, woken by its owner's feature changes, exports only what changed.

The scheduled definition is made first and checked last, so its two minutes overlap the other tests."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest

from tests.e2e.conftest import CHANGE_WINDOW, Service
from tests.e2e.test_api_e2e import square
from tests.e2e.test_export_e2e import export_body
from tests.e2e.test_export_events_e2e import BUS, drain
from tests.e2e.test_vector_e2e import create, download

Z5 = 0.02197265625
DROP = "geoexport-drop-e2e"  # matches the stack's TransportBucketPattern (geoexport-drop-*)


def runs(service: Service, definition: str) -> list[dict[str, Any]]:
    """The definition's runs, newest first, once none is still starting (creating its task)."""
    status, page, _ = service.request("GET", f"/export-definitions/{definition}/runs?limit=50")
    assert status == 200, page
    items = list(page["items"])
    return [] if any(r["outcome"] == "starting" for r in items) else items


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def quiet_for(seen: float) -> None:
    """Wait out a window after a run was seen: a change the run did not cover would have made another."""
    time.sleep(max(0.0, CHANGE_WINDOW + 1 - (time.monotonic() - seen)))


def latest(service: Service, definition: str, artifact: str | None = None) -> tuple[int, dict[str, Any], str]:
    """The stable link as a client that does not follow redirects sees it: status, body, Location."""
    parts = urllib.parse.urlsplit(service.api)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    query = f"?artifact={urllib.parse.quote(artifact)}" if artifact else ""
    connection.request(
        "GET",
        f"/export-definitions/{definition}/latest{query}",
        headers={"Authorization": f"Bearer {service.token}"},
    )
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"{}"), answer.getheader("Location") or ""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def scheduled(service: Service) -> Iterator[dict[str, Any]]:
    """A definition with a one-minute schedule and three transports, made when the module starts."""
    service.client("s3").create_bucket(Bucket=DROP)
    landsat = service.records()["landsat-bahamas-rgb"]
    body = {
        "name": f"Andros every minute {uuid.uuid4().hex[:6]}",
        "request": {**export_body(landsat["id"], square(-78.1, 24.4, 0.4), Z5), "description": "Andros"},
        "schedules": ["rate(1 minute)"],
        "transports": [
            {"type": "s3", "bucket": DROP, "prefix": "andros/"},
            {"type": "email", "recipients": ["ops@example.org"], "message": "The morning export."},
            {"type": "s3", "bucket": "someone-elses-bucket"},
        ],
    }
    body["request"].pop("webhooks", None)
    status, definition, headers = service.request("POST", "/export-definitions", body)
    assert status == 201, definition
    assert headers["Location"] == f"/export-definitions/{definition['id']}"
    definition["createdMonotonic"] = time.monotonic()
    yield definition
    service.request("DELETE", f"/export-definitions/{definition['id']}")


def test_a_definition_is_saved_checked_and_listed(service: Service, scheduled: dict[str, Any]) -> None:
    status, listed, _ = service.request("GET", "/export-definitions?limit=100")
    assert status == 200 and scheduled["id"] in [d["id"] for d in listed["items"]]
    assert service.request("GET", f"/export-definitions/{scheduled['id']}")[1]["schedules"] == [
        "rate(1 minute)"
    ]
    # Refused with the field and the reason: a bad schedule, a ROI the record cannot serve, a transport
    # without its bucket, incremental for a raster.
    base = {"name": "bad", "request": scheduled["request"]}
    for change, field in (
        ({"schedules": ["rate(1 minutes)"]}, "schedules"),
        ({"schedules": ["cron(0 6 * * * *)"]}, "schedules"),
        ({"transports": [{"type": "s3"}]}, "transports[0]"),
        ({"type": "export_incremental"}, "body"),
    ):
        status, answer, _ = service.request("POST", "/export-definitions", {**base, **change})
        assert status in (400, 422), (change, answer)
        assert any(e["field"].startswith(field) for e in answer["errors"]), (change, answer)
    far = {**scheduled["request"], "ROI": square(100.0, 10.0, 0.5)}
    status, answer, _ = service.request("POST", "/export-definitions", {**base, "request": far})
    assert status == 422 and answer["errors"][0]["field"].startswith("request.ROI"), answer
    other = service.request("GET", f"/export-definitions/{scheduled['id']}", token=new_token(service))
    assert other[0] == 404  # another client's definition does not exist for it


def new_token(service: Service) -> str:
    from tests.e2e.test_auth_e2e import new_client

    other = new_client(service, f"definitions-stranger-{uuid.uuid4().hex[:6]}")
    return service.issue_token(other["client_id"], other["client_secret"])


def test_a_run_now_delivers_its_transports(service: Service, scheduled: dict[str, Any]) -> None:
    status, run, _ = service.request("POST", f"/export-definitions/{scheduled['id']}/run")
    assert status == 201 and run["cause"] == "manual" and run["outcome"] == "started", run
    task = service.wait(run["taskId"])[-1]
    assert task["status"] == "COMPLETED" and task["definitionId"] == scheduled["id"], task

    def delivered() -> list[dict[str, Any]] | None:
        shown = service.request("GET", f"/export-tasks/{task['id']}")[1]["transports"]
        return shown if all(t["state"] != "pending" for t in shown) else None

    copy, mail, refused = wait_for(delivered, 60, "the transports")
    # s3: every artifact copied under the prefix, byte for byte (read back here, hashed).
    s3 = service.client("s3")
    assert copy["state"] == "done" and len(copy["delivered"]) == len(task["artifacts"]), copy
    for artifact in task["artifacts"]:
        body = s3.get_object(Bucket=DROP, Key=f"andros/{artifact['name']}")["Body"].read()
        assert sha256_of(body) == artifact["sha256"]
    # email: the message SES accepted, read back from the emulator: links and sizes, never a token.
    assert mail["state"] == "done" and mail["delivered"], mail
    with urllib.request.urlopen(f"{service.aws}/_aws/ses?id={mail['delivered'][0]}", timeout=30) as answer:
        (message,) = json.loads(answer.read())["messages"]
    assert message["Destination"]["ToAddresses"] == ["ops@example.org"]
    text = message["Body"]["text_part"]
    assert text.startswith("The morning export.") and service.token not in text
    for artifact in task["artifacts"]:
        assert artifact["name"] in text and artifact["sha256"] in text
    link = next(line for line in text.splitlines() if line.startswith("http") and ".gpkg" in line)
    gpkg = next(a for a in task["artifacts"] if a["type"] == "GPKG")
    with urllib.request.urlopen(link, timeout=30) as answer:  # the mailed link downloads the file
        assert sha256_of(answer.read()) == gpkg["sha256"]
    # A bucket outside the pattern: failed with the reason; the export is still COMPLETED.
    assert refused["state"] == "failed" and "TransportBucketPattern" in refused["reason"], refused
    assert service.request("GET", f"/export-tasks/{task['id']}")[1]["status"] == "COMPLETED"
    log = service.request("GET", f"/export-tasks/{task['id']}/log")[1]["entries"]
    kinds = [e["type"] for e in log]
    assert kinds.count("TRANSPORT_DONE") == 2 and kinds.count("TRANSPORT_FAILED") == 1, kinds

    # Retry: only the failed one goes back to pending, and fails again with its reason (attempt 2).
    status, retried, _ = service.request("POST", f"/export-tasks/{task['id']}/transports:retry")
    assert status == 202 and [t["index"] for t in retried["retried"]] == [2], retried
    again = wait_for(
        lambda: (
            (t := service.request("GET", f"/export-tasks/{task['id']}")[1]["transports"][2])["attempts"] == 2
            and t
        ),
        60,
        "the retried transport",
    )
    assert again["state"] == "failed" and again["reason"] == refused["reason"]

    # The stable link answers with this run's data file, through a fresh presigned URL.
    status, answer, location = latest(service, scheduled["id"])
    assert status == 302 and answer["taskId"] == task["id"] and location == answer["url"]
    with urllib.request.urlopen(location, timeout=30) as file:
        assert sha256_of(file.read()) == gpkg["sha256"]


def test_replacing_a_records_source_reruns_a_subscribed_definition_once(service: Service) -> None:
    """Three new versions of a record within the coalescing window make one run."""
    record = service.records()["world-rgb"]
    body = {
        "name": f"world follower {uuid.uuid4().hex[:6]}",
        "request": {**export_body(record["id"], square(10.0, 40.0, 8.0), 0.703125), "webhooks": []},
        "trigger": "on-source-change",
    }
    status, definition, _ = service.request("POST", "/export-definitions", body)
    assert status == 201, definition
    announcements = service.subscribe(BUS, "geoexport.catalog")
    s3, bucket = service.client("s3"), record["source"]["bucket"]
    key = f"uploads/world-{uuid.uuid4().hex[:6]}.tif"
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": record["source"]["key"]})
    versions = []
    for _ in range(3):
        status, updated, _ = service.request("PUT", f"/catalog/records/{record['id']}", {"key": key})
        assert status == 200, updated
        versions.append(updated["productVersion"])
    assert len(set(versions)) == 3
    updated = drain(service, announcements, lambda seen: len(seen) >= 3, timeout=30)  # schema-checked
    assert [e["detail"]["productVersion"] for e in updated] == versions
    assert {e["detail-type"] for e in updated} == {"CatalogRecordUpdated"}
    missing = service.request("PUT", f"/catalog/records/{record['id']}", {"key": "uploads/none.tif"})
    assert missing[0] == 422 and missing[1]["errors"][0]["field"] == "key", missing
    (run,) = wait_for(lambda: runs(service, definition["id"]), 60, "the source-change run")
    seen = time.monotonic()
    assert run["cause"] == "source-change" and run["outcome"] == "started", run
    task = service.wait(run["taskId"])[-1]
    assert task["status"] == "COMPLETED", task
    metadata = next(a for a in task["artifacts"] if a["type"] == "METADATA")
    with urllib.request.urlopen(metadata["url"], timeout=30) as answer:
        assert json.loads(answer.read())["productVersion"] == versions[-1]  # the newest source
    quiet_for(seen)
    assert len(runs(service, definition["id"])) == 1
    service.request("DELETE", f"/export-definitions/{definition['id']}")


def _gpkg_ids(task: dict[str, Any], tmp: Path) -> set[str]:
    """The featureId of every feature in the task's GeoPackage (GDAL reads it, through pyogrio)."""
    (gpkg,) = [a for a in task["artifacts"] if a["type"] == "GPKG"]
    path = download(gpkg["url"], tmp / gpkg["name"])
    ids: set[str] = set()
    for layer, _ in pyogrio.list_layers(path):
        meta, _, _, fields = pyogrio.raw.read(path, layer=layer, read_geometry=False)
        ids |= {str(i) for i in fields[list(meta["fields"]).index("featureId")]}
    return ids


def test_an_incremental_definition_follows_its_features(service: Service, tmp_path: Path) -> None:
    """Woken by its owner's feature changes (one run per burst): the first run exports everything, the next
    only what was created or changed since, with the deletions in its metadata."""
    run_id = uuid.uuid4().hex[:8]
    model = f"sensors_{run_id}"
    assert service.request("POST", "/models", {"name": model, "schema": {"type": "object"}})[0] == 201
    area = {"type": "Polygon", "coordinates": [[[20, 60], [22, 60], [22, 61], [20, 61], [20, 60]]]}
    body = {
        "name": f"sensors {run_id}",
        "type": "export_incremental",
        "trigger": "on-source-change",
        "request": {"domain": "VECTOR", "ROI": area, "parameters": {"model": model}},
    }
    status, definition, _ = service.request("POST", "/export-definitions", body)
    assert status == 201, definition
    announcements = service.subscribe(BUS, "geoexport.features")

    def point(name: str, x: float) -> dict[str, Any]:
        return {
            "id": f"{run_id}-{name}",
            "model": model,
            "geometry": {"type": "Point", "coordinates": [x, 60.5]},
        }

    create(service, [point("a", 20.5), point("b", 21.0), point("c", 21.5)])
    (announced,) = drain(service, announcements, lambda seen: len(seen) >= 1, timeout=30)  # schema-checked
    assert announced["detail"] == {
        "owner": service.client_id, "count": 3, "models": [model], "bbox": [20.5, 60.5, 21.5, 60.5]
    }  # fmt: skip
    (first,) = wait_for(lambda: runs(service, definition["id"]), 60, "the first run")
    assert first["cause"] == "source-change" and first["changedSince"] is None, first
    done = service.wait(first["taskId"])[-1]
    assert done["status"] == "COMPLETED", done
    assert _gpkg_ids(done, tmp_path) == {f"{run_id}-{n}" for n in "abc"}

    # A burst: one moved, one deleted, one new.
    status, found, _ = service.request("GET", f"/features?model={model}&limit=10")
    urns = {f["id"]: f["urn"] for f in found["items"]}
    moved = service.request(
        "PATCH",
        f"/features/{urns[run_id + '-a']}",
        {"geometry": {"type": "Point", "coordinates": [20.7, 60.6]}},
        extra_headers={"Content-Type": "application/merge-patch+json"},
    )
    assert moved[0] == 200, moved
    assert service.request("DELETE", f"/features/{urns[run_id + '-b']}")[0] == 204
    create(service, [point("d", 21.8)])
    second = wait_for(
        # runs() is empty while a run is still starting: wait until it has started.
        lambda: (r := runs(service, definition["id"])) and r[0]["runId"] != first["runId"] and r[0],
        60,
        "the second run",
    )
    seen = time.monotonic()
    assert second["changedSince"] == first["at"], second
    done = service.wait(second["taskId"])[-1]
    assert done["status"] == "COMPLETED", done
    assert _gpkg_ids(done, tmp_path) == {f"{run_id}-a", f"{run_id}-d"}
    metadata = next(a for a in done["artifacts"] if a["type"] == "METADATA")
    with urllib.request.urlopen(metadata["url"], timeout=30) as answer:
        incremental = json.loads(answer.read())["incremental"]
    assert [d["featureId"] for d in incremental["deleted"]] == [f"{run_id}-b"], incremental
    assert incremental["changed"] == 2 and incremental["since"] == first["at"].replace("Z", "+00:00")
    quiet_for(seen)
    assert len(runs(service, definition["id"])) == 2  # one run per burst
    service.request("DELETE", f"/export-definitions/{definition['id']}")


def test_the_schedule_ran_twice_and_the_stable_link_follows_the_newest_run(
    service: Service, scheduled: dict[str, Any]
) -> None:
    """Made when the module started: by now (at most ~2.5 minutes) its schedule has fired twice."""

    def two_scheduled() -> list[dict[str, Any]] | None:
        done = [
            r
            for r in runs(service, scheduled["id"])
            if r["cause"] == "schedule" and r["taskStatus"] == "COMPLETED"
        ]
        return done if len(done) >= 2 else None

    remaining = 200 - (time.monotonic() - scheduled["createdMonotonic"])
    newest, older = wait_for(two_scheduled, max(remaining, 30), "two scheduled runs")[:2]
    assert newest["at"] > older["at"] and newest["outcome"] == older["outcome"] == "started"
    assert newest["taskId"] != older["taskId"]
    status, answer, location = latest(service, scheduled["id"])
    assert status == 302 and answer["taskId"] == newest["taskId"], (answer, newest)
    task = service.request("GET", f"/export-tasks/{newest['taskId']}")[1]
    gpkg = next(a for a in task["artifacts"] if a["type"] == "GPKG")
    with urllib.request.urlopen(location, timeout=30) as file:
        assert sha256_of(file.read()) == gpkg["sha256"]
    meta = next(a for a in task["artifacts"] if a["type"] == "METADATA")
    status, named, _ = latest(service, scheduled["id"], meta["name"])
    assert status == 302 and named["name"] == meta["name"]

    # Deleted: its schedules go, the link answers 404, its tasks stay.
    assert service.request("DELETE", f"/export-definitions/{scheduled['id']}")[0] == 204
    scheduler = service.client("scheduler")
    left = [
        s["Name"]
        for group in scheduler.list_schedule_groups()["ScheduleGroups"]
        for s in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]
        if s["Name"].startswith(scheduled["id"])
    ]
    assert left == []
    assert latest(service, scheduled["id"])[0] == 404
    assert service.request("GET", f"/export-tasks/{newest['taskId']}")[0] == 200
