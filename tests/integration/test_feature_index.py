"""Issue 14: the feature index answers a bbox query at the cost of its answer. Through the local stack's
DynamoDB (moto with its sorted partitions): exact answers against shapely, pages that add up to the unpaged
answer with no feature twice, filters applied on index entries, and reads that do not grow with the
repository for a small box."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import shapely
from shapely.geometry import shape

from geoexport import bootstrap
from geoexport.errors import InvalidRequest
from geoexport.features.cql2 import parse_filter
from geoexport.features.feature import FeatureCollectionIn
from geoexport.features.models import ModelIn
from geoexport.features.repository import FeatureIndex, FeatureRepository
from geoexport.features.service import FeatureService, reindex
from tests.integration.conftest import Cloud
from tests.support import ROOT

#: Each loaded feature's properties by provider id (the brute-force side of the filter tests).
PROPERTIES: dict[str, dict[str, Any]] = {}


class Reads:
    """Counts what DynamoDB reads: index entries (Query) and documents (BatchGetItem keys)."""

    def __init__(self, client: Any) -> None:
        self.entries = 0
        self.documents = 0
        client.meta.events.register("after-call.dynamodb.Query", self._query)
        client.meta.events.register("after-call.dynamodb.BatchGetItem", self._batch)

    def _query(self, parsed: dict[str, Any], **_: Any) -> None:
        self.entries += parsed.get("ScannedCount", 0)

    def _batch(self, parsed: dict[str, Any], **_: Any) -> None:
        self.documents += sum(len(items) for items in parsed.get("Responses", {}).values())


@pytest.fixture(scope="module")
def loaded(
    cloud: Cloud,
) -> Iterator[tuple[FeatureService, str, str, dict[str, tuple[str, dict[str, Any]]], Reads]]:
    owner = f"index-{uuid4().hex[:8]}"
    model, other = f"ne-{uuid4().hex[:6]}", f"other-{uuid4().hex[:6]}"
    models = bootstrap.model_service(cloud.settings)
    for name in (model, other):
        models.register(ModelIn.model_validate({"name": name, "schema": {"type": "object"}}), owner)
    db = cloud.client("dynamodb")
    reads = Reads(db)
    table = cloud.settings.features_table
    service = FeatureService(FeatureRepository(db, table), models, "test", FeatureIndex(db, table))
    geometries: dict[str, tuple[str, dict[str, Any]]] = {}
    PROPERTIES.clear()
    for kind, path in (
        ("DATA", ROOT / "tests" / "data" / "cities.geojson"),
        ("DATASET", ROOT / "layers" / "geoexport" / "data" / "countries.geojson"),
    ):
        features = json.loads(path.read_text())["features"]
        body = []
        for index, feature in enumerate(features):
            provider_id = f"{path.stem}-{index}"
            geometries[provider_id] = (kind, feature["geometry"])
            properties = {**feature["properties"], "rank": index % 10}
            PROPERTIES[provider_id] = properties
            body.append(
                {"id": provider_id, "type": "Feature", "model": model if index % 5 else other,
                 "entityType": kind, "geometry": feature["geometry"], "properties": properties}
            )  # fmt: skip
        for start in range(0, len(body), 100):
            batch = FeatureCollectionIn.model_validate(
                {"type": "FeatureCollection", "features": body[start : start + 100]}
            )
            results = service.create_batch(batch, owner)
            assert {r.status for r in results} == {201}, results
    # The same provider id again, in a batch with a new one: only the taken one is refused.
    again = FeatureCollectionIn.model_validate(
        {"type": "FeatureCollection", "features": [
            {"id": "cities-1", "type": "Feature", "model": model, "entityType": "DATA",
             "geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {}},
            {"id": "fresh", "type": "Feature", "model": model, "entityType": "DATA", "geometry": None,
             "properties": {}},
        ]}
    )  # fmt: skip
    assert [r.status for r in service.create_batch(again, owner)] == [409, 201]
    yield service, owner, model, geometries, reads


def listed(service: FeatureService, owner: str, box: Any, limit: int, **filters: Any) -> list[str]:
    found: list[str] = []
    token = None
    where = parse_filter(filters["where"]) if filters.get("where") else None
    while True:
        items, token = service.list(
            owner, box, filters.get("model"), filters.get("entity_type"), limit, token, where
        )
        found += [item.id for item in items]
        if token is None:
            return found


def test_pages_add_up_to_the_exact_answer(loaded: Any) -> None:
    service, owner, model, geometries, _ = loaded
    boxes = [
        (-180.0, -90.0, 180.0, 90.0),
        (5.0, 45.0, 15.0, 55.0),
        (-0.2, 51.4, 0.1, 51.6),
        (100.0, -10.0, 140.0, 20.0),
    ]
    for box in boxes:
        expected = {k for k, (_, g) in geometries.items() if shapely.box(*box).intersects(shape(g))}
        whole = listed(service, owner, box, 1000)
        assert set(whole) == expected and len(whole) == len(expected), box
        for limit in (1, 7, 50) if len(expected) < 150 else (7, 50):
            paged = listed(service, owner, box, limit)
            assert paged == whole, (box, limit)  # same order, nothing twice, nothing missing
    europe = (5.0, 45.0, 15.0, 55.0)
    area = shapely.box(*europe)
    datasets = listed(service, owner, europe, 3, entity_type="DATASET", model=model)
    countries = json.loads((ROOT / "layers" / "geoexport" / "data" / "countries.geojson").read_text())
    assert set(datasets) == {
        f"countries-{i}"
        for i, f in enumerate(countries["features"])
        if i % 5 and area.intersects(shape(f["geometry"]))
    }
    everything = listed(service, owner, None, 97)
    assert len(everything) == len(set(everything)) == len(geometries) + 1  # "fresh" has no geometry
    items, _ = service.list(owner, None, None, None, 1000, None)
    urns = [item.urn for item in items]
    assert urns == sorted(urns)  # without a bbox, by urn


def test_a_small_box_reads_what_is_near_it(loaded: Any) -> None:
    service, owner, _, _, reads = loaded
    reads.entries = reads.documents = 0
    items, _ = service.list(owner, (-0.2, 51.4, 0.1, 51.6), None, None, 100, None)  # London
    assert [i.id for i in items]
    # Three index entries per feature (owner, one or more cells): the box reads a few dozen of ~2,000.
    assert reads.entries < 60, reads.entries
    assert reads.documents <= 20, reads.documents  # only candidates whose bbox meets the box


def test_a_token_belongs_to_its_query(loaded: Any) -> None:
    service, owner, *_ = loaded
    _, token = service.list(owner, (-180.0, -90.0, 180.0, 90.0), None, None, 5, None)
    assert token
    with pytest.raises(InvalidRequest):
        service.list(owner, (0.0, 0.0, 10.0, 10.0), None, None, 5, token)
    with pytest.raises(InvalidRequest):
        service.list(owner, None, None, None, 5, "not-a-token")


def test_an_index_of_another_layout_is_rebuilt(loaded: Any, cloud: Cloud) -> None:
    """An upgrade that changes the index layout rebuilds it from the features (the local stack does it
    on start; on AWS `geoexport features reindex`)."""
    service, owner, _, geometries, _ = loaded
    db, table = cloud.client("dynamodb"), cloud.settings.features_table
    stale = [  # what the first layout wrote: entries without bbox, model or type, other keys
        {
            "pk": {"S": f"O#{owner}"},
            "sk": {"S": "URN:FEATURE:DATA:test:00000000-0000-0000-0000-000000000000"},
        },
        {"pk": {"S": f"G#{owner}#u"}, "sk": {"S": "3#u0q#URN:FEATURE:DATA:test:0"}},
    ]
    for item in stale:
        db.put_item(TableName=table, Item=item)
    db.delete_item(TableName=table, Key={"pk": {"S": "INDEX"}, "sk": {"S": "VERSION"}})
    assert (reindex(FeatureRepository(db, table), FeatureIndex(db, table)) or 0) >= len(geometries) + 1
    assert reindex(FeatureRepository(db, table), FeatureIndex(db, table)) is None  # current now
    for item in stale:
        assert "Item" not in db.get_item(TableName=table, Key=item)
    europe = (5.0, 45.0, 15.0, 55.0)
    expected = {k for k, (_, g) in geometries.items() if shapely.box(*europe).intersects(shape(g))}
    assert set(listed(service, owner, europe, 50)) == expected
    assert len(listed(service, owner, None, 500)) == len(geometries) + 1


FILTERS: dict[str, Any] = {  # CQL2 text, and the same question in Python over the stored properties
    "continent = 'Europe' AND pop_est > 5000000": lambda p: (
        p.get("continent") == "Europe" and p.get("pop_est", 0) > 5_000_000
    ),
    "name LIKE 'San%' OR rank IN (1, 3)": lambda p: p["name"].startswith("San") or p["rank"] in (1, 3),
    "rank BETWEEN 2 AND 4 AND NOT (continent IS NULL)": lambda p: 2 <= p["rank"] <= 4 and "continent" in p,
    "gdp_md_est / pop_est * 1000000 > 30000": lambda p: (
        "pop_est" in p and p["pop_est"] > 0 and p["gdp_md_est"] / p["pop_est"] * 1e6 > 30000
    ),
    "NOT continent = 'Africa'": lambda p: "continent" in p and p["continent"] != "Africa",
}


@pytest.mark.parametrize("text", sorted(FILTERS))
def test_cql2_filters_equal_a_brute_force_filter(loaded: Any, text: str) -> None:
    """Issue 16: the filter's answers, whole and paged, with and without a bbox, equal Python's."""
    service, owner, _, geometries, _ = loaded
    wanted = FILTERS[text]
    for box in (None, (5.0, 45.0, 15.0, 55.0)):
        near = {
            k for k, (_, g) in geometries.items() if box is None or shapely.box(*box).intersects(shape(g))
        }
        expected = {k for k in near if wanted(PROPERTIES[k])}
        whole = listed(service, owner, box, 1000, where=text)
        assert set(whole) == expected and len(whole) == len(expected), (text, box)
        assert listed(service, owner, box, 7, where=text) == whole
    assert expected  # each filter selects something in Europe


def test_a_filter_that_few_pass_ends_pages_early(loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page reads at most MAX_PAGE_READS documents: a rare match is found by following nextToken."""
    from geoexport.features import service as module

    service, owner, *_ = loaded
    monkeypatch.setattr(module, "MAX_PAGE_READS", 50)
    where = parse_filter("name = 'Vaduz'")
    pages, found, token = 0, [], None
    while True:
        items, token = service.list(owner, None, None, None, 100, token, where)
        pages, found = pages + 1, found + [i.id for i in items]
        if token is None:
            break
    assert found == ["cities-2"] and pages >= 4  # about 420 documents, at most 100 past the bound a page


