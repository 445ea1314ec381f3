"""Model use cases: register (the schema must be a usable JSON Schema), read, list, validate properties."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from geoexport.api.http import problems_from_pydantic, status_for
from geoexport.errors import (
    FieldProblem,
    GeoexportError,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    UnprocessableRequest,
)
from geoexport.features import spatial
from geoexport.features.feature import Feature, FeatureCollectionIn, FeatureIn, FeatureResult, merge_patch
from geoexport.features.models import FeatureModel, ModelIn
from geoexport.features.schemas import schema_problems, violations


class Models(Protocol):
    def create(self, model: FeatureModel) -> None: ...
    def get(self, name: str) -> FeatureModel: ...
    def all_models(self) -> list[FeatureModel]: ...


class ModelService:
    def __init__(self, models: Models, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._models = models
        self._clock = clock

    def register(self, body: ModelIn, owner: str) -> FeatureModel:
        problems = schema_problems(body.properties_schema)
        if problems:
            raise UnprocessableRequest("the schema is not a usable JSON Schema", problems)
        model = FeatureModel.model_validate(
            {
                "name": body.name,
                "description": body.description,
                "schema": body.properties_schema,
                "createdAt": self._clock(),
                "createdBy": owner,
            }
        )
        self._models.create(model)
        return model

    def get(self, name: str) -> FeatureModel:
        return self._models.get(name)

    def all_models(self) -> list[FeatureModel]:
        return sorted(self._models.all_models(), key=lambda m: m.name)

    def check_properties(self, model_name: str, properties: dict[str, Any]) -> list[FieldProblem]:
        """Every violation of the model's schema (an unknown model is one problem, on ``model``)."""
        try:
            model = self._models.get(model_name)
        except NotFound:  # a problem of the feature (422), not a missing route
            return [FieldProblem("model", f"no model named {model_name} is registered")]
        return violations(properties, model.properties_schema)


URN = re.compile(r"^URN:FEATURE:(COLLECTION|DATA|DATASET):([A-Za-z0-9_-]+):([0-9a-f-]{36})(?::V(\d+))?$")


def parse_urn(urn: str) -> tuple[str, int | None]:
    """(base urn without version, version or None); NotFound for anything that is not one of ours."""
    match = URN.match(urn)
    if not match:
        raise NotFound(f"no feature {urn}")
    base = urn.rsplit(":V", 1)[0] if match.group(4) else urn
    return base, int(match.group(4)) if match.group(4) else None


def etag_of(feature: Feature) -> str:
    return '"' + hashlib.sha256(feature.model_dump_json().encode()).hexdigest()[:20] + '"'


class FeatureStore(Protocol):
    def create(self, base: str, feature: Feature, owner: str, etag: str) -> None: ...
    def head(self, base: str) -> tuple[Feature, str, str] | None: ...
    def version(self, base: str, number: int) -> Feature | None: ...
    def add_version(self, base: str, feature: Feature, owner: str, etag: str, previous_etag: str) -> None: ...
    def heads(self, bases: list[str]) -> dict[str, tuple[Feature, str, str]]: ...
    def delete(self, base: str, feature: Feature, owner: str, etag: str) -> None: ...


