"""Model use cases: register (the schema must be a usable JSON Schema), read, list, validate properties."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from geoexport.api.http import problems_from_pydantic, status_for
from geoexport.errors import (
    Conflict,
    FieldProblem,
    GeoexportError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    UnprocessableRequest,
)
from geoexport.features import spatial
from geoexport.features.cql2 import PropertyFilter, filterable
from geoexport.features.feature import (
    Feature,
    FeatureAnswer,
    FeatureCollectionIn,
    FeatureIn,
    FeatureResult,
    FileState,
    StoredFile,
    Upload,
    merge_patch,
)
from geoexport.features.files import FilePlanner, FileStorage, StorageTarget, base_of, feature_prefix, verify
from geoexport.features.journal import Change, ChangeKind, latest_per_feature
from geoexport.features.models import FeatureModel, ModelIn
from geoexport.features.schemas import schema_problems, validator_for, violations
from geoexport.features.spatial import Indexed, Position


class Models(Protocol):
    def create(self, model: FeatureModel) -> None: ...
    def get(self, name: str) -> FeatureModel: ...
    def all_models(self) -> list[FeatureModel]: ...


class ModelService:
    """Models are immutable once registered (a change is a new name), so a found one is kept for the life
    of the execution environment: loading a batch reads each model once, not once per feature."""

    CACHED = 256

    def __init__(self, models: Models, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._models = models
        self._clock = clock
        self._known: dict[str, FeatureModel] = {}
        self._validators: dict[str, Any] = {}  # by model name, as long as the model is kept

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
        model = self._known.get(name)
        if model is None:
            model = self._models.get(name)  # NotFound is not kept: the name may be registered later
            if len(self._known) >= self.CACHED:
                oldest = next(iter(self._known))
                del self._known[oldest]
                self._validators.pop(oldest, None)
            self._known[name] = model
        return model

    def all_models(self) -> list[FeatureModel]:
        return sorted(self._models.all_models(), key=lambda m: m.name)

    def check_properties(self, model_name: str, properties: dict[str, Any]) -> list[FieldProblem]:
        """Every violation of the model's schema (an unknown model is one problem, on ``model``)."""
        try:
            model = self.get(model_name)
        except NotFound:  # a problem of the feature (422), not a missing route
            return [FieldProblem("model", f"no model named {model_name} is registered")]
        validator = self._validators.get(model_name)
        if validator is None:
            validator = self._validators[model_name] = validator_for(model.properties_schema)
        return violations(properties, model.properties_schema, validator=validator)


URN = re.compile(r"^URN:FEATURE:(COLLECTION|DATA|DATASET):([A-Za-z0-9_-]+):([0-9a-f-]{36})(?::V(\d+))?$")


def parse_urn(urn: str) -> tuple[str, int | None]:
    """(base urn without version, version or None); NotFound for anything that is not one of ours."""
    match = URN.match(urn)
    if not match:
        raise NotFound(f"no feature {urn}")
    base = urn.rsplit(":V", 1)[0] if match.group(4) else urn
    return base, int(match.group(4)) if match.group(4) else None


def etag_of(feature: Feature) -> str:
    return _etag(feature.model_dump_json())


def _etag(document: str) -> str:
    return '"' + hashlib.sha256(document.encode()).hexdigest()[:20] + '"'


def _sealed(feature: Feature) -> tuple[str, str]:
    """(stored document, ETag) of a feature about to be stored, refused when too large: the document is
    written once (it was three times, ~5% of a batch's CPU)."""
    document = feature.model_dump_json()
    size = len(document.encode())
    if size > MAX_FEATURE_BYTES:
        raise PayloadTooLarge(
            f"the feature is {size} bytes; at most {MAX_FEATURE_BYTES} are kept per feature",
            [FieldProblem("geometry", "simplify the geometry (or split the feature) to fit")],
        )
    return document, _etag(document)


