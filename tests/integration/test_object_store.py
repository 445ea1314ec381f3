"""The S3 adapter against moto: touch restarts an object's age only when it is old enough."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

from geoexport import bootstrap
from tests.integration.conftest import Cloud


def test_touch_restarts_age_only_when_needed_and_keeps_metadata(cloud: Cloud, tmp_path: Path) -> None:
    store = bootstrap.exports_store(cloud.settings)
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    store.put_file("exports/touch-test/a.bin", path, sha, "application/octet-stream")
    first = store.head("exports/touch-test/a.bin")
    assert first is not None and first["Metadata"]["sha256"] == sha
    time.sleep(1.1)
    store.touch("exports/touch-test/a.bin", older_than=timedelta(days=1))  # young: left alone
    assert store.head("exports/touch-test/a.bin")["LastModified"] == first["LastModified"]  # type: ignore[index]
    store.touch("exports/touch-test/a.bin", older_than=timedelta(0))
    after = store.head("exports/touch-test/a.bin")
    assert after is not None and after["LastModified"] > first["LastModified"]
    assert after["Metadata"]["sha256"] == sha and after["ContentLength"] == 1000


def test_ranged_reads_answer_exactly_their_bytes(cloud: Cloud) -> None:
    """The emulator reads only a ranged GET's bytes (GDAL's /vsis3/ reads sources that way); every form of
    Range S3 accepts still answers what S3 would."""
    import os

    s3, bucket = cloud.client("s3"), cloud.settings.exports_bucket
    data = os.urandom(1_000_003)
    s3.put_object(Bucket=bucket, Key="ranged/blob", Body=data)

    def get(spec: str) -> tuple[bytes, str | None]:
        answer = s3.get_object(Bucket=bucket, Key="ranged/blob", Range=spec)
        return answer["Body"].read(), answer.get("ContentRange")

    assert get("bytes=1000-1999") == (data[1000:2000], "bytes 1000-1999/1000003")
    assert get("bytes=999990-") == (data[999990:], "bytes 999990-1000002/1000003")
    assert get("bytes=-10") == (data[-10:], "bytes 999993-1000002/1000003")
    assert get("bytes=0-99999999")[0] == data
    assert get("bytes=0-9,20-29")[0] == data  # several ranges: S3 answers the whole object
    assert s3.get_object(Bucket=bucket, Key="ranged/blob")["Body"].read() == data
