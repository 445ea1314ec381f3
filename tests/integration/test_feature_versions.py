"""Feature versions in DynamoDB (moto over HTTP): HEAD holds the current version and ``V#<n>`` every earlier
one, written when a new version supersedes it. A created feature is stored once (no ``V#`` item); every
earlier version reads back as it was last (files news included); features stored by the earlier layout
(a ``V#`` of the current version too) read and patch the same."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from geoexport import bootstrap
from geoexport.errors import PreconditionFailed
from geoexport.features.feature import FeatureCollectionIn
from geoexport.features.models import ModelIn
from geoexport.features.repository import FeatureIndex, FeatureRepository
from geoexport.features.service import FeatureService, etag_of, parse_urn
from tests.integration.conftest import Cloud


def sorted_keys(db: Any, table: str, base: str) -> list[str]:
    items = db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"F#{base}"}},
        ConsistentRead=True,
    )["Items"]
    return sorted(item["sk"]["S"] for item in items)


@pytest.fixture
def features(cloud: Cloud) -> tuple[FeatureService, FeatureRepository, Any, str, str, str]:
    owner, model = f"versions-{uuid4().hex[:8]}", f"m-{uuid4().hex[:6]}"
    models = bootstrap.model_service(cloud.settings)
    models.register(ModelIn.model_validate({"name": model, "schema": {"type": "object"}}), owner)
    db, table = cloud.client("dynamodb"), cloud.settings.features_table
    repository = FeatureRepository(db, table)
    return (
        FeatureService(repository, models, "test", FeatureIndex(db, table)),
        repository,
        db,
        table,
        owner,
        model,
    )


def points(model: str, *names: str) -> FeatureCollectionIn:
    return FeatureCollectionIn.model_validate(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "id": name,
                    "type": "Feature",
                    "model": model,
                    "entityType": "DATA",
                    "geometry": {"type": "Point", "coordinates": [10.0, 60.0]},
                    "properties": {"name": name},
                }
                for name in names
            ],
        }
    )


def test_versions_are_kept_when_superseded_and_read_back_as_they_were(
    features: tuple[FeatureService, FeatureRepository, Any, str, str, str],
) -> None:
    service, _, db, table, owner, model = features
    created = service.create_batch(points(model, "a", "b"), owner)
    assert [r.status for r in created] == [201, 201]
    urn = created[0].urn or ""
    base, _ = parse_urn(urn)
    assert sorted_keys(db, table, base) == ["HEAD"]  # stored once

    one, etag1 = service.get(urn, owner)
    _, etag2 = service.patch(urn, {"properties": {"step": 2}}, etag1, owner)
    answer, etag3 = service.patch(f"{base}:V2", {"properties": {"step": 3}}, etag2, owner)
    assert answer.version == 3 and sorted_keys(db, table, base) == ["HEAD", "V#00000001", "V#00000002"]
    assert service.get(f"{base}:V1", owner) == (one, etag1)
    two, two_etag = service.get(f"{base}:V2", owner)
    assert two.properties == {"name": "a", "step": 2} and two_etag == etag2
    three, _ = service.get(f"{base}:V3", owner)
    assert three.properties == {"name": "a", "step": 3} and service.get(base, owner)[1] == etag3
    with pytest.raises(PreconditionFailed):  # a stale ETag writes nothing, not even the kept version
        service.patch(urn, {"properties": {"step": 9}}, etag2, owner)
    assert sorted_keys(db, table, base) == ["HEAD", "V#00000001", "V#00000002"]


def test_a_rewritten_head_is_the_version_kept_and_the_earlier_layout_still_reads(
    features: tuple[FeatureService, FeatureRepository, Any, str, str, str],
) -> None:
    service, repository, db, table, owner, model = features
    urn = service.create_batch(points(model, "c"), owner)[0].urn or ""
    base, _ = parse_urn(urn)
    head, _, etag = repository.head(base) or pytest.fail("no HEAD")
    # The earlier layout: a V# item of the current version beside HEAD, then HEAD rewritten in place.
    db.put_item(TableName=table, Item=repository._item(base, "V#00000001", head, owner, etag))
    rewritten = head.model_copy(update={"properties": {"name": "c", "rewritten": True}})
    repository.replace_head(base, rewritten, owner, etag_of(rewritten), etag)
    assert service.get(urn, owner)[0].properties == {"name": "c", "rewritten": True}

    service.patch(urn, {"properties": {"name": "c2"}}, etag_of(rewritten), owner)
    assert sorted_keys(db, table, base) == ["HEAD", "V#00000001"]
    assert service.get(f"{base}:V1", owner)[0].properties == {"name": "c", "rewritten": True}
    assert service.get(f"{base}:V2", owner)[0].properties == {"name": "c2", "rewritten": True}  # merged