class FeatureStore(Protocol):
    def create(
        self,
        base: str,
        feature: Feature,
        owner: str,
        etag: str,
        also: Sequence[dict[str, Any]] = (),
        document: str | None = None,
    ) -> None: ...
    def head(self, base: str) -> tuple[Feature, str, str] | None: ...
    def version(self, base: str, number: int) -> Feature | None: ...
    def add_version(
        self, base: str, feature: Feature, owner: str, etag: str, previous: Feature, previous_etag: str
    ) -> None: ...
    def replace_head(
        self, base: str, feature: Feature, owner: str, etag: str, previous_etag: str
    ) -> None: ...
    def heads(self, bases: list[str]) -> dict[str, tuple[Feature, str, str]]: ...
    def delete(self, base: str, feature: Feature, owner: str, etag: str) -> None: ...
    def create_many(
        self,
        created: list[tuple[str, Feature, str]],
        owner: str,
        also: Mapping[str, Sequence[dict[str, Any]]] | None = None,
        documents: Mapping[str, str] | None = None,
    ) -> dict[str, GeoexportError]: ...
    def all_heads(self) -> Iterator[tuple[str, Feature, str]]: ...
    def changes(self, owner: str, since: datetime, until: datetime) -> list[Change]: ...


class Index(Protocol):
    def writes(self, feature: Indexed) -> list[dict[str, Any]]: ...
    def put(self, *features: Indexed) -> None: ...
    def remove(self, *features: Indexed) -> None: ...
    def drop_stale(self, old: Indexed, new: Indexed) -> None: ...
    def is_current(self) -> bool: ...
    def mark_current(self) -> None: ...
    def clear(self) -> int: ...
    def scan(
        self,
        owner: str,
        box: spatial.Bounds | None,
        model: str | None = None,
        entity_type: str | None = None,
        start: Position | None = None,
    ) -> Iterator[tuple[str, Position]]: ...


class Shares(Protocol):
    """The owners' storage quotas for stored files (:class:`geoexport.features.shares.FileShares`)."""

    def check(self, owner: str, needed: int) -> None: ...
    def stored(self, owner: str, base: str, key: str, size: int) -> bool: ...
    def released(self, base: str) -> int: ...


