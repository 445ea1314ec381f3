"""The messaging API over the local stack (issue 5): requests as EventBridge events or queue messages,
outcomes as events and at GET /requests/{id}, unreadable messages dead-lettered with the reason."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.e2e.conftest import Service
from tests.e2e.test_feature_files_e2e import put, stored_file, until
from tests.e2e.test_features_e2e import SCHEMA, city

BUS = "geoexport-features"


def metadata(priority: str = "NORMAL", **extra: Any) -> dict[str, Any]:
    return {"session": "e2e", "sessionOwner": "tests", "storages": [], "priority": priority, **extra}


def send_events(service: Service, *details: dict[str, Any]) -> None:
    entries = [
        {
            "EventBusName": BUS,
            "Source": "tests.producer",
            "DetailType": "FeatureRequest",
            "Detail": json.dumps(d),
        }
        for d in details
    ]
    answer = service.client("events").put_events(Entries=entries)
    assert answer["FailedEntryCount"] == 0, answer


def outcome(service: Service, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, record, _ = service.request("GET", f"/requests/{request_id}")
        if (status == 200 and record["state"] in ("SUCCESS", "DENIED")) or time.monotonic() > deadline:
            return record
        time.sleep(0.3)


def listen(service: Service) -> tuple[Any, str]:
    """A consumer's own subscription to the outcome events: a rule on the bus into a queue of ours."""
    return service.client("sqs"), service.subscribe(BUS, "geoexport.features")


def drain(sqs: Any, url: str, seconds: float = 3.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            found.append(json.loads(message["Body"]))
    return found


def test_requests_by_bus_and_queue(service: Service) -> None:
    from tests.e2e.test_auth_e2e import new_client

    model = f"msg-{uuid.uuid4().hex[:8]}"
    assert service.request("POST", "/models", {"name": model, "schema": SCHEMA})[0] == 201
    sqs, outcomes = listen(service)
    run = uuid.uuid4().hex[:8]
    data = b"delivered by a producer"
    storages = [{"pluginBusinessId": "geoexport-s3", "targetTypes": ["RAWDATA"], "storePath": "sessions/e2e"}]
    create = {
        "requestId": f"create-{run}",
        "requestType": "CREATE",
        "requestOwner": service.client_id,
        "metadata": metadata("HIGH", storages=storages),
        "feature": {**city(f"Tromso-{run}", model, 18.96, 69.65), "files": [stored_file("raw.bin", data)]},
    }
    denied = {
        "requestId": f"denied-{run}",
        "requestType": "CREATE",
        "requestOwner": service.client_id,
        "metadata": metadata("LOW"),
        "feature": {**city(f"Nowhere-{run}", model), "properties": {"pop": -1}},
    }
    stranger = {**denied, "requestId": f"stranger-{run}", "requestOwner": "no-such-client"}
    malformed = {"requestType": "CREATE", "requestOwner": service.client_id, "feature": {}}  # no metadata
    send_events(service, create, denied, stranger, malformed)

    record = outcome(service, f"create-{run}")
    assert record["state"] == "SUCCESS" and record["urn"].startswith("URN:FEATURE:DATA:"), record
    assert [s["state"] for s in record["steps"]] == ["GRANTED", "SUCCESS"]
    assert record["priority"] == "HIGH" and record["session"] == "e2e" and record["sessionOwner"] == "tests"
    feature = service.request("GET", f"/features/{record['urn']}")[1]
    assert feature["properties"]["name"] == f"Tromso-{run}" and feature["filesState"] == "AWAITING_UPLOAD"
    assert "/sessions/e2e/raw.bin" in feature["files"][0]["target"]

    refused = outcome(service, f"denied-{run}")
    assert refused["state"] == "DENIED" and refused["urn"] is None
    assert [e["field"] for e in refused["errors"]] == ["properties", "properties.pop"] and [
        s["state"] for s in refused["steps"]
    ] == [
        "GRANTED",
        "DENIED",
    ]
    # A request acting for an unknown client is denied, and nobody can read it.
    assert service.request("GET", f"/requests/stranger-{run}")[0] == 404

    # A request straight to the queue (no envelope): a patch, then a delete, by urn.
    urls = {u.rsplit("/", 1)[1]: u for u in sqs.list_queues()["QueueUrls"]}
    queue = urls["geoexport-FeatureRequestQueue"]
    patch = {
        "requestId": f"patch-{run}",
        "requestType": "PATCH",
        "requestOwner": service.client_id,
        "metadata": metadata(),
        "feature": {"urn": record["urn"], "properties": {"pop": 77000}},
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(patch))
    sqs.send_message(QueueUrl=queue, MessageBody="{not json")
    patched = outcome(service, f"patch-{run}")
    assert patched["state"] == "SUCCESS" and patched["urn"].endswith(":V2"), patched
    assert service.request("GET", f"/features/{patched['urn']}")[1]["properties"]["pop"] == 77000

    # The producer uploads the file; storage verifies it as for REST.
    status, answer, _ = service.request("PATCH", f"/features/{patched['urn']}", {}, extra_headers={})
    assert status == 200 and len(answer["uploads"]) == 1
    assert put(answer["uploads"][0], data) == 200
    assert until(service, answer["urn"], "COMPLETE")["files"][0]["state"] == "STORED"

    delete = {
        **patch,
        "requestId": f"delete-{run}",
        "requestType": "DELETE",
        "feature": {"urn": record["urn"]},
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(delete))
    assert outcome(service, f"delete-{run}")["state"] == "SUCCESS"
    assert service.request("GET", f"/features/{record['urn']}")[0] == 404

    # Unreadable messages wait in the dead-letter queue, each with why.
    dead = drain(sqs, urls["geoexport-FeatureRequestDeadLetterQueue"])
    reasons = [m["reason"] for m in dead]
    assert any("metadata" in r for r in reasons) and any(r.startswith("not JSON") for r in reasons), reasons

    # Outcomes were published as events.
    seen = {(e["detail"]["requestId"], e["detail-type"]) for e in drain(sqs, outcomes)}
    assert {
        (f"create-{run}", "FeatureRequestGranted"),
        (f"create-{run}", "FeatureRequestSuccess"),
        (f"denied-{run}", "FeatureRequestDenied"),
        (f"stranger-{run}", "FeatureRequestDenied"),
        (f"delete-{run}", "FeatureRequestSuccess"),
    } <= seen

    # Only the client a request acted for can read it.
    other = new_client(service, f"other-{run}")
    token = service.issue_token(other["client_id"], other["client_secret"])
    assert service.request("GET", f"/requests/create-{run}", token=token)[0] == 404