class Index(Protocol):
    def put(self, owner: str, base: str, geometry: dict[str, Any] | None) -> None: ...
    def remove(self, owner: str, base: str, geometry: dict[str, Any] | None) -> None: ...
    def drop_stale(
        self, owner: str, base: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None: ...
    def owned(self, owner: str) -> set[str]: ...
    def near(self, owner: str, box: spatial.Bounds) -> set[str]: ...


class FeatureService:
    """Create (one or a batch), read (any version), list (bbox, model, entityType), JSON-Merge-Patch into a
    new version, delete. Index entries are written before the feature and removed after it, so a failure in
    between leaves at most an index entry without a feature (skipped), never a feature no query finds."""

    def __init__(
        self,
        features: FeatureStore,
        models: ModelService,
        tenant: str,
        index: Index | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._features = features
        self._models = models
        self._tenant = tenant
        self._index = index
        self._clock = clock
        self._new_id = new_id

    def _check(self, model: str, properties: dict[str, Any]) -> None:
        problems = self._models.check_properties(model, properties)
        if problems:
            raise UnprocessableRequest(f"the properties do not meet model {model}", problems)

    def create(self, body: FeatureIn, owner: str) -> tuple[Feature, str]:
        self._check(body.model, body.properties)
        base = f"URN:FEATURE:{body.entityType.value}:{self._tenant}:{self._new_id()}"
        now = self._clock()
        feature = Feature(
            id=body.id,
            urn=f"{base}:V1",
            model=body.model,
            entityType=body.entityType,
            geometry=body.geometry,
            properties=body.properties,
            files=body.files,
            version=1,
            createdAt=now,
            updatedAt=now,
        )
        etag = etag_of(feature)
        if self._index:
            self._index.put(owner, base, feature.geometry)
        self._features.create(base, feature, owner, etag)
        return feature, etag

    def create_batch(self, body: FeatureCollectionIn, owner: str) -> list[FeatureResult]:
        """Each feature on its own: one refused feature does not stop the others."""
        results = []
        for index, item in enumerate(body.features):
            try:
                feature, _ = self.create(item, owner)
            except GeoexportError as error:
                errors = [
                    {"field": f"features[{index}].{p.field}", "reason": p.reason} for p in error.problems
                ] or [{"field": f"features[{index}]", "reason": error.message}]
                results.append(FeatureResult(id=item.id, status=status_for(error), errors=errors))
                continue
            results.append(FeatureResult(id=item.id, status=201, urn=feature.urn))
        return results

    def _owned_head(self, urn: str, owner: str) -> tuple[str, int | None, Feature, str]:
        base, version = parse_urn(urn)
        found = self._features.head(base)
        if found is None or found[1] != owner:  # another caller's feature does not exist for this one
            raise NotFound(f"no feature {urn}")
        return base, version, found[0], found[2]

    def get(self, urn: str, owner: str) -> tuple[Feature, str]:
        base, version, head, etag = self._owned_head(urn, owner)
        if version is None or version == head.version:
            return head, etag
        older = self._features.version(base, version) if version < head.version else None
        if older is None:
            raise NotFound(f"no version {version} of {base}")
        return older, etag_of(older)

    def patch(self, urn: str, patch: dict[str, Any], if_match: str | None, owner: str) -> tuple[Feature, str]:
        base, version, head, etag = self._owned_head(urn, owner)
        if (if_match and if_match.strip() not in ("*", etag)) or (
            version is not None and version != head.version
        ):
            raise PreconditionFailed(
                f"{urn} is not the current version ({head.urn})",
                [FieldProblem("If-Match", f"stale: the current ETag is {etag}")],
            )
        unknown = sorted(set(patch) - PATCHABLE)
        if unknown:
            raise InvalidRequest(
                "only properties, geometry and files can be patched",
                [
                    FieldProblem(name, "not patchable (id, model, entityType and urn are fixed)")
                    for name in unknown
                ],
            )
        merged = head.model_dump(mode="json")
        for name in PATCHABLE & set(patch):
            merged[name] = merge_patch(merged.get(name), patch[name]) if name == "properties" else patch[name]
        try:
            checked = FeatureIn.model_validate(
                {
                    "id": head.id,
                    "type": "Feature",
                    "model": head.model,
                    "entityType": head.entityType,
                    "geometry": merged.get("geometry"),
                    "properties": merged.get("properties") or {},
                    "files": merged.get("files") or [],
                }
            )
        except ValidationError as error:
            raise InvalidRequest(
                "the patched feature is not valid", problems_from_pydantic(error.errors())
            ) from None
        self._check(checked.model, checked.properties)
        feature = head.model_copy(
            update={
                "geometry": checked.geometry,
                "properties": checked.properties,
                "files": checked.files,
                "version": head.version + 1,
                "urn": f"{base}:V{head.version + 1}",
                "updatedAt": self._clock(),
            }
        )
        new_etag = etag_of(feature)
        index = self._index if feature.geometry != head.geometry else None  # only a move touches it
        if index:
            index.put(owner, base, feature.geometry)
        self._features.add_version(base, feature, owner, new_etag, etag)
        if index:
            index.drop_stale(owner, base, head.geometry, feature.geometry)
        return feature, new_etag

    def delete(self, urn: str, if_match: str | None, owner: str) -> None:
        base, _, head, etag = self._owned_head(urn, owner)
        if if_match and if_match.strip() not in ("*", etag):
            raise PreconditionFailed(
                f"{urn} changed", [FieldProblem("If-Match", f"stale: the current ETag is {etag}")]
            )
        self._features.delete(base, head, owner, etag)
        if self._index:
            self._index.remove(owner, base, head.geometry)

    def list(
        self,
        owner: str,
        bbox: spatial.Bounds | None,
        model: str | None,
        entity_type: str | None,
        limit: int,
        next_token: str | None,
    ) -> tuple[list[Feature], str | None]:
        """The caller's current features meeting ``bbox`` exactly (index, then the exact test), by urn."""
        if self._index is None:
            raise NotFound("no feature index is configured")
        bases = sorted(self._index.near(owner, bbox) if bbox else self._index.owned(owner))
        after = _decode_token(next_token) if next_token else None
        if after:
            bases = [b for b in bases if b > after]
        items: list[Feature] = []
        for start in range(0, len(bases), 100):
            chunk = bases[start : start + 100]
            heads = self._features.heads(chunk)
            for position, base in enumerate(chunk):
                found = heads.get(base)
                if found is None or found[1] != owner:
                    continue
                feature = found[0]
                if (model and feature.model != model) or (entity_type and feature.entityType != entity_type):
                    continue
                if bbox and (feature.geometry is None or not spatial.intersects(feature.geometry, bbox)):
                    continue
                items.append(feature)
                if len(items) == limit:
                    more = start + position + 1 < len(bases)
                    return items, _encode_token(base) if more else None
        return items, None


def _encode_token(base: str) -> str:
    return base64.urlsafe_b64encode(base.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
        parse_urn(decoded)
        return decoded
    except (ValueError, UnicodeDecodeError, NotFound):
        raise InvalidRequest(
            "nextToken is not one this API gave", [FieldProblem("nextToken", "unknown token")]
        ) from None


PATCHABLE = frozenset({"properties", "geometry", "files"})
