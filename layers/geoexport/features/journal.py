"""Each owner's journal of feature changes: what incremental exports read (what changed since a time).

Every create, new version, file-state rewrite and delete writes its entry in the same DynamoDB transaction as
the change itself (so no change is missing from it), under ``C#<owner>#<UTC day>`` with sort key
``<time>#<urn base>#<version>``; the creations of a batch that one transaction stores share one entry (sort
key ``<time>#<first urn base>#group``, one time for all). An entry keeps what an export needs without the
feature: its urn, model, entity type and bbox (a deleted feature has no document left to read).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, TypeAdapter

from geoexport.features import spatial
from geoexport.features.feature import Feature


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class Change(BaseModel):
    base: str
    urn: str
    featureId: str
    model: str
    entityType: str
    version: int
    kind: ChangeKind
    at: datetime
    bbox: list[float] | None = None


def stamp(moment: datetime) -> str:
    """Sortable UTC text, microseconds included."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def change_of(base: str, feature: Feature, kind: ChangeKind, at: datetime) -> Change:
    return Change(
        base=base,
        urn=feature.urn,
        featureId=feature.id,
        model=feature.model,
        entityType=feature.entityType.value,
        version=feature.version,
        kind=kind,
        at=at,
        bbox=list(spatial.bounds_of(feature.geometry)) if feature.geometry else None,
    )


def _partition(owner: str, at: datetime) -> dict[str, str]:
    return {"S": f"C#{owner}#{at.astimezone(UTC).date().isoformat()}"}


def journal_item(
    base: str, feature: Feature, owner: str, kind: ChangeKind, now: datetime | None = None
) -> dict[str, Any]:
    """The entry of one change."""
    at = now or datetime.now(UTC)
    return {
        "pk": _partition(owner, at),
        "sk": {"S": f"{stamp(at)}#{base}#{feature.version:08d}"},
        "change": {"S": change_of(base, feature, kind, at).model_dump_json()},
    }


def journal_group(
    owner: str, created: list[tuple[str, Feature]], now: datetime | None = None
) -> dict[str, Any]:
    """One entry for the creations one transaction stores (they happen at the same time): a batch of 49
    features is 99 items (claims, HEADs and this), where an entry per feature made it 33 to a transaction."""
    at = now or datetime.now(UTC)
    changes = [change_of(base, feature, ChangeKind.CREATED, at) for base, feature in created]
    return {
        "pk": _partition(owner, at),
        "sk": {"S": f"{stamp(at)}#{created[0][0]}#group"},
        "changes": {"S": "[" + ",".join(change.model_dump_json() for change in changes) + "]"},
    }


_CHANGES = TypeAdapter(list[Change])


def changes_in(item: dict[str, Any]) -> list[Change]:
    """The changes a journal entry holds (one, or a transaction's group)."""
    if "changes" in item:
        return _CHANGES.validate_json(item["changes"]["S"])
    return [Change.model_validate_json(item["change"]["S"])]


def latest_per_feature(changes: list[Change]) -> dict[str, Change]:
    """The last change of each feature (a feature created then deleted in the window ends deleted)."""
    last: dict[str, Change] = {}
    for change in sorted(changes, key=lambda c: c.at):
        last[change.base] = change
    return last


FEATURES_CHANGED = "FeaturesChanged"
SOURCE = "geoexport.features"


class FeaturesChanged(BaseModel):
    """The FeaturesChanged event's detail (exports bus): one per write request, for definitions that follow
    their owner's features (``trigger: on-source-change`` on a VECTOR definition)."""

    owner: str
    count: int
    models: list[str]
    bbox: list[float] | None = None  # of the changed features' geometries (None: none had one)


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class ChangeAnnouncer:
    """Announces stored changes on the exports bus (after they are stored: a lost announcement delays a
    subscribed definition's run to its next trigger; the journal itself misses nothing)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def __call__(self, owner: str, features: list[Feature]) -> None:
        if not features:
            return
        boxes = [spatial.bounds_of(f.geometry) for f in features if f.geometry]
        bbox = (
            [
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            ]
            if boxes
            else None
        )
        detail = FeaturesChanged(
            owner=owner, count=len(features), models=sorted({f.model for f in features}), bbox=bbox
        )
        self._publisher.publish(FEATURES_CHANGED, detail.model_dump(mode="json"))