def _declared_uploads(files: list[StoredFile]) -> int:
    """Bytes the files still to upload declare (a file without filesize is counted when it arrives)."""
    return sum(f.attributes.filesize or 0 for f in files if f.to_store and f.state != FileState.STORED)


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
        files: FileStorage | None = None,
        upload_ttl_seconds: int = 3600,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
        shares: Shares | None = None,
        announce: Callable[[str, list[Feature]], None] | None = None,
    ) -> None:
        self._announce = announce or (lambda owner, features: None)
        self._shares = shares
        self._features = features
        self._models = models
        self._tenant = tenant
        self._index = index
        self._files = files
        self._planner = FilePlanner(files, upload_ttl_seconds)
        self._clock = clock
        self._new_id = new_id

    def _check(self, model: str, properties: dict[str, Any]) -> None:
        numbers = non_finite(properties)
        if numbers:
            raise InvalidRequest("the properties hold numbers JSON cannot carry", numbers)
        problems = self._models.check_properties(model, properties)
        if problems:
            raise UnprocessableRequest(f"the properties do not meet model {model}", problems)

    def _prepare(
        self, body: FeatureIn, owner: str, storages: list[StorageTarget] | None
    ) -> tuple[str, Feature, str, list[Upload], str]:
        """(urn base, feature, ETag, upload URLs, stored document) of a valid new feature, not yet stored."""
        self._check(body.model, body.properties)
        base = f"URN:FEATURE:{body.entityType.value}:{self._tenant}:{self._new_id()}"
        now = self._clock()
        files, uploads = self._planner.plan(base, body.files, [], now, storages)
        if self._shares and uploads:
            self._shares.check(owner, _declared_uploads(files))
        feature = Feature(
            id=body.id,
            urn=f"{base}:V1",
            model=body.model,
            entityType=body.entityType,
            geometry=body.geometry,
            properties=body.properties,
            files=files,
            version=1,
            createdAt=now,
            updatedAt=now,
        )
        document, etag = _sealed(feature)
        return base, feature, etag, uploads, document

    def create(
        self, body: FeatureIn, owner: str, storages: list[StorageTarget] | None = None
    ) -> tuple[FeatureAnswer, str]:
        """The new feature (with an upload URL per file to store) and its ETag."""
        base, feature, etag, uploads, document = self._prepare(body, owner, storages)
        answer = FeatureAnswer(**feature.model_dump(), uploads=uploads)
        entries = self._index.writes(indexed(owner, base, feature)) if self._index else []
        self._features.create(base, feature, owner, etag, entries, document)
        self._announce(owner, [feature])
        return answer, etag

    def create_batch(
        self, body: FeatureCollectionIn, owner: str, storages: list[StorageTarget] | None = None
    ) -> list[FeatureResult]:
        """Each feature on its own (one refused feature does not stop the others), stored together: the
        features with their index entries in transactions of many (a taken id is found alone)."""
        results: list[FeatureResult | None] = []
        prepared: list[tuple[int, str, Feature, str, list[Upload], str]] = []

        def refused(index: int, item: FeatureIn, error: GeoexportError) -> FeatureResult:
            errors = [
                {"field": f"features[{index}].{p.field}", "reason": p.reason} for p in error.problems
            ] or [{"field": f"features[{index}]", "reason": error.message}]
            return FeatureResult(id=item.id, status=status_for(error), errors=errors)

        first: dict[tuple[str, str], int] = {}
        for index, item in enumerate(body.features):
            try:
                earlier = first.setdefault((item.model, item.id), index)
                if earlier != index:  # found here, not by racing transactions: the first one wins
                    raise Conflict(
                        f"feature {item.id} of model {item.model} is also features[{earlier}] of this batch",
                        [FieldProblem("id", f"repeats features[{earlier}].id of the same model")],
                    )
                prepared.append((index, *self._prepare(item, owner, storages)))
                results.append(None)
            except GeoexportError as error:
                results.append(refused(index, item, error))
        entries = (
            {base: self._index.writes(indexed(owner, base, f)) for _, base, f, _, _, _ in prepared}
            if self._index
            else {}
        )
        failed = self._features.create_many(
            [(base, f, etag) for _, base, f, etag, _, _ in prepared],
            owner,
            entries,
            {base: document for _, base, _, _, _, document in prepared},
        )
        self._announce(owner, [f for _, b, f, _, _, _ in prepared if b not in failed])
        for index, base, feature, _, uploads, _ in prepared:
            item = body.features[index]
            if base in failed:
                results[index] = refused(index, item, failed[base])
            else:
                results[index] = FeatureResult(id=item.id, status=201, urn=feature.urn, uploads=uploads)
        return [r for r in results if r is not None]

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

    def patch(
        self,
        urn: str,
        patch: dict[str, Any],
        if_match: str | None,
        owner: str,
        storages: list[StorageTarget] | None = None,
    ) -> tuple[FeatureAnswer, str]:
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
        if isinstance(patch.get("files"), list):  # read-only parts of a file (as GET shows them) are ignored
            patch = {**patch, "files": [_as_sent(f) for f in patch["files"]]}
        else:
            merged["files"] = [_as_sent(f) for f in merged.get("files") or []]
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
        now = self._clock()
        files, uploads = self._planner.plan(base, checked.files, head.files, now, storages)
        if self._shares and uploads:
            self._shares.check(owner, _declared_uploads(files))
        feature = head.model_copy(
            update={
                "geometry": checked.geometry,
                "properties": checked.properties,
                "files": files,
                "version": head.version + 1,
                "urn": f"{base}:V{head.version + 1}",
                "updatedAt": now,
            }
        )
        _, new_etag = _sealed(feature)
        index = self._index if feature.geometry != head.geometry else None  # only a move touches it
        if index:
            index.put(indexed(owner, base, feature))
        self._features.add_version(base, feature, owner, new_etag, head, etag)
        self._announce(owner, [head, feature])  # where it was and where it is
        if index:
            index.drop_stale(indexed(owner, base, head), indexed(owner, base, feature))
        return FeatureAnswer(**feature.model_dump(), uploads=uploads), new_etag

    def delete(self, urn: str, if_match: str | None, owner: str) -> None:
        base, _, head, etag = self._owned_head(urn, owner)
        if if_match and if_match.strip() not in ("*", etag):
            raise PreconditionFailed(
                f"{urn} changed", [FieldProblem("If-Match", f"stale: the current ETag is {etag}")]
            )
        self._features.delete(base, head, owner, etag)
        self._announce(owner, [head])
        if self._index:
            self._index.remove(indexed(owner, base, head))
        if self._files:  # every version's files sit under one prefix
            self._files.delete_prefix(feature_prefix(base))
        if self._shares:
            self._shares.released(base)

    def file_arrived(self, key: str) -> list[str]:
        """Verify an uploaded object against the file(s) waiting for it; what happened, for the log.

        Runs on S3's event (at least once, maybe late): a feature or file no longer waiting for the object
        leaves it an orphan, which is removed; a conflicting write (a PATCH meanwhile) is read again.
        """
        assert self._files is not None
        base = base_of(key, self._tenant)
        url = self._files.url(key)
        digests = None
        for _ in range(5):
            found = self._features.head(base) if base else None
            # A stored file is checked again too: its upload URL stays valid and may be used twice.
            due = [i for i, f in enumerate(found[0].files if found else []) if f.target == url]
            if found is None or not due:
                self._files.delete(key)
                return [f"{key}: no feature waits for it: removed"]
            head, owner, etag = found
            digests = digests or self._files.digests(key)  # read once, whatever the retries
            if digests is None:
                return [f"{key}: gone before it was read"]
            files = list(head.files)
            for i in due:
                files[i] = verify(files[i], digests, self._files.storage_id)
            if any(files[i].state == FileState.ERROR for i in due):
                # Keep no bytes that do not match (the URL allows another try), and delete them before the
                # ERROR is visible: whoever reads ERROR finds the bad bytes gone.
                self._files.delete(key)
            if files != head.files:  # unchanged: the same event again
                feature = head.model_copy(update={"files": files, "updatedAt": self._clock()})
                try:
                    self._features.replace_head(base or "", feature, owner, etag_of(feature), etag)
                except PreconditionFailed:
                    continue  # patched meanwhile: look again
                self._announce(owner, [feature])
            if self._shares and base and any(files[i].state == FileState.STORED for i in due):
                self._shares.stored(owner, base, key, digests.size)  # once per object, whatever the events
            return [f"{key}: {files[i].state.value} for {head.urn} files[{i}]" for i in due]
        raise PreconditionFailed(f"{key}: the feature kept changing", [])

    def changed_since(
        self, owner: str, since: datetime, until: datetime
    ) -> tuple[list[Feature], list[Change]]:
        """The owner's features changed in [since, until) at their current versions, and the deletions
        (a feature's last change in the window decides which it is)."""
        latest = latest_per_feature(self._features.changes(owner, since, until))
        alive = [base for base, change in latest.items() if change.kind is not ChangeKind.DELETED]
        heads = self._features.heads(alive)
        current = [heads[b][0] for b in alive if b in heads and heads[b][1] == owner]
        deleted = [change for change in latest.values() if change.kind is ChangeKind.DELETED]
        return current, deleted

    def list(
        self,
        owner: str,
        bbox: spatial.Bounds | None,
        model: str | None,
        entity_type: str | None,
        limit: int,
        next_token: str | None,
        where: PropertyFilter | None = None,
    ) -> tuple[list[Feature], str | None]:
        """The caller's current features meeting ``bbox`` exactly: index entries filtered by bbox, model and
        type, then the documents of the candidates (100 at a time), the exact test and the CQL2 filter
        (``where``). Without a bbox the order is by urn, with one by location; a page resumes where the last
        one stopped reading, and ends early (with a nextToken) after reading ``MAX_PAGE_READS`` documents,
        so a filter that few features pass cannot make one request read the whole repository."""
        if self._index is None:
            raise NotFound("no feature index is configured")
        query = _fingerprint(owner, bbox, model, entity_type, where.text if where else None)
        start = _decode_token(next_token, query) if next_token else None
        candidates = self._index.scan(owner, bbox, model, entity_type, start)
        items: list[Feature] = []
        size, last, read = 0, start, 0
        while True:
            if read >= MAX_PAGE_READS and last is not None:
                return items, _encode_token(query, last)
            batch = list(itertools.islice(candidates, min(100, max(10, limit - len(items)))))
            if not batch:
                return items, None
            heads = self._features.heads([base for base, _ in batch])
            read += len(batch)
            for base, position in batch:
                feature = self._kept(heads.get(base), owner, bbox, where)
                if feature is not None:
                    size += len(feature.model_dump_json())
                    if items and size > MAX_PAGE_BYTES and last is not None:  # a Lambda answers 6 MB at most
                        return items, _encode_token(query, last)  # this one starts the next page
                    items.append(feature)
                last = position  # read: the next page starts after it, whether it was kept or not
                if feature is not None and len(items) == limit:
                    return items, _encode_token(query, position)

    @staticmethod
    def _kept(
        found: tuple[Feature, str, str] | None,
        owner: str,
        bbox: spatial.Bounds | None,
        where: PropertyFilter | None,
    ) -> Feature | None:
        """The candidate's feature if it is the owner's, meets the bbox exactly and passes the filter."""
        if found is None or found[1] != owner:  # an entry written before its feature, or stale
            return None
        feature = found[0]
        if bbox and (feature.geometry is None or not spatial.intersects(feature.geometry, bbox)):
            return None
        if where is not None and not where.matches(filterable(feature)):
            return None
        return feature


