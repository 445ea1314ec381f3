"""Storage delegation rules for feature files: keys, plans per storage, verification of arrivals."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from geoexport.errors import UnprocessableRequest
from geoexport.features.feature import DataType, FeatureFile, FileState, StoredFile
from geoexport.features.files import (
    Digests,
    FilePlanner,
    StorageTarget,
    UploadRule,
    base_of,
    object_key,
    verify,
)

BASE = "URN:FEATURE:DATA:geoexport:0f8fad5b-d9cb-469f-a165-70867728950e"
DATA = b"some bytes"
MD5, SHA = hashlib.md5(DATA).hexdigest(), hashlib.sha256(DATA).hexdigest()
NOW = datetime(2026, 11, 22, tzinfo=UTC)


class Bucket:
    storage_id = "geoexport-s3"

    def upload_url(self, key: str, expires_in: int, must: UploadRule) -> tuple[str, dict[str, str]]:
        return f"http://s3.local/files/{key}?X-Amz-Expires={expires_in}", {"x-checksum": must.checksum}

    def url(self, key: str) -> str:
        return f"s3://files/{key}"

    def key_of(self, url: str) -> str | None:
        return url.removeprefix("s3://files/")


def file(kind: str = "RAWDATA", algorithm: str = "MD5", checksum: str = MD5, **extra: object) -> FeatureFile:
    return FeatureFile.model_validate(
        {
            "attributes": {
                "dataType": kind,
                "mimeType": "application/octet-stream",
                "filename": "a.bin",
                "algorithm": algorithm,
                "checksum": checksum,
                **extra,
            }
        }
    )


def test_keys_lead_back_to_their_feature() -> None:
    key = object_key(BASE, file(), "/products/../2026//")
    assert key == f"DATA/0f8fad5b-d9cb-469f-a165-70867728950e/{MD5}/products/2026/a.bin"
    assert base_of(key, "geoexport") == BASE
    assert base_of("elsewhere/x", "geoexport") is None


def test_storages_choose_by_data_type_and_refuse_what_none_takes() -> None:
    planner = FilePlanner(Bucket(), 600)  # type: ignore[arg-type]
    storages = [
        StorageTarget("geoexport-s3", frozenset({DataType.QUICKLOOK_SD}), "looks"),
        StorageTarget("geoexport-s3", frozenset(), "raw"),
    ]
    files, uploads = planner.plan(BASE, [file("QUICKLOOK_SD"), file()], [], NOW, storages)
    assert [f.target.split("/")[-2] for f in files if f.target] == ["looks", "raw"]
    assert [u.file for u in uploads] == [0, 1] and "X-Amz-Expires=600" in uploads[0].url
    with pytest.raises(UnprocessableRequest) as refused:
        planner.plan(BASE, [file()], [], NOW, [StorageTarget("tape", frozenset(), "x")])
    assert refused.value.problems[0].field == "files[0].attributes.dataType"


def test_a_stored_file_patched_back_stays_stored() -> None:
    planner = FilePlanner(Bucket(), 600)  # type: ignore[arg-type]
    [due], _ = planner.plan(BASE, [file()], [], NOW)
    stored = verify(due, Digests(MD5, SHA, len(DATA)), "geoexport-s3")
    files, uploads = planner.plan(BASE, [file()], [stored], NOW)
    assert files == [stored] and uploads == []


@pytest.mark.parametrize(
    ("sent", "state", "error"),
    [
        (file(), FileState.STORED, None),
        (file("RAWDATA", "SHA-256", SHA.upper()), FileState.STORED, None),
        (file(checksum="0" * 32), FileState.ERROR, "MD5 of the upload is"),
        (file(filesize=3), FileState.ERROR, "the upload has 10 bytes, the feature declares 3"),
    ],
)
def test_arrivals_are_verified(sent: FeatureFile, state: FileState, error: str | None) -> None:
    waiting = StoredFile(**sent.model_dump(), state=FileState.AWAITING_UPLOAD, target="s3://files/k")
    result = verify(waiting, Digests(MD5, SHA, len(DATA)), "geoexport-s3")
    assert result.state == state
    assert (result.error is None) if error is None else (error in (result.error or ""))
    if state == FileState.STORED:
        assert result.locations[0].url == "s3://files/k" and result.attributes.filesize == len(DATA)


@pytest.mark.parametrize(
    ("mime", "accepted"),
    [
        ("application/octet-stream", True),
        ("text/plain; charset=utf-8", True),
        ('multipart/mixed; boundary="a b"', True),
        ("text/html\r\nX: y", False),  # issue 12: the unanchored pattern let a header through
        ("text/html; x", False),
        ("text/html\n", False),
        ("text/plain;\r\n charset=utf-8", False),
    ],
)
def test_mime_types_are_matched_whole(mime: str, accepted: bool) -> None:
    if accepted:
        file(mimeType=mime)
    else:
        with pytest.raises(ValidationError):
            file(mimeType=mime)
