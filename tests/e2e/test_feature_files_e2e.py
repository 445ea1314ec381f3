"""Feature files over HTTP (issue 5): stored files get a presigned upload URL and are verified on arrival."""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from tests.e2e.conftest import Service
from tests.e2e.test_features_e2e import SCHEMA, city


def put(upload: dict[str, Any], data: bytes) -> int:
    """PUT ``data`` to an upload of a feature's answer, with the headers it names (the signed checksum and
    size). urllib would label the body a form (moto then stores nothing); say what it is."""
    headers = {**upload["headers"], "Content-Type": "application/octet-stream"}
    headers.pop("Content-Length", None)  # urllib sends the body's real length
    request = urllib.request.Request(upload["url"], data=data, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def until_file(service: Service, urn: str, index: int, state: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        feature = service.request("GET", f"/features/{urn}")[1]
        if feature["files"][index]["state"] == state or time.monotonic() > deadline:
            return feature
        time.sleep(0.3)


def until(service: Service, urn: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        feature = service.request("GET", f"/features/{urn}")[1]
        if feature.get("filesState") == state or time.monotonic() > deadline:
            return feature
        time.sleep(0.3)


def stored_file(name: str, data: bytes, algorithm: str = "MD5", **extra: Any) -> dict[str, Any]:
    digest = hashlib.md5(data).hexdigest() if algorithm == "MD5" else hashlib.sha256(data).hexdigest()
    attributes = {"dataType": "RAWDATA", "mimeType": "application/octet-stream", "filename": name}
    return {"attributes": {**attributes, "algorithm": algorithm, "checksum": digest, **extra}}


def test_files_are_uploaded_verified_referenced_and_deleted(service: Service) -> None:
    model = f"files-{uuid.uuid4().hex[:8]}"
    assert service.request("POST", "/models", {"name": model, "schema": SCHEMA})[0] == 201
    raw, look = b"raw bytes " * 1000, b"\x89PNG quicklook"
    reference = {
        "locations": [{"storage": "DISK", "url": "https://example.org/doc.pdf"}],
        "attributes": {"dataType": "DOCUMENT", "mimeType": "application/pdf", "filename": "doc.pdf"},
    }
    body = {
        **city("Bergen", model),
        "files": [
            stored_file("data.bin", raw, "MD5", filesize=len(raw)),
            {
                **stored_file("look.png", look, "SHA-256"),
                "attributes": {
                    **stored_file("look.png", look, "SHA-256")["attributes"],
                    "dataType": "QUICKLOOK_SD",
                    "mimeType": "image/png",
                },
            },
            reference,
        ],
    }
    status, created, _ = service.request("POST", "/features", body)
    assert status == 201, created
    assert [u["file"] for u in created["uploads"]] == [0, 1] and created["filesState"] == "AWAITING_UPLOAD"
    assert [f["state"] for f in created["files"]] == ["AWAITING_UPLOAD", "AWAITING_UPLOAD", "REFERENCED"]
    assert created["files"][2]["locations"] == reference["locations"]
    urn = created["urn"]

    assert set(created["uploads"][1]["headers"]) == {"x-amz-checksum-sha256"}  # SHA-256, no size declared
    assert put(created["uploads"][0], raw) == 200
    # Wrong bytes never land: the store refuses a body whose checksum is not the signed one (issue 12).
    assert put(created["uploads"][1], b"not the quicklook") == 400
    assert put(created["uploads"][1], b"\x89PNG quicklook and then some") == 400
    feature = until_file(service, urn, 0, "STORED")
    data, quicklook = feature["files"][0], feature["files"][1]
    assert data["state"] == "STORED" and data["locations"][0]["url"].startswith("s3://"), data
    assert data["locations"][0]["url"].endswith("/data.bin") and data["attributes"]["filesize"] == len(raw)
    assert quicklook["state"] == "AWAITING_UPLOAD" and feature["version"] == 1
    s3 = service.client("s3")
    bucket, key = data["locations"][0]["url"][5:].split("/", 1)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == raw
    bad_key = quicklook["target"][5:].split("/", 1)[1]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=bad_key).get("KeyCount") == 0  # bad bytes not kept

    # Another try at the same URL with the right bytes repairs it.
    assert put(created["uploads"][1], look) == 200
    feature = until(service, urn, "COMPLETE")
    assert [f["state"] for f in feature["files"]] == ["STORED", "STORED", "REFERENCED"]

    # A patch that sends the files back as GET shows them keeps them stored (and asks for no upload).
    etag = service.request("GET", f"/features/{urn}")[2]["ETag"]
    status, patched, _ = service.request(
        "PATCH", f"/features/{urn}", {"files": feature["files"]}, extra_headers={"If-Match": etag}
    )
    assert status == 200 and patched["uploads"] == [] and patched["filesState"] == "COMPLETE"

    # Refusals name the field.
    bad_files = [
        (
            {
                **stored_file("x.bin", raw),
                "attributes": {**stored_file("x.bin", raw)["attributes"], "checksum": "abc"},
            },
            "files[0].attributes",
        ),
        ({"attributes": {"dataType": "RAWDATA", "mimeType": "a/b", "filename": "x"}}, "files[0]"),
        (
            {**reference, "attributes": {**reference["attributes"], "dataType": "PICTURE"}},
            "files[0].attributes.dataType",
        ),
        (
            {**reference, "attributes": {**reference["attributes"], "filename": "../etc/x"}},
            "files[0].attributes.filename",
        ),
        (
            {**reference, "attributes": {"dataType": "DOCUMENT", "filename": "a.pdf"}},
            "files[0].attributes.mimeType",
        ),
    ]
    for index, (file, field) in enumerate(bad_files):
        status, answer, _ = service.request(
            "POST", "/features", {**city(f"bad{index}", model), "files": [file]}
        )
        assert status == 400, answer
        assert answer["errors"][0]["field"] == field, answer

    # The upload URL is still valid after the file is stored, but it can no longer replace it (issue 12:
    # other bytes through it destroyed a STORED, verified file): the store refuses them.
    assert put(created["uploads"][0], b"replaced") == 403  # not the signed size
    assert put(created["uploads"][0], b"R" * len(raw)) == 400  # the signed size, not the signed checksum
    kept = service.request("GET", f"/features/{urn.rsplit(':V', 1)[0]}")[1]["files"][0]
    assert kept["state"] == "STORED" and s3.get_object(Bucket=bucket, Key=key)["Body"].read() == raw

    # Delete removes the stored objects too.
    base = urn.rsplit(":V", 1)[0]
    etag = service.request("GET", f"/features/{base}")[2]["ETag"]
    assert service.request("DELETE", f"/features/{base}", extra_headers={"If-Match": etag})[0] == 204
    prefix = key.split("/")[0] + "/" + key.split("/")[1] + "/"
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount") == 0
