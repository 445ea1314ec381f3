"""Feature models over HTTP (issue 5, first part): register, read, list; refusals name the field."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import Service

SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "pop": {"type": "integer", "minimum": 0}},
}


def test_models_register_read_and_list(service: Service) -> None:
    name = f"city-{uuid.uuid4().hex[:8]}"
    status, model, _ = service.request(
        "POST", "/models", {"name": name, "description": "cities", "schema": SCHEMA}
    )
    assert status == 201 and model["name"] == name and model["schema"] == SCHEMA
    assert model["createdBy"] == service.client_id
    assert service.request("GET", f"/models/{name}")[1] == model
    listed = service.request("GET", "/models")[1]["items"]
    assert name in [m["name"] for m in listed] and listed == sorted(listed, key=lambda m: m["name"])
    status, again, _ = service.request("POST", "/models", {"name": name, "schema": SCHEMA})
    assert status == 409 and again["errors"][0]["field"] == "name"
    status, bad, _ = service.request("POST", "/models", {"name": "bad1", "schema": {"type": "nonsense"}})
    assert status == 422 and bad["errors"][0]["field"] == "schema.type"
    status, bad, _ = service.request("POST", "/models", {"name": "1bad", "schema": SCHEMA})
    assert status == 400 and bad["errors"][0]["field"] == "name"
    assert service.request("GET", "/models/no-such-model")[0] == 404
    assert service.request("GET", "/models", token=None)[0] == 401