def test_a_feature_and_its_index_entries_are_stored_together_or_not_at_all(cloud: Cloud) -> None:
    """One transaction holds a feature and its entries: a refused feature (its id taken) leaves none behind,
    each stored one has its entries as soon as it is answered, and a batch that dies leaves none."""
    owner, model = f"together-{uuid4().hex[:8]}", f"m-{uuid4().hex[:6]}"
    models = bootstrap.model_service(cloud.settings)
    models.register(ModelIn.model_validate({"name": model, "schema": {"type": "object"}}), owner)
    db = cloud.client("dynamodb")
    table = cloud.settings.features_table
    service = FeatureService(FeatureRepository(db, table), models, "test", FeatureIndex(db, table))

    def square(name: str, x: float) -> dict[str, Any]:
        ring = [[x, 1], [x + 3, 1], [x + 3, 4], [x, 4], [x, 1]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
        return {
            "type": "Feature",
            "id": name,
            "model": model,
            "entityType": "DATA",
            "properties": {},
            "geometry": geometry,
        }

    first = service.create_batch(
        FeatureCollectionIn.model_validate({"type": "FeatureCollection", "features": [square("taken", 0)]}),
        owner,
    )
    batch = [square(f"f{i}", i) for i in range(40)] + [square("taken", 50), square("f3", 60)]
    results = service.create_batch(
        FeatureCollectionIn.model_validate({"type": "FeatureCollection", "features": batch}), owner
    )
    assert [r.status for r in results] == [201] * 40 + [409, 409]  # the batch's transaction was redone
    assert results[41].errors == [
        {"field": "features[41].id", "reason": "repeats features[3].id of the same model"}
    ]
    assert results[3].urn  # of two features with one id in a batch, the first is stored, whatever the timing

    def entries() -> tuple[set[str], set[str]]:
        owned, cells = set(), set()
        for prefix, found in (("O#", owned), ("G#", cells)):
            for page in db.get_paginator("scan").paginate(
                TableName=table,
                FilterExpression="begins_with(pk, :p)",
                ExpressionAttributeValues={":p": {"S": f"{prefix}{owner}"}},
            ):
                found.update(item["sk"]["S"].rsplit("#", 1)[-1] for item in page["Items"])
        return owned, cells

    stored = {r.urn.rsplit(":V", 1)[0] for r in [*first, *results] if r.urn}
    assert len(stored) == 41
    assert entries() == (stored, stored)  # every stored feature's entries, and no refused feature's

    def crash(**_: Any) -> None:  # the function dies as it stores the features
        raise RuntimeError("killed")

    db.meta.events.register("before-call.dynamodb.TransactWriteItems", crash)
    try:
        with pytest.raises(RuntimeError):
            service.create_batch(
                FeatureCollectionIn.model_validate(
                    {"type": "FeatureCollection", "features": [square("g", 70)]}
                ),
                owner,
            )
    finally:
        db.meta.events.unregister("before-call.dynamodb.TransactWriteItems", crash)
    assert entries() == (stored, stored)  # nothing half-stored: no entry names a feature that is not there
