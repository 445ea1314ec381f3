"""Webhooks on the local stack: retried with backoff until answered, dead-lettered, replayed over the API."""

from __future__ import annotations

import json
import time

from tests.e2e.conftest import Service
from tests.e2e.test_api_e2e import Z8, landsat, square
from tests.e2e.test_export_e2e import export_body
from tests.support import Receiver


def test_failing_receivers_are_retried_then_dead_lettered_and_replayed(
    broken_service: Service, receiver: Receiver
) -> None:
    receiver.failing.update({"/flaky": 2, "/down": 10_000})
    body = export_body(landsat(broken_service), square(-77.5, 24.6, 0.1), Z8, receiver.url("/flaky"))
    body["webhooks"].append({"url": receiver.url("/down"), "events": ["TASK_FAILED"]})
    status, created, _ = broken_service.request("POST", "/export-tasks", body)
    assert status == 201
    task_id = created["id"]
    assert broken_service.wait(task_id)[-1]["status"] == "FAILED"

    # /flaky answers 503 twice, then 204: three attempts of one message, backed off.
    deadline = time.monotonic() + 30
    while [c["status"] for c in receiver.calls if c["path"] == "/flaky"] != [503, 503, 204]:
        assert time.monotonic() < deadline, [(c["path"], c["status"]) for c in receiver.calls]
        time.sleep(0.1)
    flaky = [c for c in receiver.calls if c["path"] == "/flaky"]
    assert flaky[1]["at"] - flaky[0]["at"] >= 0.25 and len({c["headers"]["webhook-id"] for c in flaky}) == 1

    # /down never answers 2xx: retried for the (compressed) 4 s window, then exhausted.
    def outcomes() -> dict[str, dict[str, object]]:
        task = broken_service.request("GET", f"/export-tasks/{task_id}")[1]
        return {d["url"].rsplit("/", 1)[1]: d for d in task["webhookDeliveries"]}

    while outcomes().get("down", {}).get("outcome") != "exhausted":
        assert time.monotonic() < deadline, outcomes()
        time.sleep(0.2)
    down = [c for c in receiver.calls if c["path"] == "/down"]
    assert len(down) >= 3 and down[-1]["at"] - down[0]["at"] >= 3.9
    assert outcomes()["flaky"]["outcome"] == "delivered" and outcomes()["flaky"]["attempts"] == 3
    assert outcomes()["down"]["attempts"] == len(down)
    sqs = broken_service.client("sqs")
    dlq = sqs.get_queue_url(QueueName="geoexport-WebhookDeadLetterQueue")["QueueUrl"]
    parked = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    ]
    assert any(task_id in p["job"] and "HTTP 503" in p["reason"] for p in parked), parked

    # Fixed receiver: a replay delivers the same event once more; a second replay has nothing to do.
    receiver.failing["/down"] = 0
    status, replay, _ = broken_service.request("POST", f"/export-tasks/{task_id}/callbacks:replay")
    assert status == 202 and [d["url"] for d in replay["replayed"]] == [receiver.url("/down")]
    assert broken_service.request("POST", f"/export-tasks/{task_id}/callbacks:replay")[0] == 200
    while outcomes()["down"]["outcome"] != "delivered":
        assert time.monotonic() < deadline + 30, (outcomes(), "".join(broken_service.output[-30:]))
        time.sleep(0.2)
    down = [c for c in receiver.calls if c["path"] == "/down"]
    assert down[-1]["status"] == 204 and down[-1]["body"]["event"] == "TASK_FAILED"
    assert len({c["headers"]["webhook-id"] for c in down}) == 1
    # An unknown action next to the task answers 404, not a replay.
    assert broken_service.request("POST", f"/export-tasks/{task_id}/callbacks:purge")[0] == 404
