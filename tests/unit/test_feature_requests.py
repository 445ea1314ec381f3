"""The messaging API's request handling, with fakes around it: parsing, priority, outcomes, redelivery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from geoexport.errors import FieldProblem, TransientError, UnprocessableRequest
from geoexport.features.requests import FeatureRequests, Malformed, RequestRecord, parse


class Store:
    def __init__(self) -> None:
        self.records: dict[str, RequestRecord] = {}

    def put(self, record: RequestRecord) -> None:
        self.records[record.requestId] = record

    def get(self, request_id: str) -> RequestRecord | None:
        return self.records.get(request_id)


class Features:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def create(self, body: Any, owner: str, storages: Any) -> tuple[Any, str]:
        self.calls.append(body.id)
        if self.fail:
            raise self.fail

        class Created:
            urn = f"URN:FEATURE:DATA:t:{'0' * 8}-0000-0000-0000-{'0' * 12}:V1"

        return Created(), '"etag"'


def request(request_id: str, priority: str = "NORMAL", **extra: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "requestType": "CREATE",
        "requestOwner": "client-1",
        "metadata": {"session": "s", "sessionOwner": "o", "priority": priority},
        "feature": {"id": request_id, "type": "Feature", "model": "m", "entityType": "DATA"},
        **extra,
    }


def service(features: Features) -> tuple[FeatureRequests, Store, list[tuple[str, dict[str, Any]]], list[str]]:
    store, events, dead = Store(), [], []

    class Bus:
        def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
            events.append((detail_type, detail))

    class Dead:
        def park(self, body: str, reason: str) -> None:
            dead.append(reason)

    requests = FeatureRequests(features, store, Bus(), Dead(), lambda c: c == "client-1")  # type: ignore[arg-type]
    return requests, store, events, dead


def test_envelopes_and_bare_requests_parse_and_junk_does_not() -> None:
    envelope = {"id": "evt-1", "detail-type": "FeatureRequest", "detail": {**request("x"), "requestId": "r1"}}
    assert parse(json.dumps(envelope), "m1").requestId == "r1"
    without_id = dict(request("x"))
    del without_id["requestId"]
    assert (
        parse(
            json.dumps({"detail-type": "FeatureRequest", "id": "evt-2", "detail": without_id}), "m"
        ).requestId
        == "evt-2"
    )
    assert parse(json.dumps(without_id), "m3").requestId == "m3"
    for junk, reason in [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"detail-type": "Other", "detail": {}}), "detail-type"),
        (
            json.dumps(
                {**request("x"), "metadata": {"session": "s", "sessionOwner": "o", "priority": "URGENT"}}
            ),
            "metadata.priority",
        ),
    ]:
        with pytest.raises(Malformed, match=reason):
            parse(junk, "m")


def test_a_batch_runs_high_first_and_parks_junk() -> None:
    requests, _, _, dead = service(Features())
    batch = [
        ("1", json.dumps(request("low", "LOW"))),
        ("2", "junk"),
        ("3", json.dumps(request("high", "HIGH"))),
    ]
    assert [r.requestId for _, r in requests.take(batch)] == ["high", "low"]
    assert dead and dead[0].startswith("not JSON")


def test_outcomes_are_kept_published_and_not_redone() -> None:
    features = Features()
    requests, store, events, _ = service(features)
    (pair,) = requests.take([("1", json.dumps(request("r")))])
    first = requests.handle(pair[1])
    assert first.state == "SUCCESS" and [e for e, _ in events] == [
        "FeatureRequestGranted",
        "FeatureRequestSuccess",
    ]
    assert requests.handle(pair[1]) == first and features.calls == ["r"]  # redelivered: the outcome stands
    assert store.records["r"].urn == first.urn


def test_denials_carry_reasons_and_internal_failures_are_retried() -> None:
    refused = UnprocessableRequest("no", [FieldProblem("properties.pop", "below 0")])
    requests, _, events, _ = service(Features(fail=refused))
    (pair,) = requests.take([("1", json.dumps(request("r")))])
    denied = requests.handle(pair[1])
    assert denied.state == "DENIED" and denied.errors == [{"field": "properties.pop", "reason": "below 0"}]

    requests, store, events, _ = service(Features(fail=TransientError("DynamoDB throttled")))
    with pytest.raises(TransientError):
        requests.handle(pair[1])
    assert store.records["r"].state == "ERROR" and events[-1][0] == "FeatureRequestError"

    requests, _, _, _ = service(Features())
    stranger = requests.take([("1", json.dumps(request("s", requestOwner="nobody")))])[0][1]
    assert requests.handle(stranger).errors[0]["field"] == "requestOwner"
