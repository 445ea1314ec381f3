"""Incremental VECTOR exports (issue 15) over moto with the real steps: the feature journal written with
each change, and an export of a window holding only what was created or changed in it, with its deletions
in the metadata; a window with nothing in it completes with metadata alone."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyogrio

from geoexport import bootstrap
from geoexport.features.feature import FeatureCollectionIn, FeatureIn
from geoexport.features.journal import ChangeKind
from geoexport.features.models import ModelIn
from tests.integration.conftest import Cloud
from tests.integration.test_vector_exports import export as vector_export

AREA = {"type": "Polygon", "coordinates": [[[20, 60], [22, 60], [22, 61], [20, 61], [20, 60]]]}


def moment() -> datetime:
    """Now, with a little room on both sides (journal times are the writers' clocks)."""
    time.sleep(0.01)
    now = datetime.now(UTC)
    time.sleep(0.01)
    return now


def point(name: str, model: str, x: float, y: float = 60.5) -> FeatureIn:
    return FeatureIn.model_validate(
        {
            "id": name,
            "model": model,
            "entityType": "DATA",
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"name": name},
        }
    )


def export(cloud: Cloud, owner: str, parameters: dict[str, Any], tmp: Path) -> tuple[Any, dict[str, Path]]:
    """The real steps over moto, as the vector export tests run them, for ``owner``'s features."""
    body = {"ROI": AREA, "parameters": parameters}
    return vector_export(cloud, body, tmp, 100 * 1024**2, owner=owner)


def ids(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        for layer, _ in pyogrio.list_layers(path):
            meta, _, _, fields = pyogrio.raw.read(path, layer=layer, read_geometry=False)
            found |= {str(i) for i in fields[list(meta["fields"]).index("featureId")]}
    return found


def test_a_window_exports_what_changed_in_it_and_lists_what_went(cloud: Cloud, tmp_path: Path) -> None:
    owner, model = f"incremental-{uuid.uuid4().hex[:6]}", f"sensor_{uuid.uuid4().hex[:6]}"
    bootstrap.model_service(cloud.settings).register(
        ModelIn.model_validate({"name": model, "schema": {"type": "object"}}), owner
    )
    features = bootstrap.feature_service(cloud.settings)
    t0 = moment()
    answers = {
        name: features.create(point(name, model, x), owner)[0]
        for name, x in (("a", 20.5), ("b", 21.0), ("c", 21.5), ("far", 40.0))
    }
    t1 = moment()
    first_window = {"model": model, "changedSince": t0.isoformat(), "changedUntil": t1.isoformat()}
    first = export(cloud, owner, first_window, tmp_path / "first")[1]
    assert ids([p for n, p in first.items() if n.endswith(".gpkg")]) == {"a", "b", "c"}  # not "far"
    features.patch(
        answers["a"].urn, {"geometry": {"type": "Point", "coordinates": [20.7, 60.6]}}, None, owner
    )
    features.delete(answers["b"].urn, None, owner)
    features.create(point("d", model, 21.8), owner)
    features.delete(answers["far"].urn, None, owner)  # deleted, but never in the AoI
    t2 = moment()

    journal = bootstrap.aws.dynamodb(cloud.settings)
    from geoexport.features.repository import FeatureRepository

    changes = FeatureRepository(journal, cloud.settings.features_table).changes(owner, t0, t2)
    assert [(c.featureId, c.kind) for c in changes if c.at >= t1] == [
        ("a", ChangeKind.UPDATED),
        ("b", ChangeKind.DELETED),
        ("d", ChangeKind.CREATED),
        ("far", ChangeKind.DELETED),
    ]

    window = {"model": model, "changedSince": t1.isoformat(), "changedUntil": t2.isoformat()}
    files = export(cloud, owner, window, tmp_path / "second")[1]
    assert ids([p for n, p in files.items() if n.endswith(".gpkg")]) == {"a", "d"}
    metadata = json.loads(
        next(p for n, p in files.items() if n.endswith(".json") and ".stac" not in n).read_text()
    )
    incremental = metadata["incremental"]
    assert incremental["changed"] == 2 and [d["featureId"] for d in incremental["deleted"]] == ["b"]
    assert incremental["since"] == t1.isoformat() and incremental["until"] == t2.isoformat()

    quiet = export(cloud, owner, {"model": model, "changedSince": t2.isoformat()}, tmp_path / "quiet")[0]
    assert {a.type.value for a in quiet.artifacts} == {"METADATA", "STAC"}  # nothing changed: no GeoPackage


def test_a_batch_is_journaled_as_one_entry_per_transaction_and_read_back_per_feature(cloud: Cloud) -> None:
    owner, model = f"batch-{uuid.uuid4().hex[:6]}", f"sensor_{uuid.uuid4().hex[:6]}"
    bootstrap.model_service(cloud.settings).register(
        ModelIn.model_validate({"name": model, "schema": {"type": "object"}}), owner
    )
    features = bootstrap.feature_service(cloud.settings)
    t0 = moment()
    batch = FeatureCollectionIn(
        type="FeatureCollection", features=[point(f"p{i}", model, 20 + i / 100) for i in range(60)]
    )
    results = features.create_batch(batch, owner)
    t1 = moment()
    single = features.create(point("alone", model, 21.9), owner)[0]
    t2 = moment()

    db = bootstrap.aws.dynamodb(cloud.settings)
    from geoexport.features.repository import FeatureRepository

    journal = FeatureRepository(db, cloud.settings.features_table)
    created = journal.changes(owner, t0, t1)
    assert sorted((c.featureId, c.urn, c.kind) for c in created) == sorted(
        (r.id, r.urn, ChangeKind.CREATED) for r in results
    )
    assert [c.featureId for c in journal.changes(owner, t1, t2)] == ["alone"]
    assert [c.urn for c in journal.changes(owner, t0, t2)][-1] == single.urn
    entries = [
        item
        for day in sorted({t0.date(), t2.date()})
        for item in db.query(
            TableName=cloud.settings.features_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"C#{owner}#{day.isoformat()}"}},
        )["Items"]
    ]
    # the batch's three transactions (24 + 24 + 12 points: a claim, HEAD and two index entries each, and one
    # journal entry, fill 97 of a transaction's 100 items), then the single feature
    assert len(entries) == 4