def indexed(owner: str, base: str, feature: Feature) -> Indexed:
    return Indexed(owner, base, feature.geometry, feature.model, feature.entityType.value)


def reindex(features: FeatureStore, index: Index, force: bool = False) -> int | None:
    """Rebuild the index from the features when it was written by another layout (an upgrade), or when
    ``force``: every entry removed, then one set per current feature. How many features, or None when it
    was current."""
    if index.is_current() and not force:
        return None
    index.clear()
    batch: list[Indexed] = []
    count = 0
    for base, feature, owner in features.all_heads():
        batch.append(indexed(owner, base, feature))
        if len(batch) == 100:
            index.put(*batch)
            count, batch = count + len(batch), []
    index.put(*batch)
    index.mark_current()
    return count + len(batch)


#: A feature is one DynamoDB item (at most 400 KB with its keys); larger ones are refused up front.
MAX_FEATURE_BYTES = 350_000
#: A page of features ends before it passes this many bytes of JSON (Lambda answers at most 6 MB).
MAX_PAGE_BYTES = 5_000_000
#: A page ends (with a nextToken) after reading this many documents, however few passed the filter.
MAX_PAGE_READS = 5_000


def non_finite(value: Any, path: str = "properties") -> list[FieldProblem]:
    """NaN, Infinity and numbers beyond a double's range (1e400 parses as infinity): refused, where they
    are, instead of being stored as null."""
    problems: list[FieldProblem] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            problems.append(
                FieldProblem(where, f"{node} is not a finite number (NaN, Infinity, or out of range)")
            )
        elif isinstance(node, dict):
            stack.extend((child, f"{where}.{key}") for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(node))
    return sorted(problems, key=lambda problem: problem.field)


def _fingerprint(owner: str, *query: object) -> str:
    """Ties a nextToken to the query that made it (another query's token is refused, not misread)."""
    return hashlib.sha256(repr((owner, *query)).encode()).hexdigest()[:12]


def _encode_token(query: str, position: Position) -> str:
    text = json.dumps([query, position[0], position[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_token(token: str, query: str) -> Position:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        made_for, step, key = json.loads(decoded)
        if made_for == query and isinstance(step, int) and step >= 0 and isinstance(key, str):
            return step, key
    except (ValueError, UnicodeDecodeError, TypeError):
        pass
    raise InvalidRequest(
        "nextToken is not one this API gave for this query",
        [
            FieldProblem(
                "nextToken", "unknown token, or one from a query with other bbox, model or entityType"
            )
        ],
    )


PATCHABLE = frozenset({"properties", "geometry", "files"})
READ_ONLY_FILE_PARTS = ("state", "error", "target")


def _as_sent(file: Any) -> Any:
    return (
        {k: v for k, v in file.items() if k not in READ_ONLY_FILE_PARTS} if isinstance(file, dict) else file
    )
