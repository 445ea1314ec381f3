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


def city(name: str, model: str, lon: float = 10.75, lat: float = 59.91, **props: object) -> dict[str, object]:
    return {
        "id": name,
        "type": "Feature",
        "model": model,
        "entityType": "DATA",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": name, **props},
    }


def test_feature_lifecycle_versions_etags_and_owners(service: Service) -> None:
    from tests.e2e.test_auth_e2e import new_client

    model = f"place-{uuid.uuid4().hex[:8]}"
    assert service.request("POST", "/models", {"name": model, "schema": SCHEMA})[0] == 201
    status, created, headers = service.request("POST", "/features", city("Oslo", model, pop=700000))
    assert status == 201 and created["urn"].startswith("URN:FEATURE:DATA:geoexport:")
    assert created["urn"].endswith(":V1") and created["version"] == 1 and headers["ETag"]
    urn1 = created["urn"]
    base = urn1.rsplit(":V", 1)[0]
    status, again, _ = service.request("POST", "/features", city("Oslo", model))
    assert status == 409 and urn1 in again["errors"][0]["reason"]
    status, bad, _ = service.request(
        "POST", "/features", {**city("X", model, pop=-3), "properties": {"pop": -3}}
    )
    assert status == 422 and {e["field"] for e in bad["errors"]} == {"properties", "properties.pop"}
    status, bad, _ = service.request("POST", "/features", city("Y", "no-such-model"))
    assert status == 422 and bad["errors"][0]["field"] == "model"
    status, bad, _ = service.request(
        "POST", "/features", {**city("Z", model), "geometry": {"type": "Point", "coordinates": [200, 0]}}
    )
    assert status == 400 and "off the globe" in bad["errors"][0]["reason"]

    # A batch is answered per feature: one refused does not stop the others.
    batch = {
        "type": "FeatureCollection",
        "features": [city("Bergen", model), city("Oslo", model), city("Q", model, pop="x")],
    }
    status, answer, _ = service.request("POST", "/features", batch)
    assert status == 207 and [i["status"] for i in answer["items"]] == [201, 409, 422]
    assert answer["items"][0]["urn"].endswith(":V1") and answer["items"][2]["errors"][0]["field"].startswith(
        "features[2]"
    )

    # GET by base or versioned urn; PATCH with the ETag makes V2 and keeps V1 readable.
    status, current, headers = service.request("GET", f"/features/{base}")
    etag = headers["ETag"]
    assert status == 200 and current["urn"] == urn1
    stale = {"If-Match": '"not-the-etag"'}
    assert (
        service.request("PATCH", f"/features/{base}", {"properties": {"pop": 1}}, extra_headers=stale)[0]
        == 412
    )
    status, v2, headers2 = service.request(
        "PATCH",
        f"/features/{base}",
        {"properties": {"pop": 709000, "name": None}, "geometry": None},
        extra_headers={"If-Match": etag},
    )
    assert status == 422  # the merge removed "name", which the model requires: refused, nothing written
    status, v2, headers2 = service.request(
        "PATCH",
        f"/features/{base}",
        {"properties": {"pop": 709000}, "geometry": None},
        extra_headers={"If-Match": etag},
    )
    assert status == 200 and v2["urn"] == f"{base}:V2" and v2["properties"] == {"name": "Oslo", "pop": 709000}
    assert v2["geometry"] is None and headers2["ETag"] != etag
    # Without a geometry it leaves every bbox query, but stays in the caller's listing.
    assert base in {
        f["urn"].rsplit(":V", 1)[0] for f in service.request("GET", f"/features?model={model}")[1]["items"]
    }
    assert all(
        f["id"] != "Oslo"
        for f in service.request("GET", f"/features?bbox=10,59,11,60&model={model}")[1]["items"]
    )
    assert service.request("GET", f"/features/{urn1}")[1]["properties"]["pop"] == 700000  # V1 kept
    assert (
        service.request("PATCH", f"/features/{base}", {"properties": {}}, extra_headers={"If-Match": etag})[0]
        == 412
    )
    assert service.request("PATCH", f"/features/{base}", {"model": "other"})[0] == 400
    assert service.request("GET", f"/features/{base}:V9")[0] == 404

    # Another client: the feature does not exist for it, on every route.
    other = new_client(service, "features-other")
    token = service.issue_token(other["client_id"], other["client_secret"])
    assert service.request("GET", f"/features/{base}", token=token)[0] == 404
    assert service.request("PATCH", f"/features/{base}", {"properties": {}}, token=token)[0] == 404
    assert service.request("DELETE", f"/features/{base}", token=token)[0] == 404

    # DELETE with a stale ETag is refused; with the current one it removes every version.
    assert service.request("DELETE", f"/features/{base}", extra_headers={"If-Match": etag})[0] == 412
    status, _, _ = service.request(
        "DELETE", f"/features/{base}", extra_headers={"If-Match": headers2["ETag"]}
    )
    assert status == 204
    assert service.request("GET", f"/features/{base}")[0] == 404
    assert service.request("GET", f"/features/{urn1}")[0] == 404
    assert (
        service.request("POST", "/features", city("Oslo", model))[0] == 201
    )  # the provider id is free again


