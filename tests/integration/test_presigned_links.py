"""Issue 12: the local stack served any presigned link, whatever its signature or expiry. It now checks
them as S3 does (geoexport_local.presigned), so these tests of expiry and tampering mean something."""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.error
import urllib.request
from uuid import uuid4

from geoexport import aws
from tests.integration.conftest import Cloud


def fetch(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> int:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_links_are_refused_once_expired_or_edited(cloud: Cloud) -> None:
    s3 = aws.s3(cloud.settings)  # SigV4 links, as the service mints them
    bucket = cloud.settings.exports_bucket
    mine, theirs = f"tasks/{uuid4()}/a.gpkg", f"tasks/{uuid4()}/b.gpkg"
    for key in (mine, theirs):
        s3.put_object(Bucket=bucket, Key=key, Body=b"secret " + key.encode())
    link = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": mine}, ExpiresIn=2)
    assert fetch(link) == 200
    assert fetch(link.replace(mine, theirs)) == 403  # another task's file through an edited path
    assert fetch(link.replace("X-Amz-Expires=2", "X-Amz-Expires=3600")) == 403  # a longer life, unsigned
    assert fetch(link, method="DELETE") == 403  # a GET link is not a DELETE link
    v2 = cloud.client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": mine})
    assert "AWSAccessKeyId=" in v2 and fetch(v2) == 400  # SigV2 links: refused as in every newer region
    time.sleep(3)
    assert fetch(link) == 403  # expired


def test_uploads_must_carry_what_was_signed(cloud: Cloud) -> None:
    s3 = aws.s3(cloud.settings)  # SigV4 links, as the service mints them
    bucket, key = cloud.settings.exports_bucket, f"uploads/{uuid4()}/f.bin"
    body = b"the declared bytes"
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentLength": len(body), "ChecksumSHA256": sha},
        ExpiresIn=60,
    )
    checksum = {"x-amz-checksum-sha256": sha, "Content-Type": "application/octet-stream"}
    assert fetch(url, "PUT", body + b"and more", checksum) == 403  # larger than declared: refused
    assert fetch(url, "PUT", b"other bytes of the same size", checksum) == 403
    assert fetch(url, "PUT", b"X" * len(body), checksum) == 400  # same size, other bytes: BadDigest
    assert fetch(url.replace(key, key + "2"), "PUT", body, checksum) == 403  # another key
    assert fetch(url, "PUT", body, checksum) == 200
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
