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