def test_bbox_queries_match_a_brute_force_filter(service: Service) -> None:
    import json
    import random
    import urllib.parse

    import shapely
    from shapely.geometry import shape

    from tests.e2e.test_auth_e2e import new_client
    from tests.support import ROOT

    mapper = new_client(service, "mapper")
    token = service.issue_token(mapper["client_id"], mapper["client_secret"])
    model = f"ne-{uuid.uuid4().hex[:8]}"
    assert (
        service.request("POST", "/models", {"name": model, "schema": {"type": "object"}}, token=token)[0]
        == 201
    )
    geometries: dict[str, dict[str, object]] = {}
    for kind, path in (
        ("DATA", ROOT / "tests" / "data" / "cities.geojson"),
        ("DATASET", ROOT / "layers" / "geoexport" / "data" / "countries.geojson"),
    ):
        loaded = json.loads(path.read_text())["features"]
        batch = []
        for index, feature in enumerate(loaded):
            provider_id = f"{path.stem}-{index}"
            geometries[provider_id] = feature["geometry"]
            batch.append(
                {"id": provider_id, "type": "Feature", "model": model, "entityType": kind,
                 "geometry": feature["geometry"], "properties": {"name": feature["properties"]["name"]}}
            )  # fmt: skip
        for start in range(0, len(batch), 100):
            body = {"type": "FeatureCollection", "features": batch[start : start + 100]}
            status, answer, _ = service.request("POST", "/features", body, token=token)
            assert status == 207 and {i["status"] for i in answer["items"]} == {201}, answer

    def listed(query: str, limit: int = 200) -> set[str]:
        found: list[str] = []
        next_token = None
        while True:
            suffix = f"&nextToken={next_token}" if next_token else ""
            status, page, _ = service.request("GET", f"/features?{query}&limit={limit}{suffix}", token=token)
            assert status == 200, page
            found += [item["id"] for item in page["items"]]
            if not (next_token := page.get("nextToken")):
                assert len(found) == len(set(found)), query  # no feature on two pages
                return set(found)

    rng = random.Random(11)
    boxes = [(-180.0, -90.0, 180.0, 90.0), (5.0, 45.0, 15.0, 55.0)]
    for _ in range(6):
        x, y = rng.uniform(-180, 150), rng.uniform(-90, 60)
        boxes.append(
            (
                round(x, 3),
                round(y, 3),
                round(min(180, x + rng.uniform(0.5, 40)), 3),
                round(min(90, y + rng.uniform(0.5, 30)), 3),
            )
        )
    for box in boxes:
        query = "bbox=" + urllib.parse.quote(",".join(str(v) for v in box))
        expected = {k for k, g in geometries.items() if shapely.box(*box).intersects(shape(g))}
        assert listed(query) == expected, box
        assert listed(query, 13) == expected, box  # small pages add up to the same answer
    europe = "bbox=" + urllib.parse.quote("5,45,15,55")
    assert listed(europe + "&entityType=DATASET") == {
        k
        for k, g in geometries.items()
        if k.startswith("countries") and shapely.box(5, 45, 15, 55).intersects(shape(g))
    }
    assert len(listed(f"model={model}")) == len(geometries)  # no bbox: every feature of the caller
    assert service.request("GET", f"/features?bbox={europe[5:]}")[1]["items"] == [] or all(
        i["model"] != model for i in service.request("GET", f"/features?bbox={europe[5:]}")[1]["items"]
    )  # the demo client does not see the mapper's features
    assert service.request("GET", "/features?bbox=10,10,5,20", token=token)[0] == 400
    assert service.request("GET", "/features?nextToken=@@@", token=token)[0] == 400
