"""The local stack's S3 mirror over moto's HTTP server (issue 11): every way an object is written or
deleted reaches the state store before the answer, body and all."""

from __future__ import annotations

import hashlib
import io
import pickle
import urllib.request
import uuid

from boto3.s3.transfer import TransferConfig

from geoexport_local.durable import StateStore
from tests.integration.conftest import Cloud


def saved(store: StateStore, bucket: str) -> dict[str, bytes]:
    rows = store.rows("SELECT name, state, blob FROM s3_objects WHERE bucket = ?", bucket)
    for _, state, _ in rows:
        assert "value" not in pickle.loads(state)  # the body lives in blobs/, not in the row
    return {name: store.read_blob(blob) for name, _, blob in rows}


def form_post(url: str, fields: dict[str, str], body: bytes) -> int:
    """A browser-form upload (what a presigned POST is for), encoded by hand as multipart/form-data."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + body
        + b"\r\n"
    )
    data = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


def test_puts_multipart_form_uploads_copies_and_deletes_are_saved(cloud: Cloud, store: StateStore) -> None:
    s3 = cloud.client("s3")
    bucket = f"durable-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    assert store.rows("SELECT name FROM s3_buckets WHERE name = ?", bucket) == [(bucket,)]

    small, large, form = b"a small object", bytes(range(256)) * 30_000, b"uploaded through a form"
    s3.put_object(Bucket=bucket, Key="dir/small.txt", Body=small, Metadata={"kind": "small"})
    s3.upload_fileobj(  # 7.7 MB in 5 MB parts: only the completed object is saved
        io.BytesIO(large),
        bucket,
        "large.bin",
        Config=TransferConfig(multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2),
    )
    post = s3.generate_presigned_post(bucket, "form.bin", ExpiresIn=600)
    assert form_post(post["url"], post["fields"], form) in (200, 201, 204)
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "dir/small.txt"})
    assert saved(store, bucket) == {
        "dir/small.txt": small,
        "large.bin": large,
        "form.bin": form,
        "copy.txt": small,
    }
    (state,) = [
        pickle.loads(row[0])
        for row in store.rows("SELECT state FROM s3_objects WHERE bucket = ? AND name = 'large.bin'", bucket)
    ]
    etag = s3.head_object(Bucket=bucket, Key="large.bin")["ETag"].strip('"')
    assert etag.endswith("-2") and state["_etag"].strip('"') == etag  # the multipart ETag, kept as it was
    assert hashlib.sha256(large).hexdigest() in {p.name for p in store.blobs.iterdir()}

    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "dir/small.txt"}, {"Key": "form.bin"}]})
    s3.delete_object(Bucket=bucket, Key="large.bin")
    assert saved(store, bucket) == {"copy.txt": small}
    assert store.collect_garbage() == 2  # the large and the form bodies; the small one is still named
