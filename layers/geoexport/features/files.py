"""Storage delegation for feature files (seed 004's ``Storage Management``, here one S3 bucket).

A file with ``algorithm`` and ``checksum`` is stored: its answer carries a presigned PUT URL with the
declared checksum (and size) signed in, so S3 refuses other bytes: a verified file cannot be replaced
through its URL, and an upload larger than declared never lands. When the object
arrives (S3 event -> queue -> the feature-files function) both its MD5 and SHA-256 are computed and the
declared one compared; a match makes ``locations`` the S3 URL, a mismatch marks the file ERROR (and the
object is removed: the URL stays valid for another try). A file with only ``locations[].url`` is kept.

Object keys are ``<entityType>/<uuid>/<checksum>/<storePath>/<filename>``: the feature is found from the key
alone, and deleting a feature is one prefix delete over all its versions' files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from geoexport.errors import FieldProblem, UnprocessableRequest
from geoexport.features.feature import (
    DataType,
    FeatureFile,
    FileLocation,
    FileState,
    StoredFile,
    Upload,
)


@dataclass(frozen=True)
class Digests:
    md5: str
    sha256: str
    size: int


@dataclass(frozen=True)
class UploadRule:
    """What an upload must be, signed into its URL so the store refuses anything else."""

    algorithm: str  # "MD5" or "SHA-256"
    checksum: str  # hexadecimal, as the feature declares it
    size: int | None = None  # bytes, when declared


class FileStorage(Protocol):
    storage_id: str

    def upload_url(self, key: str, expires_in: int, must: UploadRule) -> tuple[str, dict[str, str]]: ...
    def url(self, key: str) -> str: ...
    def key_of(self, url: str) -> str | None: ...
    def digests(self, key: str) -> Digests | None: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...


@dataclass(frozen=True)
class StorageTarget:
    """seed 004's ``metadata.storages[]``: which storage takes which data types, under which path."""

    plugin_id: str
    target_types: frozenset[DataType] = field(default_factory=frozenset)  # empty: every type
    store_path: str = ""


def object_key(base: str, file: FeatureFile, store_path: str) -> str:
    _, _, entity, _, uid = base.split(":", 4)
    path = "/".join(part for part in store_path.strip("/").split("/") if part not in ("", ".", ".."))
    return "/".join(
        p for p in (entity, uid, file.attributes.checksum or "", path, file.attributes.filename) if p
    )


def feature_prefix(base: str) -> str:
    _, _, entity, _, uid = base.split(":", 4)
    return f"{entity}/{uid}/"


def base_of(key: str, tenant: str) -> str | None:
    """The feature a stored object belongs to (None for keys not laid out by object_key)."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] not in ("COLLECTION", "DATA", "DATASET"):
        return None
    return f"URN:FEATURE:{parts[0]}:{tenant}:{parts[1]}"


def _same(a: FeatureFile, b: FeatureFile) -> bool:
    x, y = a.attributes, b.attributes
    return (x.algorithm, x.checksum, x.filename) == (y.algorithm, y.checksum, y.filename)


class FilePlanner:
    """Decides, for a feature's files, which are references, which are due and where each goes."""

    def __init__(self, storage: FileStorage | None, upload_ttl_seconds: int) -> None:
        self._storage = storage
        self._ttl = upload_ttl_seconds

    def _target(self, file: FeatureFile, index: int, storages: list[StorageTarget] | None) -> StorageTarget:
        assert self._storage is not None
        if storages is None:  # REST: the service's own storage
            return StorageTarget(self._storage.storage_id)
        kind = file.attributes.dataType
        for target in storages:
            if target.plugin_id == self._storage.storage_id and (
                not target.target_types or kind in target.target_types
            ):
                return target
        raise UnprocessableRequest(
            f"no storage for files[{index}]",
            [
                FieldProblem(
                    f"files[{index}].attributes.dataType",
                    f"no entry of metadata.storages with pluginBusinessId {self._storage.storage_id!r} "
                    f"takes {kind.value}",
                )
            ],
        )

    def plan(
        self,
        base: str,
        files: list[FeatureFile],
        previous: list[StoredFile],
        now: datetime,
        storages: list[StorageTarget] | None = None,
    ) -> tuple[list[StoredFile], list[Upload]]:
        """The files to keep, and an upload per file still due (a stored file patched back stays stored)."""
        kept: list[StoredFile] = []
        uploads: list[Upload] = []
        for index, file in enumerate(files):
            if not file.to_store:
                kept.append(StoredFile(**file.model_dump(), state=FileState.REFERENCED))
                continue
            if self._storage is None:
                raise UnprocessableRequest(
                    "this service stores no files",
                    [FieldProblem(f"files[{index}].attributes.checksum", "no file storage is configured")],
                )
            earlier = next((p for p in previous if p.to_store and _same(p, file)), None)
            if earlier is not None and earlier.state == FileState.STORED:
                kept.append(earlier)
                continue
            if earlier is not None and earlier.target:
                key = self._storage.key_of(earlier.target) or ""
            else:
                key = object_key(base, file, self._target(file, index, storages).store_path)
            kept.append(
                StoredFile(
                    **file.model_dump(),
                    state=earlier.state if earlier else FileState.AWAITING_UPLOAD,
                    error=earlier.error if earlier else None,
                    target=self._storage.url(key),
                )
            )
            attributes = file.attributes
            assert attributes.algorithm is not None and attributes.checksum is not None  # to_store
            url, headers = self._storage.upload_url(
                key, self._ttl, UploadRule(attributes.algorithm, attributes.checksum, attributes.filesize)
            )
            uploads.append(
                Upload(
                    file=index,
                    filename=attributes.filename,
                    url=url,
                    headers=headers,
                    expiresAt=now + timedelta(seconds=self._ttl),
                )
            )
        return kept, uploads


def verify(file: StoredFile, found: Digests, storage_id: str) -> StoredFile:
    """The file once its object arrived: STORED at its S3 URL, or ERROR saying what did not match."""
    declared = file.attributes.checksum
    actual = found.md5 if file.attributes.algorithm == "MD5" else found.sha256
    problems = []
    if actual != declared:
        problems.append(
            f"{file.attributes.algorithm} of the upload is {actual}, the feature declares {declared}"
        )
    if file.attributes.filesize is not None and file.attributes.filesize != found.size:
        problems.append(f"the upload has {found.size} bytes, the feature declares {file.attributes.filesize}")
    if problems:
        return file.model_copy(update={"state": FileState.ERROR, "error": "; ".join(problems)})
    assert file.target is not None
    return file.model_copy(
        update={
            "state": FileState.STORED,
            "error": None,
            "locations": [FileLocation(storage=storage_id, url=file.target)],
            "attributes": file.attributes.model_copy(update={"filesize": found.size}),
        }
    )
